/**
 * FreeListChain unit tests: a chain of a base and delta segments, each delta built from one
 * checkpoint's journal, loads back to exactly the pages of the list it was built from; damage to a
 * chain (a take of a page that is not free, a page freed twice, a loop, a long chain, a bad flag)
 * is CORRUPT naming the segment, never a list that could hand out a page in use.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Rng } from "../helpers/rng.js";
import { FreeList } from "../../src/pager/FreeList.js";
import { FREELIST_DELTA, MAX_CHAIN_SEGMENTS, encodeDelta, loadFreeList, type FreeListSegment } from "../../src/pager/FreeListChain.js";
import { KeelError } from "../../src/errors.js";
import { throwsKeel } from "../db/dbUtil.js";

const FILE = "data.keel";

/** Segments stored by page number, as a data file holds them. */
class Segments {
  readonly byPage = new Map<number, { txn: number; pages: number; flags: number; payload: Buffer }>();
  put(seg: FreeListSegment, flags: number, payload: Buffer): void {
    this.byPage.set(seg.page, { txn: seg.txn, pages: seg.pages, flags, payload });
  }
  read = (page: number, pages: number, txn: number) => {
    const s = this.byPage.get(page);
    // A meta names its segment by the low 32 bits of the txn, as the page reader compares them.
    assert.ok(s && s.pages === pages && s.txn % 2 ** 32 === txn % 2 ** 32, `segment at ${page} (+${pages}) txn ${txn} exists`);
    return { payload: s.payload, flags: s.flags, txn: s.txn };
  };
}

const pageSet = (fl: FreeList) => [...fl.allPages()].map(([p]) => p).sort((a, b) => a - b);

const corruptReason = (fn: () => unknown): string => String(throwsKeel(fn, "CORRUPT").details.reason);

test("a chain built from random checkpoints' journals loads back to the list it was built from", () => {
  for (let seed = 1; seed <= 40; seed++) {
    const rng = new Rng(seed);
    const store = new Segments();
    let highWater = 2;
    const used = new Set<number>();
    let fl = new FreeList();
    let head: FreeListSegment | null = null;
    let segments = 0;
    for (let txn = 1; txn <= 60; txn++) {
      // One checkpoint: free some used pages, release, take some pages, maybe give a few back.
      const next = fl.clone();
      next.startJournal();
      for (let i = rng.int(6); i > 0 && used.size; i--) {
        const p = [...used][rng.int(used.size)]!;
        used.delete(p);
        next.free(txn, p, 1);
      }
      next.release(txn - 1 - rng.int(3));
      const taken: number[] = [];
      for (let i = rng.int(5); i > 0; i--) {
        const got = rng.chance(0.3) ? [next.takeRun(2)].filter((p) => p).flatMap((p) => [p, p + 1]) : next.takeMany(1 + rng.int(3));
        taken.push(...got);
      }
      while (taken.length < 3) taken.push(highWater++); // past the end of the file
      if (taken.length && rng.chance(0.3)) next.giveBack(taken.splice(0, 1 + rng.int(taken.length)));
      for (const p of taken) used.add(p);
      const segPage = highWater;
      highWater += 1;
      const seg = { page: segPage, pages: 1, txn };
      if (head && segments < MAX_CHAIN_SEGMENTS - 1 && !rng.chance(0.1)) {
        store.put(seg, FREELIST_DELTA, encodeDelta(head, next.journal!));
        segments++;
      } else {
        store.put(seg, 0, next.encode());
        segments = 1;
      }
      head = seg;
      used.add(segPage);
      fl = next;
      const loaded = loadFreeList(store.read, head, { file: FILE, highWater });
      assert.deepEqual(pageSet(loaded.freelist), pageSet(fl), `seed ${seed} txn ${txn}: same pages`);
      assert.equal(loaded.chain.segments.length, segments, `seed ${seed} txn ${txn}: chain length`);
      assert.deepEqual(loaded.chain.segments.at(-1), head);
      for (const [p, t] of loaded.freelist.allPages()) {
        assert.ok(!used.has(p), `seed ${seed} txn ${txn}: page ${p} is free and in use`);
        assert.ok(t <= txn, `seed ${seed} txn ${txn}: page ${p} freed by a later txn ${t}`);
      }
    }
  }
});

/** base (txn 1: pages 10..19 free) <- delta (txn 2) with the given journal edits. */
function twoSegments(edit: (fl: FreeList) => void): { store: Segments; head: FreeListSegment } {
  const store = new Segments();
  const base = new FreeList();
  base.free(1, 10, 10);
  store.put({ page: 5, pages: 1, txn: 1 }, 0, base.encode());
  const next = base.clone();
  next.startJournal();
  edit(next);
  const head = { page: 6, pages: 1, txn: 2 };
  store.put(head, FREELIST_DELTA, encodeDelta({ page: 5, pages: 1, txn: 1 }, next.journal!));
  return { store, head };
}

