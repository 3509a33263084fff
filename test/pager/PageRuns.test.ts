/**
 * PageRuns unit tests: the run set against a plain Set model (random operations), the merging of
 * touching runs, and INTERNAL on a page added twice.
 */
import { test } from "node:test";
import { Rng } from "../helpers/rng.js";
import assert from "node:assert/strict";
import { NARROWEST_SCAN_RUNS, PageRuns } from "../../src/pager/PageRuns.js";
import { KeelError } from "../../src/errors.js";

function canonical(r: PageRuns): void {
  let size = 0;
  for (let i = 0; i < r.starts.length; i++) {
    assert.ok(r.counts[i]! >= 1, "no empty run");
    if (i > 0) assert.ok(r.starts[i - 1]! + r.counts[i - 1]! < r.starts[i]!, "runs ascending, disjoint and not touching");
    size += r.counts[i]!;
  }
  assert.equal(r.size, size);
}

/** The model of takeNarrowest: the n consecutive members with the smallest last - first, lowest on a tie. */
function narrowestOf(model: Set<number>, n: number): number[] {
  const sorted = [...model].sort((a, b) => a - b);
  if (n >= sorted.length) return sorted;
  let best = 0;
  for (let i = 1; i + n - 1 < sorted.length; i++) {
    if (sorted[i + n - 1]! - sorted[i]! < sorted[best + n - 1]! - sorted[best]!) best = i;
  }
  return n <= 0 ? [] : sorted.slice(best, best + n);
}

test("takeNarrowest takes the n members spanning the fewest pages, lowest on a tie", () => {
  const r = new PageRuns();
  for (const p of [2, 5, 10, 11, 12, 40, 41, 42, 43, 90]) r.add(p, 1);
  assert.deepEqual(r.takeNarrowest(4), [40, 41, 42, 43], "not the lowest four (2..11), the closest four");
  assert.deepEqual([...r.pages()], [2, 5, 10, 11, 12, 90]);
  assert.deepEqual(r.takeNarrowest(2), [10, 11], "a tie (10-11, 11-12) goes to the lower window");
  const cut = new PageRuns();
  cut.add(2, 2);
  cut.add(20, 10);
  assert.deepEqual(cut.takeNarrowest(5), [20, 21, 22, 23, 24], "the window may end inside a run");
  canonical(cut);
  assert.deepEqual([...cut.pages()], [2, 3, 25, 26, 27, 28, 29]);
  assert.deepEqual(cut.takeNarrowest(0), []);
  assert.deepEqual(cut.takeNarrowest(99), [2, 3, 25, 26, 27, 28, 29], "more than the set holds: all of it");
  assert.equal(cut.size, 0);
});

test("takeNarrowest weighs only windows starting in the lowest NARROWEST_SCAN_RUNS runs (a bounded scan)", () => {
  const r = new PageRuns();
  for (let i = 0; i < NARROWEST_SCAN_RUNS + 10; i++) r.add(2 + 3 * i, 1);
  const top = 10 + 3 * (NARROWEST_SCAN_RUNS + 10);
  r.add(top, 8); // the closest 8 pages of all, past the scanned runs
  const near = new PageRuns();
  for (let i = 0; i < 20; i++) near.add(2 + 3 * i, 1);
  near.add(100, 8);
  assert.deepEqual(near.takeNarrowest(8), [100, 101, 102, 103, 104, 105, 106, 107], "in reach: the closest");
  assert.deepEqual(r.takeNarrowest(8), [2, 5, 8, 11, 14, 17, 20, 23], "out of reach: among the scanned runs");
  canonical(r);
});

