/**
 * Engine: the data file's state machine: snapshots, the write transaction, checkpoints.
 *
 * Invariants:
 * - `head` is the newest committed state (a writer builds on it); `published` is what readers
 *   see; `durable` is what the newest meta on disk names. durable <= published <= head by txn.
 * - One write transaction at a time (`#writer`); a checkpoint never starts or ends while one is open.
 * - At most one checkpoint is unfinished (`#running`). A concurrent one (beginCheckpoint) is frozen
 *   at a head whose log records are durable; commits go on while its steps run, since copy on write
 *   never changes a frozen node and commits neither allocate pages nor touch the free list. Any
 *   other checkpoint finishes it first. Its adopt frees the pages of frozen nodes that commits
 *   replaced meanwhile (they had no page when replaced, so no commit reported them).
 * - A checkpoint that fails before its meta write changes nothing. One that fails after it may
 *   have left a valid meta naming its pages, so those pages are parked in the free list under
 *   the checkpoint's txn: they are reused only once neither meta slot can hold that txn (I1).
 * - Open needs no recovery step for the data file: it takes the newest valid meta (section 3),
 *   unless that meta's one-sync checkpoint did not reach the disk whole after a reboot; then it
 *   takes the other slot (checkpointIntact.ts, trustNewestMeta).
 *
 * Layout: open (creating and reading the metas: dataFileMetas.ts), the memory sweep, the write transaction,
 * checkpoints (checkpoint, beginCheckpoint, failRun, adoptRun), close.
 */
import { join } from "node:path";
import { KeelError, corrupt, invalidArgument, ioError } from "../errors.js";
import type { FileSystem, FileHandle } from "../io/FileSystem.js";
import { OverflowValue, ownBranchArrays, type BranchNode, type LeafValue, type Node } from "../btree/Node.js";
import { TreeCursor } from "../btree/TreeCursor.js";
import { emptyTree, type TreeState } from "../btree/TreeState.js";
import { FreeList } from "../pager/FreeList.js";
import { META_FLAG_ONE_SYNC, bootTag, type Meta } from "../pager/Meta.js";
import { DEFAULT_PAGE_SIZE, PageType, isValidPageSize, pageLimits, type PageLimits } from "../pager/PageLayout.js";
import { Pager } from "../pager/Pager.js";
import { decodeCatalogRecord } from "./CatalogRecord.js";
import { trustNewestMeta } from "./checkpointIntact.js";
import { createDataFile, readDataFileMetas, type MetaFallback } from "./dataFileMetas.js";
import { CheckpointError, checkpointSteps, unreachablePages, type CheckpointResult } from "./Checkpoint.js";
import { RunningCheckpoint, type CheckpointHost, type CheckpointInfo, type CheckpointPacer } from "./RunningCheckpoint.js";

export { RunningCheckpoint, type CheckpointInfo, type CheckpointPacer } from "./RunningCheckpoint.js";
import { EMPTY_CHAIN, loadFreeList, type FreeListChain } from "../pager/FreeListChain.js";
import { ReaderTable } from "./ReaderTable.js";
import type { DbEntry, Snapshot } from "./Snapshot.js";
import { WriteTxn, type TxnHost } from "./WriteTxn.js";
import { checkpointChannel, type CheckpointMessage } from "../util/instrumentation.js";

export const DATA_FILE = "data.keel";

export interface EngineOptions {
  pageSize?: number | undefined;
  cacheBytes?: number | undefined;
  maxReaders?: number | undefined;
  maxValueSize?: number | undefined;
  noSync?: boolean | undefined;
  noMetaSync?: boolean | undefined;
  readOnly?: boolean | undefined;
  /** Meta flags to write (META_FLAG_WAL). */
  flags?: number | undefined;
  /** Test hook: called at named points of the checkpoint sequence (crash tests). */
  onPhase?: ((phase: string) => void) | undefined;
  /**
   * false: every checkpoint writes the whole free list as a base segment, as format version 1
   * did (tests build version-1 fixtures with it). Default true (FreeListChain.ts).
   */
  freelistDeltas?: boolean | undefined;
}

