/**
 * unloggedChanges: the mark a log gets where a `wal: false` session changed the database without it.
 *
 * A database with a log may be opened with `wal: false`: its commits then go to data.keel only,
 * and the LSN does not move. The log before that session is complete up to its last LSN B, and the
 * log after it starts at B + 1, so nothing in the LSNs shows that the changes between them are
 * missing. Replaying across that point onto an older state (a snapshot, a consumer's copy)
 * would silently lose them.
 *
 * So the first writable `wal: true` open after such a session (a log directory was there, and
 * the newest meta lacks META_FLAG_WAL) appends one record of kind UNLOGGED_KIND, with no ops, at
 * B + 1, synced, and checkpoints at once (which writes META_FLAG_WAL again). A `wal: false` open
 * that only checkpointed the log it replayed counts as such a session too (conservative).
 *
 * Invariants:
 * - Replaying the mark onto data.keel's own state (recovery, a page backup, salvage) is a no-op,
 *   which is right: that state holds the unlogged changes.
 * - Replaying it onto anything else is refused: restore() and openTxLog() meet it as NOT_FOUND
 *   (reason "unlogged") naming its LSN; a restore to an LSN before it, or from a snapshot taken
 *   after it, is unaffected.
 * - A crash after the mark is appended and before the checkpoint replays it at the next open and
 *   does not append a second one (a mark past the data file's applied LSN is this session's, also
 *   when commits followed it because that checkpoint failed on a full disk); every later
 *   wal: false session gets a mark of its own.
 */
import { KeelError } from "../errors.js";
import { META_FLAG_WAL } from "../pager/Meta.js";
import type { Engine } from "../txn/Engine.js";
import type { WriteAheadLog } from "../wal/index.js";

export const UNLOGGED_KIND = "unlogged";

/** The error of a replay or a read of the log that reaches the mark at `lsn`. */
export function unloggedGap(lsn: number, what: string): KeelError {
  return new KeelError(
    "NOT_FOUND",
    `the log cannot ${what} past LSN ${lsn - 1}: the database was changed with wal: false there, and the log does not hold those changes (read from LSN ${lsn + 1} on, or restore from a snapshot taken after it)`,
    { lsn, reason: "unlogged" },
  );
}

/**
 * At a writable open with the log, after replay: append the mark if a `wal: false` session wrote
 * since the log's last record. Returns whether it did (the caller then checkpoints).
 */
export function markUnloggedChanges(engine: Engine, wal: WriteAheadLog, logCreated: boolean): boolean {
  const meta = engine.durableMeta;
  if (logCreated || !meta || meta.txn === 0 || (meta.flags & META_FLAG_WAL) !== 0) return false;
  // The mark is needed even if gc left no record: a snapshot may still be restored from B.
  // Already appended, by an open that crashed before its checkpoint, or whose checkpoint failed
  // (a full disk) and that then committed on top of it: a mark past the applied LSN. Not again.
  // A mark the data file already includes is an earlier session's: this session needs its own.
  const last = wal.lastCommittedLsn;
  const oldest = wal.watermarks().oldestLsn;
  if (oldest !== undefined && last >= oldest && last > meta.appliedLsn) {
    for (const rec of wal.readRecords(Math.max(oldest, meta.appliedLsn + 1), last)) if (rec.kind === UNLOGGED_KIND) return false;
  }
  const w = engine.beginWrite();
  w.logging = false;
  let lsn: number;
  try {
    lsn = wal.append({ kind: UNLOGGED_KIND, ops: [] });
    wal.syncSync();
  } catch (e) {
    engine.abortWrite(w);
    throw e;
  }
  engine.commitWrite(w, lsn);
  engine.publish(engine.head);
  return true;
}
