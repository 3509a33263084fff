/**
 * LogDurability: the write-ahead-log mode (the default). DESIGN.md sections 3 and 4.
 *
 * Per commit: one log record (LSN, time, the logical ops). Per group of commits:
 *   strict  - one fdatasync of the log before any commit of the group resolves or is seen (I4);
 *   relaxed - commits resolve and are seen at once; the log syncs every `groupCommit` records or
 *             `groupCommitMs` ms, whichever comes first (a timer, so the loss window is bounded
 *             even when writes stop), so a crash loses at most that window, and always a suffix (I3);
 *   none    - the OS flushes the log when it likes.
 * Checkpoints run by policy (log bytes, dirty bytes, time) and write the tree into data.keel;
 * the log is synced first (write-ahead rule: a meta never names an LSN the log could lose).
 * A policy checkpoint runs concurrently (Engine.beginCheckpoint): frozen between two groups, its
 * pages written in slices that take at most POLICY_CHECKPOINT_SHARE of the event loop while writers
 * commit, its data sync on the thread pool. Should writers outrun it (twice the policy's log or
 * dirty bytes), the next group finishes it in one go, so memory and the log stay bounded.
 * db.checkpoint() and createSnapshot() run theirs the same way (checkpointConcurrently): they
 * wait for a policy checkpoint to end, then freeze the head and write it in slices, so the event
 * loop is never held for a whole checkpoint; so does close() when no policy checkpoint is under
 * way. Every other checkpoint (backups, the last one of close) finishes a running one first, in
 * one call.
 * After each checkpoint the log is garbage-collected: segments below every floor that the
 * retention policy lets go are deleted, so the log never grows without bound.
 *
 * Floors: "checkpoint" = 1 + the applied LSN of the OLDER meta slot (if the newest meta is ever
 * found damaged, open falls back to the older one and still finds every record to replay),
 * "snapshot" = 1 + the LSN of the oldest kept snapshot (installed before open's first
 * checkpoint), "snapshot-pending" = 1 + the LSN of a snapshot being copied, "keep" = an explicit
 * keep point, and named consumer floors ("consumer:<name>"), which are kept on disk before any gc
 * that runs under them (ConsumerFloors.ts), so that a restart does not forget them.
 */
import { latin1Of } from "../util/latin1.js";
import { KeelError, corrupt, isKeelError } from "../errors.js";
import type { FileSystem } from "../io/FileSystem.js";
import type { Engine } from "../txn/Engine.js";
import type { KeyEncodingName, Snapshot, ValueEncodingName } from "../txn/Snapshot.js";
import type { CheckpointPacer, RunningCheckpoint } from "../txn/Engine.js";
import { TimeSlicer } from "../maintenance/TimeSlicer.js";
import type { WriteTxn } from "../txn/WriteTxn.js";
import { KEY_ENCODINGS, VALUE_ENCODINGS } from "../txn/CatalogRecord.js";
import { READER_FLOOR, ReadOnlyLog, WriteAheadLog, type GcResult, type LogRecord, type StoredLogOp } from "../wal/index.js";
import { CONSUMER, CONSUMER_FLOORS_FILE, DAMAGED_FLOORS, readConsumerFloors, removeFloorsTemps, writeConsumerFloors } from "./ConsumerFloors.js";
import type { Database } from "./Database.js";
import type { Durability } from "./Durability.js";
import type { DurabilityProfile, OpenOptions } from "./options.js";
import { SchemaChanges } from "./SchemaChanges.js";
import { READ_ONLY_LOG_FLOOR } from "./ReadOnlyReaders.js";

export const LOG_DEFAULTS = {
  checkpointLogBytes: 64 * 1024 * 1024,
  checkpointDirtyBytes: 128 * 1024 * 1024,
  checkpointMs: 60_000,
  walRetentionBytes: 8 * 1024 * 1024 * 1024,
  walRetentionMs: 7 * 24 * 3600 * 1000,
};

/** Share of the event loop a policy checkpoint's slices take while writers commit (TimeSlicer). */
export const POLICY_CHECKPOINT_SHARE = 0.5;

export interface ReplayReport {
  fromLsn: number;
  toLsn: number;
  records: number;
  ms: number;
}

/**
 * Apply one log record's ops to a write transaction (replay, restore, backup, salvage). A record
 * that passed its checksum but cannot be applied (settings that name no encoding, a key or value
 * over this database's limits: a bug or a forged file) is CORRUPT naming its LSN, never a usage
 * error, and nothing of it reaches the tree.
 */
