/**
 * Database: an open KeelDB directory. It is also the default sub-database.
 *
 * It checks every call (open, writable, arguments) and hands writes to its WriteQueue, which
 * runs the write path as numbered steps (group commit). Reads see the published snapshot.
 */
import { EventEmitter } from "node:events";
import { join } from "node:path";
import { KeelError, invalidArgument } from "../errors.js";
import { pinnedPath } from "../io/NodeFileSystem.js";
import { isThenable } from "../util/isThenable.js";
import type { FileSystem } from "../io/FileSystem.js";
import type { Engine } from "../txn/Engine.js";
import type { KeyEncodingName, Snapshot, ValueEncodingName } from "../txn/Snapshot.js";
import { DEFAULT_DB } from "../txn/Snapshot.js";
import type { WriteTxn } from "../txn/WriteTxn.js";
import type { Lock } from "./Lock.js";
import { SubDatabase } from "./SubDatabase.js";
import { checkEncodings, methodOptions, pathArgument } from "./options.js";
import { txLogRecords, type TxLogRecord, type TxLogWatermarks } from "./txLogRecords.js";
import { wellFormed } from "../util/wellFormed.js";
import type { Transaction } from "./Transaction.js";
import { WriteQueue, type QueueItem } from "./WriteQueue.js";

export type { QueueItem } from "./WriteQueue.js";
export type { TxLogOp, TxLogRecord, TxLogWatermarks } from "./txLogRecords.js";
import type { Durability } from "./Durability.js";
import { LogDurability } from "./LogDurability.js";
import { listSnapshots, type SnapshotInfo } from "../maintenance/Snapshots.js";
import type { CopyResult } from "../maintenance/copyDatabase.js";
import type { BackupPagesResult } from "../maintenance/backupPages.js";
import { backupOptions, backupPagesOnline, copyHead, type OnlineCopyOptions, type PageBackupOptions } from "./onlineCopy.js";
import type { VerifyEngineOptions, VerifyReport } from "../maintenance/verify.js";
import { verifyOnline } from "./onlineVerify.js";
import { snapshotOnline, updateSnapshotFloor } from "./onlineSnapshot.js";
import type { HeldSegment } from "../wal/index.js";

export interface SubDatabaseOptions {
  keyEncoding?: KeyEncodingName | undefined;
  encoding?: ValueEncodingName | undefined;
}

export interface TreeStatsReport {
  depth: number;
  entries: number;
  branchPages: number;
  leafPages: number;
  overflowPages: number;
  keyEncoding?: KeyEncodingName;
  encoding?: ValueEncodingName;
}

export interface Stats extends TreeStatsReport {
  pageSize: number;
  txnId: number;
  lsn: number;
  freePages: number;
  totalPages: number;
  fileBytes: number;
  readers: number;
  maxReaders: number;
  /** Clean pages held decoded in memory, the budget (cacheSize / pageSize), pages read from disk, sweeps. */
  cache: { pages: number; capacityPages: number; loads: number; sweeps: number; evictions: number };
  checkpoints: number;
  lastCheckpointAt: number;
  /**
   * Set when open found the newest meta page damaged and used the older one: with the log,
   * replay restored every commit; without it (wal: false), the last commit group was lost.
   */
  metaFallback?: { slot: 0 | 1; reason: string; claimedTxn: number } | undefined;
  dbs: Record<string, TreeStatsReport>;
}


export class Database extends SubDatabase {
  /** @internal */
  readonly engine: Engine;
  readonly path: string;
  /** @internal */
  readonly fs: FileSystem;
  /** @internal */
  durability: Durability;
  /** The LOCK of a writer, or the registration of a read-only open (ReadOnlyReaders.ts). */
  #lock: Pick<Lock, "release"> | null;
  #closed = false;
  #events = new EventEmitter();
  #subs = new Map<string, SubDatabase>();
  readonly #writes: WriteQueue = new WriteQueue(this);

