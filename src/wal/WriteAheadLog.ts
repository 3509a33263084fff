/**
 * WriteAheadLog: the segmented, checksummed, group-committed log of committed transactions.
 *
 * Invariants kept:
 * - I3: append assigns LSNs lastCommittedLsn + 1, + 2, ... with no hole; a record becomes committed
 *   (readable, counted) only after all its bytes were written; a failed write consumes no LSN.
 * - I4: waitDurable(lsn) resolves only once a sync that covers `lsn` returned (see GroupCommit for
 *   how strict / relaxed / none schedule syncs). lastDurableLsn never exceeds lastCommittedLsn.
 * - I5 / I6: open runs WalRecovery: a torn tail is truncated, corruption raises CORRUPT with the
 *   segment and offset and changes nothing. Readers validate every record they return.
 * - Every segment but the active one is sealed: truncated to its records and synced before the next
 *   one is created; a new segment's header and directory entry are synced before its first record.
 * - After a failed sync (or a failed roll that left a file behind) the log is `failed`: waiters are
 *   rejected with the coded error (IO or FULL) and every later append/sync throws it, until the log is
 *   reopened and recovery decides from what is really on disk. Retrying fsync is unsafe: the kernel
 *   may have dropped the dirty pages it could not write and report the next fsync as a success
 *   (PostgreSQL's "fsyncgate", 2018). A failed *write* (e.g. ENOSPC while preallocating) is not
 *   fatal: nothing was committed and the next append writes over the same bytes.
 * - Records recovered at open are synced before the log is used, so a record written before a
 *   process crash (in the page cache only) is durable before the db layer replays it.
 * - gc deletes only a prefix of sealed segments that every floor and every running reader let go,
 *   removing one file and syncing the directory before the next, so a crash never leaves a gap.
 */
import { join } from "node:path";
import { invalidArgument, ioError, KeelError } from "../errors.js";
import type { FileHandle, FileSystem } from "../io/FileSystem.js";
import { GroupCommit, type DurabilityProfile } from "./GroupCommit.js";
import { alignRecord, encodeLogRecord, prepareLogRecord, type LogRecord, type NewLogRecord } from "./LogRecord.js";
import { LogSegment, RecordNotWritten, type SegmentInfo } from "./LogSegment.js";
import { readLogRecords, type ReaderPin, type SegmentExtent } from "./TxLogReader.js";
import { resolveWalOptions, type ResolvedWalOptions, type WalOptions } from "./WalOptions.js";
import { recoverWal, type TornTailRepair } from "./WalRecovery.js";
import { planRetention, type GcOptions, type HeldSegment } from "./WalRetention.js";

export interface WalWatermarks {
  /** The last LSN appended (written, readable, maybe not yet durable). */
  lastCommittedLsn: number;
  /** The last LSN known to be on stable storage. */
  lastDurableLsn: number;
  /** Records appended and not yet durable. */
  pendingSyncCount: number;
  /** Promises from waitDurable/syncNow not yet settled. */
  waiters: number;
  /** An asynchronous group sync is running. */
  syncing: boolean;
  /** ms since the epoch of the last completed sync (undefined before the first). */
  lastSyncAt: number | undefined;
  /** Syncs made since open (group syncs, roll and preallocation syncs, explicit ones). */
  syncCount: number;
  activeSegment: string;
  segmentCount: number;
  /** Bytes of headers and records over all segments (what retention counts). */
  totalBytes: number;
  /** Bytes on disk, preallocated space included. */
  diskBytes: number;
  /** The oldest LSN still in the log; undefined when it holds no record. */
  oldestLsn: number | undefined;
  durability: DurabilityProfile;
  /** Set once a sync failed: the log accepts no writes until reopened. */
  failed: KeelError | undefined;
}

export interface WalRecoverySummary {
  /** The last valid LSN found at open. */
  lastLsn: number;
  truncated: TornTailRepair | undefined;
  removedSegments: string[];
  createdDir: boolean;
}

