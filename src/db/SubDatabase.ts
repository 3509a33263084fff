/**
 * SubDatabase: the key-value API of one named tree (the default database is the one named "").
 *
 * Reads are synchronous and see the latest published snapshot: under strict durability that is
 * the latest durable commit, so nobody reads a write that a crash could take back (I4).
 * Writes are queued to the owning Database, which groups them into transactions and resolves
 * each promise once its transaction is as durable as the settings promise.
 */
import { latin1Of } from "../util/latin1.js";
import { treeGet } from "../btree/BTree.js";
import type { LeafValue } from "../btree/Node.js";
import { TreeCursor } from "../btree/TreeCursor.js";
import { emptyTree } from "../btree/TreeState.js";
import { KeelError, invalidArgument } from "../errors.js";
import type { KeyEncodingName, Snapshot, ValueEncodingName } from "../txn/Snapshot.js";
import type { WriteTxn } from "../txn/WriteTxn.js";
import type { Database } from "./Database.js";
import { decodeKey, encodeKey, type Key } from "./KeyCodec.js";
import { walkRange, type RangeBounds } from "./Range.js";
import { RangeIterable } from "./RangeIterable.js";
import type { Transaction } from "./Transaction.js";
import { decodeValue, encodeValue } from "./ValueCodec.js";
import { methodOptions, type OptionKind } from "./options.js";

export interface RangeOptions {
  /** First key (inclusive); with `reverse`, the highest key. */
  start?: Key | undefined;
  /** Last key (exclusive); with `reverse`, the lowest key. */
  end?: Key | undefined;
  reverse?: boolean | undefined;
  limit?: number | undefined;
  offset?: number | undefined;
}

const RANGE_OPTIONS: Readonly<Record<keyof RangeOptions, OptionKind>> = { start: "any", end: "any", reverse: "boolean", limit: "any", offset: "any" };

export interface Entry {
  key: Key;
  value: unknown;
}

/** One write of a batch (db.batch, tx.batch). */
export type BatchOp = { type: "put"; key: Key; value: unknown } | { type: "remove"; key: Key };

/** A batch encoded for WriteTxn.applyBatch: a value slot left undefined is a remove. */
export interface EncodedBatch {
  keys: string[];
  values: Array<Uint8Array | string | undefined>;
}

function latin1(v: Uint8Array): string {
  return latin1Of(v);
}

const releaser = new FinalizationRegistry<{ release: () => void }>((t) => t.release());

export class SubDatabase {
  readonly name: string;
  readonly keyEncoding: KeyEncodingName;
  readonly valueEncoding: ValueEncodingName;
  /** @internal */
  readonly root: Database;

  /** @internal */
  constructor(root: Database | null, name: string, keyEncoding: KeyEncodingName, valueEncoding: ValueEncodingName) {
    this.root = root ?? (this as unknown as Database);
    this.name = name;
    this.keyEncoding = keyEncoding;
    this.valueEncoding = valueEncoding;
  }

  // ---- codecs (internal) ----

  /** @internal */
  encodeKey(key: Key): string {
    return encodeKey(key, this.keyEncoding, this.root.engine.limits.maxKeySize);
  }

  /** @internal */
  decodeKey(s: string): Key {
    return decodeKey(s, this.keyEncoding);
  }

  /** @internal */
  encodeValue(v: unknown): Buffer | Uint8Array {
    const b = encodeValue(v, this.valueEncoding);
    const max = this.root.engine.maxValueSize;
    if (b.length > max) throw invalidArgument(`value of ${b.length} bytes exceeds maxValueSize ${max}`, { argument: "value", limit: "maxValueSize", max, size: b.length });
    return b;
  }

  /** @internal */
  decodeValue(b: Buffer): unknown {
    return decodeValue(b, this.valueEncoding);
  }

  /** @internal */
  bounds(o: RangeOptions): RangeBounds {
    if (o === null || typeof o !== "object") throw invalidArgument("range options must be an object { start, end, reverse, limit, offset }", { argument: "options" });
    methodOptions(o, "getRange", RANGE_OPTIONS);
    if (o.limit !== undefined && (!Number.isInteger(o.limit) || o.limit < 0)) throw invalidArgument("limit must be a non-negative integer", { argument: "limit", value: o.limit });
    if (o.offset !== undefined && (!Number.isInteger(o.offset) || o.offset < 0)) throw invalidArgument("offset must be a non-negative integer", { argument: "offset", value: o.offset });
    return {
      start: o.start === undefined ? undefined : this.encodeKey(o.start),
      end: o.end === undefined ? undefined : this.encodeKey(o.end),
      reverse: o.reverse,
      limit: o.limit,
      offset: o.offset,
    };
  }

