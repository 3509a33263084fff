import { open } from "lmdb";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
const dir = "/work/p16tmp/w64lmdb"; fs.rmSync(dir, { recursive: true, force: true });
const db = open({ path: dir, compression: false, encoding: "binary", keyEncoding: "binary" });
const W = +process.argv[2] || 64, secs = +process.argv[3] || 3;
const pool = Array.from({length: 4096}, () => randomBytes(116));
let k = 0, ops = 0;
const end = performance.now() + secs * 1000;
await Promise.all(Array.from({ length: W }, async () => {
  while (performance.now() < end) { const b = pool[k++ & 4095]; await db.put(randomBytes(16), b.subarray(16)); ops++; }
}));
console.log(`lmdb ops/s ${(ops / secs).toFixed(0)} size ${(fs.statSync(dir + "/data.mdb").size/2**20).toFixed(1)}MiB`);
await db.close();
