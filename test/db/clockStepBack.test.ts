/**
 * Time-based policies under a wall clock that steps back (an NTP step, a VM restored from a
 * snapshot). The times a database keeps on disk are wall-clock times (a meta's checkpointAt, a
 * log segment's createdAt); one in the future after a step back must make its policy due, not
 * hold it until the clock catches up (a day later for a one-day step), across a restart too.
 * (walSegmentMaxMs: test/wal/WriteAheadLog.test.ts; the read-only floor recheck:
 * ReadOnlyReaders.test.ts; LOCK waits: Lock.test.ts.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { open } from "../../src/index.js";
import { sleep, tempDir } from "./dbUtil.js";

const DAY = 86_400_000;

test("checkpointMs: a last checkpoint stamped in the future (the clock stepped back since, then a restart) is due at once", async (t) => {
  const dir = tempDir(t);
  const realNow = Date.now;
  t.after(() => (Date.now = realNow));
  Date.now = () => realNow() + DAY;
  const first = await open(dir, { checkpointMs: 100 });
  await first.put("a", 1);
  await first.close(); // checkpoints: the meta says "a day from now"
  Date.now = realNow;
  const db = await open(dir, { checkpointMs: 100 });
  t.after(() => db.close());
  assert.ok(db.getStats().lastCheckpointAt > realNow() + DAY / 2, "the meta keeps the future time");
  for (let i = 0; i < 20; i++) await db.put(`k${i}`, i);
  const lsn = db.getStats().lsn;
  const until = realNow() + 5000;
  while (db.txlogWatermarks().lastAppliedLsn < lsn && realNow() < until) await sleep(50);
  assert.equal(db.txlogWatermarks().lastAppliedLsn, lsn, "a checkpointMs checkpoint ran within 5 s");
  assert.ok(db.getStats().lastCheckpointAt <= realNow(), "and stamped the present");
});
