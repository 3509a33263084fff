/**
 * sortedOrder: a stable permutation into byte order, for small batches (comparison sort) and
 * large ones (radix on the 6 bytes after the common head, then ties by string).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { RADIX_MIN, sortedOrder } from "../../src/btree/sortedOrder.js";
import { Rng } from "../helpers/rng.js";

function randomKey(rng: Rng, prefix: string, max: number): string {
  let s = prefix;
  const n = rng.int(max + 1);
  for (let i = 0; i < n; i++) s += String.fromCharCode(rng.int(256));
  return s;
}

function checkSorted(keys: string[], label: string): void {
  const order = sortedOrder(keys);
  assert.equal(order.length, keys.length, `${label}: length`);
  const seen = new Uint8Array(keys.length);
  for (const i of order) {
    assert.ok(i < keys.length && !seen[i], `${label}: a permutation`);
    seen[i] = 1;
  }
  for (let j = 1; j < order.length; j++) {
    const a = order[j - 1]!;
    const b = order[j]!;
    const ka = keys[a]!;
    const kb = keys[b]!;
    assert.ok(ka < kb || (ka === kb && a < b), `${label}: position ${j}: ${JSON.stringify(ka)} (#${a}) before ${JSON.stringify(kb)} (#${b})`);
  }
}

test("sortedOrder: byte order, stable for equal keys, small and large batches", () => {
  const rng = new Rng(11);
  checkSorted([], "empty");
  checkSorted(["only"], "one key");
  for (const n of [2, 50, RADIX_MIN - 1, RADIX_MIN, 30_000]) {
    // Short keys with every byte value (so the zero padding of the 6-byte window is exercised: "a" and
    // "a\0" tie there), a shared head, decimal strings (ties past the window), and duplicates.
    const sets: Array<[string, string[]]> = [
      ["random bytes", Array.from({ length: n }, () => randomKey(rng, "", 8))],
      ["shared head", Array.from({ length: n }, () => randomKey(rng, "tenant:42/", 3))],
      ["decimal", Array.from({ length: n }, () => `user:${String(rng.int(1e12)).padStart(12, "0")}`)],
      ["few distinct", Array.from({ length: n }, () => rng.pick(["", "a", "a\0", "a\0\0\0\0\0\0\0", "b", "\xff"]))],
    ];
    for (const [label, keys] of sets) checkSorted(keys, `${label}, ${n} keys`);
  }
});
