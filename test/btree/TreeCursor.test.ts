/**
 * TreeCursor unit tests (in-memory trees): seekGE/seekLE/seekLT, next/prev across leaves and at both
 * ends, empty trees; and the search helpers (keyPrefix, branchIndex, leafIndex) against the plain
 * string comparisons they speed up.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { treePut, treeRemove } from "../../src/btree/BTree.js";
import { BranchNode, LeafNode, branchIndex, childIndex, keyPrefix, leafIndex, lowerBound, searchPrefix } from "../../src/btree/Node.js";
import { TreeCursor } from "../../src/btree/TreeCursor.js";
import { emptyTree, type TreeState } from "../../src/btree/TreeState.js";
import { pageLimits } from "../../src/pager/PageLayout.js";
import { Rng } from "../helpers/rng.js";
import { MemWriter, leafValue, valueText } from "./memTree.js";

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function build(keys: string[], pageSize = 1024): { w: MemWriter; st: TreeState } {
  const w = new MemWriter(1, pageSize);
  const limits = pageLimits(pageSize);
  const st = emptyTree();
  for (const k of keys) treePut(w, st, k, leafValue(limits, k, "v:" + k));
  return { w, st };
}

function at(c: TreeCursor): string | null {
  return c.valid ? c.key : null;
}

test("an empty tree: every seek is invalid, next/prev stay invalid", () => {
  const w = new MemWriter(1);
  const c = new TreeCursor(w, emptyTree());
  c.seekGE(null);
  assert.equal(c.valid, false);
  c.seekGE("a");
  assert.equal(c.valid, false);
  c.seekLE(null);
  assert.equal(c.valid, false);
  c.seekLE("a");
  assert.equal(c.valid, false);
  c.seekLT("a");
  assert.equal(c.valid, false);
  c.next();
  assert.equal(c.valid, false);
  c.prev();
  assert.equal(c.valid, false);
});

test("a tree emptied by removes behaves like an empty tree", () => {
  const { w, st } = build(["a", "b", "c"]);
  for (const k of ["a", "b", "c"]) treeRemove(w, st, k);
  const c = new TreeCursor(w, st);
  c.seekGE(null);
  assert.equal(c.valid, false);
  c.seekLE(null);
  assert.equal(c.valid, false);
});

test("a single-leaf tree: seeks at, between and beyond the keys", () => {
  const { w, st } = build(["b", "d", "f"]);
  assert.equal(st.depth, 1);
  const c = new TreeCursor(w, st);
  const ge = (k: string | null) => (c.seekGE(k), at(c));
  const le = (k: string | null) => (c.seekLE(k), at(c));
  const lt = (k: string) => (c.seekLT(k), at(c));
  assert.equal(ge(null), "b");
  assert.equal(ge(""), "b");
  assert.equal(ge("b"), "b");
  assert.equal(ge("c"), "d");
  assert.equal(ge("f"), "f");
  assert.equal(ge("f\x00"), null);
  assert.equal(ge("g"), null);
  assert.equal(le(null), "f");
  assert.equal(le("a"), null);
  assert.equal(le("b"), "b");
  assert.equal(le("c"), "b");
  assert.equal(le("f"), "f");
  assert.equal(le("z"), "f");
  assert.equal(lt("b"), null);
  assert.equal(lt("b\x00"), "b");
  assert.equal(lt("d"), "b");
  assert.equal(lt("e"), "d");
  assert.equal(lt("\xff"), "f");
  assert.equal(c.value !== undefined && valueText(c.value), "v:f");
});

test("a deep tree: every seek agrees with binary search over the sorted keys", () => {
  const rng = new Rng(3);
  const set = new Set<string>();
  while (set.size < 3000) set.add(rng.bool(0.2) ? "p" + rng.text(rng.int(4)) : "key/" + String(rng.int(1e6)).padStart(7, "0") + (rng.bool(0.1) ? rng.text(60) : ""));
  const keys = [...set];
  const { w, st } = build(keys);
  assert.ok(st.depth >= 3, `depth ${st.depth}`);
  const sorted = keys.slice().sort(cmp);
  const c = new TreeCursor(w, st);
  const probes = [...sorted.filter((_, i) => i % 7 === 0), "", "\x00", "\xff", "key/", "key/5", "p", "q", "zzz"];
  for (let i = 0; i < 500; i++) probes.push("key/" + String(rng.int(1e6)).padStart(7, "0"));
  for (const k of sorted.filter((_, i) => i % 11 === 0)) probes.push(k + "\x00", k.slice(0, -1));
  for (const k of probes) {
    const i = lowerBound(sorted, k);
    const exact = i < sorted.length && sorted[i] === k;
    c.seekGE(k);
    assert.equal(at(c), sorted[i] ?? null, `seekGE ${JSON.stringify(k)}`);
    if (c.valid) assert.equal(valueText(c.value), "v:" + c.key);
    c.seekLE(k);
    assert.equal(at(c), (exact ? sorted[i] : sorted[i - 1]) ?? null, `seekLE ${JSON.stringify(k)}`);
    c.seekLT(k);
    assert.equal(at(c), sorted[i - 1] ?? null, `seekLT ${JSON.stringify(k)}`);
  }
});

test("next walks every key in order across leaves; prev walks them back", () => {
  const keys = Array.from({ length: 2500 }, (_, i) => "k" + String((i * 7919) % 2500).padStart(5, "0"));
  const { w, st } = build(keys);
  const sorted = keys.slice().sort(cmp);
  const c = new TreeCursor(w, st);
  const fwd: string[] = [];
  for (c.seekGE(null); c.valid; c.next()) fwd.push(c.key);
  assert.deepEqual(fwd, sorted);
  c.next();
  assert.equal(c.valid, false, "next past the end stays invalid");
  const back: string[] = [];
  for (c.seekLE(null); c.valid; c.prev()) back.push(c.key);
  assert.deepEqual(back, sorted.slice().reverse());
  c.prev();
  assert.equal(c.valid, false, "prev past the start stays invalid");
  // Change direction mid-way, across a leaf boundary.
  c.seekGE(sorted[1000]!);
  for (let i = 0; i < 300; i++) c.next();
  assert.equal(c.key, sorted[1300]);
  for (let i = 0; i < 700; i++) c.prev();
  assert.equal(c.key, sorted[600]);
  c.seekLE(sorted[0]!);
  assert.equal(c.key, sorted[0]);
  c.prev();
  assert.equal(c.valid, false);
  c.seekGE(sorted[sorted.length - 1]!);
  assert.equal(c.key, sorted[sorted.length - 1]);
  c.next();
  assert.equal(c.valid, false);
});

test("a cursor reads the snapshot it was opened on, not later writes", () => {
  const keys = Array.from({ length: 1000 }, (_, i) => "k" + String(i).padStart(4, "0"));
  const { st } = build(keys);
  const snap = { ...st };
  const w2 = new MemWriter(2);
  const limits = pageLimits(1024);
  const c = new TreeCursor(w2, snap);
  c.seekGE(null);
  const seen: string[] = [];
  for (let i = 0; c.valid; i++) {
    seen.push(c.key);
    if (i === 10) {
      // A later transaction removes and inserts everywhere while the cursor is mid-way.
      for (let j = 0; j < 1000; j += 3) treeRemove(w2, st, "k" + String(j).padStart(4, "0"));
      for (let j = 0; j < 500; j++) treePut(w2, st, "k" + String(j).padStart(4, "0") + "x", leafValue(limits, "k", "new"));
    }
    c.next();
  }
  assert.deepEqual(seen, keys);
});

function randomKey(rng: Rng): string {
  const r = rng.next();
  const alphabet = ["\x00", "\x01", "a", "b", "\x7f", "\x80", "\xfe", "\xff"];
  const n = r < 0.3 ? rng.int(4) : r < 0.6 ? 5 + rng.int(3) : rng.int(12);
  let s = "";
  for (let i = 0; i < n; i++) s += rng.bool(0.7) ? rng.pick(alphabet) : String.fromCharCode(rng.int(256));
  return s;
}

test("keyPrefix is monotonic in byte order (ties only on a shared 6-byte prefix)", () => {
  const rng = new Rng(21);
  const keys = Array.from({ length: 4000 }, () => randomKey(rng));
  keys.push("", "\x00", "\x00\x00\x00\x00\x00\x00", "\x00\x00\x00\x00\x00\x00\x00", "\xff\xff\xff\xff\xff\xff", "\xff\xff\xff\xff\xff\xff\xff");
  keys.sort(cmp);
  for (let i = 1; i < keys.length; i++) {
    const a = keys[i - 1]!;
    const b = keys[i]!;
    const pa = keyPrefix(a);
    const pb = keyPrefix(b);
    assert.ok(pa <= pb, `keyPrefix(${JSON.stringify(a)}) > keyPrefix(${JSON.stringify(b)})`);
    if (pa === pb) {
      const sa = (a + "\x00".repeat(6)).slice(0, 6);
      const sb = (b + "\x00".repeat(6)).slice(0, 6);
      assert.equal(sa, sb, `equal prefixes for ${JSON.stringify(a)} and ${JSON.stringify(b)}`);
    }
  }
  assert.ok(Number.isSafeInteger(keyPrefix("\xff\xff\xff\xff\xff\xff")));
});

test("branchIndex and leafIndex agree with childIndex and lowerBound for random keys", () => {
  const rng = new Rng(8);
  for (let trial = 0; trial < 400; trial++) {
    // Half the trials give every key a shared head, as "user:000123"-style keys have: the prefix
    // arrays then skip it (pfxHead), and probes fall below, inside and above it.
    const head = trial % 2 === 0 ? "" : randomKey(rng) + "key:0000";
    const seps = [...new Set(Array.from({ length: 1 + rng.int(40) }, () => head + randomKey(rng)))].sort(cmp);
    // Branch separators are never the empty key (a separator is > some key); leaves may hold it.
    const branchSeps = seps.filter((s) => s !== "");
    const b = new BranchNode(branchSeps, Array.from({ length: branchSeps.length + 1 }, (_, i) => i + 2), new Array(branchSeps.length + 1).fill(0), 1);
    const l = new LeafNode(seps, seps.map(() => ""), 1);
    const probes = [...seps, ...seps.map((s) => s + "\x00"), ...seps.map((s) => s.slice(0, -1))];
    for (let i = 0; i < 40; i++) probes.push(randomKey(rng), head + randomKey(rng), head.slice(0, rng.int(head.length + 1)) + randomKey(rng));
    for (const k of probes) {
      assert.equal(branchIndex(b, k, searchPrefix(b, k)), childIndex(b.keys, k), `branchIndex ${JSON.stringify(k)} in ${JSON.stringify(b.keys)}`);
      assert.equal(leafIndex(l, k, searchPrefix(l, k)), lowerBound(l.keys, k), `leafIndex ${JSON.stringify(k)} in ${JSON.stringify(l.keys)}`);
    }
    if (head !== "" && seps.length > 1) assert.ok(l.pfxHead.startsWith(head), "the leaf's prefix array skips the shared head");
    // childIndex is "number of separators <= key".
    for (const k of probes.slice(0, 20)) assert.equal(childIndex(b.keys, k), b.keys.filter((s) => s <= k).length);
  }
});

test("a stale prefix array is rebuilt after the keys change (pfx reset to null)", () => {
  const b = new BranchNode(["b", "d"], [2, 3, 4], [0, 0, 0], 1);
  assert.equal(branchIndex(b, "c", searchPrefix(b, "c")), 1);
  assert.ok(b.pfx !== null);
  // The tree code resets pfx on every change; a node changed that way searches correctly.
  b.keys.splice(1, 0, "c");
  b.children.splice(2, 0, 5);
  b.childTxn.splice(2, 0, 0);
  b.pfx = null;
  assert.equal(branchIndex(b, "c", searchPrefix(b, "c")), 2);
  assert.equal(branchIndex(b, "cc", searchPrefix(b, "cc")), 2);
  assert.equal(branchIndex(b, "a", searchPrefix(b, "a")), 0);
});

test("searchPrefix: relative to the node's shared head; below it -1, above it Infinity", () => {
  const l = new LeafNode(["key:0000012", "key:0000345", "key:0009"], ["", "", ""], 1);
  assert.equal(searchPrefix(l, "key:0000345"), keyPrefix("0345"));
  assert.equal(l.pfxHead, "key:000");
  assert.deepEqual(l.pfx, l.keys.map((k) => keyPrefix(k, 7)));
  assert.equal(searchPrefix(l, "key:00"), -1, "a proper prefix of the head sorts first");
  assert.equal(searchPrefix(l, "aaa"), -1);
  assert.equal(searchPrefix(l, "key:01"), Infinity);
  assert.equal(searchPrefix(l, "zzz"), Infinity);
  assert.equal(leafIndex(l, "key:00", -1), 0);
  assert.equal(leafIndex(l, "zzz", Infinity), 3);
  // A node of one key shares nothing with anything yet: no head.
  const one = new LeafNode(["key:0000012"], [""], 1);
  searchPrefix(one, "x");
  assert.equal(one.pfxHead, "");
});
