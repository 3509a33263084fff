/**
 * PageCache: the memory budget for clean tree nodes.
 *
 * Decoded nodes live in their parents (a branch child swizzled in from a page number) rather
 * than in a lookup table, so a warm lookup costs no hashing. This class counts the clean nodes
 * held that way and asks the engine to sweep when the count passes the budget: the sweep swaps
 * cold clean children back to page numbers (CLOCK: a node used since the last sweep survives
 * it once). Evicting is always safe: the page is intact for every snapshot that reaches it (I2).
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

  constructor(capacityPages: number) {
    this.capacity = Math.max(64, Math.floor(capacityPages));
  }

  /** A node was decoded from disk (or written by a checkpoint) and is now held in memory. */
  added(n = 1): void {
    this.count += n;
    if (this.count > this.capacity && this.sweeper && !this.#sweeping) {
      this.#sweeping = true;
      try {
        const before = this.count;
        this.count = this.sweeper();
        this.sweeps++;
        this.evictions += Math.max(0, before - this.count);
      } finally {
        this.#sweeping = false;
      }
    }
  }
}