export interface OpenReport {
  created: boolean;
  /** Set when the newest-looking meta was damaged and the other slot was used. */
  metaFallback?: MetaFallback | undefined;
}

export const DEFAULT_CACHE_BYTES = 256 * 1024 * 1024;
export const DEFAULT_MAX_VALUE_SIZE = 256 * 1024 * 1024;

export class Engine implements TxnHost, CheckpointHost {
  readonly fs: FileSystem;
  readonly dir: string;
  readonly path: string;
  readonly pager: Pager;
  readonly limits: PageLimits;
  readonly readers: ReaderTable;
  readonly maxValueSize: number;
  readonly report: OpenReport;
  noSync: boolean;
  noMetaSync: boolean;
  /**
   * A checkpoint of at most this many pages syncs its pages and its meta together (one
   * fdatasync instead of two: Checkpoint.ts, "One sync"). 0: never. CheckpointDurability (wal: false) sets it.
   */
  oneSyncMaxPages = 0;
  flags: number;
  onPhase: ((phase: string) => void) | undefined;
  head: Snapshot;
  published: Snapshot;
  durable: Snapshot;
  /**
   * The oldest txn whose tree another process may still read (read-only opens made before this
   * one: db/ReadOnlyReaders.ts); Infinity when none. Part of every release limit (I2).
   */
  readerFloor: () => number = () => Infinity;
  metas: [Meta | null, Meta | null];
  newest: 0 | 1;
  freelist: FreeList;
  /** The segments the newest meta's free list is persisted in (FreeListChain.ts). */
  freelistChain: FreeListChain;
  readonly freelistDeltas: boolean;
  /** Set when a failed checkpoint changed `freelist` apart from any chain: the next one writes a base. */
  #freelistDiverged = false;
  catalog: TreeState;
  written: Map<string, Buffer>;
  #frees: Array<{ txn: number; pages: number[] }> = [];
  #running: RunningCheckpoint | null = null;
  #nextTxn: number;
  #writer: WriteTxn | null = null;
  #createdAt: number;
  /** Meta.bootTag of this boot, written into every meta (see the one-sync check in open). */
  readonly #bootTag: number;
  #scratch = Buffer.allocUnsafeSlow(64 * 1024);
  #sweepEpoch = 0;
  /** Whether transactions record their logical ops (the log needs them; checkpoint mode does not). */
  logOps = false;
  dirtyBytes = 0;
  checkpoints = 0;
  lastCheckpoint: CheckpointInfo | null = null;
  lastCheckpointAt = 0;
  closed = false;

