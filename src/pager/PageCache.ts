/**
 * PageCache: decoded tree nodes by page number, bounded by a page count, CLOCK eviction.
 *
 * Invariant: an entry always holds the content of its page as last written by a checkpoint that
 * succeeded; the checkpoint replaces the entry of every page it writes (a reused page number
 * therefore never serves its old content). Entries are only an optimisation: evicting one is
 * always safe because the page on disk is intact for every snapshot that can reach it (I2).
 */
import type { Node } from "../btree/Node.js";

export class PageCache {
  #map = new Map<number, Node>();
  #capacity: number;
  hits = 0;
  misses = 0;
  evictions = 0;

  constructor(capacityPages: number) {
    this.#capacity = Math.max(16, Math.floor(capacityPages));
  }

  get size(): number {
    return this.#map.size;
  }

  get capacity(): number {
    return this.#capacity;
  }

  get(page: number): Node | undefined {
    const n = this.#map.get(page);
    if (n !== undefined) {
      n.hot = true;
      this.hits++;
    } else this.misses++;
    return n;
  }

  set(page: number, node: Node): void {
    this.#map.delete(page);
    this.#map.set(page, node);
    if (this.#map.size > this.#capacity) this.#evict();
  }

  delete(page: number): void {
    this.#map.delete(page);
  }

  clear(): void {
    this.#map.clear();
  }

  /** Second chance: hot entries are moved to the back once, cold ones go. */
  #evict(): void {
    const target = Math.floor(this.#capacity * 0.9);
    let budget = this.#map.size * 2;
    for (const [page, node] of this.#map) {
      if (this.#map.size <= target || budget-- <= 0) break;
      this.#map.delete(page);
      if (node.hot) {
        node.hot = false;
        this.#map.set(page, node);
      } else this.evictions++;
    }
  }
}
