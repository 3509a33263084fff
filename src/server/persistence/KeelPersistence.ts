/**
 * KeelPersistence: the server's SAVE / BGSAVE / LASTSAVE / BACKUP / BGREWRITEAOF, the save rules
 * and the automatic log rewrite, mapped onto the engine's operations:
 *
 *   SAVE, BGSAVE, save rules   -> db.createSnapshot()   (checkpoint, rotate, consistent copy to
 *                                 snapshots/current, fsynced and renamed: I7)
 *   BACKUP <path>              -> db.backup(path)       (consistent, compacted copy, temp name,
 *                                 fsync, rename, directory fsync; `path` must not exist)
 *   BGREWRITEAOF, auto rewrite -> db.checkpoint() + db.gcTxlogSegments()
 *
 * Invariants:
 * - At most one snapshot runs at a time: SAVE issued during a BGSAVE waits for it and then takes
 *   a snapshot of its own (so SAVE's reply always covers every write acknowledged before it);
 *   BGSAVE during a snapshot answers false. At most one rewrite runs at a time.
 * - The rewrite never replaces or rewrites log records: a checkpoint writes the state into
 *   data.keel and gc deletes only sealed segments that every floor and the retention policy let
 *   go, so no acknowledged write can be lost by it (unlike an AOF rewrite).
 * - rdb_changes_since_last_save counts what noteChanges reported; a successful snapshot subtracts
 *   only the changes counted when it started (writes during the copy stay counted).
 * - A failed automatic save is retried no sooner than RETRY_MS later (no busy loop on a full disk).
 * - The last write's outcome (aof_last_write_status, /health's `write` check): a commit that failed
 *   to write or sync (FULL or IO, reported through noteWriteError) makes it "err" until a commit
 *   succeeds (the database's "commit" event, one per durable transaction); errors of the command
 *   itself (a syntax error, WRONGTYPE, an engine limit) are not write failures. A failed log
 *   (txlogWatermarks().failed) is "err" until a restart.
 * - stop() stops the timer; drain() waits for every running job; nothing starts after stop().
 */
import { isAbsolute } from "node:path";
import type { Logger } from "pino";
import { KeelError } from "../../errors.js";
import type { CommitReport, Database } from "../../db/Database.js";
import type { Persistence, ServerConfig } from "../ServerContext.js";

export type PersistenceJob = "save" | "bgsave" | "rule" | "shutdown" | "backup" | "rewrite" | "auto-rewrite";

export interface PersistenceEvent {
  readonly job: PersistenceJob;
  readonly ok: boolean;
  readonly ms: number;
  readonly error?: KeelError | undefined;
}

export interface PersistenceOptions {
  /** How often the save rules and the rewrite rule are checked (ms). Default 1000. */
  readonly tickMs?: number;
  /** Called after every job (metrics). */
  readonly observe?: (e: PersistenceEvent) => void;
}

const RETRY_MS = 5000;

function asKeel(e: unknown): KeelError {
  if (e instanceof KeelError) return e;
  return new KeelError("INTERNAL", `persistence job failed: ${(e as Error)?.message ?? String(e)}`, {}, { cause: e });
}

export class KeelPersistence implements Persistence {
  readonly #db: Database;
  readonly #config: ServerConfig;
  readonly #log: Logger;
  readonly #opts: PersistenceOptions;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  #dirty = 0;
  #lastSave = Math.floor(Date.now() / 1000);
  #lastSaveLsn: number | undefined;
  #saves = 0;
  #snapshot: Promise<void> | null = null;
  #snapshotStartedAt = 0;
  #lastBgsaveOk = true;
  #lastBgsaveSec = -1;
  #lastFailedAt = 0;

  #rewrite: Promise<void> | null = null;
  #rewriteStartedAt = 0;
  #lastRewriteOk = true;
  #lastRewriteSec = -1;
  #rewrites = 0;
  #aofBase: number;
  #backups = 0;
  #jobs = new Set<Promise<unknown>>();
  #lastWriteError: KeelError | null = null;
  readonly #onCommit = (_r: CommitReport): void => {
    if (this.#lastWriteError === null) return;
    this.#lastWriteError = null;
    this.#log.info({ event: "write-recovered" }, "a write succeeded again: aof_last_write_status is ok");
  };