  private constructor(fs: FileSystem, dir: string, file: FileHandle, metas: [Meta | null, Meta | null], newest: 0 | 1, opts: EngineOptions, report: OpenReport) {
    const meta = metas[newest]!;
    this.fs = fs;
    this.dir = dir;
    this.path = join(dir, DATA_FILE);
    this.report = report;
    this.limits = pageLimits(meta.pageSize);
    this.maxValueSize = opts.maxValueSize ?? DEFAULT_MAX_VALUE_SIZE;
    this.noSync = !!opts.noSync;
    this.noMetaSync = !!opts.noMetaSync;
    this.flags = (opts.flags ?? meta.flags) & ~META_FLAG_ONE_SYNC; // set per checkpoint
    this.onPhase = opts.onPhase;
    this.readers = new ReaderTable(opts.maxReaders ?? 126);
    this.metas = metas;
    this.newest = newest;
    this.#createdAt = meta.createdAt;
    this.#bootTag = bootTag(fs.bootId());
    const cacheBytes = opts.cacheBytes ?? DEFAULT_CACHE_BYTES;
    this.pager = new Pager(file, this.path, this.limits, cacheBytes / meta.pageSize, meta.highWater, meta.txn);
    this.freelistDeltas = opts.freelistDeltas ?? true;
    if (meta.freelistPage) {
      const loaded = loadFreeList(
        (page, pages, txn) => this.pager.readRun(page, pages, PageType.FreeList, txn),
        { page: meta.freelistPage, pages: meta.freelistPages, txn: meta.freelistTxn },
        { file: this.path, highWater: meta.highWater },
      );
      this.freelist = loaded.freelist;
      this.freelistChain = loaded.chain;
    } else {
      this.freelist = new FreeList();
      this.freelistChain = EMPTY_CHAIN;
    }
    this.catalog = {
      root: meta.catalogRoot || null,
      rootTxn: meta.catalogRootTxn,
      depth: meta.catalogDepth,
      entries: meta.catalogEntries,
      branchPages: meta.catalogBranchPages,
      leafPages: meta.catalogLeafPages,
      overflowPages: meta.catalogOverflowPages,
    };
    this.written = new Map();
    const dbs = new Map<string, DbEntry>();
    const cur = new TreeCursor(this.pager, this.catalog);
    for (cur.seekGE(null); cur.valid; cur.next()) {
      const name = Buffer.from(cur.key, "latin1").toString("utf8");
      const raw = cur.value;
      if (raw instanceof OverflowValue) throw corrupt(`catalog entry "${name}" in ${this.path} is an overflow value`, { file: this.path, name });
      const bytes = Buffer.from(raw, "latin1");
      const rec = decodeCatalogRecord(bytes, { file: this.path, name });
      this.written.set(name, bytes);
      dbs.set(name, {
        name,
        keyEncoding: rec.keyEncoding,
        valueEncoding: rec.valueEncoding,
        tree: {
          root: rec.root || null,
          rootTxn: rec.rootTxn,
          depth: rec.depth,
          entries: rec.entries,
          branchPages: rec.branchPages,
          leafPages: rec.leafPages,
          overflowPages: rec.overflowPages,
        },
      });
    }
    this.head = this.published = this.durable = { txn: meta.txn, lsn: meta.appliedLsn, dbs };
    this.pager.cache.sweeper = () => this.#sweep();
    // After a fallback, skip the txn ids the damaged meta's checkpoint used: page headers and
    // parents compare txn ids to catch stale pages, so an id must never name two different writes.
    // Past a damaged newest meta, txns go on above the txn it claims, unless that claim is past
    // what can be counted (probeMeta "counter-range"): then from the meta in use.
    const claimed = report.metaFallback?.claimedTxn ?? 0;
    this.#nextTxn = Math.max(meta.txn, Number.isSafeInteger(claimed + 1) ? claimed : 0) + 1;
    this.lastCheckpointAt = meta.checkpointAt;
  }

  /** Open (or create) data.keel in `dir`. The directory must exist. */
  static open(fs: FileSystem, dir: string, opts: EngineOptions = {}): Engine {
    const path = join(dir, DATA_FILE);
    if (opts.pageSize !== undefined && !isValidPageSize(opts.pageSize)) {
      throw invalidArgument(`pageSize must be a power of two from 1024 to 65536, got ${opts.pageSize}`, { option: "pageSize", value: opts.pageSize });
    }
    let created = false;
    let st;
    try {
      st = fs.stat(path);
      if (!st) {
        if (opts.readOnly) throw new KeelError("NOT_FOUND", `no database at ${dir}`, { dir });
        createDataFile(fs, dir, DATA_FILE, opts.pageSize ?? DEFAULT_PAGE_SIZE, opts.flags ?? 0);
        created = true;
      }
    } catch (e) {
      throw ioError(e, "create", path);
    }
    let file: FileHandle;
    try {
      file = fs.open(path, opts.readOnly ? "r" : "rw");
    } catch (e) {
      throw ioError(e, "open", path);
    }
    try {
      let read;
      try {
        read = readDataFileMetas(file, path);
      } catch (e) {
        throw ioError(e, "read", path);
      }
      const { metas, newest, fallback } = trustNewestMeta(file, path, read, bootTag(fs.bootId()), !!opts.readOnly);
      const meta = metas[newest]!;
      if (opts.pageSize !== undefined && opts.pageSize !== meta.pageSize) {
        throw new KeelError("VERSION", `${path} uses ${meta.pageSize}-byte pages, but pageSize ${opts.pageSize} was asked for`, {
          file: path,
          pageSize: meta.pageSize,
          requested: opts.pageSize,
        });
      }
      return new Engine(fs, dir, file, metas, newest, opts, { created, metaFallback: fallback });
    } catch (e) {
      try {
        file.close();
      } catch {
        // the open error is the one to report
      }
      throw e;
    }
  }