  /** @internal */
  walk(open: () => TreeCursor, b: RangeBounds, changed?: () => boolean): Generator<[string, LeafValue]> {
    return walkRange(open, b, changed);
  }

  /**
   * @internal Encode every op of a batch, so that a bad one is refused (INVALID_ARGUMENT with its
   * `index`) before anything is applied. `copy`: take the value bytes now (the batch is applied
   * later and the caller may reuse its buffers), as put does.
   */
  encodeBatch(ops: readonly BatchOp[], copy: boolean): EncodedBatch {
    if (!Array.isArray(ops)) {
      throw invalidArgument("batch takes an array of { type: \"put\", key, value } and { type: \"remove\", key } operations (for a callback, use transaction)", { argument: "ops" });
    }
    const n = ops.length;
    const keys = new Array<string>(n);
    const values = new Array<Uint8Array | string | undefined>(n);
    for (let i = 0; i < n; i++) {
      const op: unknown = ops[i];
      const type = typeof op === "object" && op !== null ? (op as { type?: unknown }).type : undefined;
      if (type !== "put" && type !== "remove") {
        throw invalidArgument(`batch operation ${i} must be an object with type "put" or "remove"`, { argument: "ops", index: i, type: typeof type === "string" ? type : typeof type });
      }
      const o = op as BatchOp;
      try {
        keys[i] = this.encodeKey(o.key);
        if (o.type === "put") {
          const v = this.encodeValue(o.value);
          values[i] = copy ? (v.length <= 65536 ? latin1(v) : Buffer.from(v)) : v;
        }
      } catch (e) {
        if (e instanceof KeelError && e.code === "INVALID_ARGUMENT") {
          throw new KeelError("INVALID_ARGUMENT", `batch operation ${i}: ${e.message}`, { ...e.details, index: i }, { cause: e });
        }
        throw e;
      }
    }
    return { keys, values };
  }

  /** @internal Apply an encoded batch in `w` (creating this sub-database if it puts). */
  applyBatch(w: WriteTxn, b: EncodedBatch): void {
    w.applyBatch(this.name, b.keys, b.values, () => this.ensureExists(w));
  }

  /** @internal Create this sub-database in `w` if it does not exist yet. */
  ensureExists(w: WriteTxn): void {
    if (!w.entry(this.name)) w.createDB(this.name, this.keyEncoding, this.valueEncoding);
  }

