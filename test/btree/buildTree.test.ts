/**
 * buildTree: a tree built bottom-up from sorted entries passes checkTree (order, separators, page
 * fill, depth, exact statistics), holds exactly the entries, and is an ordinary tree afterwards:
 * puts and removes on it keep it valid. Small and large entry counts, several page sizes,
 * overflow values, long keys (few separators per branch).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { treeGet, treePut, treeRemove } from "../../src/btree/BTree.js";
import { buildTree } from "../../src/btree/buildTree.js";
import { leafEntryBytes } from "../../src/btree/Node.js";
import { checkTree } from "../../src/btree/TreeCheck.js";
import { TreeCursor } from "../../src/btree/TreeCursor.js";
import { emptyTree } from "../../src/btree/TreeState.js";
import { Rng } from "../helpers/rng.js";
import { MemWriter, leafValue } from "./memTree.js";

function entries(rng: Rng, n: number, keyLen: () => number, valLen: () => number): Map<string, string> {
  const m = new Map<string, string>();
  while (m.size < n) m.set(rng.text(keyLen()), rng.text(valLen()));
  return m;
}

test("buildTree: valid trees of any size, exactly the entries, and usable afterwards", () => {
  const rng = new Rng(5);
  const cases: Array<[string, number, number, () => number, () => number]> = [
    ["one entry", 1024, 1, () => 8, () => 10],
    ["one leaf", 1024, 5, () => 8, () => 10],
    ["two levels", 1024, 200, () => 12, () => 40],
    ["three levels", 1024, 5000, () => 16, () => 20],
    ["overflow values", 1024, 300, () => 10, () => (rng.bool(0.2) ? 3000 : 30)],
    ["long keys", 1024, 3000, () => 150 + rng.int(60), () => 5],
    ["4 KiB pages", 4096, 20000, () => 16, () => 100],
    ["varied", 512, 4000, () => 1 + rng.int(40), () => rng.int(100)],
  ];
  for (const [label, pageSize, n, keyLen, valLen] of cases) {
    const w = new MemWriter(7, pageSize);
    const model = entries(rng, n, keyLen, valLen);
    const keys = [...model.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const st = emptyTree();
    buildTree(w, st, keys, keys.map((k) => leafValue(w.limits, k, model.get(k)!)));
    assert.deepEqual(checkTree(w, st, { name: label }), [], `${label}: checkTree`);
    assert.equal(st.entries, n, `${label}: entries`);
    // Every entry is found, and a cursor walks them all in order.
    for (const k of keys) {
      const v = treeGet(w, st, k);
      assert.ok(v !== undefined, `${label}: ${JSON.stringify(k)} found`);
      assert.equal(typeof v === "string" ? v : v.data!.toString("latin1"), model.get(k), `${label}: value of ${JSON.stringify(k)}`);
    }
    const walked: string[] = [];
    const c = new TreeCursor(w, st);
    for (c.seekGE(null); c.valid; c.next()) walked.push(c.key);
    assert.deepEqual(walked, keys, `${label}: cursor order`);
    // Leaves come out full: on average at least 3/4 of a page (random inserts leave about 2/3).
    if (st.leafPages > 4) {
      let bytes = 0;
      for (const k of keys) bytes += leafEntryBytes(k, leafValue(w.limits, k, model.get(k)!));
      assert.ok(bytes / st.leafPages > 0.75 * pageSize, `${label}: ${st.leafPages} leaves for ${bytes} bytes`);
    }
    // An ordinary tree afterwards.
    for (let i = 0; i < 300; i++) {
      const k = rng.bool(0.5) ? rng.pick(keys) : rng.text(keyLen());
      if (rng.bool(0.5)) {
        const v = rng.text(valLen());
        treePut(w, st, k, leafValue(w.limits, k, v));
        model.set(k, v);
      } else {
        treeRemove(w, st, k);
        model.delete(k);
      }
    }
    assert.deepEqual(checkTree(w, st, { name: label }), [], `${label}: checkTree after changes`);
    assert.equal(st.entries, model.size, `${label}: entries after changes`);
  }
});

test("buildTree: refuses a non-empty tree and keys out of order", () => {
  const w = new MemWriter(3, 1024);
  const st = emptyTree();
  assert.throws(() => buildTree(w, st, ["b", "a"], ["1", "2"]), (e: Error & { code?: string }) => e.code === "INTERNAL");
  assert.throws(() => buildTree(w, st, ["a", "a"], ["1", "2"]), (e: Error & { code?: string }) => e.code === "INTERNAL");
  buildTree(w, st, ["a"], ["1"]);
  assert.throws(() => buildTree(w, st, ["b"], ["2"]), (e: Error & { code?: string }) => e.code === "INTERNAL");
});
