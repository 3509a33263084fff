/**
 * localityOrder: a stable permutation whose buckets follow key order, or null where reordering
 * cannot help (small batches, keys that all share their bytes).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { LOCALITY_MIN_BATCH, localityOrder } from "../../src/btree/localityOrder.js";
import { Rng } from "../helpers/rng.js";

function randomKey(rng: Rng, prefix: string): string {
  let s = prefix;
  const n = rng.range(4, 12);
  for (let i = 0; i < n; i++) s += String.fromCharCode(rng.int(256));
  return s;
}

function isPermutation(order: Uint32Array, n: number): boolean {
  if (order.length !== n) return false;
  const seen = new Uint8Array(n);
  for (const i of order) {
    if (i >= n || seen[i]) return false;
    seen[i] = 1;
  }
  return true;
}

const byteOrder = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

test("localityOrder: null below the minimum batch and when every key shares its bytes", () => {
  const rng = new Rng(1);
  const small = Array.from({ length: LOCALITY_MIN_BATCH - 1 }, () => randomKey(rng, ""));
  assert.equal(localityOrder(small), null);
  assert.equal(localityOrder(Array.from({ length: 5000 }, () => "same key")), null);
  // Keys that differ only by trailing zero bytes have equal windows: nothing to bucket on.
  assert.equal(localityOrder(Array.from({ length: 5000 }, (_, i) => (i % 2 ? "k" : "k\0"))), null);
});

test("localityOrder: a stable permutation, grouped in key order (random, prefixed, decimal keys)", () => {
  const rng = new Rng(7);
  const sets: Array<[string, string[]]> = [
    ["random bytes", Array.from({ length: 40_000 }, () => randomKey(rng, ""))],
    ["shared prefix", Array.from({ length: 20_000 }, () => randomKey(rng, "tenant:42/"))],
    ["decimal", Array.from({ length: 30_000 }, () => `user:${String(rng.int(1e9)).padStart(9, "0")}`)],
  ];
  for (const [label, keys] of sets) {
    // Duplicates, to check that writes to one key keep their order.
    for (let i = 0; i < 2000; i++) keys.push(keys[rng.int(keys.length)]!);
    const n = keys.length;
    const order = localityOrder(keys);
    assert.ok(order !== null, `${label}: reordered`);
    assert.ok(isPermutation(order, n), `${label}: a permutation`);
    // Stable for equal keys.
    const lastIndex = new Map<string, number>();
    for (const i of order) {
      const prev = lastIndex.get(keys[i]!);
      assert.ok(prev === undefined || prev < i, `${label}: writes to one key keep their order`);
      lastIndex.set(keys[i]!, i);
    }
    // Grouped in key order: cut the sorted keys into 16 rank groups; the sequence of groups the
    // order visits may only step back within one bucket, which is far smaller than a group.
    const sorted = keys.map((_, i) => i).sort((a, b) => byteOrder(keys[a]!, keys[b]!));
    const rank = new Uint32Array(n);
    sorted.forEach((i, r) => (rank[i] = r));
    const groupSize = Math.ceil(n / 16);
    let high = 0;
    let backSteps = 0;
    for (const i of order) {
      const g = Math.floor(rank[i]! / groupSize);
      assert.ok(g >= high - 1, `${label}: the order went back from group ${high} to ${g}`);
      if (g < high) backSteps++;
      high = Math.max(high, g);
    }
    // In the given (random) order about half the steps go back a group; here only those inside
    // a bucket that straddles a group boundary may.
    assert.ok(backSteps < n / 10, `${label}: ${backSteps} steps back of ${n}`);
  }
});