  constructor(db: Database, config: ServerConfig, logger: Logger, opts: PersistenceOptions = {}) {
    this.#db = db;
    this.#config = config;
    this.#log = logger;
    this.#opts = opts;
    this.#aofBase = this.#logBytes();
    db.on("commit", this.#onCommit);
  }

  /** Start checking the save rules and the rewrite rule. */
  start(): void {
    if (this.#timer || this.#stopped) return;
    this.#timer = setInterval(() => this.#tick(), this.#opts.tickMs ?? 1000);
    this.#timer.unref();
  }

  /** No automatic job starts after this. */
  stop(): void {
    this.#stopped = true;
    this.#db.off("commit", this.#onCommit);
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Resolves when every running job has finished (their errors are already reported). */
  async drain(): Promise<void> {
    while (this.#jobs.size > 0) await Promise.allSettled([...this.#jobs]);
  }

  get changesSinceLastSave(): number {
    return this.#dirty;
  }

  noteChanges(count: number): void {
    if (Number.isFinite(count) && count > 0) this.#dirty += count;
  }

  lastSave(): number {
    return this.#lastSave;
  }

  noteWriteError(e: unknown): void {
    if (!(e instanceof KeelError) || (e.code !== "FULL" && e.code !== "IO")) return;
    if (this.#lastWriteError === null) this.#log.error({ event: "write-failed", err: { code: e.code, message: e.message, details: e.details } }, "a write failed: aof_last_write_status is err until a write succeeds");
    this.#lastWriteError = e;
  }

  lastWriteError(): KeelError | null {
    const failed = this.#watermarks()?.failed;
    return failed ?? this.#lastWriteError;
  }

  async save(): Promise<void> {
    await this.#snapshotNow("save");
  }

  bgsave(): boolean {
    if (this.#snapshot || this.#stopped) return false;
    void this.#snapshotNow("bgsave").catch(() => {});
    return true;
  }

  /** The snapshot SHUTDOWN SAVE (or a default shutdown with save rules and unsaved changes) takes. */
  async shutdownSave(): Promise<void> {
    await this.#snapshotNow("shutdown");
  }

  /** Whether a default SHUTDOWN should save: save rules are configured and changes are unsaved. */
  get wantsShutdownSave(): boolean {
    return this.#config.saveRules.length > 0 && this.#dirty > 0;
  }

  async backup(path: string): Promise<void> {
    if (typeof path !== "string" || path === "" || path.includes("\0")) throw new KeelError("INVALID_ARGUMENT", "BACKUP needs a path", { argument: "path", value: path });
    // A relative path would resolve against the server's working directory, which a client
    // neither knows nor should write into (a service's is often / or a source tree).
    if (!isAbsolute(path)) throw new KeelError("INVALID_ARGUMENT", "BACKUP needs an absolute path", { argument: "path", value: path });
    const t0 = performance.now();
    const job = this.#db.backup(path);
    this.#track(job);
    try {
      const r = await job;
      this.#backups++;
      const ms = performance.now() - t0;
      this.#log.info({ event: "backup", path, lsn: r.lsn, txn: r.txn, entries: "entries" in r ? r.entries : undefined, ms: Math.round(ms) }, "backup written");
      this.#opts.observe?.({ job: "backup", ok: true, ms });
    } catch (e) {
      const err = asKeel(e);
      this.#log.error({ event: "backup", path, err: { code: err.code, message: err.message, details: err.details } }, "backup failed");
      this.#opts.observe?.({ job: "backup", ok: false, ms: performance.now() - t0, error: err });
      throw err;
    }
  }

  bgrewriteaof(): boolean {
    return this.#startRewrite("rewrite");
  }

  /** `# Persistence` of INFO: Redis field names, then KeelDB's log positions. */
  info(): Array<[string, string | number]> {
    const now = Date.now();
    const w = this.#watermarks();
    const rows: Array<[string, string | number]> = [
      ["loading", 0],
      ["async_loading", 0],
      ["rdb_changes_since_last_save", this.#dirty],
      ["rdb_bgsave_in_progress", this.#snapshot ? 1 : 0],
      ["rdb_last_save_time", this.#lastSave],
      ["rdb_last_bgsave_status", this.#lastBgsaveOk ? "ok" : "err"],
      ["rdb_last_bgsave_time_sec", this.#lastBgsaveSec],
      ["rdb_current_bgsave_time_sec", this.#snapshot ? Math.round((now - this.#snapshotStartedAt) / 1000) : -1],
      ["rdb_saves", this.#saves],
      ["aof_enabled", 1],
      ["aof_rewrite_in_progress", this.#rewrite ? 1 : 0],
      ["aof_rewrite_scheduled", 0],
      ["aof_last_rewrite_time_sec", this.#lastRewriteSec],
      ["aof_current_rewrite_time_sec", this.#rewrite ? Math.round((now - this.#rewriteStartedAt) / 1000) : -1],
      ["aof_last_bgrewrite_status", this.#lastRewriteOk ? "ok" : "err"],
      ["aof_rewrites", this.#rewrites],
      ["aof_last_write_status", w?.failed || this.#lastWriteError ? "err" : "ok"],
      ["aof_current_size", w?.logBytes ?? 0],
      ["aof_base_size", this.#aofBase],
      ["aof_pending_bio_fsync", w?.pendingSyncCount ?? 0],
      ["appendfsync", this.#config.appendfsync],
      ["keel_durability", w?.durability ?? "none"],
      ["keel_last_committed_lsn", w?.lastCommittedLsn ?? 0],
      ["keel_last_durable_lsn", w?.lastDurableLsn ?? 0],
      ["keel_last_applied_lsn", w?.lastAppliedLsn ?? 0],
      ["keel_last_save_lsn", this.#lastSaveLsn ?? -1],
      ["keel_log_segments", w?.segmentCount ?? 0],
      ["keel_log_disk_bytes", w?.logDiskBytes ?? 0],
      ["keel_backups", this.#backups],
    ];
    return rows;
  }

  // ---- internals ----

  #watermarks(): ReturnType<Database["txlogWatermarks"]> | undefined {
    try {
      return this.#db.txlogWatermarks();
    } catch {
      return undefined; // closed
    }
  }

  #logBytes(): number {
    return this.#watermarks()?.logBytes ?? 0;
  }

  #track<T>(p: Promise<T>): void {
    const q = p.then(
      () => {},
      () => {},
    );
    this.#jobs.add(q);
    void q.finally(() => this.#jobs.delete(q));
  }

  /** One snapshot after any running one; see the invariants. */
  async #snapshotNow(job: PersistenceJob): Promise<void> {
    while (this.#snapshot) await this.#snapshot.catch(() => {});
    const counted = this.#dirty;
    const t0 = performance.now();
    this.#snapshotStartedAt = Date.now();
    const run = (async () => {
      try {
        const info = await this.#db.createSnapshot();
        const ms = performance.now() - t0;
        this.#dirty = Math.max(0, this.#dirty - counted);
        this.#lastSave = Math.floor(Date.now() / 1000);
        this.#lastSaveLsn = info.lsn;
        this.#saves++;
        this.#lastBgsaveOk = true;
        this.#lastBgsaveSec = Math.round(ms / 1000);
        this.#log.info({ event: "snapshot", job, lsn: info.lsn, txn: info.txn, entries: info.entries, bytes: info.bytes, path: info.path, ms: Math.round(ms) }, "snapshot saved");
        this.#opts.observe?.({ job, ok: true, ms });
      } catch (e) {
        const err = asKeel(e);
        const ms = performance.now() - t0;
        this.#lastBgsaveOk = false;
        this.#lastBgsaveSec = Math.round(ms / 1000);
        this.#lastFailedAt = Date.now();
        this.#log.error({ event: "snapshot", job, err: { code: err.code, message: err.message, details: err.details } }, "snapshot failed");
        this.#opts.observe?.({ job, ok: false, ms, error: err });
        throw err;
      }
    })();
    this.#snapshot = run;
    this.#track(run);
    try {
      await run;
    } finally {
      if (this.#snapshot === run) this.#snapshot = null;
    }
  }

  #startRewrite(job: PersistenceJob): boolean {
    if (this.#rewrite || this.#stopped) return false;
    const t0 = performance.now();
    this.#rewriteStartedAt = Date.now();
    const run = (async () => {
      try {
        const before = this.#logBytes();
        await this.#db.checkpoint();
        const gc = await this.#db.gcTxlogSegments();
        const ms = performance.now() - t0;
        this.#aofBase = this.#logBytes();
        this.#rewrites++;
        this.#lastRewriteOk = true;
        this.#lastRewriteSec = Math.round(ms / 1000);
        this.#log.info(
          { event: "rewrite", job, logBytesBefore: before, logBytesAfter: this.#aofBase, deleted: gc.deleted, freedBytes: gc.freedBytes, heldByFloor: gc.heldByFloor.length, ms: Math.round(ms) },
          "log rewrite (checkpoint + segment gc) done",
        );
        this.#opts.observe?.({ job, ok: true, ms });
      } catch (e) {
        const err = asKeel(e);
        this.#lastRewriteOk = false;
        this.#lastRewriteSec = Math.round((performance.now() - t0) / 1000);
        this.#log.error({ event: "rewrite", job, err: { code: err.code, message: err.message, details: err.details } }, "log rewrite failed");
        this.#opts.observe?.({ job, ok: false, ms: performance.now() - t0, error: err });
      } finally {
        this.#rewrite = null;
      }
    })();
    this.#rewrite = run;
    this.#track(run);
    return true;
  }

  #tick(): void {
    if (this.#stopped || this.#db.isClosed) return;
    const now = Date.now();
    // Save rules: any rule whose seconds and changes are both reached.
    if (!this.#snapshot && this.#dirty > 0) {
      const since = now / 1000 - this.#lastSave;
      const retryOk = this.#lastBgsaveOk || now - this.#lastFailedAt >= RETRY_MS;
      const rule = this.#config.saveRules.find((r) => since >= r.seconds && this.#dirty >= r.changes);
      if (rule && retryOk) {
        this.#log.info({ event: "save-rule", seconds: rule.seconds, changes: rule.changes, dirty: this.#dirty }, "save rule reached: snapshot");
        void this.#snapshotNow("rule").catch(() => {});
      }
    }
    // Log rewrite rule: the log grew past percentage% of its size after the last rewrite.
    const pct = this.#config.autoAofRewritePercentage;
    if (pct > 0 && !this.#rewrite) {
      const cur = this.#logBytes();
      const base = Math.max(1, this.#aofBase);
      if (cur >= this.#config.autoAofRewriteMinSize && ((cur - base) * 100) / base >= pct) {
        this.#log.info({ event: "auto-rewrite", logBytes: cur, baseBytes: this.#aofBase, percentage: pct }, "log grew past auto_aof_rewrite_percentage: rewrite");
        this.#startRewrite("auto-rewrite");
      }
    }
  }
}
