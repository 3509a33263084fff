/**
 * FreeList unit tests: the release rule (I2), allocation order (takeRun first fit, takeMany lowest
 * first), park/giveBack, and the persisted form (encode/decode, with CORRUPT on damage).
 */
import { test } from "node:test";
import { Rng } from "../helpers/rng.js";
import assert from "node:assert/strict";
import { FreeList } from "../../src/pager/FreeList.js";
import { KeelError } from "../../src/errors.js";

const WHERE = { file: "data.keel", page: 9, highWater: 1000 };

function pages(fl: FreeList): Array<[number, number]> {
  return [...fl.allPages()].sort((a, b) => a[0] - b[0]);
}

function corruptReason(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof KeelError, `expected a KeelError, got ${String(e)}`);
    assert.equal(e.code, "CORRUPT");
    return String(e.details.reason);
  }
  assert.fail("expected CORRUPT");
}

test("a page freed at txn F becomes reusable only by release(limit) with limit >= F", () => {
  const fl = new FreeList();
  fl.free(5, 10);
  fl.free(7, 20, 3);
  assert.equal(fl.readyCount, 0);
  assert.equal(fl.pendingCount, 4);
  assert.equal(fl.size, 4);
  assert.deepEqual(fl.takeMany(10), [], "nothing is reusable before release");
  assert.equal(fl.takeRun(1), 0);

  fl.release(4);
  assert.equal(fl.readyCount, 0, "limit below every freeing txn releases nothing");
  fl.release(5);
  assert.equal(fl.readyCount, 1, "limit == F releases the pages freed at F");
  assert.equal(fl.pendingCount, 3);
  fl.release(6);
  assert.equal(fl.readyCount, 1, "pages freed at 7 stay pending under limit 6");
  fl.release(100);
  assert.equal(fl.readyCount, 4);
  assert.equal(fl.pendingCount, 0);
  assert.deepEqual(fl.takeMany(10), [10, 20, 21, 22]);
  assert.equal(fl.size, 0);
});

test("frees recorded out of txn order are released by their own txn", () => {
  const fl = new FreeList();
  fl.free(9, 90);
  fl.free(3, 30);
  fl.free(6, 60);
  fl.free(3, 31);
  fl.free(9, 91);
  const pend = pages(fl);
  assert.deepEqual(pend, [
    [30, 3],
    [31, 3],
    [60, 6],
    [90, 9],
    [91, 9],
  ]);
  fl.release(3);
  assert.deepEqual(fl.takeMany(10), [30, 31]);
  fl.release(8);
  assert.deepEqual(fl.takeMany(10), [60]);
  fl.release(9);
  assert.deepEqual(fl.takeMany(10), [90, 91]);
});

test("release keeps the ready list sorted and merges with what is already there", () => {
  const fl = new FreeList([4, 50], []);
  fl.free(2, 30);
  fl.free(2, 3);
  fl.free(2, 60);
  fl.release(2);
  assert.deepEqual(fl.takeMany(100), [3, 4, 30, 50, 60]);
});

test("takeMany hands out the pages that lie closest together, and at most what is ready", () => {
  const fl = new FreeList([3, 8, 9, 15], []);
  assert.deepEqual(fl.takeMany(2), [8, 9], "8..9 span one page; the lowest two (3, 8) span five");
  assert.deepEqual(fl.takeMany(0), []);
  assert.deepEqual(fl.takeMany(5), [3, 15]);
  assert.deepEqual(fl.takeMany(5), []);
});

test("takeRun takes the first contiguous run that is long enough (first fit), 0 when none", () => {
  const fl = new FreeList([2, 3, 5, 6, 7, 10, 11, 12, 13, 20], []);
  assert.equal(fl.takeRun(3), 5, "the run 2..3 is too short; 5..7 is the first fit");
  assert.deepEqual(pages(fl).map(([p]) => p), [2, 3, 10, 11, 12, 13, 20]);
  assert.equal(fl.takeRun(5), 0, "no run of 5");
  assert.deepEqual(pages(fl).map(([p]) => p), [2, 3, 10, 11, 12, 13, 20], "a failed takeRun takes nothing");
  assert.equal(fl.takeRun(2), 2);
  assert.equal(fl.takeRun(4), 10, "a run at the end of a longer one is found");
  assert.equal(fl.takeRun(1), 20);
  assert.equal(fl.takeRun(1), 0);
  assert.equal(fl.takeRun(2), 0, "empty list");
});

