/**
 * killChild: the process test/crash/kill.test.ts kills with SIGKILL.
 *
 * Usage: node dist/test/helpers/killChild.js <dir> <round> <writers>
 * Opens <dir> (wal: false, 1024-byte pages) and runs <writers> concurrent writer loops until it is
 * killed. It prints, synchronously (fs.writeSync on fd 1, so a line printed is a line the parent
 * gets even if the process dies right after):
 *   ready <pid>                        once the database is open
 *   try <db> <key> <id|->              before a write is issued ("-" = a remove)
 *   ack <db> <key> <id|->              after that write's promise resolved (it is durable)
 * Each key is written by one writer only, one write at a time, so per key the order of "try"
 * lines is the order of the writes, and a "try" comes only after the "ack" of the previous write.
 * Values are `valueFor(id)`, so the parent can check every byte of what it reads back.
 *
 * Writers: i % 4 == 0, 1: puts (default db and sub-database "s"); 2: puts and removes;
 * 3: a transaction writing the three keys t<i>-a, t<i>-b, t<i>-c with one id (atomicity check).
 */
import { writeSync } from "node:fs";
import { open, type Database } from "../../src/index.js";
import { valueFor } from "./killValues.js";

function out(line: string): void {
  const b = Buffer.from(line + "\n");
  let off = 0;
  while (off < b.length) {
    try {
      off += writeSync(1, b, off, b.length - off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
    }
  }
}

async function writer(db: Database, i: number, round: string): Promise<never> {
  const kind = i % 4;
  const dbName = kind === 1 ? "s" : "";
  const target = dbName === "" ? db : db.openDB(dbName);
  for (let n = 0; ; n++) {
    const id = `${round}.${i}.${n}`;
    if (kind === 3) {
      const keys = ["a", "b", "c"].map((x) => `t${i}-${x}`);
      for (const k of keys) out(`try - ${k} ${id}`);
      await db.transaction((tx) => {
        for (const k of keys) tx.put(k, valueFor(id));
      });
      for (const k of keys) out(`ack - ${k} ${id}`);
      continue;
    }
    const key = `w${i}-${n % 17}`;
    const remove = kind === 2 && n % 3 === 2;
    const dbField = dbName === "" ? "-" : dbName;
    out(`try ${dbField} ${key} ${remove ? "-" : id}`);
    if (remove) await target.remove(key);
    else await target.put(key, valueFor(id));
    out(`ack ${dbField} ${key} ${remove ? "-" : id}`);
  }
}

const [dir, round = "0", writers = "4"] = process.argv.slice(2);
if (!dir) throw new Error("usage: killChild.js <dir> <round> <writers>");
const db = await open(dir, { wal: false, pageSize: 1024 });
out(`ready ${process.pid}`);
await Promise.all(Array.from({ length: Number(writers) }, (_, i) => writer(db, i, round)));
