/**
 * Store: the byte-level access the keyspace needs, over either a transaction (TxStore: every write
 * command, EXEC, and reads that must see the connection's queued writes) or the published state
 * (ReadStore: plain reads).
 *
 * Invariants: keys and values are raw Buffers (sub-databases opened with keyEncoding and encoding
 * "binary"); ReadStore and a read-only TxStore never write (a write through them is an INTERNAL
 * error, a bug); a TxStore is used only inside its transaction callback.
 */
import { KeelError } from "../../errors.js";
import type { SubDatabase } from "../../db/SubDatabase.js";
import type { Transaction } from "../../db/Transaction.js";

export interface KV {
  readonly key: Buffer;
  readonly value: Buffer;
}

export interface Store {
  readonly writable: boolean;
  get(sub: SubDatabase, key: Buffer): Buffer | undefined;
  /** get, where a small value may come back as the latin1 string the tree holds (no copy). */
  getStored(sub: SubDatabase, key: Buffer): Buffer | string | undefined;
  /** Whether the key existed before. */
  put(sub: SubDatabase, key: Buffer, value: Buffer): boolean;
  /** put, returning the value it replaced (undefined if the key was new). */
  swap(sub: SubDatabase, key: Buffer, value: Buffer): Buffer | undefined;
  remove(sub: SubDatabase, key: Buffer): boolean;
  clear(sub: SubDatabase): void;
  /**
   * Run the removal of a key found expired: no client can tell it happened (the key was already
   * gone), so its writes are not counted as the command's own.
   */
  purgeExpired(run: () => void): void;
  /** Entries with start <= key < end, in key order, at most `limit`. */
  range(sub: SubDatabase, start: Buffer | undefined, end: Buffer | undefined, limit?: number): Iterable<KV>;
}

function readOnlyWrite(): never {
  throw new KeelError("INTERNAL", "write through a read-only keyspace view", {});
}

export class TxStore implements Store {
  readonly writable: boolean;
  readonly #tx: Transaction;
  readonly #fors = new Map<SubDatabase, Transaction>();
  /** Writes made through this store (EXEC: a command that fails after writing must not be kept half-done). */
  writes = 0;
  /** Keys found expired and removed through this store (INFO stats expired_keys, once committed). */
  expired = 0;

  /** readOnly: a read that runs in the write queue to see exactly the writes queued before it. */
  constructor(tx: Transaction, readOnly = false) {
    this.#tx = tx;
    this.writable = !readOnly;
  }

  #for(sub: SubDatabase): Transaction {
    let t = this.#fors.get(sub);
    if (!t) {
      t = this.#tx.for(sub);
      this.#fors.set(sub, t);
    }
    return t;
  }

  get(sub: SubDatabase, key: Buffer): Buffer | undefined {
    return this.#for(sub).get(key) as Buffer | undefined;
  }
  getStored(sub: SubDatabase, key: Buffer): Buffer | undefined {
    return this.get(sub, key);
  }
  put(sub: SubDatabase, key: Buffer, value: Buffer): boolean {
    if (!this.writable) readOnlyWrite();
    this.writes++;
    return this.#for(sub).put(key, value);
  }
  swap(sub: SubDatabase, key: Buffer, value: Buffer): Buffer | undefined {
    if (!this.writable) readOnlyWrite();
    this.writes++;
    return this.#for(sub).swap(key, value) as Buffer | undefined;
  }
  remove(sub: SubDatabase, key: Buffer): boolean {
    if (!this.writable) readOnlyWrite();
    this.writes++;
    return this.#for(sub).remove(key);
  }
  clear(sub: SubDatabase): void {
    if (!this.writable) readOnlyWrite();
    this.writes++;
    this.#for(sub).clear();
  }
  purgeExpired(run: () => void): void {
    // EXEC keeps a failed command's error as its reply only if the command wrote nothing; a
    // read that met an expired key (RENAME of one, then "no such key") wrote nothing visible.
    const before = this.writes;
    try {
      run();
      this.expired++;
    } finally {
      this.writes = before;
    }
  }
  *range(sub: SubDatabase, start: Buffer | undefined, end: Buffer | undefined, limit?: number): Iterable<KV> {
    for (const e of this.#for(sub).getRange({ start, end, limit })) yield { key: e.key as Buffer, value: e.value as Buffer };
  }
}

export class ReadStore implements Store {
  readonly writable = false;
  get(sub: SubDatabase, key: Buffer): Buffer | undefined {
    return sub.getBinary(key);
  }
  getStored(sub: SubDatabase, key: Buffer): Buffer | string | undefined {
    return sub.getStored(key);
  }
  put(): boolean {
    return readOnlyWrite();
  }
  swap(): Buffer | undefined {
    return readOnlyWrite();
  }
  remove(): boolean {
    return readOnlyWrite();
  }
  clear(): void {
    readOnlyWrite();
  }
  purgeExpired(): void {
    readOnlyWrite();
  }
  *range(sub: SubDatabase, start: Buffer | undefined, end: Buffer | undefined, limit?: number): Iterable<KV> {
    for (const e of sub.getRange({ start, end, limit })) yield { key: e.key as Buffer, value: e.value as Buffer };
  }
}