test("takeRun finds a run that ends at the last ready page", () => {
  const fl = new FreeList([4, 9, 10, 11], []);
  assert.equal(fl.takeRun(3), 9);
  assert.deepEqual(fl.takeMany(10), [4]);
});

test("takeRun agrees with a brute-force first fit on random lists", () => {
  let seed = 12345;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  for (let trial = 0; trial < 300; trial++) {
    const set = new Set<number>();
    const count = rnd(30);
    for (let i = 0; i < count; i++) set.add(2 + rnd(40));
    const sorted = [...set].sort((a, b) => a - b);
    const n = 1 + rnd(5);
    let expect = 0;
    for (let i = 0; i + n <= sorted.length && !expect; i++) {
      if (sorted[i + n - 1]! - sorted[i]! === n - 1) expect = sorted[i]!;
    }
    const fl = new FreeList(sorted.slice(), []);
    assert.equal(fl.takeRun(n), expect, `list ${sorted.join(",")} run ${n}`);
    const left = fl.takeMany(1000);
    const want = expect ? sorted.filter((p) => p < expect || p >= expect + n) : sorted;
    assert.deepEqual(left, want);
  }
});

test("park moves pages out of the ready and pending sets under the given txn, once each", () => {
  const fl = new FreeList([5, 6, 7, 8], [{ txn: 4, pages: [30, 31] }]);
  fl.park(10, [6, 7, 31, 40]);
  assert.deepEqual(pages(fl), [
    [5, 0],
    [6, 10],
    [7, 10],
    [8, 0],
    [30, 4],
    [31, 10],
    [40, 10],
  ]);
  assert.deepEqual(fl.takeMany(10), [5, 8], "parked pages are not reusable");
  fl.release(9);
  assert.deepEqual(fl.takeMany(10), [30]);
  fl.release(10);
  assert.deepEqual(fl.takeMany(10), [6, 7, 31, 40]);
});

test("giveBack returns taken pages to the ready list in order", () => {
  const fl = new FreeList([3, 4, 5, 9], []);
  const run = fl.takeRun(3);
  assert.equal(run, 3);
  fl.giveBack([5, 3, 4]);
  assert.deepEqual(fl.takeMany(10), [3, 4, 5, 9]);
});

test("clone is independent of the original", () => {
  const fl = new FreeList([3, 4], [{ txn: 2, pages: [8] }]);
  const c = fl.clone();
  c.takeMany(5);
  c.free(3, 50);
  c.release(10);
  assert.deepEqual(pages(fl), [
    [3, 0],
    [4, 0],
    [8, 2],
  ]);
});

test("encode/decode round trip keeps every page and its freeing txn", () => {
  const fl = new FreeList();
  for (const p of [2, 3, 4, 10, 12, 13]) fl.free(1, p);
  fl.release(1);
  fl.free(7, 20, 4);
  fl.free(7, 30);
  fl.free(2 ** 33 + 5, 40, 2); // a txn past 32 bits
  fl.free(9, 25);
  const buf = fl.encode();
  assert.equal(buf.length, fl.encodedBytes());
  assert.equal(buf.length % 16, 0);
  const back = FreeList.decode(buf, WHERE);
  assert.deepEqual(pages(back), pages(fl));
  assert.equal(back.readyCount, fl.readyCount);
  assert.equal(back.pendingCount, fl.pendingCount);
  // Runs are coalesced: ready 2..4, 10, 12..13; txn 7: 20..23, 30; txn 9: 25; big txn: 40..41.
  assert.equal(buf.length, 16 * 7);
  // The decoded list keeps the release rule.
  back.release(8);
  assert.deepEqual(back.takeMany(100), [2, 3, 4, 10, 12, 13, 20, 21, 22, 23, 30]);
  back.release(2 ** 33 + 5);
  assert.deepEqual(back.takeMany(100), [25, 40, 41]);
});