test("a delta that takes a page that is not free, or frees a page already free, is CORRUPT at its page", () => {
  // A take recorded for page 30, which the base does not list.
  const a = twoSegments((fl) => fl.journal!.takes.add(30, 1));
  let page = -1;
  try {
    loadFreeList(a.store.read, a.head, { file: FILE, highWater: 100 });
  } catch (e) {
    assert.ok(e instanceof KeelError && e.code === "CORRUPT" && e.details.reason === "freelist-take");
    page = e.details.page as number;
  }
  assert.equal(page, 6, "names the delta's page");
  // A free of page 12, already free in the base.
  const b = twoSegments((fl) => fl.journal!.adds.push(2, 12, 1));
  assert.equal(corruptReason(() => loadFreeList(b.store.read, b.head, { file: FILE, highWater: 100 })), "freelist-duplicate");
  // A free past the high water, and a free under a txn after the segment's own.
  const c = twoSegments((fl) => fl.journal!.adds.push(2, 120, 1));
  assert.equal(corruptReason(() => loadFreeList(c.store.read, c.head, { file: FILE, highWater: 100 })), "freelist-range");
  const d = twoSegments((fl) => fl.journal!.adds.push(9, 40, 1));
  assert.equal(corruptReason(() => loadFreeList(d.store.read, d.head, { file: FILE, highWater: 100 })), "freelist-txn");
  // Sound edits load: a take of free pages and a new free.
  const ok = twoSegments((fl) => {
    fl.release(1);
    fl.takeMany(3);
    fl.free(2, 50, 2);
  });
  const loaded = loadFreeList(ok.store.read, ok.head, { file: FILE, highWater: 100 });
  assert.deepEqual(pageSet(loaded.freelist), [13, 14, 15, 16, 17, 18, 19, 50, 51]);
});

test("txns past 2^32: a chain named by the low 32 bits of its newest txn (as a meta names it) loads", () => {
  const T = 2 ** 32 + 5;
  const store = new Segments();
  const base = new FreeList();
  base.free(T - 3, 10, 4);
  store.put({ page: 5, pages: 1, txn: T - 1 }, 0, base.encode());
  const next = base.clone();
  next.startJournal();
  next.free(T, 30, 2);
  store.put({ page: 6, pages: 1, txn: T }, FREELIST_DELTA, encodeDelta({ page: 5, pages: 1, txn: T - 1 }, next.journal!));
  const loaded = loadFreeList(store.read, { page: 6, pages: 1, txn: T % 2 ** 32 }, { file: FILE, highWater: 100 });
  assert.deepEqual(pageSet(loaded.freelist), [10, 11, 12, 13, 30, 31]);
  assert.deepEqual(loaded.chain.segments.map((x) => x.txn), [T - 1, T], "full txns, from the page headers");
});

test("a chain that loops, is too long, or holds a bad flag or a truncated delta is CORRUPT", () => {
  // A delta naming a segment of the same or a later txn (a loop).
  const store = new Segments();
  store.put({ page: 5, pages: 1, txn: 3 }, FREELIST_DELTA, encodeDelta({ page: 5, pages: 1, txn: 3 }, { adds: [], takes: emptyTakes() }));
  assert.equal(corruptReason(() => loadFreeList(store.read, { page: 5, pages: 1, txn: 3 }, { file: FILE, highWater: 100 })), "freelist-chain");
  // MAX_CHAIN_SEGMENTS deltas before any base.
  const long = new Segments();
  for (let i = 1; i <= MAX_CHAIN_SEGMENTS + 1; i++) {
    long.put({ page: 10 + i, pages: 1, txn: i + 1 }, FREELIST_DELTA, encodeDelta({ page: 10 + i - 1, pages: 1, txn: i }, { adds: [], takes: emptyTakes() }));
  }
  const top = MAX_CHAIN_SEGMENTS + 1;
  assert.equal(corruptReason(() => loadFreeList(long.read, { page: 10 + top, pages: 1, txn: top + 1 }, { file: FILE, highWater: 1000 })), "freelist-chain");
  // An unknown flag, and a delta cut short.
  const bad = twoSegments(() => {});
  bad.store.byPage.get(6)!.flags = 7;
  assert.equal(corruptReason(() => loadFreeList(bad.store.read, bad.head, { file: FILE, highWater: 100 })), "freelist-segment");
  const cut = twoSegments((fl) => fl.free(2, 60, 1));
  const seg = cut.store.byPage.get(6)!;
  seg.payload = seg.payload.subarray(0, seg.payload.length - 4);
  assert.equal(corruptReason(() => loadFreeList(cut.store.read, cut.head, { file: FILE, highWater: 100 })), "freelist-length");
  // A segment named outside the file.
  assert.equal(corruptReason(() => loadFreeList(cut.store.read, { page: 99, pages: 4, txn: 2 }, { file: FILE, highWater: 100 })), "freelist-range");
});

function emptyTakes() {
  const fl = new FreeList();
  fl.startJournal();
  return fl.journal!.takes;
}
