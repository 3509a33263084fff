/**
 * Transaction: what a transaction callback receives. Reads see the transaction's own writes;
 * nothing is visible to anyone else until the transaction commits, and then all of it at once.
 */
import type { WriteTxn } from "../txn/WriteTxn.js";
import type { Key } from "./KeyCodec.js";
import { RangeIterable } from "./RangeIterable.js";
import { invalidArgument } from "../errors.js";
import { SubDatabase, type BatchOp, type EncodedBatch, type RangeOptions } from "./SubDatabase.js";

export class Transaction {
  readonly #w: WriteTxn;
  readonly #db: SubDatabase;

  constructor(db: SubDatabase, w: WriteTxn) {
    this.#db = db;
    this.#w = w;
  }

  /** The same transaction, reading and writing another sub-database of the same database. */
  for(db: SubDatabase): Transaction {
    if (!(db instanceof SubDatabase)) throw invalidArgument("tx.for needs a sub-database handle (db.openDB(name), or the database itself)", { argument: "db" });
    // A handle of another open database would read and write this one's tree of that name.
    if (db.root !== this.#db.root) throw invalidArgument(`tx.for: ${JSON.stringify(db.name)} is a handle of another database (${db.root.path}), not of this transaction's (${this.#db.root.path})`, { argument: "db", path: db.root.path });
    return new Transaction(db, this.#w);
  }

  get txnId(): number {
    return this.#w.txn;
  }

  get(key: Key): unknown {
    const v = this.#w.get(this.#db.name, this.#db.encodeKey(key));
    return v === undefined ? undefined : this.#db.decodeValue(this.#w.readValue(v));
  }

  doesExist(key: Key): boolean {
    return this.#w.get(this.#db.name, this.#db.encodeKey(key)) !== undefined;
  }

  /** Store a value; returns whether the key existed before. */
  put(key: Key, value: unknown): boolean {
    const k = this.#db.encodeKey(key);
    const v = this.#db.encodeValue(value);
    this.#db.ensureExists(this.#w);
    return this.#w.put(this.#db.name, k, v);
  }

  /**
   * Store a value and return the one it replaced (undefined if the key was new): a get and a put
   * in one descent of the tree.
   */
  swap(key: Key, value: unknown): unknown {
    const k = this.#db.encodeKey(key);
    const v = this.#db.encodeValue(value);
    this.#db.ensureExists(this.#w);
    const old = this.#w.swap(this.#db.name, k, v);
    return old === undefined ? undefined : this.#db.decodeValue(this.#w.readValue(old));
  }

  /**
   * Apply many puts and removes in this transaction (see SubDatabase.batch). Every op is checked
   * before any is applied: a bad one throws INVALID_ARGUMENT with its `index` and changes nothing.
   */
  batch(ops: readonly BatchOp[]): void {
    this.#db.applyBatch(this.#w, this.#db.encodeBatch(ops, false));
  }

  /** @internal Apply a batch SubDatabase.batch encoded (and copied) when it was called. */
  applyEncodedBatch(b: EncodedBatch): void {
    this.#db.applyBatch(this.#w, b);
  }

  /** Delete a key; returns whether it existed. */
  remove(key: Key): boolean {
    return this.#w.remove(this.#db.name, this.#db.encodeKey(key));
  }

  /** Remove every entry of this sub-database. */
  clear(): void {
    this.#w.dropDB(this.#db.name, false);
  }

  /** @internal Create this transaction's sub-database if missing (open() does it for the default one). */
  createDefault(): void {
    this.#db.ensureExists(this.#w);
  }

  /** @internal Drop a named sub-database (Database.dropDB). */
  dropSubDatabase(name: string): boolean {
    return this.#w.dropDB(name, true);
  }

  getRange(opts: RangeOptions = {}): RangeIterable<{ key: Key; value: unknown }> {
    const w = this.#w;
    const db = this.#db;
    const bounds = db.bounds(opts);
    return new RangeIterable(function* () {
      let seen = w.modCount;
      const changed = () => {
        if (w.modCount === seen) return false;
        seen = w.modCount;
        return true;
      };
      for (const [k, v] of db.walk(() => w.cursor(db.name), bounds, changed)) {
        yield { key: db.decodeKey(k), value: db.decodeValue(w.readValue(v)) };
        // Resumed after the transaction ended: its tree is rolled back or published, and its
        // pages may be reused (it holds no reader slot). TXN, before the cursor takes a step.
        w.checkOpen();
      }
    });
  }
}