test("one transaction freeing 300,000 pages is released, encoded and decoded whole", () => {
  // More pages than a JavaScript call has argument slots (a bulk delete or one huge value).
  const fl = new FreeList();
  fl.free(5, 10, 300_000);
  fl.release(5);
  assert.equal(fl.readyCount, 300_000);
  const back = FreeList.decode(fl.encode(), { ...WHERE, highWater: 400_000 });
  assert.equal(back.readyCount, 300_000);
  assert.equal(fl.encodedBytes(), 16, "one contiguous run is one entry");
});

test("encode agrees with a brute-force run encoding on random fragmented lists", () => {
  const rng = new Rng(7);
  const rnd = (n: number): number => rng.int(n);
  for (let round = 0; round < 50; round++) {
    const fl = new FreeList();
    const model = new Map<number, number>(); // page -> txn (0 = ready)
    for (let i = 0; i < 200; i++) {
      const page = 2 + rnd(500);
      const count = 1 + rnd(4);
      const txn = 1 + rnd(6);
      let clash = false;
      for (let p = page; p < page + count; p++) if (model.has(p)) clash = true;
      if (clash) continue;
      fl.free(txn, page, count);
      for (let p = page; p < page + count; p++) model.set(p, txn);
      if (rnd(10) === 0) {
        const limit = rnd(7);
        fl.release(limit);
        for (const [p, t] of model) if (t !== 0 && t <= limit) model.set(p, 0);
      }
    }
    // Brute force: group by txn, sort, coalesce; ready (txn 0) first, then ascending txn.
    const byTxn = new Map<number, number[]>();
    for (const [p, t] of model) (byTxn.get(t) ?? byTxn.set(t, []).get(t)!).push(p);
    const entries: Array<[number, number, number]> = [];
    for (const t of [...byTxn.keys()].sort((a, b) => a - b)) {
      const ps = byTxn.get(t)!.sort((a, b) => a - b);
      for (let i = 0; i < ps.length; ) {
        let j = i + 1;
        while (j < ps.length && ps[j] === ps[j - 1]! + 1) j++;
        entries.push([ps[i]!, j - i, t]);
        i = j;
      }
    }
    const buf = fl.encode();
    assert.equal(buf.length, fl.encodedBytes());
    const got: Array<[number, number, number]> = [];
    for (let off = 0; off < buf.length; off += 16) got.push([buf.readUInt32LE(off), buf.readUInt32LE(off + 4), buf.readUInt32LE(off + 8)]);
    const key = (e: [number, number, number]): string => e.join(",");
    assert.deepEqual(got.map(key).sort(), entries.map(key).sort(), `round ${round}`);
    assert.deepEqual(pages(FreeList.decode(buf, WHERE)), pages(fl));
  }
});

test("pending groups are capped: the newest merge under the newer txn, so no page is released early", () => {
  // A long-lived reader: every checkpoint frees pages under a new txn and none is released.
  const fl = new FreeList();
  const freedBy = new Map<number, number>();
  for (let txn = 1; txn <= 1000; txn++) {
    fl.free(txn, 2 + txn * 3, 2); // two pages per txn, with a gap between txns
    freedBy.set(2 + txn * 3, txn).set(3 + txn * 3, txn);
  }
  const txns = new Set([...fl.allPages()].map(([, t]) => t));
  assert.ok(txns.size <= 64, `${txns.size} pending groups`);
  for (const [page, txn] of fl.allPages()) assert.ok(txn >= freedBy.get(page)!, `page ${page} freed by ${freedBy.get(page)} listed under ${txn}`);
  assert.equal(fl.pendingCount, 2000);
  // Released only once the limit reaches the txn it is listed under, never earlier than freed.
  for (let limit = 0; limit <= 1000; limit += 37) {
    const c = fl.clone();
    c.release(limit);
    for (const p of c.takeMany(1e6)) assert.ok(freedBy.get(p)! <= limit, `page ${p} (freed by ${freedBy.get(p)}) reusable at limit ${limit}`);
  }
  fl.release(1000);
  assert.equal(fl.readyCount, 2000);
  const back = FreeList.decode(fl.encode(), { ...WHERE, highWater: 4000 });
  assert.equal(back.readyCount, 2000);
});

