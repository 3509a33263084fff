/**
 * PageCache: the memory budget for clean tree nodes.
 *
 * Decoded nodes live in their parents (a branch child swizzled in from a page number) rather
 * than in a lookup table, so a warm lookup costs no hashing. This class counts the clean nodes
 * held that way and asks the engine to sweep when the count passes the budget: the sweep swaps
 * cold clean children back to page numbers (CLOCK: a node used since the last sweep survives
 * it once). Evicting is always safe: the page is intact for every snapshot that reaches it (I2).
 *
 * The budget holds over time, not only at loads: a sweep that keeps more than the budget (every
 * node kept was used since the sweep before, as after a checkpoint that wrote more nodes than
 * the budget) schedules another RESWEEP_MS later, when the nodes not used meanwhile go. Without
 * it a workload that loads nothing more (reads of cached nodes only) held the overshoot for good.
 */
export class PageCache {
  /** Clean nodes believed to be held in memory (exact right after a sweep). */
  count = 0;
  readonly capacity: number;
  loads = 0;
  sweeps = 0;
  evictions = 0;
  /** Installed by the engine: evicts cold nodes and returns how many clean nodes it kept. */
  sweeper: (() => number) | null = null;
  #sweeping = false;
  #resweep: NodeJS.Timeout | null = null;
  static readonly RESWEEP_MS = 1000;

  constructor(capacityPages: number) {
    this.capacity = Math.max(64, Math.floor(capacityPages));
  }

  /** A node was decoded from disk (or written by a checkpoint) and is now held in memory. */
  added(n = 1): void {
    this.count += n;
    if (this.count > this.capacity) this.#sweep();
  }

  /** Stop sweeping (the engine closed): no timer outlives the database. */
  close(): void {
    this.sweeper = null;
    if (this.#resweep) clearTimeout(this.#resweep);
    this.#resweep = null;
  }

  #sweep(): void {
    if (!this.sweeper || this.#sweeping) return;
    this.#sweeping = true;
    try {
      const before = this.count;
      this.count = this.sweeper();
      this.sweeps++;
      this.evictions += Math.max(0, before - this.count);
    } finally {
      this.#sweeping = false;
    }
    if (this.count > this.capacity && !this.#resweep) {
      this.#resweep = setTimeout(() => {
        this.#resweep = null;
        if (this.count > this.capacity) this.#sweep();
      }, PageCache.RESWEEP_MS);
      this.#resweep.unref();
    }
  }
}
