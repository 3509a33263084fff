/**
 * BTree unit tests on an in-memory tree (see memTree.ts): random puts and removes against a sorted
 * Map model with checkTree after every operation, overflow values, copy-on-write snapshots (MVCC),
 * and the exact set of pages each transaction reports as freed (I2 depends on it).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { rootNode, treeFreeAll, treeGet, treePut, treeRemove } from "../../src/btree/BTree.js";
import { OverflowValue } from "../../src/btree/Node.js";
import { checkTree } from "../../src/btree/TreeCheck.js";
import { TreeCursor } from "../../src/btree/TreeCursor.js";
import { copyTree, emptyTree, type TreeState } from "../../src/btree/TreeState.js";
import { overflowPages, pageLimits } from "../../src/pager/PageLayout.js";
import { Rng } from "../helpers/rng.js";
import { MemWriter, leafValue, picture, reachablePages, sortedKeys, stamp, valueText } from "./memTree.js";

function check(w: MemWriter, st: TreeState, label: string): void {
  const problems = checkTree(w, st, { name: "t" });
  assert.deepEqual(problems, [], `${label}: ${JSON.stringify(problems)}`);
}

function scan(w: MemWriter, st: TreeState): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const c = new TreeCursor(w, st);
  for (c.seekGE(null); c.valid; c.next()) out.push([c.key, valueText(c.value)]);
  return out;
}

function modelEntries(m: Map<string, string>): Array<[string, string]> {
  return sortedKeys(m).map((k) => [k, m.get(k)!]);
}

function assertMatches(w: MemWriter, st: TreeState, m: Map<string, string>, label: string): void {
  assert.deepEqual(scan(w, st), modelEntries(m), `${label}: full scan`);
  assert.equal(st.entries, m.size, `${label}: entries`);
  for (const [k, v] of m) {
    const got = treeGet(w, st, k);
    assert.ok(got !== undefined, `${label}: key ${JSON.stringify(k)} missing`);
    assert.equal(valueText(got), v, `${label}: value of ${JSON.stringify(k)}`);
  }
}

/** Keys of many shapes: empty, one byte, 0x00 and 0xff bytes, shared prefixes, maximal length. */
function makeKeyPool(rng: Rng, n: number, maxKeySize: number): string[] {
  const set = new Set<string>();
  const fixed = ["", "\x00", "\x00\x00", "\xff", "\xff\xff\xff", "a", "a\x00", "ab", "abc", "abcdef", "abcdefg", "abcdef\x00", "abcdeg"];
  for (const k of fixed) set.add(k);
  while (set.size < n) {
    const r = rng.next();
    let k: string;
    if (r < 0.3) k = "user:" + String(rng.int(100000)).padStart(6, "0");
    else if (r < 0.45) k = "prefix-shared-by-many/" + rng.text(rng.int(6));
    else if (r < 0.55) k = String.fromCharCode(...rng.bytes(1 + rng.int(7)));
    else if (r < 0.65) k = "L".repeat(maxKeySize - rng.int(3)) ;
    else if (r < 0.75) k = ("x" + rng.text(maxKeySize)).slice(0, maxKeySize - rng.int(20));
    else k = rng.text(1 + rng.int(30));
    set.add(k.slice(0, maxKeySize));
  }
  return [...set];
}

function randomValue(rng: Rng, pageSize: number): string {
  const r = rng.next();
  if (r < 0.55) return rng.text(rng.int(20));
  if (r < 0.75) return rng.text(rng.int(pageSize / 2)); // up to and past the inline limit
  if (r < 0.85) return "";
  return rng.text(pageSize / 2 + rng.int(pageSize * 4)); // overflow, several pages
}

