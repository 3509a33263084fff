// Grandchild of the wal-recovery workload: writes records until `bytes` of log exist, with the
// checkpoint policy pushed out of reach, prints "written" and waits to be killed.
import { randomBytes } from "node:crypto";
const [dir, bytesArg, optionsJson] = process.argv.slice(2);
const target = Number(bytesArg);
const keel = await import(new URL("../../dist/src/index.js", import.meta.url).href);
const big = 2 ** 40;
const db = await keel.open(dir, {
  ...JSON.parse(optionsJson),
  keyEncoding: "binary",
  encoding: "binary",
  checkpointLogBytes: big,
  checkpointDirtyBytes: big,
  checkpointMs: 1e12,
  walSegmentMaxBytes: 256 * 1024 * 1024,
});
const value = randomBytes(1000);
let written = 0;
let n = 0;
while (written < target) {
  await db.transaction((tx) => {
    for (let i = 0; i < 1000; i++) tx.put(randomBytes(16), value);
  });
  written += 1000 * 1030;
  n++;
}
await db.sync();
process.stdout.write(`written ${n} records\n`);
setInterval(() => {}, 1000);