  /** @internal use open() */
  constructor(engine: Engine, fs: FileSystem, path: string, lock: Pick<Lock, "release"> | null, durability: Durability, keyEncoding: KeyEncodingName, encoding: ValueEncodingName, readOnly = false) {
    super(null, DEFAULT_DB, keyEncoding, encoding);
    this.readOnly = readOnly;
    this.engine = engine;
    this.fs = fs;
    this.path = path;
    this.#lock = lock;
    this.durability = durability;
    this.#subs.set(DEFAULT_DB, this);
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  /**
   * The process exits now without close() (the CLI when its stdout goes away: process.exit in an
   * 'exit' handler can run nothing asynchronous): remove this open's LOCK or READER file, which a
   * later open would otherwise find left behind. Nothing else: what was committed is durable as a
   * crash would leave it. Not for use while the process goes on.
   */
  releaseForExit(): void {
    if (this.#closed) return;
    this.#lock?.release();
    this.#lock = null;
  }

  #check(): void {
    if (this.#closed) throw new KeelError("CLOSED", `the database at ${this.path} is closed`, { path: this.path });
  }

  /** @internal The snapshot reads see now. */
  readSnapshot(): Snapshot {
    this.#check();
    return this.engine.published;
  }

  // ---- events ----

  on(event: "commit", listener: (report: CommitReport) => void): this {
    this.#events.on(commitEvent("on", event, listener), listener);
    return this;
  }

  off(event: "commit", listener: (report: CommitReport) => void): this {
    this.#events.off(commitEvent("off", event, listener), listener);
    return this;
  }

  /** A commit listener is running (a synchronous commit from it would recurse: runSync refuses it). */
  #inListener = false;

  /** @internal Listeners that throw do not break the commit: their error is reported, not raised. */
  emitCommit(report: CommitReport): void {
    const outer = this.#inListener;
    this.#inListener = true;
    try {
      const warn = (e: unknown) => process.emitWarning(`a KeelDB commit listener threw: ${(e as Error)?.message ?? e}`, { code: "KEEL_LISTENER" });
      for (const l of this.#events.listeners("commit")) {
        try {
          const r: unknown = (l as (r: CommitReport) => unknown)(report);
          // An async listener's rejection is reported as a throw is, not left unhandled (which
          // would end the process under Node's default --unhandled-rejections=throw).
          if (isThenable(r)) r.then(undefined, warn);
        } catch (e) {
          warn(e);
        }
      }
    } finally {
      this.#inListener = outer;
    }
  }

  get hasCommitListeners(): boolean {
    return this.#events.listenerCount("commit") > 0;
  }

  /** @internal One "commit" event per transaction of a group that just became durable. */
  emitCommits(txns: WriteTxn[]): void {
    if (!this.hasCommitListeners) return;
    const time = Date.now();
    for (const w of txns) {
      // A transaction that changed nothing wrote no record: no event (its lsn 0 would read as "no log").
      if (w.opCount === 0 && w.lsn === 0) continue;
      this.emitCommit({ lsn: w.lsn, txnId: w.txn, time, ops: w.opCount, bytes: w.opBytes });
    }
  }

  // ---- sub-databases ----

  /** Open (and create on first write) a named sub-database with its own encodings. */
  openDB(name: string, opts: SubDatabaseOptions = {}): SubDatabase {
    this.#check();
    if (typeof name !== "string" || name.length === 0) throw invalidArgument("a sub-database name is a non-empty string", { argument: "name" });
    // Names are stored as UTF-8: a lone surrogate would come back as U+FFFD after a reopen.
    if (!wellFormed(name)) throw invalidArgument("a sub-database name must be a well-formed string (this one holds a lone surrogate)", { argument: "name" });
    if (Buffer.byteLength(name) > this.engine.limits.maxKeySize) throw invalidArgument("sub-database name too long", { argument: "name", max: this.engine.limits.maxKeySize });
    if (opts === null || typeof opts !== "object") throw invalidArgument("openDB options must be an object", { argument: "options" });
    methodOptions(opts, "openDB", { keyEncoding: "any", encoding: "any" });
    checkEncodings(opts);
    const existing = this.engine.head.dbs.get(name);
    const keyEncoding = opts.keyEncoding ?? existing?.keyEncoding ?? "ordered-binary";
    const encoding = opts.encoding ?? existing?.valueEncoding ?? "msgpack";
    if (existing && (existing.keyEncoding !== keyEncoding || existing.valueEncoding !== encoding)) {
      throw invalidArgument(
        `sub-database "${name}" was created with keyEncoding ${existing.keyEncoding} and encoding ${existing.valueEncoding}; asked for ${keyEncoding} and ${encoding}`,
        { argument: "encoding", name, stored: { keyEncoding: existing.keyEncoding, encoding: existing.valueEncoding } },
      );
    }
    const cached = this.#subs.get(name);
    if (cached && cached.keyEncoding === keyEncoding && cached.valueEncoding === encoding) return cached;
    if (cached && !existing) {
      throw invalidArgument(`sub-database "${name}" is already open with keyEncoding ${cached.keyEncoding} and encoding ${cached.valueEncoding}`, {
        argument: "encoding",
        name,
        stored: { keyEncoding: cached.keyEncoding, encoding: cached.valueEncoding },
      });
    }
    const sub = new SubDatabase(this, name, keyEncoding, encoding);
    this.#subs.set(name, sub);
    return sub;
  }

  /** Names of the named sub-databases that exist (have been written to). */
  listDBs(): string[] {
    return [...this.readSnapshot().dbs.keys()].filter((n) => n !== DEFAULT_DB).sort();
  }

  /** Drop a named sub-database and free its pages. Resolves to whether it existed. */
  dropDB(name: string): Promise<boolean> {
    if (typeof name !== "string") return Promise.reject(invalidArgument("a sub-database name is a non-empty string", { argument: "name" }));
    if (name === DEFAULT_DB) return Promise.reject(invalidArgument("the default database cannot be dropped; use clear()", { argument: "name" }));
    return this.transaction((tx) => tx.dropSubDatabase(name));
  }

  // ---- the write queue ----

  /** Opened with readOnly: true. */
  readonly readOnly: boolean = false;

  #checkWritable(): void {
    if (this.readOnly) throw new KeelError("READ_ONLY", `the database at ${this.path} was opened read-only`, { path: this.path });
  }

  /**
   * close() was called: writes and maintenance calls (sync, checkpoint, snapshot, backup, compact,
   * verify, gc) are refused (CLOSED) while it finishes the writes queued before; what they would
   * queue could otherwise interleave with close's own checkpoint.
   */
  #closing: Promise<void> | null = null;

  #checkNotClosing(): void {
    if (this.#closing) throw new KeelError("CLOSED", `the database at ${this.path} is closing`, { path: this.path });
  }

  /** @internal */
  enqueue(item: QueueItem): Promise<unknown> {
    this.#check();
    if (item.kind !== "task") {
      this.#checkWritable();
      this.#checkNotClosing();
    }
    return this.#writes.enqueue(item);
  }

  /** @internal transactionSync: commit and make durable before returning. */
  runSync<T>(db: SubDatabase, fn: (tx: Transaction) => T): T {
    this.#check();
    this.#checkWritable();
    this.#checkNotClosing();
    if (this.#inListener) {
      // Its own commit event would run the listener again, inside it, without end.
      throw new KeelError("TXN", "transactionSync (putSync, removeSync) inside a commit listener would commit from within the publication of another commit; use db.put or db.transaction there, which queue", {});
    }
    return this.#writes.runSync(db, fn);
  }

  /** Resolves when every write queued before the call has settled (later ones are not waited for). */
  flushed(): Promise<void> {
    try {
      this.#check();
      this.#writes.refuseInCallback("db.flushed()");
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#writes.flushed();
  }

  // ---- durability and maintenance ----

  /** @internal Run `fn` between transactions, in queue order; resolves once the group is durable. */
  task<T>(fn: () => T): Promise<T> {
    return this.enqueue({ kind: "task", fn }) as Promise<T>;
  }

  /** Force a durable point: everything committed so far survives a crash once this resolves. */
  async sync(): Promise<void> {
    this.#check();
    this.#checkNotClosing();
    await this.task(() => this.durability.syncAll());
  }

  /**
   * Write committed state into the data file now (with a log: bounds replay time). With the log,
   * the pages are written in slices between commits (LogDurability.checkpointConcurrently): the
   * event loop, readers and writers go on meanwhile.
   */
  async checkpoint(): Promise<void> {
    this.#check();
    this.#checkNotClosing();
    const d = this.durability;
    if (d instanceof LogDurability) return d.checkpointConcurrently(this);
    await this.task(() => d.checkpoint(true));
  }

  // ---- the write-ahead log ----

  #log(): LogDurability {
    this.#check();
    if (this.readOnly && !(this.durability instanceof LogDurability)) {
      // A read-only open replays the log into memory and closes it: there is no log to serve.
      throw invalidArgument("the write-ahead log's API is not available on a read-only open (the log is replayed, then closed); open the database for writing", { option: "readOnly" });
    }
    if (!(this.durability instanceof LogDurability)) {
      throw invalidArgument("this needs the write-ahead log: open the database with wal: true (the default)", { option: "wal" });
    }
    return this.durability;
  }

  /** Positions of the log: committed, durable and applied (checkpointed) LSNs, lag, floors. */
  txlogWatermarks(): TxLogWatermarks {
    const d = this.#log();
    const w = d.wal.watermarks();
    const applied = this.engine.durable.lsn;
    return {
      lastCommittedLsn: w.lastCommittedLsn,
      lastDurableLsn: w.lastDurableLsn,
      lastAppliedLsn: applied,
      durability: d.profile,
      activeSegment: w.activeSegment,
      segmentCount: w.segmentCount,
      logBytes: w.totalBytes,
      logDiskBytes: w.diskBytes,
      oldestLsn: w.oldestLsn,
      pendingSyncCount: w.pendingSyncCount,
      lag: { durable: w.lastCommittedLsn - w.lastDurableLsn, applied: w.lastDurableLsn - applied },
      lastSyncAt: w.lastSyncAt,
      lastCheckpointAt: this.engine.lastCheckpointAt,
      floors: d.floors(),
      heldByFloor: d.lastGc?.heldByFloor ?? [],
      failed: w.failed,
      replay: d.replay,
    };
  }

  /**
   * Committed log records from `fromLsn` to `toLsn` (inclusive; default the last durable one),
   * in LSN order, with keys and values decoded by their sub-database's encodings (raw bytes
   * for a sub-database that no longer exists, or with { raw: true }).
   */
  openTxLog(fromLsn: number, toLsn?: number, options?: { raw?: boolean }): Iterable<TxLogRecord> {
    const d = this.#log();
    const opts = methodOptions(options, "openTxLog", { raw: "boolean" });
    // Checked before the cap: Math.min would coerce a string, a boolean or an array to a number.
    if (toLsn !== undefined && (typeof toLsn !== "number" || Number.isNaN(toLsn))) {
      throw invalidArgument("toLsn must be a non-negative integer", { argument: "toLsn", value: typeof toLsn === "bigint" ? String(toLsn) : (toLsn as unknown) });
    }
    const to = Math.min(toLsn ?? d.wal.lastDurableLsn, d.wal.lastDurableLsn);
    // Validated now, not at the first next(): INVALID_ARGUMENT for a bad LSN, NOT_FOUND for
    // records already deleted. (readRecords checks eagerly; iterating is what pins segments.)
    d.wal.readRecords(fromLsn, to);
    return txLogRecords(d.wal, this.engine.head, d.schemaChanges, fromLsn, to, !!opts.raw, () => this.#check());
  }


  /** Keep the log from `lsn` on for a named consumer (undefined removes the floor). */
  setTxLogFloor(name: string, lsn: number | undefined): void {
    if (typeof name !== "string" || !name) throw invalidArgument("a floor needs a name", { argument: "name" });
    if (lsn !== undefined && (!Number.isSafeInteger(lsn) || lsn < 0)) throw invalidArgument("a floor is a non-negative integer LSN", { argument: "lsn", value: lsn });
    this.#log().setFloor(`consumer:${name}`, lsn);
  }

  /**
   * Delete sealed log segments that no floor needs and retention lets go. `keepFromLsn` adds an
   * explicit floor for this call. Runs automatically after every checkpoint too.
   */
  async gcTxlogSegments(keepFromLsn?: number): Promise<{ deleted: string[]; freedBytes: number; heldByFloor: HeldSegment[] }> {
    const d = this.#log();
    this.#checkNotClosing();
    if (keepFromLsn !== undefined && (!Number.isSafeInteger(keepFromLsn) || keepFromLsn < 0)) {
      throw invalidArgument("keepFromLsn must be a non-negative integer", { argument: "keepFromLsn", value: keepFromLsn });
    }
    return this.task(() => {
      const r = d.gc(keepFromLsn === undefined ? undefined : { keep: keepFromLsn });
      return { deleted: r.deleted.map((s) => s.name), freedBytes: r.freedBytes, heldByFloor: r.heldByFloor.map((h) => ({ ...h })) };
    });
  }

  /**
   * Checkpoint, rotate the log segment, and write a consistent compacted copy to
   * snapshots/current (the old current becomes previous). Writers go on meanwhile
   * (db/onlineSnapshot.ts). Calls run one at a time: each builds snapshots/incoming, and clears it
   * first as a crash leftover.
   */
  createSnapshot(options?: { signal?: AbortSignal }): Promise<SnapshotInfo> {
    let d: LogDurability;
    let opts: { signal?: AbortSignal };
    try {
      d = this.#log();
      this.#checkNotClosing();
      opts = methodOptions(options, "createSnapshot", { signal: "signal" });
      // Its steps queue tasks after this call returns, where the write queue's own check no
      // longer sees the callback that holds the writer.
      this.#writes.refuseInCallback("db.createSnapshot()");
    } catch (e) {
      return Promise.reject(e);
    }
    const run = this.#snapshotting.then(() => {
      this.#check();
      return snapshotOnline(this, d, opts);
    });
    this.#snapshotting = run.then(
      () => {},
      () => {},
    );
    return run;
  }

  /** The running (or last) createSnapshot, settled either way: the next one starts after it. */
  #snapshotting: Promise<void> = Promise.resolve();

  /** Snapshots kept in snapshots/ (current, previous), newest first. */
  listSnapshots(): SnapshotInfo[] {
    this.#check();
    return listSnapshots(this.fs, this.path);
  }

  /** @internal open() calls it once. */
  initFloors(): void {
    try {
      updateSnapshotFloor(this);
    } catch {
      // A damaged snapshot.json must not stop the database from opening; listSnapshots reports it.
    }
  }

  /**
   * A consistent copy of the database at one LSN (the last commit queued before the call), made
   * while readers and writers go on; it holds the writer only for the one task that pins its state.
   * The copy opens on its own with no log. Default (compact: true): entries written bottom-up in
   * key order into a fresh file, no free pages. compact: false: the data file as the last
   * checkpoint left it, page by page, then the committed log records after that checkpoint applied
   * to the copy (faster; free pages kept); more than `maxReplayBytes` of such records are
   * checkpointed in the source first (onlineCopy.ts). `signal` aborts it and removes the partial
   * copy; `dest` must not exist.
   */
  async backup(dest: string, options?: PageBackupOptions & { compact?: boolean }): Promise<CopyResult | BackupPagesResult> {
    this.#check();
    this.#checkNotClosing();
    dest = pinnedPath(this.fs, pathArgument(dest, "dest", "backup"));
    const opts = backupOptions(options);
    // A read-only open that replayed log records holds them in memory only: no page of the
    // file has them, and it may not checkpoint. Only the compacting copy can include them.
    const replayedInMemory = this.readOnly && this.engine.head.txn !== this.engine.durable.txn;
    return opts.compact === false && !replayedInMemory ? backupPagesOnline(this, dest, opts) : copyHead(this, dest, opts, 0);
  }

  /**
   * A compacting copy at `dest` (which must not exist): db.backup(dest, { compact: true }), but
   * the copy keeps the source's flags too, as compactTo does.
   */
  async compact(dest: string, options?: OnlineCopyOptions): Promise<CopyResult> {
    this.#check();
    this.#checkNotClosing();
    dest = pinnedPath(this.fs, pathArgument(dest, "dest", "compact"));
    const opts = methodOptions(options, "compact", { signal: "signal", onProgress: "function" });
    return copyHead(this, dest, opts, undefined);
  }

  /**
   * Check the files of this open database: every page of data.keel as its newest durable meta
   * names it, the log (commits not yet checkpointed are checked there) and the snapshots, while
   * readers and writers go on (db/onlineVerify.ts: the pages it walks are pinned, the log is read
   * up to where it ended when the verify began). `signal` aborts it (ABORTED).
   */
  async verify(options?: VerifyEngineOptions): Promise<VerifyReport> {
    this.#check();
    this.#checkNotClosing();
    return verifyOnline(this, methodOptions(options, "verify", { wal: "boolean", snapshots: "boolean", onProgress: "function", signal: "signal" }));
  }

  getStats(): Stats {
    const snap = this.readSnapshot();
    const engine = this.engine;
    const dbs: Record<string, TreeStatsReport> = {};
    const total: TreeStatsReport = { depth: 0, entries: 0, branchPages: 0, leafPages: 0, overflowPages: 0 };
    for (const [name, e] of snap.dbs) {
      const t = e.tree;
      dbs[name] = {
        depth: t.depth,
        entries: t.entries,
        branchPages: t.branchPages,
        leafPages: t.leafPages,
        overflowPages: t.overflowPages,
        keyEncoding: e.keyEncoding,
        encoding: e.valueEncoding,
      };
      total.depth = Math.max(total.depth, t.depth);
      total.entries += t.entries;
      total.branchPages += t.branchPages;
      total.leafPages += t.leafPages;
      total.overflowPages += t.overflowPages;
    }
    const cat = engine.catalog;
    let fileBytes = 0;
    try {
      fileBytes = engine.pager.file.size();
    } catch {
      fileBytes = engine.pager.highWater * engine.limits.pageSize;
    }
    const cache = engine.pager.cache;
    return {
      pageSize: engine.limits.pageSize,
      txnId: snap.txn,
      lsn: snap.lsn,
      ...total,
      branchPages: total.branchPages + cat.branchPages,
      leafPages: total.leafPages + cat.leafPages,
      freePages: engine.freelist.size,
      totalPages: engine.pager.highWater,
      fileBytes,
      readers: engine.readers.active,
      maxReaders: engine.readers.max,
      cache: { pages: cache.count, capacityPages: cache.capacity, loads: cache.loads, sweeps: cache.sweeps, evictions: cache.evictions },
      checkpoints: engine.checkpoints,
      lastCheckpointAt: engine.lastCheckpointAt,
      metaFallback: engine.report.metaFallback,
      dbs,
    };
  }

  /**
   * Finish queued writes, make everything durable, release the files and the lock. With the log,
   * the bulk of the closing checkpoint is written in slices (the event loop goes on); only what
   * writers commit meanwhile is checkpointed in the final call. A policy checkpoint that is
   * running when close() is called is finished in that final call instead.
   */
  close(): Promise<void> {
    // The same promise every time, a rejected one included: a retried close must not report
    // success for a close whose final checkpoint failed.
    if (this.#closing) return this.#closing;
    if (this.#closed) return Promise.resolve();
    try {
      this.#writes.refuseInCallback("db.close()");
    } catch (e) {
      return Promise.reject(e);
    }
    this.#closing = this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    await this.#writes.flushed();
    if (this.#closed) return;
    const d = this.durability;
    if (d instanceof LogDurability && d.closeCheckpointsInSlices) {
      // A failure here is not final: the last checkpoint below tries again, and reports it.
      await d.checkpointConcurrently(this).catch(() => {});
      if (this.#closed) return;
    }
    let err: unknown;
    try {
      this.durability.close();
    } catch (e) {
      err = e;
    }
    this.#closed = true;
    try {
      this.engine.close();
    } catch (e) {
      err ??= e;
    }
    this.#lock?.release();
    if (err) throw err;
  }

  /** The data file's path. */
  get dataPath(): string {
    return join(this.path, "data.keel");
  }
}

export interface CommitReport {
  lsn: number;
  txnId: number;
  time: number;
  ops: number;
  bytes: number;
}

/** on/off's arguments checked: the one event there is, and a function. */
function commitEvent(method: string, event: unknown, listener: unknown): "commit" {
  if (event !== "commit") throw invalidArgument(`${method}: unknown event ${String(event)} (only "commit")`, { argument: "event", value: String(event) });
  if (typeof listener !== "function") throw invalidArgument(`${method}: the listener must be a function`, { argument: "listener" });
  return event;
}
