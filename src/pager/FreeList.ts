/**
 * FreeList: pages no tree reaches any more, and when they may be written again.
 *
 * Invariant I2: a page freed by transaction F (reachable in F-1's tree, not in F's) is handed out
 * for reuse only after `release(limit)` with F <= limit, where the caller passes
 *   limit = min(txn of the older meta slot, txn of the oldest live read snapshot, txn of the
 *           oldest view of a read-only process that opened before the writer).
 * Then no meta that may be chosen at open (both slots hold txn >= F) and no reader can reach it,
 * which is also what I1 needs: the checkpoint about to overwrite the older slot never writes over
 * a page that either slot's tree uses.
 *
 * Held as runs of consecutive pages (PageRuns), per freeing txn, so the cost of a checkpoint's
 * work on the list grows with its fragmentation, not with its page count. Pending groups beyond
 * MAX_PENDING_GROUPS merge, the two newest under the newer txn (a later release, never an earlier
 * one; and never a later one for the old groups the next release is waiting for).
 *
 * Persisted as a chain of segments (FreeListChain.ts): a base segment holds the whole list as
 * (first page, count, freeing txn) triples, reusable pages with txn 0 (`encode`/`decode` here);
 * each later checkpoint appends a delta segment holding only its journal (what it freed and took),
 * so a checkpoint's cost grows with what it changed, not with the size of the list.
 */
import { corrupt } from "../errors.js";
import { PageRuns } from "./PageRuns.js";

const TWO32 = 0x100000000;
const ENTRY = 16;
/**
 * At most this many pending groups. Past it the two NEWEST merge under the newer txn: a page
 * freed by F and listed under F' > F is released later than it could be, never earlier (I2 only
 * asks limit >= F). While a reader pins old pages every checkpoint adds a group; merging keeps
 * the list, and the run that holds it on disk, from growing with the number of checkpoints.
 *
 * Why the newest: with the log, one checkpoint adds a group per commit it covers, all above its
 * release limit. Merging the OLDEST raised the txn of the old, releasable pages into that range
 * at every checkpoint, so a checkpoint covering more than about 64 commits released nothing,
 * ever, and the file grew without bound. The newest groups are released together anyway (all
 * once the older meta slot passes them).
 */
const MAX_PENDING_GROUPS = 64;

interface Pending {
  txn: number;
  runs: PageRuns;
}

/**
 * What a checkpoint changed in the list since `startJournal()`: the frees as flat
 * (txn, first page, count) triples, in order, and the pages it took for reuse (minus those given
 * back). A delta segment of the persisted list is exactly this (FreeListChain.ts).
 */
export interface FreeListJournal {
  adds: number[];
  takes: PageRuns;
}

export class FreeList {
  /** Reusable now. */
  #ready: PageRuns;
  /** Freed but maybe still reachable; ascending txn. */
  #pending: Pending[];
  /** Recording of the changes, while a checkpoint builds its delta segment. */
  #journal: FreeListJournal | null = null;

  constructor(ready: number[] = [], pending: Array<{ txn: number; pages: number[] }> = []) {
    this.#ready = runsOf(ready);
    this.#pending = pending.map((p) => ({ txn: p.txn, runs: runsOf(p.pages) })).sort((a, b) => a.txn - b.txn);
  }

