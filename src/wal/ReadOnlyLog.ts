/**
 * ReadOnlyLog: the committed records of `<dir>/wal` for a read-only open, which replays them into
 * memory and never appends.
 *
 * Invariant kept: it writes nothing, not even recovery's repairs (WalRecovery readOnly): no
 * truncated torn tail, no removed torn segment, no created directory or segment. A read-only open
 * holds no LOCK, so a writer may open between this scan and any repair, repair the same tail itself
 * and append acknowledged records; a cut computed here before that would destroy them. The records
 * it yields are the ones a repairing open keeps: the valid prefix, the torn tail left out. Like a
 * writable open, it syncs the newest segment before replay (a sync changes no byte).
 */
import { join } from "node:path";
import { KeelError, ioError } from "../errors.js";
import type { FileHandle, FileSystem } from "../io/FileSystem.js";
import type { LogRecord } from "./LogRecord.js";
import type { PhaseHook } from "./LogSegment.js";
import { readLogRecords } from "./TxLogReader.js";
import { recoverWal } from "./WalRecovery.js";

export class ReadOnlyLog {
  readonly #fs: FileSystem;
  readonly #report: ReturnType<typeof recoverWal>;
  readonly lastCommittedLsn: number;

  private constructor(fs: FileSystem, report: ReturnType<typeof recoverWal>, startLsn: number) {
    this.#fs = fs;
    this.#report = report;
    // As WriteAheadLog.open: a log without a segment continues at startLsn, or where a torn
    // segment was about to start, whichever is later.
    this.lastCommittedLsn = report.segments.length > 0 ? report.lastLsn : Math.max(startLsn, report.firstLsnHint ?? 1) - 1;
  }

  /**
   * Scan `<dir>/wal` (CORRUPT, VERSION or IO as WriteAheadLog.open raises them), repairing nothing.
   * `startLsn`: where the log continues if it holds no segment (the data file's LSN + 1).
   */
  static open(fs: FileSystem, dir: string, startLsn: number, onPhase?: PhaseHook): ReadOnlyLog {
    const report = recoverWal(fs, join(dir, "wal"), { onPhase, readOnly: true });
    const newest = report.segments[report.segments.length - 1];
    if (newest) syncRead(fs, newest.path);
    return new ReadOnlyLog(fs, report, startLsn);
  }

  /** Records fromLsn..lastCommittedLsn in LSN order (none when fromLsn is past the end). */
  readRecords(fromLsn: number): Iterable<LogRecord> {
    const oldest = this.#report.segments[0]?.firstLsn;
    if (oldest !== undefined && fromLsn < oldest && fromLsn <= this.lastCommittedLsn) {
      throw new KeelError("NOT_FOUND", `log records before LSN ${oldest} were deleted (asked from LSN ${fromLsn})`, { fromLsn, oldestLsn: oldest });
    }
    const extents = this.#report.segments.filter((s) => s.lastLsn >= fromLsn).map((s) => ({ segment: s, lastLsn: s.lastLsn, end: s.end }));
    return readLogRecords(this.#fs, extents, fromLsn, this.lastCommittedLsn);
  }

  /** Nothing is held open between calls: for symmetry with WriteAheadLog in openLog's callers. */
  closeSync(): void {}
}

/**
 * fdatasync the newest segment through a read-only descriptor, as a writable open syncs it before
 * replay (WAL-FORMAT.md, recovery step 3): a writer killed before its sync may have left records in
 * the page cache only, and what this process builds on them (a copy, a dump) must not be ahead of
 * what a power cut leaves. A sync changes no byte, so it is safe beside a writer. A file system that
 * refuses it on a read-only mount (EROFS, EINVAL) holds nothing unsynced.
 */
function syncRead(fs: FileSystem, path: string): void {
  let h: FileHandle;
  try {
    h = fs.open(path, "r");
  } catch (e) {
    throw ioError(e, "open", path);
  }
  try {
    h.sync();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "EROFS" && code !== "EINVAL") throw ioError(e, "fdatasync", path);
  } finally {
    h.close();
  }
}
