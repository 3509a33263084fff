/**
 * Checkpoint unit tests: the step order (pages, data sync, meta, meta sync), the sync options, the
 * meta slot choice, and the invariants the sequence keeps, after every checkpoint of a random
 * workload: I1 (the older meta still names an intact tree: open with the newest meta damaged and
 * read it all), and exact page accounting (every page below the high-water mark is exactly one of:
 * meta, tree page, overflow page, free-list run, free-list entry).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { OverflowValue } from "../../src/btree/Node.js";
import { TreeCursor } from "../../src/btree/TreeCursor.js";
import type { CrashFileSystem } from "../../src/io/CrashFileSystem.js";
import { FaultFileSystem } from "../../src/io/FaultFileSystem.js";
import { META_FLAG_ONE_SYNC, probeMeta } from "../../src/pager/Meta.js";
import { DATA_FILE, Engine } from "../../src/txn/Engine.js";
import { Rng } from "../helpers/rng.js";
import { DIR, accountPages, apply, assertModel, bytes, cloneModel, commit, key, memFs, openEngine, readSnapshot, treePages, type DbModel } from "./engineUtil.js";

const DATA = `${DIR}/${DATA_FILE}`;

function onDiskMetas(fs: CrashFileSystem, pageSize = 1024): [number | null, number | null] {
  const raw = Buffer.from(fs.readFile(DATA)).subarray(0, 2 * pageSize);
  const p0 = probeMeta(raw, 0);
  const p1 = probeMeta(raw.subarray(pageSize), 1);
  return [p0.ok ? p0.meta.txn : null, p1.ok ? p1.meta.txn : null];
}

function trace(opts: { noSync?: boolean; noMetaSync?: boolean }, oneSyncMaxPages = 0): { events: string[]; metaFlags: number } {
  const base = memFs();
  const events: string[] = [];
  let on = false;
  const fault = new FaultFileSystem(base, {
    onCall: (c) => {
      if (on && c.path.endsWith(DATA_FILE) && (c.kind === "write" || c.kind === "sync")) events.push(c.kind);
    },
  });
  const e = Engine.open(fault, DIR, { pageSize: 1024, ...opts, onPhase: (p) => on && events.push(p) });
  e.oneSyncMaxPages = oneSyncMaxPages;
  commit(e, (w) => apply(w, new Map(), "", Array.from({ length: 100 }, (_, i) => [key(i), bytes(i, i % 10 === 0 ? 3000 : 30)] as [string, Buffer])));
  on = true;
  e.checkpoint();
  on = false;
  const metaFlags = e.durableMeta.flags;
  e.close();
  return { events, metaFlags };
}

test("the sequence: tree pages, data sync, meta, meta sync, in that order", () => {
  const { events: ev, metaFlags } = trace({});
  assert.equal(metaFlags & META_FLAG_ONE_SYNC, 0);
  const phases = ev.filter((x) => x.startsWith("checkpoint:"));
  assert.deepEqual(phases, [
    "checkpoint:before-write",
    "checkpoint:after-write",
    "checkpoint:after-data-sync",
    "checkpoint:before-meta",
    "checkpoint:after-meta",
    "checkpoint:after-meta-sync",
  ]);
  const i = (p: string) => ev.indexOf(p);
  const between = (a: string, b: string) => ev.slice(i(a) + 1, i(b));
  assert.ok(between("checkpoint:before-write", "checkpoint:after-write").every((x) => x === "write"));
  assert.ok(between("checkpoint:before-write", "checkpoint:after-write").length >= 1);
  assert.deepEqual(between("checkpoint:after-write", "checkpoint:after-data-sync"), ["sync"]);
  assert.deepEqual(between("checkpoint:before-meta", "checkpoint:after-meta"), ["write"], "exactly one write: the meta");
  assert.deepEqual(between("checkpoint:after-meta", "checkpoint:after-meta-sync"), ["sync"]);
  assert.equal(ev.filter((x) => x === "sync").length, 2);
});

test("noMetaSync skips the sync after the meta; noSync skips both", () => {
  const a = trace({ noMetaSync: true }, 1e9).events;
  assert.equal(a.filter((x) => x === "sync").length, 1);
  assert.ok(a.indexOf("sync") < a.indexOf("checkpoint:before-meta"), "the data sync stays before the meta write");
  const b = trace({ noSync: true }, 1e9).events;
  assert.equal(b.filter((x) => x === "sync").length, 0);
});

test("one sync: a checkpoint within oneSyncMaxPages writes its pages and meta, then syncs once, and flags the meta; one page over the bound takes two syncs", () => {
  const small = trace({}, 1e9);
  const ev = small.events;
  assert.equal(ev.filter((x) => x === "sync").length, 1, "one sync");
  assert.ok(ev.indexOf("sync") > ev.indexOf("checkpoint:after-meta"), "the one sync comes after the meta write");
  assert.ok(ev.slice(0, ev.indexOf("checkpoint:before-meta")).every((x) => x !== "sync"), "no sync before the meta");
  assert.equal(small.metaFlags & META_FLAG_ONE_SYNC, META_FLAG_ONE_SYNC, "the meta says its pages were synced with it");
  const pages = ev.filter((x) => x === "write").length - 1; // coalesced runs: a lower bound of the pages
  assert.ok(pages >= 1);
  // Find the page count of this checkpoint: the largest bound that still takes two syncs.
  let lo = 0;
  let hi = 1e4;
  while (lo + 1 < hi) {
    const mid = (lo + hi) >> 1;
    if (trace({}, mid).events.filter((x) => x === "sync").length === 2) lo = mid;
    else hi = mid;
  }
  const over = trace({}, lo);
  assert.equal(over.events.filter((x) => x === "sync").length, 2);
  assert.equal(over.metaFlags & META_FLAG_ONE_SYNC, 0, "a two-sync checkpoint does not flag its meta");
  assert.equal(trace({}, hi).events.filter((x) => x === "sync").length, 1);
  assert.ok(hi >= pages, `the bound counts pages (${hi}), not write calls (${pages})`);
});

test("each checkpoint writes the meta slot that does not hold the newest meta; the other keeps the previous txn", () => {
  const fs = memFs();
  const e = openEngine(fs);
  assert.deepEqual(onDiskMetas(fs), [0, null]);
  const model: DbModel = new Map();
  let prev = 0;
  for (let r = 1; r <= 6; r++) {
    commit(e, (w) => apply(w, model, "", [[key(r), bytes(r, 10)]]));
    e.checkpoint();
    const txn = e.head.txn;
    const want: [number, number] = r % 2 === 1 ? [prev, txn] : [txn, prev];
    assert.deepEqual(onDiskMetas(fs), want, `after checkpoint ${r}`);
    assert.equal(e.newest, r % 2 === 1 ? 1 : 0);
    prev = txn;
  }
  e.close();
});

test("a checkpoint writes overflow values and hands their memory back (they read from disk after)", () => {
  const fs = memFs();
  const e = openEngine(fs);
  commit(e, (w) => apply(w, new Map(), "", [["big", bytes(9, 6000)]]));
  const c = new TreeCursor(e.pager, e.head.dbs.get("")!.tree);
  c.seekGE(null);
  const v = c.value;
  assert.ok(v instanceof OverflowValue);
  assert.equal(v.page, 0);
  assert.ok(v.data);
  e.checkpoint();
  assert.ok(v.page >= 2);
  assert.equal(v.data, null);
  assert.ok(Buffer.from(e.readValue(v)).equals(bytes(9, 6000)));
  e.close();
});

/**
 * Open a copy of the file system with the newest meta damaged: the engine must fall back to the
 * other slot and find that state whole (I1).
 */
