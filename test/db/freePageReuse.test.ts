/**
 * Free pages are reused in the default log mode however many commits a checkpoint covers
 * (DESIGN.md I2 keeps them from being reused too early; this checks they are reused at all).
 * Each commit frees pages under its own txn; with more commits per checkpoint than the free
 * list's cap on pending groups, the cap once merged the old, releasable groups into the new ones
 * at every checkpoint: nothing was released again, and data.keel grew without bound while the
 * data stayed the same size.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { memDb } from "./dbUtil.js";

test("rewriting the same keys with 10 or 150 commits per checkpoint: the file stops growing", async () => {
  for (const commitsPerCheckpoint of [10, 150]) {
    const { db } = memDb({ pageSize: 1024 });
    await db.batch(Array.from({ length: 3000 }, (_, k) => ({ type: "put" as const, key: `k${k}`, value: "x".repeat(100) })));
    await db.checkpoint();
    const pages: number[] = [];
    for (let round = 0; round < 12; round++) {
      for (let c = 0; c < commitsPerCheckpoint; c++) await db.put(`k${(round * 997 + c * 131) % 3000}`, "y".repeat(100));
      await db.checkpoint();
      pages.push(db.getStats().totalPages);
    }
    const settled = pages[5]!;
    assert.ok(pages[11]! <= settled, `${commitsPerCheckpoint} commits per checkpoint: totalPages ${pages.join(" ")}`);
    assert.equal(db.getStats().entries, 3000);
    assert.ok((await db.verify()).ok);
    await db.close();
  }
});
