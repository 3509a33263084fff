/**
 * localityOrder: the order in which to apply a batch of writes so that consecutive writes land
 * close together in the tree (the same leaf or its neighbours). A random key's descent misses the
 * CPU caches at every level of a large tree; writes taken bucket by bucket in key order walk it
 * left to right instead, with the path they touch still cached. Sorting would give the same
 * walk, but a string sort costs more than the misses it saves; bucketing a number per key (the
 * 6 bytes after the batch's common head) by a sample's quantiles, then one counting pass, costs
 * little.
 *
 * Invariants:
 * - The result is a permutation of 0..n-1, or null (apply in the given order).
 * - Stable: indices in one bucket keep their given order. Equal keys always share a bucket, so
 *   writes to one key apply in the order given; writes to different keys commute. Applying in
 *   this order therefore leaves exactly the state the given order leaves.
 * - Buckets are a monotone function of the key bytes: every key of bucket b sorts before every
 *   key of bucket b+1 (strings compare as bytes: keys are latin1).
 */
import { keyPrefix } from "./Node.js";

/** Below this many writes the reordering saves less than it costs. */
export const LOCALITY_MIN_BATCH = 1024;

/** About this many writes per bucket: a few leaves' worth, so a bucket's leaves stay in cache. */
const PER_BUCKET = 128;
const MAX_BUCKETS = 1 << 16;

export function localityOrder(keys: readonly string[]): Uint32Array | null {
  const n = keys.length;
  if (n < LOCALITY_MIN_BATCH) return null;
  // The bytes every key shares tell nothing apart: bucket on the 6 bytes after them.
  const first = keys[0]!;
  let head = first.length;
  for (let i = 1; i < n && head > 0; i++) {
    const k = keys[i]!;
    const m = Math.min(head, k.length);
    let s = 0;
    while (s < m && k.charCodeAt(s) === first.charCodeAt(s)) s++;
    head = s;
  }
  // Exact integers below 2^48, monotone in key order among keys that share `head`.
  const win = new Float64Array(n);
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < n; i++) {
    const p = keyPrefix(keys[i]!, head);
    win[i] = p;
    if (p < lo) lo = p;
    if (p > hi) hi = p;
  }
  if (hi === lo) return null;
  let buckets = 16;
  while (buckets < MAX_BUCKETS && buckets * PER_BUCKET < n) buckets *= 2;
  // Bucket bounds from a sample's quantiles, so the buckets follow however the keys are spread
  // (random bytes, decimal digits crowded into ten byte values, a dense run): a bucket is a
  // range of windows holding about n / buckets keys.
  const sampleSize = Math.min(n, buckets * 8);
  const sample = new Float64Array(sampleSize);
  for (let j = 0; j < sampleSize; j++) sample[j] = win[Math.floor((j * n) / sampleSize)]!;
  sample.sort();
  const bounds = new Float64Array(buckets - 1);
  for (let b = 0; b < buckets - 1; b++) bounds[b] = sample[Math.floor(((b + 1) * sampleSize) / buckets)]!;
  const bucketOf = new Uint32Array(n);
  const start = new Uint32Array(buckets + 1);
  for (let i = 0; i < n; i++) {
    // The number of bounds <= the window: monotone in the window, so in key order.
    const w = win[i]!;
    let lo2 = 0;
    let hi2 = bounds.length;
    while (lo2 < hi2) {
      const mid = (lo2 + hi2) >>> 1;
      if (bounds[mid]! <= w) lo2 = mid + 1;
      else hi2 = mid;
    }
    bucketOf[i] = lo2;
    start[lo2 + 1]!++;
  }
  for (let b = 0; b < buckets; b++) start[b + 1]! += start[b]!;
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[start[bucketOf[i]!]!++] = i;
  return order;
}