export function applyLogRecord(w: WriteTxn, rec: LogRecord): void {
  for (const op of rec.ops) {
    try {
      applyOp(w, op, rec.lsn);
    } catch (e) {
      if (!(e instanceof KeelError) || e.code !== "INVALID_ARGUMENT") throw e;
      throw corrupt(`log record ${rec.lsn} cannot be applied (${op.type} in sub-database "${op.db}"): ${e.message}`, {
        lsn: rec.lsn,
        db: op.db,
        op: op.type,
        reason: "log-op",
      });
    }
  }
}

/**
 * Why applyLogRecord would refuse a record that passed its checksum, or undefined (verify's check
 * of the log). `maxKeySize`: the data file's, from its page size (unknown: keys are not checked).
 */
export function logRecordProblem(rec: LogRecord, maxKeySize: number | undefined): string | undefined {
  for (const op of rec.ops) {
    if (op.type === "createDB") {
      try {
        createDbSettings(op, rec.lsn);
      } catch (e) {
        return (e as Error).message;
      }
    }
    if (op.type === "put" && maxKeySize !== undefined && (op.key?.length ?? 0) > maxKeySize) {
      return `log record ${rec.lsn} puts a key of ${op.key!.length} bytes into sub-database "${op.db}", over the maxKeySize ${maxKeySize} of the data file's page size`;
    }
  }
  return undefined;
}

/** The encodings a createDB op names; absent ones are the defaults (as createDB's own). */
function createDbSettings(op: StoredLogOp, lsn: number): { keyEncoding: KeyEncodingName; valueEncoding: ValueEncodingName } {
  const bad = (why: string) => corrupt(`log record ${lsn} creates sub-database "${op.db}" with ${why}`, { lsn, db: op.db, reason: "createDB" });
  let enc: unknown;
  try {
    enc = JSON.parse(Buffer.from(op.value ?? new Uint8Array()).toString("utf8"));
  } catch {
    throw bad("unreadable settings");
  }
  if (enc === null || typeof enc !== "object" || Array.isArray(enc)) throw bad(`settings that are not an object (${JSON.stringify(enc)})`);
  const { keyEncoding = "ordered-binary", valueEncoding = "msgpack" } = enc as { keyEncoding?: unknown; valueEncoding?: unknown };
  if (!KEY_ENCODINGS.includes(keyEncoding as KeyEncodingName)) throw bad(`an unknown keyEncoding ${JSON.stringify(keyEncoding)}`);
  if (!VALUE_ENCODINGS.includes(valueEncoding as ValueEncodingName)) throw bad(`an unknown valueEncoding ${JSON.stringify(valueEncoding)}`);
  return { keyEncoding: keyEncoding as KeyEncodingName, valueEncoding: valueEncoding as ValueEncodingName };
}

function applyOp(w: WriteTxn, op: StoredLogOp, lsn: number): void {
  const key = op.key ? latin1Of(op.key) : "";
  switch (op.type) {
    case "createDB": {
      const enc = createDbSettings(op, lsn);
      w.createDB(op.db, enc.keyEncoding, enc.valueEncoding);
      return;
    }
    case "put":
      if (!w.entry(op.db)) w.createDB(op.db, "ordered-binary", "msgpack");
      w.putCommitted(op.db, key, op.value ?? new Uint8Array());
      return;
    case "remove":
      w.remove(op.db, key);
      return;
    case "dropDB":
      w.dropDB(op.db, true);
      return;
    case "clearDB":
      w.dropDB(op.db, false);
      return;
  }
}

export class LogDurability implements Durability {
  readonly wal: WriteAheadLog;
  readonly profile: DurabilityProfile;
  readonly replay: ReplayReport;
  /** Creates and drops of the log, for openTxLog's encodings (built on first need). */
  readonly schemaChanges = new SchemaChanges();
  #engine: Engine;
  #db: Database | null = null;
  #o: Required<Pick<OpenOptions, "checkpointLogBytes" | "checkpointDirtyBytes" | "checkpointMs" | "walRetentionBytes" | "walRetentionMs">>;
  #logBytesSinceCheckpoint = 0;
  /** The running concurrent checkpoint and what #logBytesSinceCheckpoint was when it froze. */
  #frozen: { run: RunningCheckpoint; logBytes: number } | null = null;
  #checkpointQueued = false;
  /** The queued or running policy checkpoint: settles (never rejects) once it has ended. */
  #policy: Promise<void> | null = null;