function openOlder(fs: CrashFileSystem, newest: 0 | 1): Engine {
  const copy = fs.clone();
  const f = copy.open(DATA, "rw");
  const b = Buffer.alloc(1);
  const off = newest * 1024 + 200;
  f.read(b, 0, 1, off);
  b[0]! ^= 0x5a;
  f.write(b, 0, 1, off);
  f.close();
  return Engine.open(copy, DIR);
}

test("after every checkpoint of a random workload: the older meta's state is intact (I1) and every page is accounted for", () => {
  const rng = new Rng(2024);
  const fs = memFs();
  const e = openEngine(fs);
  const model: DbModel = new Map();
  const history: Array<{ txn: number; model: DbModel }> = [{ txn: 0, model: new Map() }];
  const held: Array<{ txn: number }> = [];
  const dbs = ["", "a", "b"];
  let longest = 0;
  for (let r = 0; r < 60; r++) {
    const groups = 1 + rng.int(3);
    for (let g = 0; g < groups; g++) {
      commit(e, (w) => {
        const db = rng.pick(dbs);
        const n = 1 + rng.int(60);
        const ops: Array<[string, Buffer | null]> = [];
        for (let i = 0; i < n; i++) {
          const k = key(rng.int(400));
          ops.push([k, rng.bool(0.3) ? null : bytes(rng.int(1e6), rng.bool(0.08) ? 1000 + rng.int(4000) : rng.int(120))]);
        }
        apply(w, model, db, ops);
        if (rng.bool(0.05) && w.entry("b")) {
          w.dropDB("b", rng.bool());
          model.delete("b");
        }
      });
    }
    // Readers come and go (they bound the release limit).
    if (rng.bool(0.2)) {
      e.readers.acquire(e.published.txn);
      held.push({ txn: e.published.txn });
    }
    if (held.length && rng.bool(0.25)) e.readers.release(held.shift()!.txn);
    e.checkpoint();
    longest = Math.max(longest, e.freelistChain.segments.length);
    history.push({ txn: e.head.txn, model: cloneModel(model) });
    accountPages(e, `checkpoint ${r}`);
    // I1: the state the other slot names is whole.
    const older = e.metas[e.newest === 0 ? 1 : 0]!;
    const o = openOlder(fs, e.newest);
    try {
      assert.equal(o.head.txn, older.txn, `checkpoint ${r}: fell back to the older slot`);
      assert.ok(o.report.metaFallback, "the fallback is reported");
      const want = history.find((h) => h.txn === older.txn);
      assert.ok(want, `no model for txn ${older.txn}`);
      assertModel(readSnapshot(o, o.head, `older meta at ${r}`), want.model, `checkpoint ${r}: state of the older meta (txn ${older.txn})`);
    } finally {
      o.close();
    }
  }
  assert.ok(longest >= 3, `the free list was persisted as delta segments too (longest chain ${longest})`);
  for (const h of held) e.readers.release(h.txn);
  const free = [...e.freelist.allPages()].sort((a, b) => a[0] - b[0]);
  e.close();
  const e2 = openEngine(fs);
  assert.deepEqual([...e2.freelist.allPages()].sort((a, b) => a[0] - b[0]), free, "the free list is persisted exactly");
  assertModel(readSnapshot(e2, e2.head, "reopen"), model, "reopened");
  accountPages(e2, "reopened");
  e2.close();
});