test("random add/delete/takeLowest/takeRun/takeNarrowest agree with a Set model and keep the runs canonical", () => {
  const rng = new Rng(12345);
  const rnd = (n: number): number => rng.int(n);
  for (let round = 0; round < 40; round++) {
    const r = new PageRuns();
    const model = new Set<number>();
    for (let step = 0; step < 400; step++) {
      const op = rnd(10);
      if (op < 5) {
        const first = 2 + rnd(300);
        const count = 1 + rnd(5);
        let clash = false;
        for (let p = first; p < first + count; p++) if (model.has(p)) clash = true;
        if (clash) continue;
        r.add(first, count);
        for (let p = first; p < first + count; p++) model.add(p);
      } else if (op < 7) {
        const p = 2 + rnd(300);
        assert.equal(r.delete(p), model.delete(p));
      } else if (op < 8 && rng.chance(0.5)) {
        const n = rnd(12);
        const want = narrowestOf(model, n);
        assert.deepEqual(r.takeNarrowest(n), want, `round ${round} step ${step}: narrowest ${n}`);
        for (const p of want) model.delete(p);
      } else if (op < 8) {
        const n = rnd(6);
        const want = [...model].sort((a, b) => a - b).slice(0, n);
        assert.deepEqual(r.takeLowest(n), want);
        for (const p of want) model.delete(p);
      } else {
        const n = 1 + rnd(6);
        const sorted = [...model].sort((a, b) => a - b);
        let want = 0;
        for (let i = 0, start = 0; i < sorted.length; i++) {
          if (i > 0 && sorted[i] !== sorted[i - 1]! + 1) start = i;
          if (i - start + 1 >= n) {
            want = sorted[start]!;
            break;
          }
        }
        assert.equal(r.takeRun(n), want, `round ${round} step ${step}: first fit of ${n}`);
        if (want) for (let p = want; p < want + n; p++) model.delete(p);
      }
      canonical(r);
      assert.deepEqual([...r.pages()], [...model].sort((a, b) => a - b));
      const probe = 2 + rnd(300);
      assert.equal(r.has(probe), model.has(probe));
    }
  }
});

test("addAll of a large set merges linearly into canonical runs; an overlap is INTERNAL and changes nothing", () => {
  const rng = new Rng(99);
  const rnd = (n: number): number => rng.int(n);
  for (let round = 0; round < 30; round++) {
    const a = new PageRuns();
    const b = new PageRuns();
    const model: number[] = [];
    for (let p = 2; p < 2000; p++) {
      const r = rnd(3);
      if (r === 0) a.add(p, 1);
      else if (r === 1) b.add(p, 1);
      else continue;
      model.push(p);
    }
    assert.ok(b.runCount > 16, "exercises the linear merge");
    const before = a.clone();
    a.addAll(b);
    canonical(a);
    assert.deepEqual([...a.pages()], model);
    assert.throws(
      () => before.addAll(a),
      (e: unknown) => e instanceof KeelError && e.code === "INTERNAL",
    );
    canonical(before);
    assert.equal(before.size, model.length - b.size, "a failed merge leaves the set as it was");
  }
});

test("touching runs merge into one, from either side and from both", () => {
  const r = new PageRuns();
  r.add(10, 2); // 10..11
  r.add(14, 2); // 14..15
  r.add(12, 2); // joins both
  assert.deepEqual([r.starts, r.counts], [[10], [6]]);
  r.add(16, 1);
  r.add(9, 1);
  assert.deepEqual([r.starts, r.counts], [[9], [8]]);
});

test("adding a page already in the set is INTERNAL and changes nothing", () => {
  const r = new PageRuns();
  r.add(10, 5);
  for (const [first, count] of [
    [12, 1],
    [8, 3],
    [14, 4],
    [5, 20],
  ] as const) {
    assert.throws(
      () => r.add(first, count),
      (e: unknown) => e instanceof KeelError && e.code === "INTERNAL",
    );
  }
  assert.deepEqual([r.starts, r.counts, r.size], [[10], [5], 5]);
});

test("clone is independent", () => {
  const r = new PageRuns();
  r.add(3, 4);
  const c = r.clone();
  c.takeLowest(2);
  c.add(20, 1);
  assert.deepEqual([...r.pages()], [3, 4, 5, 6]);
  assert.deepEqual([...c.pages()], [5, 6, 20]);
});
