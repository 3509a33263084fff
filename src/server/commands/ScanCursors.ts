/**
 * ScanCursors: SCAN's numeric cursors, each naming the last key a scan returned (KeelDB's keys are
 * ordered, so resuming after that key returns every key present for the whole scan at least once,
 * as Redis promises, even if keys are added or deleted meanwhile).
 *
 * Invariant: at most MAX cursors are remembered (oldest dropped first), so memory stays bounded; a
 * forgotten or never-issued cursor is "ERR invalid cursor", never a silent restart.
 */
const MAX = 10_000;

export class ScanCursors {
  #next = 1;
  readonly #map = new Map<number, { db: number; after: Buffer }>();

  issue(db: number, after: Buffer): number {
    const id = this.#next++;
    this.#map.set(id, { db, after: Buffer.from(after) });
    if (this.#map.size > MAX) {
      const oldest = this.#map.keys().next();
      if (!oldest.done) this.#map.delete(oldest.value);
    }
    return id;
  }

  /** The key to resume after, or null for an unknown cursor (or one of another db). */
  resolve(db: number, id: number): Buffer | null {
    const c = this.#map.get(id);
    if (!c || c.db !== db) return null;
    return c.after;
  }
}