test("random puts and removes match a sorted model, with checkTree after every operation", () => {
  for (const seed of [1, 2, 3]) {
    const rng = new Rng(seed);
    const pageSize = 1024;
    const limits = pageLimits(pageSize);
    const pool = makeKeyPool(rng, 1500, limits.maxKeySize);
    const st = emptyTree();
    const model = new Map<string, string>();
    let txn = 1;
    let w = new MemWriter(txn, pageSize);
    let overflowSeen = 0;
    let maxDepth = 0;
    for (let op = 0; op < 4000; op++) {
      if (rng.bool(0.08)) w = new MemWriter(++txn, pageSize); // a new transaction now and then
      const key = rng.pick(pool);
      // Grow first, then shrink, then mix, so trees get deep and then collapse.
      const removeRate = op < 2000 ? 0.1 : op < 3000 ? 0.8 : 0.45;
      const label = `seed ${seed} op ${op}`;
      if (rng.bool(removeRate)) {
        const existed = treeRemove(w, st, key);
        assert.equal(existed, model.has(key), `${label}: remove result`);
        model.delete(key);
        assert.equal(treeGet(w, st, key), undefined, `${label}: removed key still found`);
      } else {
        const value = randomValue(rng, pageSize);
        const lv = leafValue(limits, key, value);
        if (lv instanceof OverflowValue) overflowSeen++;
        const old = treePut(w, st, key, lv);
        // The replaced value comes back from the same descent (overflow ones too: their pages are
        // freed, not reused, until the transaction commits).
        assert.equal(old === undefined ? undefined : valueText(old), model.get(key), `${label}: put result`);
        model.set(key, value);
        const got = treeGet(w, st, key);
        assert.ok(got !== undefined, `${label}: put key not found`);
        assert.equal(valueText(got), value, `${label}: value`);
      }
      check(w, st, label);
      maxDepth = Math.max(maxDepth, st.depth);
      assert.equal(st.entries, model.size, `${label}: entries`);
      if (op % 250 === 249) assertMatches(w, st, model, label);
    }
    assert.ok(overflowSeen > 50, "the workload stores overflow values");
    assert.ok(maxDepth >= 3, `the tree got deep (depth ${maxDepth})`);
    assertMatches(w, st, model, `seed ${seed} end`);
    // Remove everything: the tree collapses to empty.
    for (const k of rng.bool() ? sortedKeys(model) : sortedKeys(model).reverse()) {
      assert.equal(treeRemove(w, st, k), true);
      check(w, st, `drain ${JSON.stringify(k)}`);
    }
    assert.equal(st.root, null);
    assert.equal(st.depth, 0);
    assert.equal(st.entries, 0);
    assert.equal(st.leafPages, 0);
    assert.equal(st.branchPages, 0);
    assert.equal(st.overflowPages, 0);
  }
});

test("keys of exactly maxKeySize build a valid deep tree at the smallest page size", () => {
  const pageSize = 1024;
  const limits = pageLimits(pageSize);
  const rng = new Rng(77);
  const st = emptyTree();
  const w = new MemWriter(1, pageSize);
  const model = new Map<string, string>();
  for (let i = 0; i < 400; i++) {
    // Long shared prefix, difference at the end, so separators are long too.
    const key = ("K".repeat(limits.maxKeySize - 8) + String(rng.int(1e8)).padStart(8, "0")).slice(0, limits.maxKeySize);
    assert.equal(key.length, limits.maxKeySize);
    const value = rng.text(rng.int(300));
    treePut(w, st, key, leafValue(limits, key, value));
    model.set(key, value);
    check(w, st, `insert ${i}`);
  }
  assert.ok(st.depth >= 4, `depth ${st.depth}`);
  assertMatches(w, st, model, "max keys");
  let i = 0;
  for (const k of sortedKeys(model)) {
    if (i++ % 2) continue;
    treeRemove(w, st, k);
    model.delete(k);
    check(w, st, `remove ${i}`);
  }
  assertMatches(w, st, model, "after removes");
});

test("sequential (appending) inserts and replacing values with bigger and smaller ones keep the invariants", () => {
  const pageSize = 1024;
  const limits = pageLimits(pageSize);
  const st = emptyTree();
  const w = new MemWriter(1, pageSize);
  const model = new Map<string, string>();
  for (let i = 0; i < 1500; i++) {
    const k = String(i).padStart(6, "0");
    treePut(w, st, k, leafValue(limits, k, "v" + i));
    model.set(k, "v" + i);
  }
  check(w, st, "appended");
  // Appending should pack leaves densely: far fewer leaves than a half-full split would give.
  const perLeaf = st.entries / st.leafPages;
  assert.ok(perLeaf > 50, `appended leaves hold ${perLeaf.toFixed(1)} entries each`);
  const rng = new Rng(5);
  for (let i = 0; i < 600; i++) {
    const k = String(rng.int(1500)).padStart(6, "0");
    const v = rng.bool(0.5) ? rng.text(rng.int(450)) : rng.bool() ? "" : rng.text(3000);
    treePut(w, st, k, leafValue(limits, k, v));
    model.set(k, v);
    check(w, st, `replace ${i}`);
  }
  assertMatches(w, st, model, "after replaces");
});

