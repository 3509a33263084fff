/**
 * PageCache: the cacheSize budget holds over time. A checkpoint that writes more nodes than the
 * budget leaves them all in memory (each was just used); a later sweep must let go of the ones
 * not used since, even when the workload that follows loads nothing (reads of cached nodes only).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { memDb, sleep } from "../db/dbUtil.js";
import { PageCache } from "../../src/pager/PageCache.js";

for (const wal of [false, true]) {
  test(`wal: ${wal}: the cache comes back under its budget after a checkpoint wrote more than it, with nothing loaded since`, async () => {
    const { db } = memDb({ wal, pageSize: 1024, cacheSize: 64 * 1024 });
    await db.transaction((tx) => {
      for (let i = 0; i < 3000; i++) tx.put(i, `${i}:`.padEnd(40, "v"));
    });
    if (wal) await db.checkpoint();
    const after = db.getStats().cache;
    assert.ok(after.pages > 2 * after.capacityPages, `the checkpoint's nodes are held: ${after.pages} of ${after.capacityPages}`);
    const loads = after.loads;
    // Reads of one key: its path is cached, so nothing is loaded and no load can start a sweep.
    const until = Date.now() + PageCache.RESWEEP_MS + 400;
    while (Date.now() < until) {
      assert.equal(db.get(7), "7:".padEnd(40, "v"));
      await sleep(20);
    }
    const s = db.getStats().cache;
    assert.equal(s.loads, loads, "nothing was loaded");
    assert.ok(s.pages <= s.capacityPages, `back under the budget: ${s.pages} of ${s.capacityPages}`);
    assert.equal(db.get(2999), "2999:".padEnd(40, "v"), "an evicted node loads again");
    await db.close();
  });
}

test("a sweep that keeps more than the budget sweeps again RESWEEP_MS later, until under it; close stops that", async () => {
  const cache = new PageCache(64);
  const kept = [200, 150, 40];
  let calls = 0;
  cache.sweeper = () => kept[Math.min(calls++, kept.length - 1)]!;
  cache.added(300);
  assert.equal(calls, 1, "over the budget: swept at once");
  assert.equal(cache.count, 200);
  await sleep(PageCache.RESWEEP_MS + 200);
  assert.equal(calls, 2, "still over: swept again without any load");
  await sleep(PageCache.RESWEEP_MS + 200);
  assert.equal(calls, 3);
  assert.equal(cache.count, 40);
  await sleep(PageCache.RESWEEP_MS + 200);
  assert.equal(calls, 3, "under the budget: no more sweeps");

  const closed = new PageCache(64);
  let closedCalls = 0;
  closed.sweeper = () => (closedCalls++, 200);
  closed.added(300);
  closed.close();
  await sleep(PageCache.RESWEEP_MS + 200);
  assert.equal(closedCalls, 1, "no sweep after close");
});
