/**
 * onlineVerify: db.verify() on an open database, walking its files while readers and writers go
 * on (maintenance/verify.ts does the checks; this file keeps what they read in place).
 *
 * One write-queue task, between transactions, in order:
 *   1. Pin the older of the two meta slots' txns as a registered reader. A page a tree of txn
 *      >= T reaches is freed by a transaction > T, so no checkpoint reuses it while the pin holds
 *      (I2): the trees of both slots stay intact, and so does any tree a checkpoint writes
 *      meanwhile, whichever slots the walk then finds on disk.
 *   2. With the log: a floor at LSN 1 keeps every segment from gc, and the log is read only up to
 *      the active segment's end at this point (WriteAheadLog.writtenEnd), every record in it
 *      already in the file: the bytes a writer adds meanwhile are never half read. The data
 *      file's applied LSN is compared with the log as of this point too (a checkpoint finished
 *      later writes a meta past the scan's end: not "log behind data").
 * Then the walk runs in slices (a turn of the event loop after every 4 ms of work, verifyTypes.ts),
 * so a verify of a large database no longer holds the event loop or the writers for its length.
 *
 * Invariant: the pin and the floor are released on every path (success, damage found, abort, a
 * failed task).
 */
import { verifyEngine, type VerifyEngineOptions, type VerifyReport } from "../maintenance/verify.js";
import type { WalScanBound } from "../maintenance/verifyWal.js";
import type { Database } from "./Database.js";
import { LogDurability } from "./LogDurability.js";

/** Names the log floor of each running verify. */
let verifySeq = 0;

export async function verifyOnline(db: Database, opts: VerifyEngineOptions): Promise<VerifyReport> {
  const engine = db.engine;
  const d = db.durability;
  const floor = `verify:${++verifySeq}`;
  let pinned: number | null = null;
  const unpin = () => {
    if (pinned !== null) engine.readers.release(pinned);
    pinned = null;
    if (d instanceof LogDurability) d.setFloor(floor, undefined);
  };
  const bound = await db
    .task((): WalScanBound | undefined => {
      // Step 1: the older slot's txn (an empty slot: the newest's; a new file: 0).
      let txn = Infinity;
      for (const m of engine.metas) if (m && m.txn < txn) txn = m.txn;
      if (txn === Infinity) txn = 0;
      engine.readers.acquire(txn);
      pinned = txn;
      // Step 2: the log.
      if (!(d instanceof LogDurability)) return undefined;
      d.setFloor(floor, 1);
      let applied = 0;
      for (const m of engine.metas) if (m && m.appliedLsn > applied) applied = m.appliedLsn;
      return { ...d.wal.writtenEnd(), appliedLsn: applied };
    })
    .catch((e: unknown) => {
      unpin();
      throw e;
    });
  try {
    return await verifyEngine(engine, opts, bound);
  } finally {
    unpin();
  }
}
