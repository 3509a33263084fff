/**
 * Range: walks one tree between bounds with a TreeCursor, in either direction.
 *
 * Semantics (as lmdb-js): `start` is inclusive, `end` exclusive; with `reverse`, iteration goes
 * down from `start` (inclusive) to `end` (exclusive). `offset` entries are skipped, then at most
 * `limit` are returned.
 *
 * When the tree can change under the cursor (a range read inside the write transaction that is
 * changing it), `changed()` reports it and the walk re-seeks just past the last key it returned,
 * so it never revisits or skips a key that was there all along.
 */
import type { LeafValue } from "../btree/Node.js";
import type { TreeCursor } from "../btree/TreeCursor.js";

export interface RangeBounds {
  start?: string | undefined;
  end?: string | undefined;
  reverse?: boolean | undefined;
  limit?: number | undefined;
  offset?: number | undefined;
}

export function* walkRange(open: () => TreeCursor, b: RangeBounds, changed?: () => boolean): Generator<[string, LeafValue]> {
  let cur = open();
  const rev = !!b.reverse;
  if (rev) {
    if (b.start === undefined) cur.seekLE(null);
    else cur.seekLE(b.start);
  } else cur.seekGE(b.start ?? null);
  let skip = b.offset ?? 0;
  let left = b.limit ?? Infinity;
  let last: string | undefined;
  while (left > 0) {
    if (changed?.() && last !== undefined) {
      cur = open();
      if (rev) cur.seekLT(last);
      else {
        cur.seekGE(last);
        if (cur.valid && cur.key === last) cur.next();
      }
    }
    if (!cur.valid) return;
    const k = cur.key;
    if (b.end !== undefined && (rev ? k <= b.end : k >= b.end)) return;
    if (skip > 0) skip--;
    else {
      left--;
      yield [k, cur.value];
    }
    last = k;
    if (rev) cur.prev();
    else cur.next();
  }
}