test("overflow values are counted in overflowPages and dropped when replaced or removed", () => {
  const pageSize = 1024;
  const limits = pageLimits(pageSize);
  const st = emptyTree();
  const w = new MemWriter(1, pageSize);
  const big = "B".repeat(5000);
  const v = leafValue(limits, "k", big);
  assert.ok(v instanceof OverflowValue);
  treePut(w, st, "k", v);
  assert.equal(st.overflowPages, overflowPages(5000, pageSize));
  treePut(w, st, "k2", leafValue(limits, "k2", "C".repeat(2000)));
  assert.equal(st.overflowPages, overflowPages(5000, pageSize) + overflowPages(2000, pageSize));
  treePut(w, st, "k", leafValue(limits, "k", "small"));
  assert.equal(st.overflowPages, overflowPages(2000, pageSize));
  treeRemove(w, st, "k2");
  assert.equal(st.overflowPages, 0);
  check(w, st, "overflow");
  // The inline limit is exact: an entry of exactly maxInlineEntry bytes stays inline.
  const exact = "x".repeat(limits.maxInlineEntry - 7 - 3);
  assert.equal(typeof leafValue(limits, "abc", exact), "string");
  assert.ok(leafValue(limits, "abc", exact + "x") instanceof OverflowValue);
});

test("copy-on-write: a snapshot copied before a transaction reads its old content afterwards (MVCC)", () => {
  const pageSize = 1024;
  const limits = pageLimits(pageSize);
  const rng = new Rng(11);
  const st = emptyTree();
  const model = new Map<string, string>();
  let txn = 1;
  const snapshots: Array<{ st: TreeState; model: Map<string, string>; pic: string; txn: number }> = [];
  for (let round = 0; round < 40; round++) {
    const w = new MemWriter(txn++, pageSize);
    const ops = 1 + rng.int(80);
    for (let i = 0; i < ops; i++) {
      const k = "k" + String(rng.int(600)).padStart(4, "0");
      if (rng.bool(0.35)) {
        treeRemove(w, st, k);
        model.delete(k);
      } else {
        const v = rng.bool(0.1) ? rng.text(1500 + rng.int(3000)) : rng.text(rng.int(60));
        treePut(w, st, k, leafValue(limits, k, v));
        model.set(k, v);
      }
    }
    // Commit: the state is a snapshot that readers may hold from now on.
    const snap = copyTree(st);
    snapshots.push({ st: snap, model: new Map(model), pic: picture(snap), txn: w.txn });
  }
  const reader = new MemWriter(txn, pageSize);
  for (const s of snapshots) {
    assert.equal(picture(s.st), s.pic, `snapshot of txn ${s.txn} changed under later writers`);
    assert.deepEqual(checkTree(reader, s.st, { name: "snap" }), []);
    assertMatches(reader, s.st, s.model, `snapshot of txn ${s.txn}`);
  }
});

