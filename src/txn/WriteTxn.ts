/**
 * WriteTxn: one write transaction on top of a base snapshot.
 *
 * Invariants:
 * - Only this transaction's own nodes (node.txn === this.txn) are mutated; the base snapshot
 *   and everything reachable from it are left exactly as they were (MVCC).
 * - Every on-disk page that stops being reachable is reported in `freedPages` under this txn,
 *   and only becomes reusable through the FreeList's release rule (I2).
 * - `ops` is the logical redo of the transaction (sub-database, type, encoded key and value),
 *   which the write-ahead log stores and replay re-applies.
 */
import { latin1Of } from "../util/latin1.js";
import { KeelError, invalidArgument } from "../errors.js";
import { treeFreeAll, treeGet, treePut, treeRemove } from "../btree/BTree.js";
import { OverflowValue, type LeafValue, type Node } from "../btree/Node.js";
import { buildTree } from "../btree/buildTree.js";
import { sortedOrder } from "../btree/sortedOrder.js";
import { TreeCursor } from "../btree/TreeCursor.js";
import { copyTree, emptyTree, type TreeState, type TreeWriter } from "../btree/TreeState.js";
import { LEAF_ENTRY_OVERHEAD, overflowPages, type PageLimits } from "../pager/PageLayout.js";
import type { DbEntry, KeyEncodingName, Snapshot, ValueEncodingName } from "./Snapshot.js";


/** A logical operation for the log. Key and value bytes may be latin1 strings (no copy). */
export interface LogOp {
  type: "put" | "remove" | "createDB" | "dropDB" | "clearDB";
  db: string;
  key?: Uint8Array | string;
  value?: Uint8Array | string;
}

/** From this many writes, a batch into an empty tree is built bottom-up (applyBatch step 4). */
export const BUILD_MIN_BATCH = 64;

export interface TxnHost {
  readonly limits: PageLimits;
  readonly maxValueSize: number;
  load(page: number, txn: number): Node;
  readValue(v: LeafValue): Buffer;
}

export class WriteTxn implements TreeWriter {
  readonly txn: number;
  readonly limits: PageLimits;
  readonly base: Snapshot;
  readonly ops: LogOp[] = [];
  /** [first page, count] runs freed by this transaction. */
  readonly freedPages: number[] = [];
  /** Nodes and values replaced or dropped while they had no page (see placedFrees). */
  #unplaced: Array<Node | OverflowValue> = [];
  /**
   * Bumped when a change starts (after its arguments are validated, before the tree is touched),
   * so cursors opened in this transaction can notice and re-seek, and a caller can tell that an
   * operation which threw left the transaction exactly as it was (count unchanged).
   */
  modCount = 0;
  /** Logical operations applied (counted even when not logging). */
  opCount = 0;
  /** Key and value bytes written by this transaction. */
  opBytes = 0;
  /** Nodes and overflow bytes this transaction added to memory (for the checkpoint policy). */
  dirtyBytes = 0;
  #host: TxnHost;
  #dbs: Map<string, DbEntry> | null = null;
  #trees = new Map<string, TreeState>();
  #done = false;
  /** Record ops (false without a log, and while replaying the log, whose records exist). */
  logging = true;
  /** The LSN of this transaction's log record, once committed (0 without one). */
  lsn = 0;

  constructor(host: TxnHost, base: Snapshot, txn: number) {
    this.#host = host;
    this.base = base;
    this.txn = txn;
    this.limits = host.limits;
  }

  load(page: number, txn: number): Node {
    return this.#host.load(page, txn);
  }

  unplaced(x: Node | OverflowValue): void {
    this.#unplaced.push(x);
  }

  /**
   * At commit: the pages a concurrent checkpoint gave, while this transaction was open, to nodes and
   * values it replaced or dropped before they had one. That checkpoint froze a head holding them and
   * found them still reachable from the head when it adopted (this transaction had not committed),
   * so nothing else frees them. Those it places after this commit it frees itself (Engine.adoptRun).
   */
  placedFrees(): void {
    for (const x of this.#unplaced) {
      if (x.page === 0) continue;
      if (x instanceof OverflowValue) this.freed(x.page, overflowPages(x.length, this.limits.pageSize));
      else this.freed(x.page, 1);
    }
    this.#unplaced = [];
  }

  freed(page: number, count: number): void {
    this.freedPages.push(page, count);
    // A page replaced by a copy-on-write copy: that copy (a whole decoded node) is held in memory
    // until a checkpoint writes it. Counting only keys and values missed it, so small random puts
    // held the whole decoded tree far past checkpointDirtyBytes.
    this.dirtyBytes += count * this.limits.pageSize;
  }

  #check(): void {
    if (this.#done) throw new KeelError("TXN", "the transaction has already ended", { txn: this.txn });
  }

  get dbs(): ReadonlyMap<string, DbEntry> {
    return this.#dbs ?? this.base.dbs;
  }

  entry(db: string): DbEntry | undefined {
    return this.dbs.get(db);
  }

