/**
 * salvageReplay: the log part of salvage: read the log in order from where the surviving tree
 * ends and apply it, stopping at the first gap or damage (and saying where the loss starts).
 */
import type { FileSystem } from "../io/FileSystem.js";
import { applyLogRecord } from "../db/LogDurability.js";
import type { Engine } from "../txn/Engine.js";
import type { WriteTxn } from "../txn/WriteTxn.js";
import type { LogRecord } from "../wal/LogRecord.js";
import { Aborted, errorText, type Progress, type Work } from "./verifyTypes.js";
import { scanWal, type WalBreak } from "./verifyWal.js";
import { KeelError } from "../errors.js";

export interface ReplayOutcome {
  exists: boolean;
  records: number;
  /** The first needed record was found (or nothing was needed). */
  reachedStart: boolean;
  lostLogFrom: number | undefined;
  notes: string[];
}

/**
 * Read the log in order and (with an engine) apply each record from the first one at or after
 * `earliest` on, one write transaction per record, stopping at the first gap or damage. The replay
 * must start at or before `required` (the newest meta's applied LSN + 1), or the records in between
 * are lost. Without an engine, only find out where that replay would stop. With neither bound (no
 * valid meta), the replay starts at the oldest record left.
 *
 * A put to a sub-database that does not exist (its createDB record is gc'd or before `earliest`,
 * and no readable catalog names it) goes where `missingDb` says: never into a sub-database created with
 * guessed encodings, whose values could then not be decoded (salvage.ts).
 */
export function* planReplay(
  fs: FileSystem,
  walDir: string,
  earliest: number | undefined,
  required: number | undefined,
  engine: Engine | null,
  progress: Progress,
  missingDb?: (w: WriteTxn, db: string) => string,
): Work<ReplayOutcome> {
  const o: ReplayOutcome = { exists: false, records: 0, reachedStart: false, lostLogFrom: undefined, notes: [] };
  let next: number | undefined;
  let stopped = false;
  let sinceCheckpoint = 0;
  const stop = (lsn: number | undefined, note: string) => {
    stopped = true;
    if (lsn !== undefined) o.lostLogFrom = lsn;
    o.notes.push(note);
  };
  const onRecord = (rec: LogRecord, segment: string, offset: number) => {
    if (stopped) return;
    if (earliest !== undefined && rec.lsn < earliest) return; // older than every tree salvaged
    if (next === undefined) {
      if (required !== undefined && rec.lsn > required) {
        stop(required, `the log has no record ${required} (the oldest one left after it is ${rec.lsn}, in segment ${segment}); nothing was replayed`);
        return;
      }
      next = rec.lsn;
    }
    if (rec.lsn < next) return;
    if (rec.lsn > next) {
      stop(next, `the log has no record ${next} (the next one found is ${rec.lsn}, in segment ${segment}); replay stopped there`);
      return;
    }
    o.reachedStart = true;
    if (engine) {
      const w = engine.beginWrite();
      w.logging = false;
      try {
        if (!missingDb) applyLogRecord(w, rec);
        else {
          // One op at a time: an earlier op of the record may create the sub-database a later one writes.
          for (const op of rec.ops) {
            const db = op.type === "put" && !w.entry(op.db) ? missingDb(w, op.db) : op.db;
            applyLogRecord(w, { ...rec, ops: [db === op.db ? op : { ...op, db }] });
          }
        }
      } catch (e) {
        engine.abortWrite(w);
        if (e instanceof Aborted) throw e;
        stop(rec.lsn, `log record ${rec.lsn} (segment ${segment}, offset ${offset}) could not be applied: ${errorText(e)}; replay stopped there`);
        return;
      }
      engine.commitWrite(w, rec.lsn);
      if (++sinceCheckpoint >= 10_000 || engine.dirtyBytes > 64 * 1024 * 1024) {
        engine.publish(engine.head);
        engine.checkpoint();
        sinceCheckpoint = 0;
      }
      progress.step(0);
    }
    o.records++;
    next = rec.lsn + 1;
  };
  /** The first break met below what replay needs: harmless if intact records it needs follow it. */
  let ignored: WalBreak | undefined;
  const onBreak = (b: WalBreak) => {
    // A segment of another format version is not damage: refused, as every open refuses it.
    if (b.kind === "wal-version") throw new KeelError("VERSION", b.message, { segment: b.segment });
    if (stopped) return;
    const E = b.expectedLsn;
    if (next === undefined) {
      // Not started yet: a break below what replay needs does not matter (the scan resyncs after it).
      if (E !== undefined && ((earliest !== undefined && E < earliest) || (required !== undefined && E < required))) {
        ignored ??= b;
        return;
      }
    } else if (E !== undefined && E < next) return;
    if (b.torn) {
      stopped = true;
      o.notes.push(
        b.kind === "wal-torn-segment"
          ? `the newest log segment ${b.segment} has a torn header and no record (an interrupted roll: nothing is lost)`
          : `the log ends with a torn record in segment ${b.segment} at offset ${b.offset} (an interrupted append: nothing acknowledged is lost)`,
      );
      return;
    }
    stop(E ?? next ?? required, `replay stopped at ${b.kind} in segment ${b.segment}, offset ${b.offset}: ${b.message}`);
  };
  const res = yield* scanWal(fs, walDir, null, { onRecord, onBreak, resync: true }, progress);
  o.exists = res.exists && res.segments > 0;
  if (!o.reachedStart && o.lostLogFrom === undefined) {
    // No record was needed: complete when the log simply ends before `required`.
    const last = res.lastLsn ?? (res.firstLsn !== undefined ? res.firstLsn - 1 : undefined);
    if (required === undefined) o.reachedStart = true;
    else if (o.exists && res.firstLsn !== undefined && res.firstLsn > required) {
      o.lostLogFrom = required;
      o.notes.push(`the log starts at LSN ${res.firstLsn}: records ${required}..${res.firstLsn - 1} are gone`);
    } else {
      o.reachedStart = last !== undefined && last <= required - 1;
      // The log must reach the data file's applied LSN (a checkpoint syncs it first): ending before
      // it, or breaking with nothing readable after, records after it may have existed and are gone.
      if (o.exists && last !== undefined && (last < required - 1 || ignored !== undefined)) {
        o.lostLogFrom = required;
        o.notes.push(
          ignored !== undefined
            ? `the log is damaged (${ignored.kind} in segment ${ignored.segment}, offset ${ignored.offset}) in records the data file already holds, and no record from LSN ${required} on could be read after it: commits after LSN ${required - 1}, if there were any, are lost`
            : `the log ends at LSN ${last}, before the data file's applied LSN ${required - 1} (verify: log-behind-data): part of the log is missing, and commits after LSN ${required - 1}, if there were any, are lost`,
        );
      }
    }
  }
  if (ignored !== undefined && o.lostLogFrom === undefined && o.reachedStart) {
    o.notes.push(`the log is damaged (${ignored.kind} in segment ${ignored.segment}, offset ${ignored.offset}) in records the data file already holds; replay went on from the next intact record: nothing is lost`);
  }
  if (engine && o.records) engine.publish(engine.head);
  return o;
}