test("copy-on-write: one transaction's writes do not show in the state copied before it", () => {
  const pageSize = 1024;
  const limits = pageLimits(pageSize);
  const st = emptyTree();
  const w1 = new MemWriter(1, pageSize);
  const model = new Map<string, string>();
  for (let i = 0; i < 800; i++) {
    const k = "key" + String(i).padStart(5, "0");
    const v = i % 50 === 0 ? "O".repeat(3000) : "value" + i;
    treePut(w1, st, k, leafValue(limits, k, v));
    model.set(k, v);
  }
  const before = copyTree(st);
  const pic = picture(before);
  const w2 = new MemWriter(2, pageSize);
  for (let i = 0; i < 800; i += 2) treeRemove(w2, st, "key" + String(i).padStart(5, "0"));
  for (let i = 1; i < 800; i += 4) treePut(w2, st, "key" + String(i).padStart(5, "0"), leafValue(limits, "k", "changed"));
  for (let i = 0; i < 300; i++) treePut(w2, st, "new" + i, leafValue(limits, "new", "n".repeat(i * 7)));
  check(w2, st, "after");
  assert.notEqual(picture(st), pic);
  assert.equal(picture(before), pic, "the earlier state was modified in place");
  assertMatches(w2, before, model, "earlier state");
  // The root node of the earlier state is not the root of the new one.
  assert.notEqual(rootNode(w2, before), rootNode(w2, st));
});

test("each transaction reports as freed exactly the written pages it stops reaching", () => {
  const pageSize = 1024;
  const limits = pageLimits(pageSize);
  const rng = new Rng(99);
  const st = emptyTree();
  let txn = 1;
  const everFreed = new Set<number>();
  for (let round = 0; round < 60; round++) {
    const w = new MemWriter(txn, pageSize);
    const before = reachablePages(st, pageSize);
    const ops = 1 + rng.int(60);
    for (let i = 0; i < ops; i++) {
      const k = "k" + String(rng.int(700)).padStart(4, "0");
      if (rng.bool(round > 40 ? 0.7 : 0.3)) treeRemove(w, st, k);
      else treePut(w, st, k, leafValue(limits, k, rng.bool(0.15) ? rng.text(1200 + rng.int(2500)) : rng.text(rng.int(80))));
    }
    check(w, st, `round ${round}`);
    const after = reachablePages(st, pageSize);
    const freed = w.freedPages();
    const freedSet = new Set(freed);
    assert.equal(freedSet.size, freed.length, `round ${round}: a page was reported freed twice`);
    const expected = [...before].filter((p) => !after.has(p)).sort((a, b) => a - b);
    assert.deepEqual([...freedSet].sort((a, b) => a - b), expected, `round ${round}: freed pages`);
    for (const p of freed) {
      assert.ok(!everFreed.has(p), `round ${round}: page ${p} freed by two transactions`);
      everFreed.add(p);
    }
    stamp(st, txn, pageSize); // the checkpoint writes the new nodes
    txn++;
  }
  assert.ok(everFreed.size > 100, `${everFreed.size} pages freed over the run`);
});

test("a missing key is removed without copying anything (no pages freed)", () => {
  const pageSize = 1024;
  const limits = pageLimits(pageSize);
  const st = emptyTree();
  const w1 = new MemWriter(1, pageSize);
  for (let i = 0; i < 300; i++) treePut(w1, st, "k" + i, leafValue(limits, "k", "v" + i));
  stamp(st, 1, pageSize);
  const pic = picture(st);
  const root = st.root;
  const w2 = new MemWriter(2, pageSize);
  assert.equal(treeRemove(w2, st, "nope"), false);
  assert.equal(treeRemove(w2, emptyTree(), "nope"), false);
  assert.deepEqual(w2.freedRuns, []);
  assert.equal(st.root, root);
  assert.equal(picture(st), pic);
});

test("treeFreeAll reports every page of the tree, overflow runs included, once", () => {
  const pageSize = 1024;
  const limits = pageLimits(pageSize);
  const st = emptyTree();
  const w1 = new MemWriter(1, pageSize);
  for (let i = 0; i < 500; i++) {
    const k = "k" + String(i).padStart(4, "0");
    treePut(w1, st, k, leafValue(limits, k, i % 40 === 0 ? "big".repeat(900) : "v" + i));
  }
  stamp(st, 1, pageSize);
  const all = reachablePages(st, pageSize);
  const w2 = new MemWriter(2, pageSize);
  treeFreeAll(w2, copyTree(st));
  const freed = w2.freedPages();
  assert.equal(new Set(freed).size, freed.length);
  assert.deepEqual(new Set(freed), all);
  // An empty tree frees nothing.
  const w3 = new MemWriter(3, pageSize);
  treeFreeAll(w3, emptyTree());
  assert.deepEqual(w3.freedRuns, []);
});