export interface GcResult {
  deleted: SegmentInfo[];
  /** Segments retention alone would delete, with the floor that keeps each. */
  heldByFloor: HeldSegment[];
  freedBytes: number;
}

export interface RotateResult {
  /** The segment just sealed; undefined when the active segment was empty (nothing to roll). */
  sealed: string | undefined;
  active: string;
  /** The first LSN the active segment will hold. */
  firstLsn: number;
}

/** The floor name under which running readers hold segments in gc results. */
export const READER_FLOOR = "txlog-reader";

export class WriteAheadLog {
  readonly #fs: FileSystem;
  readonly #walDir: string;
  readonly #o: ResolvedWalOptions;
  readonly #segments: LogSegment[];
  readonly #gc: GroupCommit;
  readonly #pins = new Set<ReaderPin>();
  readonly #recovery: WalRecoverySummary;
  #active: LogSegment;
  #closed = false;

  private constructor(fs: FileSystem, walDir: string, o: ResolvedWalOptions, segments: LogSegment[], active: LogSegment, lastLsn: number, recovery: WalRecoverySummary) {
    this.#fs = fs;
    this.#walDir = walDir;
    this.#o = o;
    this.#segments = segments;
    this.#active = active;
    this.#recovery = recovery;
    this.#gc = new GroupCommit(
      {
        profile: o.durability,
        groupCommit: o.groupCommit,
        groupCommitMs: o.groupCommitMs,
        syncAsync: () => this.#active.syncAsync(),
        syncSync: () => this.#active.syncSync(),
        clock: o.now,
        onPhase: o.onPhase,
      },
      lastLsn,
    );
  }

  /**
   * Open (or create) the log in `<dir>/wal`, running recovery first: the log is ready to append at
   * lastLsn + 1. Throws CORRUPT (with segment and offset) on damage, VERSION on a segment of
   * another format version, IO/FULL on I/O failure, INVALID_ARGUMENT on bad options.
   */
  static open(fs: FileSystem, dir: string, options: WalOptions = {}): WriteAheadLog {
    const o = resolveWalOptions(options);
    const walDir = join(dir, "wal");
    const report = recoverWal(fs, walDir, { onPhase: o.onPhase });
    const segments = report.segments;
    let active = segments[segments.length - 1];
    let lastLsn = report.lastLsn;
    if (active === undefined) {
      // An empty log starts where the db layer says (appliedLsn + 1), or where a removed torn
      // segment says it was about to start, whichever is later: LSNs never go back.
      const first = Math.max(o.startLsn, report.firstLsnHint ?? 1);
      active = LogSegment.create(fs, walDir, first, o.now(), o.walPreallocBytes, o.onPhase);
      segments.push(active);
      lastLsn = first - 1;
    } else {
      let h: FileHandle;
      try {
        h = fs.open(active.path, "rw");
      } catch (e) {
        throw ioError(e, "open", active.path);
      }
      active.attach(h);
      try {
        active.syncSync();
      } catch (e) {
        active.retire();
        throw e;
      }
    }
    const summary: WalRecoverySummary = {
      lastLsn: report.lastLsn,
      truncated: report.truncated,
      removedSegments: report.removedSegments,
      createdDir: report.createdDir,
    };
    return new WriteAheadLog(fs, walDir, o, segments, active, lastLsn, summary);
  }

  get walDir(): string {
    return this.#walDir;
  }
  get durability(): DurabilityProfile {
    return this.#o.durability;
  }
  /** What recovery found and repaired at open. */
  get recovery(): WalRecoverySummary {
    return this.#recovery;
  }
  get lastCommittedLsn(): number {
    return this.#gc.committed;
  }
  get lastDurableLsn(): number {
    return this.#gc.durable;
  }
  /** The error that put the log in the failed state, or undefined. */
  get failed(): KeelError | undefined {
    return this.#gc.failed;
  }
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Append one record, synchronously: assigns and returns the next LSN. The record is readable at
   * once and durable when waitDurable(lsn) resolves. Throws INVALID_ARGUMENT for a bad record,
   * CLOSED after close, IO/FULL on a failed write (nothing appended; the log stays usable), and the
   * failure error once the log has failed.
   */
  append(rec: NewLogRecord): number {
    this.#checkWritable();
    if (rec === null || typeof rec !== "object") throw invalidArgument("append needs a record object", { argument: "record" });
    this.#gc.beforeAppend();
    const txTime = rec.txTime ?? this.#o.now();
    const kind = rec.kind ?? "txn";
    const prepared = prepareLogRecord({ kind, ops: rec.ops });
    const size = alignRecord(prepared.length);
    const lsn = this.#gc.committed + 1;
    this.#maybeRoll(size);
    const seg = this.#active;
    const offset = seg.end;
    try {
      if (seg.ensureCapacity(offset + size, this.#o.walPreallocBytes)) this.#gc.synced(lsn - 1);
    } catch (e) {
      // Zero-filling failed: nothing committed, the log stays usable. The sync after it failed: fatal.
      if (e instanceof KeelError && e.details.op === "fdatasync") this.#gc.fail(e);
      throw e;
    }
    // Encoded after the roll and preallocation syncs, so syncedThrough is as high as it can be:
    // the higher it is, the more damage recovery can tell apart from a torn tail.
    const bytes = encodeLogRecord({ lsn, txTime, kind, ops: rec.ops }, this.#gc.durable, prepared);
    this.#phase("wal-append:before-write");
    try {
      seg.write(bytes, offset);
    } catch (e) {
      // Only this record failed, and its bytes were taken back: nothing committed, the log stays usable.
      if (e instanceof RecordNotWritten) throw e.error;
      // Gathered records (with LSNs already given out) may not have reached the file: the log
      // has a hole in memory's view of it. Refuse writes until reopened; recovery finds the truth.
      const err = e instanceof KeelError ? e : ioError(e, "write", seg.path);
      this.#gc.fail(err);
      throw err;
    }
    this.#phase("wal-append:after-write");
    seg.noteRecord(lsn, offset, bytes.length, txTime);
    this.#gc.appended(lsn);
    return lsn;
  }

  /** Resolves when `lsn` is on stable storage; rejects with IO/FULL if the sync covering it fails. */
  waitDurable(lsn: number): Promise<void> {
    return this.#gc.waitDurable(lsn);
  }

  /** Start a sync of everything appended so far now (whatever the profile) and resolve when it is durable. */
  syncNow(): Promise<void> {
    if (this.#closed && this.#gc.committed > this.#gc.durable) return Promise.reject(closedError());
    return this.#gc.syncNow();
  }

  /** Sync everything appended so far, blocking the event loop. */
  syncSync(): void {
    if (this.#closed) {
      if (this.#gc.committed > this.#gc.durable) throw closedError();
      return;
    }
    this.#gc.syncSync();
  }

  /**
   * Seal the active segment and start a new one (used by snapshots, so that the log after a
   * snapshot starts in its own segment). A no-op when the active segment holds no record.
   */
  rotate(): RotateResult {
    this.#checkWritable();
    if (this.#active.records === 0) return { sealed: undefined, active: this.#active.name, firstLsn: this.#active.firstLsn };
    const sealed = this.#active.name;
    this.#roll();
    return { sealed, active: this.#active.name, firstLsn: this.#active.firstLsn };
  }

  /**
   * The active segment and the end of its last record, with every appended record handed to the
   * file first: an online reader of the files (db.verify) reads the log up to here and no
   * further, since later bytes may be written while it reads.
   */
  writtenEnd(): { segment: string; end: number } {
    if (this.#closed) throw closedError();
    this.flush();
    return { segment: this.#active.name, end: this.#active.end };
  }

  /** Hand every appended record to the operating system now (the "none" profile's per-group write). */
  flush(): void {
    if (this.#closed || this.#gc.failed !== undefined) return;
    try {
      this.#active.flush();
    } catch (e) {
      const err = e instanceof KeelError ? e : ioError(e, "write", this.#active.path);
      this.#gc.fail(err);
      throw err;
    }
  }

  /**
   * The records fromLsn..toLsn (inclusive; toLsn defaults to, and is capped at, the last committed
   * LSN at the time of the call), in LSN order, each validated. Iterate to the end, or break/return:
   * while iterating, the segments still needed are kept from gc. Throws NOT_FOUND when fromLsn is
   * older than the oldest record still in the log; iteration throws CORRUPT on damage.
   */
  readRecords(fromLsn: number, toLsn?: number): Iterable<LogRecord> {
    if (this.#closed) throw closedError();
    this.flush(); // readers read the files: gathered records must be in them
    if (!Number.isSafeInteger(fromLsn) || fromLsn < 1) throw invalidArgument("fromLsn must be a positive integer", { argument: "fromLsn", value: fromLsn });
    if (toLsn !== undefined && (!Number.isSafeInteger(toLsn) || toLsn < 0)) {
      throw invalidArgument("toLsn must be a non-negative integer", { argument: "toLsn", value: toLsn });
    }
    const upper = Math.min(toLsn ?? Number.MAX_SAFE_INTEGER, this.#gc.committed);
    if (fromLsn > upper) return [];
    const oldest = this.#segments[0]!.firstLsn;
    if (fromLsn < oldest) {
      throw new KeelError("NOT_FOUND", `log records before LSN ${oldest} were deleted (asked from LSN ${fromLsn})`, { fromLsn, oldestLsn: oldest });
    }
    const extents: SegmentExtent[] = [];
    for (const s of this.#segments) {
      if (s.lastLsn >= fromLsn && s.firstLsn <= upper) extents.push({ segment: s, lastLsn: s.lastLsn, end: s.end });
    }
    return readLogRecords(this.#fs, extents, fromLsn, upper, this.#pins);
  }

  /** The lowest LSN a running reader still needs (undefined: no reader is iterating). */
  readerFloor(): number | undefined {
    let floor: number | undefined;
    for (const p of this.#pins) floor = floor === undefined ? p.lsn : Math.min(floor, p.lsn);
    return floor;
  }

  watermarks(): WalWatermarks {
    let totalBytes = 0;
    let diskBytes = 0;
    for (const s of this.#segments) {
      totalBytes += s.end;
      diskBytes += s.fileSize;
    }
    const first = this.#segments[0]!;
    return {
      lastCommittedLsn: this.#gc.committed,
      lastDurableLsn: this.#gc.durable,
      pendingSyncCount: this.#gc.committed - this.#gc.durable,
      waiters: this.#gc.waiterCount,
      syncing: this.#gc.syncing,
      lastSyncAt: this.#gc.lastSyncAt,
      syncCount: this.#gc.syncCount,
      activeSegment: this.#active.name,
      segmentCount: this.#segments.length,
      totalBytes,
      diskBytes,
      oldestLsn: this.#gc.committed >= first.firstLsn ? first.firstLsn : undefined,
      durability: this.#o.durability,
      failed: this.#gc.failed,
    };
  }

  /** Every segment, oldest first. */
  segments(): SegmentInfo[] {
    return this.#segments.map((s) => s.info(s !== this.#active));
  }

  /**
   * Delete the oldest sealed segments that no floor needs and the retention policy lets go (see
   * WalRetention). Running readers act as a floor named READER_FLOOR. Each deletion removes the file
   * and syncs the directory before the next.
   */
  gc(opts: GcOptions): GcResult {
    if (this.#closed) throw closedError();
    if (opts === null || typeof opts !== "object") throw invalidArgument("gc needs options", { argument: "options" });
    const floors: Record<string, number> = { ...(opts.floors ?? {}) };
    const readerFloor = this.readerFloor();
    if (readerFloor !== undefined) floors[READER_FLOOR] = readerFloor;
    const infos = this.segments();
    const plan = planRetention(infos, { ...opts, floors }, opts.now ?? this.#o.now());
    const result: GcResult = { deleted: [], heldByFloor: plan.heldByFloor, freedBytes: 0 };
    for (const name of plan.delete) {
      const seg = this.#segments[0]!;
      if (seg.name !== name || seg === this.#active) {
        throw new KeelError("INTERNAL", `gc plan out of order at ${name}`, { segment: name });
      }
      const info = seg.info(true);
      this.#phase("wal-gc:before-delete");
      try {
        this.#fs.remove(seg.path);
      } catch (e) {
        throw ioError(e, "remove", seg.path);
      }
      // Gone from the namespace now, durable or not: readers must no longer be sent to it.
      this.#segments.shift();
      result.deleted.push(info);
      result.freedBytes += info.fileBytes;
      try {
        this.#fs.syncDir(this.#walDir);
      } catch (e) {
        throw ioError(e, "syncDir", this.#walDir);
      }
      this.#phase("wal-gc:after-delete");
    }
    return result;
  }

  /** Wait for a running sync, sync everything (unless the log failed), release the files. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#gc.idle();
    this.closeSync();
  }

  /**
   * close() without waiting: syncs with a blocking fdatasync. A running async sync keeps its
   * descriptor open until it settles. Throws IO/FULL if the final sync fails (files are released anyway).
   */
  closeSync(): void {
    if (this.#closed) return;
    let err: unknown;
    if (this.#gc.failed === undefined) {
      try {
        this.#gc.syncSync();
      } catch (e) {
        err = e;
      }
    }
    this.#closed = true;
    this.#gc.close();
    this.#active.retire();
    if (err !== undefined) throw err;
  }

  #checkWritable(): void {
    if (this.#closed) throw closedError();
    const f = this.#gc.failed;
    if (f !== undefined) {
      throw new KeelError(f.code, `the write-ahead log failed earlier and accepts no writes until it is reopened: ${f.message}`, { ...f.details, failedEarlier: true }, { cause: f });
    }
  }

  #maybeRoll(nextRecordSize: number): void {
    const seg = this.#active;
    if (seg.records === 0) return; // a record larger than the limit gets a segment of its own
    const tooBig = seg.end + nextRecordSize > this.#o.walSegmentMaxBytes;
    // A segment created in the future (the clock stepped back since, maybe before a restart:
    // createdAt is in its header) rolls now; otherwise it would not roll until the clock caught up.
    const age = this.#o.now() - seg.createdAt;
    const tooOld = age >= this.#o.walSegmentMaxMs || age < 0;
    if (tooBig || tooOld) this.#roll();
  }

  /**
   * 1. Seal the active segment: cut its preallocated tail, sync (everything appended is durable).
   * 2. Create the next segment named lastCommittedLsn + 1: header synced, directory synced.
   * 3. Make it active; the old handle closes once no async sync uses it.
   */
  #roll(): void {
    const old = this.#active;
    const upTo = this.#gc.committed;
    this.#phase("wal-segment-roll:before-seal");
    try {
      old.seal();
    } catch (e) {
      const err = e instanceof KeelError ? e : ioError(e, "seal", old.path);
      this.#gc.fail(err);
      throw err;
    }
    this.#gc.synced(upTo);
    let next: LogSegment;
    try {
      next = LogSegment.create(this.#fs, this.#walDir, upTo + 1, this.#o.now(), this.#o.walPreallocBytes, (p) => this.#phase(p));
    } catch (e) {
      // The partial file was removed: the sealed segment simply stays active. If it could not be
      // removed, recovery would take it for the newest segment: refuse writes until reopened.
      if (e instanceof KeelError && e.details.leftBehind === true) this.#gc.fail(e);
      throw e;
    }
    old.retire();
    this.#segments.push(next);
    this.#active = next;
  }

  #phase(name: string): void {
    const hook = this.#o.onPhase;
    if (hook === undefined) return;
    try {
      hook(name);
    } catch (e) {
      // A throwing hook stands for a crash at this point: nothing after it may happen.
      this.#gc.fail(new KeelError("INTERNAL", `phase hook ${name} threw; the log accepts no writes until reopened`, { phase: name }, { cause: e }));
      throw e;
    }
  }
}

function closedError(): KeelError {
  return new KeelError("CLOSED", "the write-ahead log is closed");
}