  get groupsShareSyncs(): boolean {
    return this.profile === "strict";
  }
  #timer: NodeJS.Timeout | null = null;
  #floors = new Map<string, number>();
  /** The log a read-only process (verify(dir)) reads while it lives: ReadOnlyReaders.ts. */
  readOnlyLogFloor: () => number | undefined = () => undefined;
  /** A consumer floor changed since txlog-floors.json was last written. */
  #consumerFloorsChanged = false;
  #floorsAt: { fs: FileSystem; dir: string } | null = null;
  /** Why segments were kept at the last gc, for txlogWatermarks. */
  lastGc: GcResult | null = null;
  lastGcError: unknown = null;

  constructor(engine: Engine, wal: WriteAheadLog, o: OpenOptions, replay: ReplayReport) {
    this.#engine = engine;
    this.wal = wal;
    this.replay = replay;
    this.profile = o.durability ?? "strict";
    this.#o = {
      checkpointLogBytes: o.checkpointLogBytes ?? LOG_DEFAULTS.checkpointLogBytes,
      checkpointDirtyBytes: o.checkpointDirtyBytes ?? LOG_DEFAULTS.checkpointDirtyBytes,
      checkpointMs: o.checkpointMs ?? LOG_DEFAULTS.checkpointMs,
      walRetentionBytes: o.walRetentionBytes ?? LOG_DEFAULTS.walRetentionBytes,
      walRetentionMs: o.walRetentionMs ?? LOG_DEFAULTS.walRetentionMs,
    };
    this.#timer = setInterval(() => this.#onTimer(), Math.min(this.#o.checkpointMs, 60_000));
    this.#timer.unref();
  }

  attach(db: Database): void {
    this.#db = db;
  }

  commit(w: WriteTxn): void {
    if (w.ops.length === 0) {
      this.#engine.commitWrite(w, 0);
      return;
    }
    let lsn: number;
    try {
      lsn = this.wal.append({ ops: w.ops });
    } catch (e) {
      throw e instanceof KeelError ? e : new KeelError("IO", "log append failed", {}, { cause: e });
    }
    for (const op of w.ops) this.#logBytesSinceCheckpoint += 24 + op.db.length + (op.key?.length ?? 0) + (op.value?.length ?? 0);
    this.schemaChanges.note(lsn, "txn", w.ops);
    this.#engine.commitWrite(w, lsn);
  }

  makeDurable(): void {
    if (this.profile === "strict") this.wal.syncSync();
    // relaxed and none: the group's records reach the OS before it is acknowledged, so a process
    // crash (kill -9, OOM) loses nothing acknowledged; only power loss may take the unsynced
    // window. A failure here rejects the group like a failed sync.
    else this.wal.flush();
  }

  makeDurableSync(): void {
    // transactionSync promises durability on return, whatever the profile.
    this.wal.syncSync();
  }

  rollback(base: Snapshot): void {
    this.#engine.rollbackTo(base);
  }

  published(txns: WriteTxn[]): void {
    const e = this.#engine;
    e.publish(e.head);
    this.#db?.emitCommits(txns);
    const o = this.#o;
    const logBytes = this.#logBytesSinceCheckpoint;
    if (logBytes < o.checkpointLogBytes && e.dirtyBytes < o.checkpointDirtyBytes) return;
    if (!e.checkpointRunning) this.#queuePolicyCheckpoint(false);
    else if (logBytes >= 2 * o.checkpointLogBytes || e.dirtyBytes >= 2 * o.checkpointDirtyBytes) this.#queuePolicyCheckpoint(true);
  }

  #onTimer(): void {
    const e = this.#engine;
    if (e.closed || e.checkpointRunning || !e.needsCheckpoint) return;
    // By the wall clock, which is what the meta keeps (so the age holds across a restart). A last
    // checkpoint in the future means the clock stepped back since: due now, or no checkpointMs
    // checkpoint would run until the clock caught up again, across restarts too.
    const age = Date.now() - e.lastCheckpointAt;
    if (age >= this.#o.checkpointMs || age < 0) this.#queuePolicyCheckpoint(false);
  }

  /**
   * Queue a policy checkpoint as a task: after the group's promises resolve, in queue order, so
   * the commit that crossed the threshold does not wait for a checkpoint its durability does not
   * need. `finish`: run the running one to its end in the task (writers outran it).
   */
  #queuePolicyCheckpoint(finish: boolean): void {
    const db = this.#db;
    if (this.#checkpointQueued || !db) return;
    this.#checkpointQueued = true;
    let queued: Promise<RunningCheckpoint | null> | null = null;
    try {
      queued = db.task(() => {
        const e = this.#engine;
        if (finish) {
          const run = this.#frozen?.run ?? null;
          e.finishCheckpoint();
          if (run) this.#afterCheckpoint(run);
          return null;
        }
        if (e.checkpointRunning || !e.needsCheckpoint) return null;
        return this.beginCheckpoint();
      });
    } catch {
      queued = null; // closing: close() checkpoints anyway
    }
    if (!queued) {
      this.#checkpointQueued = false;
      return;
    }
    const policy = queued
      .finally(() => (this.#checkpointQueued = false))
      .then((run) => (run ? this.#runPolicyCheckpoint(run) : undefined))
      .catch((err: unknown) => this.#warn(err))
      .finally(() => {
        if (this.#policy === policy) this.#policy = null;
      });
    this.#policy = policy;
  }

  /**
   * Whether close() writes its checkpoint in slices first (checkpointConcurrently): something needs
   * one, the log has not failed, and no policy checkpoint is under way (close's final call finishes
   * that one instead of waiting for it).
   */
  get closeCheckpointsInSlices(): boolean {
    return !this.wal.failed && this.#policy === null && this.#engine.needsCheckpoint;
  }

  /**
   * A checkpoint of the head as of this call that never holds the event loop for the whole of it
   * (db.checkpoint(), close, createSnapshot), as steps:
   *   1. Let a queued or running policy checkpoint end: finishing it in one call would block.
   *   2. Between transactions: sync the log, freeze the head (beginCheckpoint).
   *   3. Write its pages in slices while writers go on (at most POLICY_CHECKPOINT_SHARE of the
   *      event loop while they commit), its data sync on the thread pool; then gc the log.
   * Commits after step 2 are left to the next checkpoint. A synchronous checkpoint that takes the
   * run over meanwhile (close, a backup, writers outrunning it) completes it: that is success.
   */
  async checkpointConcurrently(db: Database): Promise<void> {
    // Step 1.
    while (this.#policy) await this.#policy;
    // Step 2. A close() that came during step 1 checkpointed everything (close's own failure is
    // close's to report): CLOSED only if it left something not checkpointed.
    let run: RunningCheckpoint | null;
    try {
      run = await db.task(() => this.beginCheckpoint());
    } catch (e) {
      if (e instanceof KeelError && e.code === "CLOSED" && this.#engine.closed && !this.#engine.needsCheckpoint) return;
      throw e;
    }
    if (!run) return;
    // Step 3.
    try {
      await this.runCheckpoint(run, this.#slicer());
    } catch (err) {
      // The slicer reports CLOSED once close() has finished the run in one call: it is done.
      if (run.settled && run.error === null) return;
      throw err;
    }
  }

  /** The pace of every concurrent checkpoint this mode runs: writers first (TimeSlicer). */
  #slicer(): TimeSlicer {
    const e = this.#engine;
    return new TimeSlicer({ activity: () => e.head.txn, share: POLICY_CHECKPOINT_SHARE, isClosed: () => e.closed, what: "a checkpoint" });
  }

  async #runPolicyCheckpoint(run: RunningCheckpoint): Promise<void> {
    const e = this.#engine;
    try {
      await this.runCheckpoint(run, this.#slicer());
    } catch (err) {
      if (!e.closed) this.#warn(err);
    }
  }

  /** A policy checkpoint that fails leaves the commits safe in the log: report, retry later. */
  #warn(err: unknown): void {
    process.emitWarning(`KeelDB checkpoint failed (commits stay safe in the log; it will be retried): ${(err as Error)?.message}`, {
      code: "KEEL_CHECKPOINT",
    });
  }

  /**
   * After a checkpoint (`run`: a concurrent one; null: one in a single call, which covered every
   * log byte): the log bytes it covered are no longer counted, and the log is gc'd.
   */
  #afterCheckpoint(run: RunningCheckpoint | null): void {
    if (run === null) {
      this.#logBytesSinceCheckpoint = 0;
      this.#frozen = null;
    } else if (this.#frozen?.run === run) {
      this.#logBytesSinceCheckpoint = Math.max(0, this.#logBytesSinceCheckpoint - this.#frozen.logBytes);
      this.#frozen = null;
    }
    try {
      this.gc();
      this.lastGcError = null;
    } catch (err) {
      this.lastGcError = err;
    }
  }

  syncAll(): void {
    this.wal.syncSync();
  }

  /** A checkpoint of the head in this call (a running one is finished first). */
  checkpoint(_force: boolean): void {
    const e = this.#engine;
    // Write-ahead rule: everything the checkpoint will name must be durable in the log first.
    this.wal.syncSync();
    e.checkpoint();
    this.#afterCheckpoint(null);
  }

  /**
   * The checkpoint open runs after a replay, so that the next open need not repeat it. Only an
   * optimisation: on a full disk (FULL, the log itself still sound) the replayed commits stay safe
   * in the log and the open goes on, warned, so that a database can be opened to free space. A
   * policy checkpoint retries later.
   */
  checkpointAfterReplay(): void {
    try {
      this.checkpoint(true);
    } catch (err) {
      if (!isKeelError(err, "FULL") || this.wal.failed) throw err;
      this.#warn(err);
    }
  }

  /**
   * Freeze the head for a checkpoint the caller runs concurrently (Engine.runConcurrently); call
   * it in a task. A running checkpoint is finished first. null when the head is durable already.
   */
  beginCheckpoint(): RunningCheckpoint | null {
    this.wal.syncSync();
    const e = this.#engine;
    e.finishCheckpoint();
    const run = e.beginCheckpoint();
    // A run it finished first is covered by this one: its count is replaced. No run: the head is
    // durable, every log byte is checkpointed.
    this.#frozen = run ? { run, logBytes: this.#logBytesSinceCheckpoint } : null;
    if (!run) this.#logBytesSinceCheckpoint = 0;
    return run;
  }

  /** Run a checkpoint from beginCheckpoint to its end, paced by `pacer`, then gc the log. */
  async runCheckpoint(run: RunningCheckpoint, pacer: CheckpointPacer): Promise<void> {
    const e = this.#engine;
    await e.runConcurrently(run, pacer);
    if (!e.closed) this.#afterCheckpoint(run);
  }

  /** The floors the log must keep, by name. */
  floors(extra?: Record<string, number>): Record<string, number> {
    const e = this.#engine;
    const m0 = e.metas[0];
    const m1 = e.metas[1];
    const older = Math.min(m0 ? m0.appliedLsn : Infinity, m1 ? m1.appliedLsn : Infinity);
    const f: Record<string, number> = { checkpoint: (Number.isFinite(older) ? older : 0) + 1 };
    for (const [k, v] of this.#floors) f[k] = v;
    const reading = this.wal.readerFloor();
    if (reading !== undefined) f[READER_FLOOR] = reading;
    const readOnly = this.readOnlyLogFloor();
    if (readOnly !== undefined) f[READ_ONLY_LOG_FLOOR] = readOnly;
    return { ...f, ...extra };
  }

  setFloor(name: string, lsn: number | undefined): void {
    if (name.startsWith(CONSUMER) && this.#floors.get(name) !== lsn) this.#consumerFloorsChanged = true;
    if (lsn === undefined) this.#floors.delete(name);
    else this.#floors.set(name, lsn);
  }

  /**
   * Open, before the first gc: take the consumer floors kept on disk (ConsumerFloors.ts), and
   * where to write them. A damaged file keeps all the log for this process's lifetime.
   */
  loadConsumerFloors(fs: FileSystem, dir: string): void {
    this.#floorsAt = { fs, dir };
    removeFloorsTemps(fs, dir);
    const kept = readConsumerFloors(fs, dir);
    if (kept === "damaged") {
      this.#floors.set(DAMAGED_FLOORS, 0);
      process.emitWarning(
        `KeelDB: ${dir}/${CONSUMER_FLOORS_FILE} is damaged; all of the log is kept until this database is closed. Set each consumer's floor again (setTxLogFloor): the file is rewritten then`,
        { code: "KEEL_FLOORS_DAMAGED" },
      );
      return;
    }
    for (const [name, lsn] of kept) this.#floors.set(CONSUMER + name, lsn);
  }

  gc(extra?: Record<string, number>, retention?: { retentionBytes?: number; retentionMs?: number }): GcResult {
    // Deletions only under floors that are on disk: a crash must not forget a consumer's floor.
    if (this.#consumerFloorsChanged && this.#floorsAt) {
      const consumers = new Map<string, number>();
      for (const [k, v] of this.#floors) if (k.startsWith(CONSUMER)) consumers.set(k.slice(CONSUMER.length), v);
      writeConsumerFloors(this.#floorsAt.fs, this.#floorsAt.dir, consumers);
      this.#consumerFloorsChanged = false;
    }
    const r = this.wal.gc({
      floors: this.floors(extra),
      retentionBytes: retention?.retentionBytes ?? this.#o.walRetentionBytes,
      retentionMs: retention?.retentionMs ?? this.#o.walRetentionMs,
    });
    this.lastGc = r;
    return r;
  }

  /** An open that failed: stop the timer and release the log's files, without a checkpoint. */
  abandon(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.wal.closeSync();
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    let err: unknown;
    try {
      if (!this.wal.failed) this.checkpoint(true);
    } catch (e) {
      err = e;
    }
    try {
      this.wal.closeSync();
    } catch (e) {
      err ??= e;
    }
    if (err) throw err;
  }
}

/**
 * Open the log next to an open engine (writable) and replay what the data file lacks. Recovery =
 * newest valid meta (Engine.open) + every log record after its applied LSN, in order.
 */
export function openLog(fs: FileSystem, dir: string, engine: Engine, o: OpenOptions): { wal: WriteAheadLog; replay: ReplayReport } {
  const wal = WriteAheadLog.open(fs, dir, {
    durability: o.durability,
    groupCommit: o.groupCommit,
    groupCommitMs: o.groupCommitMs,
    walSegmentMaxBytes: o.walSegmentMaxBytes,
    walSegmentMaxMs: o.walSegmentMaxMs,
    startLsn: engine.head.lsn + 1,
    onPhase: o.onPhase,
  });
  return { wal, replay: replayLog(engine, wal, o, true) };
}

/**
 * A read-only open's replay: the log's committed records after the data file's LSN, applied in
 * memory. The log is read as it is and nothing is repaired (ReadOnlyLog: no LOCK is held).
 */
export function replayLogReadOnly(fs: FileSystem, dir: string, engine: Engine, o: OpenOptions): ReplayReport {
  return replayLog(engine, ReadOnlyLog.open(fs, dir, engine.head.lsn + 1, o.onPhase), o, false);
}

/** Apply the records of `wal` after the engine's LSN (closing `wal` if that fails). */
function replayLog(engine: Engine, wal: WriteAheadLog | ReadOnlyLog, o: OpenOptions, mayCheckpoint: boolean): ReplayReport {
  const applied = engine.head.lsn;
  try {
    const last = wal.lastCommittedLsn;
    if (last < applied) {
      throw corrupt(`the log ends at LSN ${last} but ${engine.path} already holds LSN ${applied}: log records are missing`, {
        file: engine.path,
        lastLogLsn: last,
        appliedLsn: applied,
        reason: "log-behind-data",
      });
    }
    const t0 = performance.now();
    let records = 0;
    if (last > applied) {
      // No state between two records is ever visible, so records are applied into one
      // transaction (no copy-on-write between them), committed and checkpointed whenever its
      // memory passes the dirty-bytes policy: replaying a huge log needs bounded memory, and the
      // log is durable (recovery synced it), so checkpointing mid-replay keeps the write-ahead rule.
      // 4x the running policy: a replay of random keys rewrites most of the tree at every
      // checkpoint, so fewer, larger ones write far less; memory stays bounded all the same.
      const limit = mayCheckpoint ? 4 * (o.checkpointDirtyBytes ?? LOG_DEFAULTS.checkpointDirtyBytes) : Infinity;
      let w = engine.beginWrite();
      w.logging = false;
      let lsn = applied;
      try {
        for (const rec of wal.readRecords(applied + 1)) {
          applyLogRecord(w, rec);
          lsn = rec.lsn;
          records++;
          if (w.dirtyBytes >= limit) {
            engine.commitWrite(w, lsn);
            engine.checkpoint();
            w = engine.beginWrite();
            w.logging = false;
          }
        }
      } catch (e) {
        engine.abortWrite(w);
        throw e;
      }
      engine.commitWrite(w, lsn);
      engine.publish(engine.head);
    }
    return { fromLsn: applied + 1, toLsn: last, records, ms: performance.now() - t0 };
  } catch (e) {
    try {
      wal.closeSync();
    } catch {
      // the replay error is the one to report
    }
    throw e;
  }
}