  static #from(ready: PageRuns, pending: Pending[]): FreeList {
    const fl = new FreeList();
    fl.#ready = ready;
    fl.#pending = pending;
    return fl;
  }

  clone(): FreeList {
    return FreeList.#from(
      this.#ready.clone(),
      this.#pending.map((p) => ({ txn: p.txn, runs: p.runs.clone() })),
    );
  }

  /** Record every free, take and give-back from now on (a clone starts without a journal). */
  startJournal(): void {
    this.#journal = { adds: [], takes: new PageRuns() };
  }

  /** Stop recording (the checkpoint that started it has encoded it). */
  endJournal(): void {
    this.#journal = null;
  }

  get journal(): FreeListJournal | null {
    return this.#journal;
  }

  get readyCount(): number {
    return this.#ready.size;
  }

  get pendingCount(): number {
    let n = 0;
    for (const p of this.#pending) n += p.runs.size;
    return n;
  }

  get size(): number {
    return this.#ready.size + this.pendingCount;
  }

  /** Record `count` pages from `page` as freed by transaction `txn`. */
  free(txn: number, page: number, count = 1): void {
    this.#journal?.adds.push(txn, page, count);
    let last = this.#pending[this.#pending.length - 1];
    if (!last || last.txn !== txn) {
      if (last && last.txn > txn) {
        const found = this.#pending.find((p) => p.txn === txn);
        if (found) last = found;
        else {
          last = { txn, runs: new PageRuns() };
          this.#pending.push(last);
          this.#pending.sort((a, b) => a.txn - b.txn);
        }
      } else {
        last = { txn, runs: new PageRuns() };
        this.#pending.push(last);
      }
    }
    last.runs.add(page, count);
    while (this.#pending.length > MAX_PENDING_GROUPS) {
      const b = this.#pending.pop()!;
      const a = this.#pending[this.#pending.length - 1]!;
      a.runs.addAll(b.runs);
      a.txn = b.txn;
    }
  }

  /** Make reusable every page freed by a transaction <= limit. */
  release(limit: number): void {
    let k = 0;
    while (k < this.#pending.length && this.#pending[k]!.txn <= limit) this.#ready.addAll(this.#pending[k++]!.runs);
    if (k) this.#pending.splice(0, k);
  }

  /**
   * Take up to `n` reusable single pages: the `n` that lie closest together (PageRuns.takeNarrowest).
   * Any reusable page is safe (I2); the choice is for the disk. A checkpoint writes and syncs its
   * pages together, and the sync costs more the further apart they lie: 75 pages at random in a
   * 40 MB file took 2.9 ms to write and fdatasync here, 1.5 ms within 1.2 MB, 0.8 ms in 20 runs
   * close together. Lowest-first took pages spread over the whole file.
   */
  takeMany(n: number): number[] {
    const pages = this.#ready.takeNarrowest(n);
    const j = this.#journal;
    if (j) for (const p of pages) j.takes.add(p, 1);
    return pages;
  }

  /** Take a run of `n` contiguous reusable pages (first fit); 0 when there is none. */
  takeRun(n: number): number {
    const first = this.#ready.takeRun(n);
    if (first) this.#journal?.takes.add(first, n);
    return first;
  }

  /** Whether any of pages [first, first + count) is in the list. */
  hasAny(first: number, count: number): boolean {
    for (let p = first; p < first + count; p++) {
      if (this.#ready.has(p)) return true;
      for (const pend of this.#pending) if (pend.runs.has(p)) return true;
    }
    return false;
  }

  /** Remove pages [first, first + count), wherever they are listed; false if one of them is not. */
  remove(first: number, count: number): boolean {
    let ok = true;
    for (let p = first; p < first + count; p++) if (!this.#delete(p)) ok = false;
    this.#pending = this.#pending.filter((x) => x.runs.size > 0);
    return ok;
  }

  /** Take page `p` out of the reusable or a pending set; false if it is in neither (callers drop emptied groups). */
  #delete(p: number): boolean {
    if (this.#ready.delete(p)) return true;
    for (const pend of this.#pending) if (pend.runs.delete(p)) return true;
    return false;
  }

  /**
   * Park pages that a failed checkpoint may have made reachable (its meta may be on disk):
   * out of the reusable set, into pending under `txn`, so they are reused only once no meta slot
   * can hold that txn. A page is never in both sets, so it can never be handed out twice.
   */
  park(txn: number, pages: number[]): void {
    const set = new Set(pages);
    for (const p of set) this.#delete(p);
    this.#pending = this.#pending.filter((p) => p.runs.size > 0);
    for (const p of set) this.free(txn, p, 1);
  }

  /** Give back pages taken by a checkpoint that did not happen. */
  giveBack(pages: number[]): void {
    const j = this.#journal;
    for (const p of pages) {
      this.#ready.add(p, 1);
      // A page taken past the end of the file was never listed: its give-back is a free (txn 0:
      // no meta reaches a page past its high water).
      if (j && !j.takes.delete(p)) j.adds.push(0, p, 1);
    }
  }

  /** Every page number in the list (for verify). */
  *allPages(): Iterable<[number, number]> {
    for (const p of this.#ready.pages()) yield [p, 0];
    for (const pend of this.#pending) for (const p of pend.runs.pages()) yield [p, pend.txn];
  }

  /** Bytes the encoded list takes. */
  encodedBytes(): number {
    let runs = this.#ready.runCount;
    for (const p of this.#pending) runs += p.runs.runCount;
    return runs * ENTRY;
  }

  /** (first page, count, txn) entries: the reusable runs (txn 0), then each pending group's. */
  encode(): Buffer {
    const buf = Buffer.alloc(this.encodedBytes());
    let off = 0;
    const put = (r: PageRuns, txn: number): void => {
      for (let i = 0; i < r.starts.length; i++) {
        buf.writeUInt32LE(r.starts[i]!, off);
        buf.writeUInt32LE(r.counts[i]!, off + 4);
        buf.writeUInt32LE(txn % TWO32, off + 8);
        buf.writeUInt32LE(Math.floor(txn / TWO32), off + 12);
        off += ENTRY;
      }
    };
    put(this.#ready, 0);
    for (const p of this.#pending) put(p.runs, p.txn);
    return buf;
  }

  static decode(buf: Buffer, where: { file: string; page: number; highWater: number }): FreeList {
    if (buf.length % ENTRY !== 0) throw corrupt(`free list at page ${where.page} has a partial entry`, { ...where, reason: "freelist-length" });
    const entries: Array<{ start: number; count: number; txn: number; offset: number }> = [];
    for (let off = 0; off < buf.length; off += ENTRY) {
      const start = buf.readUInt32LE(off);
      const count = buf.readUInt32LE(off + 4);
      const txn = buf.readUInt32LE(off + 8) + buf.readUInt32LE(off + 12) * TWO32;
      if (start < 2 || count < 1 || start + count > where.highWater) {
        throw corrupt(`free list at page ${where.page} names pages ${start}..${start + count - 1} outside the file`, { ...where, reason: "freelist-range", offset: off });
      }
      entries.push({ start, count, txn, offset: off });
    }
    // A page listed twice (in any two entries) would be handed out twice.
    const byStart = entries.slice().sort((a, b) => a.start - b.start);
    for (let i = 1; i < byStart.length; i++) {
      const prev = byStart[i - 1]!;
      const e = byStart[i]!;
      if (e.start < prev.start + prev.count) {
        throw corrupt(`free list at page ${where.page} lists page ${e.start} twice`, { ...where, reason: "freelist-duplicate", offset: Math.max(e.offset, prev.offset) });
      }
    }
    const ready = new PageRuns();
    const byTxn = new Map<number, PageRuns>();
    for (const e of entries) {
      const target = e.txn === 0 ? ready : byTxn.get(e.txn) ?? byTxn.set(e.txn, new PageRuns()).get(e.txn)!;
      target.add(e.start, e.count);
    }
    const pending = [...byTxn.entries()].sort((a, b) => a[0] - b[0]).map(([txn, runs]) => ({ txn, runs }));
    return FreeList.#from(ready, pending);
  }
}

function runsOf(pages: readonly number[]): PageRuns {
  const r = new PageRuns();
  for (const p of pages.slice().sort((a, b) => a - b)) r.add(p, 1);
  return r;
}