test("with hundreds of scattered free runs, a checkpoint writes a delta of what it changed, not the whole list", () => {
  const fs = memFs();
  const e = openEngine(fs);
  const model: DbModel = new Map();
  const rng = new Rng(7);
  commit(e, (w) => apply(w, model, "", Array.from({ length: 4000 }, (_, i) => [key(i), bytes(i, 40)] as [string, Buffer])));
  e.checkpoint();
  // A reader pins the tree while small commits free scattered pages (an online backup does this).
  e.readers.acquire(e.published.txn);
  const pinned = e.published.txn;
  const small = () =>
    commit(e, (w) => apply(w, model, "", Array.from({ length: 3 }, () => [key(rng.int(4000)), bytes(rng.int(1e6), 40)] as [string, Buffer])));
  for (let i = 0; i < 300; i++) {
    small();
    e.checkpoint();
  }
  e.readers.release(pinned);
  small();
  e.checkpoint();
  const runs = e.freelist.encodedBytes() / 16;
  assert.ok(runs > 150, `the list is fragmented (${runs} runs)`);
  // From here on each checkpoint appends a delta of a page or two, until the deltas add up to the base.
  const basePages = e.freelistChain.basePages;
  let deltas = 0;
  for (let i = 0; i < 10; i++) {
    small();
    e.checkpoint();
    const head = e.freelistChain.segments.at(-1)!;
    if (e.freelistChain.segments.length > 1) {
      deltas++;
      assert.ok(head.pages <= 2, `checkpoint ${i}: a delta of ${head.pages} pages`);
    }
  }
  assert.ok(basePages >= 3, `the whole list takes ${basePages} pages`);
  assert.ok(deltas >= 2, `${deltas} of 10 checkpoints wrote a delta`);
  accountPages(e, "after the deltas");
  const free = [...e.freelist.allPages()].map(([p]) => p).sort((a, b) => a - b);
  e.close();
  const e2 = openEngine(fs);
  assert.deepEqual([...e2.freelist.allPages()].map(([p]) => p).sort((a, b) => a - b), free, "reopened: the same free pages");
  assertModel(readSnapshot(e2, e2.head, "reopen"), model, "reopened");
  e2.close();
});

test("pages freed by a checkpoint are reused only two checkpoints later (both metas moved past them)", () => {
  const fs = memFs();
  const e = openEngine(fs);
  const model: DbModel = new Map();
  const rewrite = (r: number) => commit(e, (w) => apply(w, model, "", Array.from({ length: 80 }, (_, i) => [key(i), bytes(r * 100 + i, 50)] as [string, Buffer])));
  rewrite(0);
  e.checkpoint();
  const firstPages = treePages(e, e.head.dbs.get("")!.tree);
  const firstTxn = e.head.txn;
  rewrite(1); // frees every page of the first tree, at txn firstTxn + 1
  e.checkpoint();
  // The first tree is still what the older meta names: none of its pages may be free for reuse yet.
  const ready = new Set([...e.freelist.allPages()].filter(([, t]) => t === 0).map(([p]) => p));
  for (const p of firstPages.keys()) assert.ok(!ready.has(p), `page ${p} of txn ${firstTxn}'s tree is reusable while a meta names it`);
  const o = openOlder(fs, e.newest);
  assert.equal(o.head.txn, firstTxn);
  o.close();
  rewrite(2);
  e.checkpoint();
  rewrite(3);
  e.checkpoint();
  // By now both metas are past the txn that freed the first tree: its pages are reusable or reused.
  const live = new Set<number>([...treePages(e, e.head.dbs.get("")!.tree).keys(), ...[...e.freelist.allPages()].filter(([, t]) => t === 0).map(([p]) => p)]);
  const back = [...firstPages.keys()].filter((p) => live.has(p));
  assert.ok(back.length > 0, "no page of the first tree was released for reuse");
  e.close();
});
