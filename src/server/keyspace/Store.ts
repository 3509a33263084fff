/**
 * Store: the byte-level access the keyspace needs, over either a write transaction (TxStore, used by
 * every write command and by EXEC) or the published state (ReadStore, used by plain reads).
 *
 * Invariants: keys and values are raw Buffers (sub-databases opened with keyEncoding and encoding
 * "binary"); ReadStore never writes (a write through it is an INTERNAL error, a bug); a TxStore is
 * used only inside its transaction callback.
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
  /** Whether the key existed before. */
  put(sub: SubDatabase, key: Buffer, value: Buffer): boolean;
  remove(sub: SubDatabase, key: Buffer): boolean;
  clear(sub: SubDatabase): void;
  /** Entries with start <= key < end, in key order, at most `limit`. */
  range(sub: SubDatabase, start: Buffer | undefined, end: Buffer | undefined, limit?: number): Iterable<KV>;
}

export class TxStore implements Store {
  readonly writable = true;
  readonly #tx: Transaction;
  readonly #fors = new Map<SubDatabase, Transaction>();

  constructor(tx: Transaction) {
    this.#tx = tx;
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
  put(sub: SubDatabase, key: Buffer, value: Buffer): boolean {
    return this.#for(sub).put(key, value);
  }
  remove(sub: SubDatabase, key: Buffer): boolean {
    return this.#for(sub).remove(key);
  }
  clear(sub: SubDatabase): void {
    this.#for(sub).clear();
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
  put(): boolean {
    throw new KeelError("INTERNAL", "write through a read-only keyspace view", {});
  }
  remove(): boolean {
    throw new KeelError("INTERNAL", "write through a read-only keyspace view", {});
  }
  clear(): void {
    throw new KeelError("INTERNAL", "write through a read-only keyspace view", {});
  }
  *range(sub: SubDatabase, start: Buffer | undefined, end: Buffer | undefined, limit?: number): Iterable<KV> {
    for (const e of sub.getRange({ start, end, limit })) yield { key: e.key as Buffer, value: e.value as Buffer };
  }
}
