/**
 * ReaderTable: the live read snapshots, by txn.
 *
 * Invariant: while a snapshot is registered here, the free list never releases a page freed by a
 * transaction newer than it (the checkpoint takes `minTxn()` into its release limit, I2).
 */
import { KeelError } from "../errors.js";

export class ReaderTable {
  #counts = new Map<number, number>();
  #active = 0;
  readonly max: number;

  constructor(max: number) {
    this.max = max;
  }

  get active(): number {
    return this.#active;
  }

  acquire(txn: number): void {
    if (this.#active >= this.max) {
      throw new KeelError("READERS_FULL", `all ${this.max} read snapshots are in use (raise maxReaders, or finish iterators you abandon)`, {
        maxReaders: this.max,
      });
    }
    this.#counts.set(txn, (this.#counts.get(txn) ?? 0) + 1);
    this.#active++;
  }

  release(txn: number): void {
    const n = this.#counts.get(txn);
    if (n === undefined) return;
    if (n <= 1) this.#counts.delete(txn);
    else this.#counts.set(txn, n - 1);
    this.#active--;
  }

  /** The oldest registered snapshot's txn, or Infinity. */
  minTxn(): number {
    let m = Infinity;
    for (const t of this.#counts.keys()) if (t < m) m = t;
    return m;
  }
}
