import { test } from "node:test";
import assert from "node:assert/strict";
import { FreeList } from "../../src/pager/FreeList.js";

test("park moves pages out of the reusable set so none is handed out twice", () => {
  const fl = new FreeList([5, 6, 7, 8], []);
  fl.park(10, [6, 7, 20]);
  const all = [...fl.allPages()].map(([p]) => p).sort((a, b) => a - b);
  assert.deepEqual(all, [5, 6, 7, 8, 20], "every page listed exactly once");
  assert.deepEqual(fl.takeMany(10), [5, 8], "parked pages are not reusable yet");
  fl.release(9);
  assert.equal(fl.takeRun(1), 0, "still parked below their txn");
  fl.release(10);
  assert.deepEqual(fl.takeMany(10), [6, 7, 20]);
});