test("an empty list encodes to nothing and decodes to an empty list", () => {
  const buf = new FreeList().encode();
  assert.equal(buf.length, 0);
  assert.equal(FreeList.decode(buf, WHERE).size, 0);
});

test("decode rejects a page listed twice with CORRUPT (freelist-duplicate)", () => {
  const a = new FreeList([5, 6, 7], []).encode();
  const b = new FreeList([], [{ txn: 3, pages: [7, 8] }]).encode();
  assert.equal(corruptReason(() => FreeList.decode(Buffer.concat([a, b]), WHERE)), "freelist-duplicate");
  // Within one txn, overlapping runs.
  const c = new FreeList([], [{ txn: 3, pages: [10, 11] }]).encode();
  const d = new FreeList([], [{ txn: 4, pages: [11] }]).encode();
  assert.equal(corruptReason(() => FreeList.decode(Buffer.concat([c, d]), WHERE)), "freelist-duplicate");
});

test("decode rejects pages outside the file with CORRUPT (freelist-range)", () => {
  const entry = (start: number, count: number, txn = 0) => {
    const b = Buffer.alloc(16);
    b.writeUInt32LE(start, 0);
    b.writeUInt32LE(count, 4);
    b.writeUInt32LE(txn, 8);
    return b;
  };
  assert.equal(corruptReason(() => FreeList.decode(entry(0, 1), WHERE)), "freelist-range", "meta page 0");
  assert.equal(corruptReason(() => FreeList.decode(entry(1, 1), WHERE)), "freelist-range", "meta page 1");
  assert.equal(corruptReason(() => FreeList.decode(entry(5, 0), WHERE)), "freelist-range", "empty run");
  assert.equal(corruptReason(() => FreeList.decode(entry(999, 2), WHERE)), "freelist-range", "past high water");
  assert.equal(corruptReason(() => FreeList.decode(entry(0xfffffff0, 0x20), WHERE)), "freelist-range", "wraps past 2^32");
  // The last page below high water is fine.
  assert.equal(FreeList.decode(entry(999, 1), WHERE).size, 1);
});

test("decode rejects a partial entry with CORRUPT and names the page", () => {
  const buf = Buffer.concat([new FreeList([5], []).encode(), Buffer.alloc(7)]);
  try {
    FreeList.decode(buf, WHERE);
    assert.fail("expected CORRUPT");
  } catch (e) {
    assert.ok(e instanceof KeelError);
    assert.equal(e.code, "CORRUPT");
    assert.equal(e.details.page, 9);
    assert.equal(e.details.reason, "freelist-length");
  }
});

test("a checkpoint adding more frees than the group cap still releases the older groups it may (the log: one group per commit)", () => {
  // Checkpoints of 100 commits each; the release limit at each is the txn of the checkpoint
  // before the previous one (the older meta slot). Merging the oldest groups raised their txn
  // above every limit: nothing was ever released and the file grew without bound.
  const fl = new FreeList();
  let txn = 0;
  const ends: number[] = [0];
  let page = 10;
  for (let ckpt = 1; ckpt <= 10; ckpt++) {
    // Checkpoint.ts step 1: release, add this checkpoint's frees, release again.
    const limit = ends[ckpt - 1]!; // the older slot after the previous checkpoint
    fl.release(limit);
    for (let c = 0; c < 100; c++) fl.free(++txn, page++, 1);
    ends.push(txn);
    fl.release(limit);
    // Everything freed at or before the limit is reusable now; nothing after it.
    assert.equal(fl.readyCount, limit, `checkpoint ${ckpt}: ${fl.readyCount} ready, limit ${limit}`);
  }
  // Without the release first, the newest-merge rule alone still releases everything at most one
  // checkpoint late: bounded.
  const late = new FreeList();
  let t2 = 0;
  const ends2: number[] = [0];
  for (let ckpt = 1; ckpt <= 10; ckpt++) {
    for (let c = 0; c < 100; c++) late.free(++t2, 1000 + t2, 1);
    ends2.push(t2);
    late.release(ends2[ckpt - 1]!);
    assert.ok(late.readyCount >= (ends2[ckpt - 2] ?? 0), `checkpoint ${ckpt}: only ${late.readyCount} ready`);
  }
});