  #snapshot(): Snapshot {
    return this.root.readSnapshot();
  }

  // ---- reads ----

  /** The leaf value of `key` in the latest committed state, or undefined. */
  #leafValue(key: Key): LeafValue | undefined {
    const k = this.encodeKey(key);
    const e = this.#snapshot().dbs.get(this.name);
    return e ? treeGet(this.root.engine.pager, e.tree, k) : undefined;
  }

  /** The latest committed value of `key`, or undefined. */
  get(key: Key): unknown {
    const v = this.#leafValue(key);
    if (v === undefined) return undefined;
    // Binary values come straight from the stored string: one allocation, no scratch copy.
    if (typeof v === "string" && this.valueEncoding === "binary") return Buffer.from(v, "latin1");
    return this.decodeValue(this.root.engine.readValue(v));
  }

  /** Like get, for binary values without decoding: the stored bytes (a copy). */
  getBinary(key: Key): Buffer | undefined {
    const v = this.getStored(key);
    return typeof v === "string" ? Buffer.from(v, "latin1") : v;
  }

  /**
   * @internal The stored bytes of `key`: a small value as the latin1 string the tree holds (no
   * copy: the caller must treat it as bytes, one char each), a large one as a Buffer copy.
   */
  getStored(key: Key): Buffer | string | undefined {
    const v = this.#leafValue(key);
    if (v === undefined || typeof v === "string") return v;
    return Buffer.from(this.root.engine.readValue(v));
  }

  doesExist(key: Key): boolean {
    return this.#leafValue(key) !== undefined;
  }

  /**
   * A lazy iterable of { key, value } in key order, read from one snapshot. The snapshot is
   * taken when iteration starts and held (one of maxReaders slots) until it ends; breaking out
   * of a for-of loop ends it.
   */
  getRange(opts: RangeOptions = {}): RangeIterable<Entry> {
    return this.#range(opts, true) as RangeIterable<Entry>;
  }

  /** Like getRange, yielding only keys. */
  getKeys(opts: RangeOptions = {}): RangeIterable<Key> {
    return this.#range(opts, false) as RangeIterable<Key>;
  }

  /** Number of entries in a range (walks it), or of the whole sub-database (instant). */
  getCount(opts: RangeOptions = {}): number {
    this.bounds(opts); // the options' checks, before the fast path reads them
    if (opts.start === undefined && opts.end === undefined && opts.limit === undefined && opts.offset === undefined) {
      return this.#snapshot().dbs.get(this.name)?.tree.entries ?? 0;
    }
    let n = 0;
    for (const _ of this.#range(opts, false)) n++;
    return n;
  }

  #range(opts: RangeOptions, withValues: boolean): RangeIterable<Entry | Key> {
    const b = this.bounds(opts);
    const self = this;
    return new RangeIterable(function () {
      const root = self.root;
      const engine = root.engine;
      const token = { released: true, release: () => {} };
      // The generator body runs at the first next(): the snapshot and its reader slot are taken
      // then, so an iterator ended before it started holds nothing.
      const gen = (function* () {
        const snap = root.readSnapshot();
        engine.readers.acquire(snap.txn);
        token.released = false;
        token.release = () => {
          if (!token.released) {
            token.released = true;
            engine.readers.release(snap.txn);
          }
        };
        const tree = snap.dbs.get(self.name)?.tree ?? emptyTree();
        try {
          for (const [k, v] of walkRange(() => new TreeCursor(engine.pager, tree), b)) {
            if (root.isClosed) throw new KeelError("CLOSED", "the database was closed during iteration", {});
            yield withValues ? { key: self.decodeKey(k), value: self.decodeValue(engine.readValue(v)) } : self.decodeKey(k);
          }
        } finally {
          token.release();
        }
      })();
      // An iterator dropped without finishing still gives its reader slot back when collected.
      releaser.register(gen, token);
      return gen;
    });
  }

  // ---- writes ----

  /** Store `value` under `key`. Resolves (true) once the write is as durable as configured. */
  put(key: Key, value: unknown): Promise<boolean> {
    try {
            const k = this.encodeKey(key);
      const v = this.encodeValue(value);
      // Copied now (as a latin1 string, cheap for the GC): the caller may reuse its buffer.
      return this.root.enqueue({ kind: "put", db: this, key: k, value: v.length <= 65536 ? latin1(v) : Buffer.from(v) }) as Promise<boolean>;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Delete `key`. Resolves to whether it existed, once durable. */
  remove(key: Key): Promise<boolean> {
    try {
      return this.root.enqueue({ kind: "remove", db: this, key: this.encodeKey(key) }) as Promise<boolean>;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Apply many puts and removes as one atomic transaction; resolves once it is as durable as
   * configured. Every op is checked first: a bad one rejects the whole batch (INVALID_ARGUMENT
   * with its `index`) and nothing is written. Ops on the same key take effect in the order given.
   * The ops are applied in key order, and into an empty sub-database built bottom-up (see
   * README), which makes a bulk load of random keys much faster than the same puts one by one.
   */
  batch(ops: readonly BatchOp[]): Promise<void> {
    try {
      const b = this.encodeBatch(ops, true);
      return this.root.enqueue({ kind: "txn", db: this, fn: (tx) => tx.applyEncodedBatch(b) }) as Promise<void>;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Store synchronously: durable when it returns (a transactionSync of one put). */
  putSync(key: Key, value: unknown): boolean {
    return this.transactionSync((tx) => tx.put(key, value));
  }

  /** Delete synchronously: durable when it returns. */
  removeSync(key: Key): boolean {
    return this.transactionSync((tx) => tx.remove(key));
  }

  /** Remove every entry of this sub-database, atomically. */
  clear(): Promise<void> {
    return this.transaction((tx) => tx.clear());
  }

  /**
   * Run `fn` as one atomic transaction, queued behind earlier writes. `fn` may be async: the
   * write lock is held until its promise settles. If it throws, nothing it did is kept.
   */
  transaction<T>(fn: (tx: Transaction) => T | Promise<T>): Promise<T> {
    if (typeof fn !== "function") return Promise.reject(invalidArgument("transaction takes a callback (tx) => ...", { argument: "fn" }));
    try {
      return this.root.enqueue({ kind: "txn", db: this, fn }) as Promise<T>;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Run `fn` as one atomic transaction now; durable when this returns. `fn` must be synchronous. */
  transactionSync<T>(fn: (tx: Transaction) => T): T {
    if (typeof fn !== "function") throw invalidArgument("transactionSync takes a callback (tx) => ...", { argument: "fn" });
    return this.root.runSync(this, fn);
  }
}
