/**
 * sortedOrder: the order of a batch's keys, ascending by bytes, stable. A batch applied in this
 * order walks the tree from left to right, each leaf's writes one after another while its path
 * is in the CPU caches, where random keys would miss the caches at every level of a large tree;
 * and into an empty tree the sorted entries are built bottom-up (buildTree) with no descent at
 * all. A comparison sort of strings costs more than the misses it saves, so the keys are sorted
 * as numbers: the 6 bytes after the batch's common head, by three stable 16-bit counting passes;
 * only keys whose 6 bytes tie are then compared as strings.
 *
 * Invariants:
 * - The result is a permutation of 0..n-1 with keys[order[j]] <= keys[order[j+1]] (strings
 *   compare as bytes: keys are latin1).
 * - Stable: equal keys keep their given order, so writes to one key apply in the order given.
 *   Writes to different keys commute, so applying in this order leaves the state the given
 *   order leaves.
 */
const DIGIT = 65536;
/** From this many keys the radix sort is used. */
export const RADIX_MIN = 1024;

export function sortedOrder(keys: readonly string[]): Uint32Array {
  const n = keys.length;
  const byKey = (a: number, b: number) => {
    const ka = keys[a]!;
    const kb = keys[b]!;
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  };
  // A small batch: a comparison sort (stable) costs less than three passes over 65536 counters.
  if (n < RADIX_MIN) return Uint32Array.from(Array.from({ length: n }, (_, i) => i).sort(byKey));
  let order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  // The bytes every key shares tell nothing apart: sort on the 6 bytes after them.
  const first = keys[0]!;
  let head = first.length;
  for (let i = 1; i < n && head > 0; i++) {
    const k = keys[i]!;
    const m = Math.min(head, k.length);
    let s = 0;
    while (s < m && k.charCodeAt(s) === first.charCodeAt(s)) s++;
    head = s;
  }
  // The 6 bytes after `head` as three 16-bit digits (0 past a key's end): in key order among
  // keys that share `head`, (hi, mid, lo) never decreases.
  const hi = new Uint16Array(n);
  const mid = new Uint16Array(n);
  const lo = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const k = keys[i]!;
    const len = k.length;
    const c = (p: number) => (p < len ? k.charCodeAt(p) : 0);
    hi[i] = (c(head) << 8) | c(head + 1);
    mid[i] = (c(head + 2) << 8) | c(head + 3);
    lo[i] = (c(head + 4) << 8) | c(head + 5);
  }
  // LSD radix sort, low digit first: each pass stable, so the result is stable.
  let next = new Uint32Array(n);
  const count = new Uint32Array(DIGIT + 1);
  for (const digit of [lo, mid, hi]) {
    count.fill(0);
    for (let i = 0; i < n; i++) count[digit[i]! + 1]!++;
    if (count[digit[0]! + 1] === n) continue; // one value: nothing moves
    for (let d = 0; d < DIGIT; d++) count[d + 1]! += count[d]!;
    for (let j = 0; j < n; j++) {
      const i = order[j]!;
      next[count[digit[i]!]!++] = i;
    }
    const t = order;
    order = next;
    next = t;
  }
  // Runs of equal digits: order them by the whole key (Array.prototype.sort is stable).
  for (let j = 0; j < n; ) {
    const a = order[j]!;
    let e = j + 1;
    for (; e < n; e++) {
      const b = order[e]!;
      if (hi[b] !== hi[a] || mid[b] !== mid[a] || lo[b] !== lo[a]) break;
    }
    if (e - j > 1) {
      const run = Array.from(order.subarray(j, e)).sort(byKey);
      order.set(run, j);
    }
    j = e;
  }
  return order;
}