  #tree(db: string): TreeState | undefined {
    const own = this.#trees.get(db);
    if (own) return own;
    return this.dbs.get(db)?.tree;
  }

  #ownTree(db: string): TreeState {
    let t = this.#trees.get(db);
    if (t) return t;
    const e = this.dbs.get(db);
    if (!e) throw new KeelError("NOT_FOUND", `sub-database "${db}" does not exist`, { db });
    t = copyTree(e.tree);
    this.#trees.set(db, t);
    return t;
  }

  get(db: string, key: string): LeafValue | undefined {
    this.#check();
    const t = this.#tree(db);
    return t ? treeGet(this, t, key) : undefined;
  }

  cursor(db: string): TreeCursor {
    this.#check();
    return new TreeCursor(this, this.#tree(db) ?? emptyTree());
  }

  /** `value` is the encoded value: a Buffer, or the same bytes as a latin1 string. */
  put(db: string, key: string, value: Uint8Array | string, rawKey?: Uint8Array): boolean {
    return this.swap(db, key, value, rawKey) !== undefined;
  }

  /** put, returning the value it replaced (undefined if the key was new), found in the same descent. */
  swap(db: string, key: string, value: Uint8Array | string, rawKey?: Uint8Array): LeafValue | undefined {
    this.#check();
    this.#checkSizes(key, value);
    return this.#swapChecked(this.#ownTree(db), db, key, value, rawKey);
  }

  /**
   * put of a committed log record (replay, restore, salvage): the value was checked against the
   * maxValueSize of the open that wrote it, which may have been larger than this one's (it is an
   * open option, not kept in the file). Refusing it here made acknowledged writes unrecoverable.
   * The key limit comes from the page size, which the file keeps: still checked.
   */
  putCommitted(db: string, key: string, value: Uint8Array | string): void {
    this.#check();
    this.#checkSizes(key, undefined);
    this.#swapChecked(this.#ownTree(db), db, key, value);
  }

  /** `index`: the write's place in a batch, named in the error. */
  #checkSizes(key: string, value: Uint8Array | string | undefined, index?: number): void {
    if (key.length > this.limits.maxKeySize) {
      const max = this.limits.maxKeySize;
      throw invalidArgument(`key of ${key.length} bytes exceeds maxKeySize ${max}`, index === undefined ? { limit: "maxKeySize", max, size: key.length } : { limit: "maxKeySize", max, size: key.length, index });
    }
    if (value !== undefined && value.length > this.#host.maxValueSize) {
      const max = this.#host.maxValueSize;
      throw invalidArgument(`value of ${value.length} bytes exceeds maxValueSize ${max}`, index === undefined ? { limit: "maxValueSize", max, size: value.length } : { limit: "maxValueSize", max, size: value.length, index });
    }
  }

  /**
   * Apply a batch of writes to one sub-database, as numbered steps:
   *   1. Check every write's sizes; a bad one throws naming its index, before anything changes.
   *   2. If the batch holds a put, `createDb` makes sure the sub-database exists (as for put).
   *   3. Order the writes by key (sortedOrder: stable, so the state is the one the given order
   *      leaves).
   *   4. Into an empty tree, with BUILD_MIN_BATCH writes or more: keep the last write of each
   *      key, and build the tree bottom-up from the puts among them (buildTree). Otherwise
   *      apply the writes one by one in key order: a put where `values[i]` is set, a remove
   *      where it is undefined.
   * Every write that changes the tree is logged, so replaying the record rebuilds the state.
   */
  applyBatch(db: string, keys: readonly string[], values: ReadonlyArray<Uint8Array | string | undefined>, createDb: () => void): void {
    this.#check();
    const n = keys.length;
    if (values.length !== n) throw invalidArgument("a batch needs one value slot per key", { keys: n, values: values.length });
    // 1.
    let puts = false;
    for (let i = 0; i < n; i++) {
      this.#checkSizes(keys[i]!, values[i], i);
      if (values[i] !== undefined) puts = true;
    }
    // 2.
    if (puts) createDb();
    if (n === 0) return;
    // 3.
    const order = sortedOrder(keys);
    // 4.
    const current = this.#tree(db);
    if (puts && n >= BUILD_MIN_BATCH && current !== undefined && current.root === null) {
      this.#buildBatch(db, keys, values, order);
      return;
    }
    let t: TreeState | null = null;
    for (let j = 0; j < n; j++) {
      const i = order[j]!;
      const v = values[i];
      if (v === undefined) this.remove(db, keys[i]!);
      else this.#swapChecked((t ??= this.#ownTree(db)), db, keys[i]!, v);
    }
  }

  /** applyBatch step 4 into an empty tree: the last write of each key, built bottom-up. */
  #buildBatch(db: string, keys: readonly string[], values: ReadonlyArray<Uint8Array | string | undefined>, order: Uint32Array): void {
    const outKeys: string[] = [];
    const outVals: LeafValue[] = [];
    const n = order.length;
    for (let j = 0; j < n; j++) {
      const i = order[j]!;
      const key = keys[i]!;
      // Equal keys are adjacent, in the given order: only the last of them counts.
      if (j + 1 < n && keys[order[j + 1]!] === key) continue;
      const value = values[i];
      if (value === undefined) continue; // a remove: the key is not in the tree (it was empty)
      const v = this.#leafValue(key, value);
      outKeys.push(key);
      outVals.push(v);
      this.dirtyBytes += key.length + value.length + 64;
      this.opBytes += key.length + value.length;
      this.#logPut(db, key, v);
    }
    if (outKeys.length === 0) return;
    this.modCount++;
    this.opCount += outKeys.length;
    buildTree(this, this.#ownTree(db), outKeys, outVals);
  }

  /** The tree's form of a value: inline as a latin1 string, or an overflow value not yet placed. */
  #leafValue(key: string, value: Uint8Array | string): LeafValue {
    const inline = LEAF_ENTRY_OVERHEAD + key.length + value.length <= this.limits.maxInlineEntry;
    // Copied here, once, for both the tree and the log record: the caller may reuse its buffer
    // as soon as put returns (the record is only encoded at commit).
    return inline
      ? typeof value === "string" ? value : latin1Of(value)
      : new OverflowValue(value.length, 0, 0, typeof value === "string" ? Buffer.from(value, "latin1") : Buffer.from(value));
  }

  #swapChecked(t: TreeState, db: string, key: string, value: Uint8Array | string, rawKey?: Uint8Array): LeafValue | undefined {
    const v = this.#leafValue(key, value);
    // Memory this change pins until a checkpoint: the entry itself plus a share of the copied path.
    this.dirtyBytes += key.length + value.length + 64;
    this.modCount++;
    const old = treePut(this, t, key, v);
    this.opCount++;
    this.opBytes += key.length + value.length;
    this.#logPut(db, rawKey ?? key, v);
    return old;
  }

  /** Record a put for the log (when logging). */
  #logPut(db: string, key: Uint8Array | string, v: LeafValue): void {
    // Strings are immutable: the log encodes the very bytes the tree holds, without a copy.
    if (this.logging) this.ops.push({ type: "put", db, key, value: typeof v === "string" ? v : v.data! });
  }

  remove(db: string, key: string, rawKey?: Uint8Array): boolean {
    this.#check();
    const t = this.#tree(db);
    if (!t || t.root === null || treeGet(this, t, key) === undefined) return false; // a miss changes nothing
    this.modCount++;
    const own = this.#ownTree(db);
    const existed = treeRemove(this, own, key, true);
    if (existed) {
      this.opCount++;
      this.opBytes += key.length;
      this.dirtyBytes += 64;
      if (this.logging) this.ops.push({ type: "remove", db, key: rawKey ?? key });
    }
    return existed;
  }

  #mutableDbs(): Map<string, DbEntry> {
    if (!this.#dbs) this.#dbs = new Map(this.base.dbs);
    return this.#dbs;
  }

  createDB(db: string, keyEncoding: KeyEncodingName, valueEncoding: ValueEncodingName): DbEntry {
    this.#check();
    const existing = this.dbs.get(db);
    if (existing) return existing;
    const e: DbEntry = { name: db, keyEncoding, valueEncoding, tree: emptyTree() };
    this.modCount++;
    this.#mutableDbs().set(db, e);
    if (this.logging) this.ops.push({ type: "createDB", db, value: Buffer.from(JSON.stringify({ keyEncoding, valueEncoding })) });
    return e;
  }

  /** Remove every entry (clear) or the sub-database itself (drop). Frees its pages. */
  dropDB(db: string, drop: boolean): boolean {
    this.#check();
    const t = this.#tree(db);
    if (!t) return false;
    const entry = this.dbs.get(db);
    this.modCount++;
    const own = this.#ownTree(db);
    treeFreeAll(this, own);
    Object.assign(own, emptyTree());
    this.opCount++;
    if (drop) {
      this.#mutableDbs().delete(db);
      this.#trees.delete(db);
    }
    // A drop records the encodings it drops, so that a reader of the log can decode the
    // sub-database's earlier records even after it is created again with other encodings.
    const encodings = entry ? Buffer.from(JSON.stringify({ keyEncoding: entry.keyEncoding, valueEncoding: entry.valueEncoding })) : undefined;
    if (this.logging) this.ops.push(drop && encodings ? { type: "dropDB", db, value: encodings } : { type: drop ? "dropDB" : "clearDB", db });
    return true;
  }

  readValue(v: LeafValue): Buffer {
    return this.#host.readValue(v);
  }

  /** End the transaction and return the snapshot it built (the base if nothing changed). */
  finish(lsn: number): Snapshot {
    this.#check();
    this.#done = true;
    if (this.#trees.size === 0 && !this.#dbs) return { txn: this.txn, lsn, dbs: this.base.dbs };
    const dbs = new Map(this.dbs);
    for (const [name, tree] of this.#trees) {
      const e = dbs.get(name);
      if (e) dbs.set(name, { name, keyEncoding: e.keyEncoding, valueEncoding: e.valueEncoding, tree });
    }
    return { txn: this.txn, lsn, dbs };
  }

  abort(): void {
    this.#done = true;
  }

  get ended(): boolean {
    return this.#done;
  }

  /** TXN if the transaction has ended (for readers that hold a cursor across calls). */
  checkOpen(): void {
    this.#check();
  }
}
