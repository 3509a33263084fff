/**
 * FreeList: pages no tree reaches any more, and when they may be written again.
 *
 * Invariant I2: a page freed by transaction F (reachable in F-1's tree, not in F's) is handed out
 * for reuse only after `release(limit)` with F <= limit, where the caller passes
 *   limit = min(txn of the older meta slot, txn of the oldest live read snapshot).
 * Then no meta that may be chosen at open (both slots hold txn >= F) and no reader can reach it,
 * which is also what I1 needs: the checkpoint about to overwrite the older slot never writes over
 * a page that either slot's tree uses.
 *
 * Persisted like bbolt's free list: the whole list is rewritten by each checkpoint into a fresh
 * run of pages, as (first page, count, freeing txn) triples; reusable pages carry txn 0.
 */
import { corrupt } from "../errors.js";

const TWO32 = 0x100000000;
const ENTRY = 16;

interface Pending {
  txn: number;
  pages: number[];
}

export class FreeList {
  /** Reusable now; sorted ascending, no duplicates. */
  #ready: number[];
  /** Freed but maybe still reachable; ascending txn. */
  #pending: Pending[];

  constructor(ready: number[] = [], pending: Pending[] = []) {
    this.#ready = ready;
    this.#pending = pending;
  }

  clone(): FreeList {
    return new FreeList(this.#ready.slice(), this.#pending.map((p) => ({ txn: p.txn, pages: p.pages.slice() })));
  }

  get readyCount(): number {
    return this.#ready.length;
  }

  get pendingCount(): number {
    let n = 0;
    for (const p of this.#pending) n += p.pages.length;
    return n;
  }

  get size(): number {
    return this.#ready.length + this.pendingCount;
  }

  /** Record `count` pages from `page` as freed by transaction `txn`. */
  free(txn: number, page: number, count = 1): void {
    let last = this.#pending[this.#pending.length - 1];
    if (!last || last.txn !== txn) {
      if (last && last.txn > txn) {
        const found = this.#pending.find((p) => p.txn === txn);
        if (found) last = found;
        else {
          this.#pending.push({ txn, pages: [] });
          this.#pending.sort((a, b) => a.txn - b.txn);
          last = this.#pending.find((p) => p.txn === txn)!;
        }
      } else {
        last = { txn, pages: [] };
        this.#pending.push(last);
      }
    }
    for (let i = 0; i < count; i++) last.pages.push(page + i);
  }

  /** Make reusable every page freed by a transaction <= limit. */
  release(limit: number): void {
    let k = 0;
    const moved: number[] = [];
    while (k < this.#pending.length && this.#pending[k]!.txn <= limit) moved.push(...this.#pending[k++]!.pages);
    if (k === 0) return;
    this.#pending.splice(0, k);
    moved.sort((a, b) => a - b);
    this.#ready = mergeSorted(this.#ready, moved);
  }

  /** Take up to `n` reusable single pages, lowest first. */
  takeMany(n: number): number[] {
    const k = Math.min(n, this.#ready.length);
    return this.#ready.splice(0, k);
  }

  /** Take a run of `n` contiguous reusable pages (first fit); 0 when there is none. */
  takeRun(n: number): number {
    const r = this.#ready;
    if (n === 1) return r.length ? r.shift()! : 0;
    let start = 0;
    for (let i = 1; i <= r.length; i++) {
      if (i - start >= n) {
        const first = r[start]!;
        r.splice(start, n);
        return first;
      }
      if (i < r.length && r[i] !== r[i - 1]! + 1) start = i;
    }
    return 0;
  }

  /**
   * Park pages that a failed checkpoint may have made reachable (its meta may be on disk):
   * out of the reusable set, into pending under `txn`, so they are reused only once no meta slot
   * can hold that txn. A page is never in both sets, so it can never be handed out twice.
   */
  park(txn: number, pages: number[]): void {
    const set = new Set(pages);
    this.#ready = this.#ready.filter((p) => !set.has(p));
    for (const pend of this.#pending) pend.pages = pend.pages.filter((p) => !set.has(p));
    this.#pending = this.#pending.filter((p) => p.pages.length > 0);
    for (const p of set) this.free(txn, p, 1);
  }

  /** Give back pages taken by a checkpoint that did not happen. */
  giveBack(pages: number[]): void {
    const s = pages.slice().sort((a, b) => a - b);
    this.#ready = mergeSorted(this.#ready, s);
  }

  /** Every page number in the list (for verify). */
  *allPages(): Iterable<[number, number]> {
    for (const p of this.#ready) yield [p, 0];
    for (const pend of this.#pending) for (const p of pend.pages) yield [p, pend.txn];
  }

  /** Bytes the encoded list takes. */
  encodedBytes(): number {
    return this.#runs().length * ENTRY;
  }

  #runs(): Array<[number, number, number]> {
    const runs: Array<[number, number, number]> = [];
    const push = (pages: number[], txn: number) => {
      const s = pages.slice().sort((a, b) => a - b);
      for (let i = 0; i < s.length; ) {
        let j = i + 1;
        while (j < s.length && s[j] === s[j - 1]! + 1) j++;
        runs.push([s[i]!, j - i, txn]);
        i = j;
      }
    };
    push(this.#ready, 0);
    for (const p of this.#pending) push(p.pages, p.txn);
    return runs;
  }

  encode(): Buffer {
    const runs = this.#runs();
    const buf = Buffer.alloc(runs.length * ENTRY);
    let off = 0;
    for (const [start, count, txn] of runs) {
      buf.writeUInt32LE(start, off);
      buf.writeUInt32LE(count, off + 4);
      buf.writeUInt32LE(txn % TWO32, off + 8);
      buf.writeUInt32LE(Math.floor(txn / TWO32), off + 12);
      off += ENTRY;
    }
    return buf;
  }

  static decode(buf: Buffer, where: { file: string; page: number; highWater: number }): FreeList {
    if (buf.length % ENTRY !== 0) throw corrupt(`free list at page ${where.page} has a partial entry`, { ...where, reason: "freelist-length" });
    const ready: number[] = [];
    const byTxn = new Map<number, number[]>();
    const seen = new Set<number>();
    for (let off = 0; off < buf.length; off += ENTRY) {
      const start = buf.readUInt32LE(off);
      const count = buf.readUInt32LE(off + 4);
      const txn = buf.readUInt32LE(off + 8) + buf.readUInt32LE(off + 12) * TWO32;
      if (start < 2 || count < 1 || start + count > where.highWater) {
        throw corrupt(`free list at page ${where.page} names pages ${start}..${start + count - 1} outside the file`, { ...where, reason: "freelist-range", offset: off });
      }
      const target = txn === 0 ? ready : byTxn.get(txn) ?? byTxn.set(txn, []).get(txn)!;
      for (let p = start; p < start + count; p++) {
        if (seen.has(p)) throw corrupt(`free list at page ${where.page} lists page ${p} twice`, { ...where, reason: "freelist-duplicate", offset: off });
        seen.add(p);
        target.push(p);
      }
    }
    ready.sort((a, b) => a - b);
    const pending = [...byTxn.entries()].sort((a, b) => a[0] - b[0]).map(([txn, pages]) => ({ txn, pages }));
    return new FreeList(ready, pending);
  }
}

function mergeSorted(a: number[], b: number[]): number[] {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const out = new Array<number>(a.length + b.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.length && j < b.length) out[k++] = a[i]! <= b[j]! ? a[i++]! : b[j++]!;
  while (i < a.length) out[k++] = a[i++]!;
  while (j < b.length) out[k++] = b[j++]!;
  return out;
}