  /**
   * Memory sweep (CLOCK over the trees of the head, published and durable snapshots): a clean
   * node not used since the last sweep goes back to being a page number in its parent; a used
   * one is kept and marked unused. Nodes not yet written (page 0) are always kept. Returns how
   * many clean nodes stay in memory.
   */
  #sweep(): number {
    const epoch = ++this.#sweepEpoch;
    let kept = 0;
    const walk = (b: BranchNode): void => {
      for (let i = 0; i < b.children.length; i++) {
        const c = b.children[i]!;
        if (typeof c === "number" || c.mark === epoch) continue;
        if (c.page !== 0 && !c.hot) {
          ownBranchArrays(b); // b's childTxn may be shared with a clone of b
          b.children[i] = c.page;
          b.childTxn[i] = c.pageTxn;
          continue;
        }
        c.mark = epoch;
        c.hot = false;
        if (c.page !== 0) kept++;
        if (!c.leaf) walk(c);
      }
    };
    const roots = new Set<TreeState>([this.catalog]);
    for (const s of [this.head, this.published, this.durable]) for (const e of s.dbs.values()) roots.add(e.tree);
    for (const t of roots) {
      const r = t.root;
      if (r === null || typeof r === "number" || r.mark === epoch) continue;
      r.mark = epoch;
      if (r.page !== 0) kept++;
      if (!r.leaf) walk(r);
    }
    return kept;
  }

  // ---- TxnHost ----

  load(page: number, txn: number): Node {
    return this.pager.load(page, txn);
  }

  /**
   * The bytes of a stored value. Inline values come back in a scratch buffer that the next call
   * reuses: decode or copy them at once.
   */
  readValue(v: LeafValue): Buffer {
    if (typeof v !== "string") return this.pager.readOverflow(v);
    if (v.length > this.#scratch.length) this.#scratch = Buffer.allocUnsafeSlow(Math.max(v.length, this.#scratch.length * 2));
    const n = this.#scratch.latin1Write(v, 0);
    return this.#scratch.subarray(0, n);
  }

  // ---- transactions ----

  #check(): void {
    if (this.closed) throw new KeelError("CLOSED", "the database is closed", { path: this.path });
  }

  get writing(): boolean {
    return this.#writer !== null;
  }

  /**
   * The next transaction gets at least id `txn` (ids only go up, so every page and meta stays
   * ordered). For a copy that replays many source transactions in fewer commits of its own and
   * must end at the source's txn (backupPages).
   */
  advanceTxnTo(txn: number): void {
    if (this.#writer) throw new KeelError("TXN", "a write transaction is open", { txn: this.#writer.txn });
    if (txn > this.#nextTxn) this.#nextTxn = txn;
  }

  beginWrite(): WriteTxn {
    this.#check();
    if (this.#writer) throw new KeelError("TXN", "a write transaction is already open", { txn: this.#writer.txn });
    const w = new WriteTxn(this, this.head, this.#nextTxn++);
    w.logging = this.logOps;
    this.#writer = w;
    return w;
  }

  /** Make `w`'s changes the new head. `lsn` is its log record (0 without a log). */
  commitWrite(w: WriteTxn, lsn: number): Snapshot {
    if (this.#writer !== w) throw new KeelError("TXN", "not the open write transaction", { txn: w.txn });
    this.#writer = null;
    w.lsn = lsn;
    w.placedFrees();
    const snap = w.finish(lsn || this.head.lsn);
    if (snap.dbs === this.head.dbs && w.freedPages.length === 0 && !lsn) {
      // Nothing changed and nothing logged: keep the head, so no checkpoint is needed. (A logged
      // empty transaction keeps its own txn id: two metas must never carry the same txn.)
      return this.head;
    }
    if (w.freedPages.length) this.#frees.push({ txn: w.txn, pages: w.freedPages });
    this.dirtyBytes += w.dirtyBytes;
    this.head = snap;
    return snap;
  }

  abortWrite(w: WriteTxn): void {
    if (this.#writer === w) this.#writer = null;
    w.abort();
  }

  /** Undo every commit after `to` (a group whose durability failed). */
  rollbackTo(to: Snapshot): void {
    // A running checkpoint holds only log-durable commits (its caller synced the log first), which
    // are never rolled back; should that rule be broken, drop it rather than adopt undone commits.
    const run = this.#running;
    if (run && run.head.txn > to.txn) this.failRun(run, new KeelError("INTERNAL", "a running checkpoint held commits that were rolled back", { txn: run.head.txn }));
    this.head = to;
    this.#frees = this.#frees.filter((f) => f.txn <= to.txn);
    if (this.published.txn > to.txn) this.published = to;
  }

  publish(s: Snapshot): void {
    this.published = s;
  }

  // ---- checkpoint ----

  get needsCheckpoint(): boolean {
    return this.head !== this.durable && this.head.txn !== this.durable.txn;
  }

  /** Whether a checkpoint started by beginCheckpoint is still running. */
  get checkpointRunning(): boolean {
    return this.#running !== null;
  }

  /**
   * Make `head` durable in data.keel (see Checkpoint.ts for the steps), in this call. A running
   * concurrent checkpoint is finished first, in this call too.
   */
  checkpoint(): CheckpointInfo | null {
    this.#check();
    if (this.#writer) throw new KeelError("TXN", "cannot checkpoint while a write transaction is open", {});
    this.finishCheckpoint();
    const run = this.#begin();
    if (!run) return null;
    this.finishCheckpoint();
    return run.info;
  }

  /**
   * wal: false, at close: a checkpoint that failed after writing its meta (its sync failed, its
   * commits were rejected) may have left that meta in the file, newer than any other. With nothing
   * else to write, close left it there and the next open brought the rejected commits back. So
   * checkpoint the durable state over that slot, under a new txn id (no two metas share one).
   */
  supersedeFailedMeta(): void {
    if (!this.#freelistDiverged || this.#writer || this.head !== this.durable) return;
    this.head = { txn: this.#nextTxn++, lsn: this.head.lsn, dbs: this.head.dbs };
    this.checkpoint();
    this.publish(this.head);
  }

  /**
   * Freeze `head` for a checkpoint whose steps the caller runs with runConcurrently, while commits
   * go on (copy on write leaves the frozen nodes as they are). The caller must have made the log
   * records of `head` durable first (write-ahead rule). A checkpoint already running is finished
   * first, in this call. null when `head` is durable already.
   */
  beginCheckpoint(): RunningCheckpoint | null {
    this.#check();
    if (this.#writer) throw new KeelError("TXN", "cannot checkpoint while a write transaction is open", {});
    this.finishCheckpoint();
    return this.#begin();
  }

  #begin(): RunningCheckpoint | null {
    const head = this.head;
    if (head.txn === this.durable.txn && head.lsn === this.durable.lsn) return null;
    const newestMeta = this.metas[this.newest]!;
    const older = this.metas[this.newest === 0 ? 1 : 0];
    const releaseLimit = Math.min(older ? older.txn : newestMeta.txn, this.readers.minTxn(), this.readerFloor(), this.published.txn, this.durable.txn);
    const steps = checkpointSteps({
      pager: this.pager,
      limits: this.limits,
      head,
      freelist: this.freelist,
      freelistChain: this.freelistChain,
      freelistDeltas: this.freelistDeltas && !this.#freelistDiverged,
      frees: this.#frees.filter((f) => f.txn <= head.txn),
      catalog: this.catalog,
      written: this.written,
      metas: this.metas,
      newest: this.newest,
      releaseLimit,
      noSync: this.noSync,
      noMetaSync: this.noMetaSync,
      oneSyncMaxPages: this.oneSyncMaxPages,
      bootTag: this.#bootTag,
      flags: this.flags,
      createdAt: this.#createdAt,
      onPhase: this.onPhase,
    });
    const run = new RunningCheckpoint(head, steps, this.dirtyBytes, performance.now());
    this.#running = run;
    return run;
  }

  /** Run the rest of the running checkpoint (if any) in this call; its failure is thrown. */
  finishCheckpoint(): void {
    this.#running?.finish(this);
  }

  /**
   * Run a checkpoint from beginCheckpoint to its end while commits go on, paced by `pacer`
   * (RunningCheckpoint.drive). Its pacer's error drops it: nothing had changed yet.
   */
  runConcurrently(run: RunningCheckpoint, pacer: CheckpointPacer): Promise<CheckpointInfo> {
    return run.drive(this, pacer);
  }

  /** CheckpointHost (called by RunningCheckpoint only): a run failed or was dropped. */
  failRun(run: RunningCheckpoint, e: unknown): void {
    if (this.#running === run) this.#running = null;
    run.settled = true;
    if (e instanceof CheckpointError) {
      if (e.metaAttempted) {
        // The meta may be on disk naming these pages: park them until no slot can hold this txn.
        this.freelist.park(run.head.txn, e.allocated);
        this.#freelistDiverged = true;
        this.pager.highWater = Math.max(this.pager.highWater, e.highWater);
      }
      run.error = ioError(e.reason, "checkpoint", this.path);
    } else run.error = e;
  }

  /** CheckpointHost (called by RunningCheckpoint only): install a finished checkpoint of `run.head`. */
  adoptRun(run: RunningCheckpoint, res: CheckpointResult): void {
    const head = run.head;
    this.#running = null;
    this.freelist = res.freelist;
    this.freelistChain = res.freelistChain;
    this.#freelistDiverged = false;
    this.metas[res.slot] = res.meta;
    this.newest = res.slot;
    this.catalog = res.catalog;
    this.written = res.written;
    this.durable = head;
    this.#frees = this.#frees.filter((f) => f.txn > head.txn);
    if (this.head !== head) {
      // Commits after the freeze replaced some frozen nodes and values while they had no page yet,
      // so none of them reported those pages freed: they would leak. Snapshots older than the
      // current head may still read them (a memory sweep turns a clean node back into its page),
      // so they are freed under the head's txn. (A rollback never crosses this point: a group
      // commits and settles its durability in one synchronous run; if one did, the entry would go
      // with the txns it drops, and the pages would leak rather than be reused while reachable.)
      const lost = unreachablePages(res, this.head, this.limits.pageSize, ++this.#sweepEpoch);
      if (lost.length) this.#frees.push({ txn: this.head.txn, pages: lost });
    }
    this.dirtyBytes = Math.max(0, this.dirtyBytes - run.dirty);
    this.checkpoints++;
    this.lastCheckpointAt = res.meta.checkpointAt;
    this.lastCheckpoint = { txn: head.txn, lsn: head.lsn, bytes: res.bytes, ms: performance.now() - run.t0 };
    run.meta = res.meta;
    run.info = this.lastCheckpoint;
    run.settled = true;
    if (checkpointChannel.hasSubscribers) checkpointChannel.publish({ ms: this.lastCheckpoint.ms, bytes: res.bytes } satisfies CheckpointMessage);
  }

  /** fdatasync the data file: with noSync/noMetaSync, everything written so far becomes durable. */
  sync(): void {
    this.#check();
    this.pager.sync();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // A running checkpoint has changed nothing yet: drop it (its pages went to free pages).
    if (this.#running) this.failRun(this.#running, new KeelError("CLOSED", "the database was closed during a checkpoint", { path: this.path }));
    this.pager.close();
  }

  get durableMeta(): Meta {
    return this.metas[this.newest]!;
  }

  emptyTree(): TreeState {
    return emptyTree();
  }
}
