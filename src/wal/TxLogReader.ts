/**
 * TxLogReader: iterate committed log records in LSN order across segments, for replay on open,
 * `openTxLog` consumers and point-in-time restore.
 *
 * Invariants kept:
 * - Yields exactly the records fromLsn..toLsn, each once, in LSN order, each validated (magic,
 *   length, checksum, fields) and each with the LSN its position requires (I3); anything else is
 *   KeelError CORRUPT naming the segment and offset (I6), never a skipped or wrong record.
 * - Reads only bytes that were complete when the read was requested (the caller passes the
 *   extent of each segment as of then), so it can run beside the appender.
 * - While iterating it holds a pin at the next LSN it needs; gc treats pins as floors, so the
 *   segments still to be read are not deleted under it. The pin is released, and the segment
 *   open for reading closed, when the iteration ends, breaks or throws, or when an iterator left
 *   unfinished is garbage-collected (an abandoned reader must not hold the log for good).
 */
import { corrupt, ioError, KeelError } from "../errors.js";
import type { FileHandle, FileSystem } from "../io/FileSystem.js";
import type { LogRecord } from "./LogRecord.js";
import type { LogSegment } from "./LogSegment.js";
import { SegmentReader } from "./SegmentReader.js";

/** A segment as it was when the read was requested. */
export interface SegmentExtent {
  segment: LogSegment;
  lastLsn: number;
  end: number;
}

/** The next LSN a running reader needs. */
export interface ReaderPin {
  lsn: number;
}

/** What an iterator holds while suspended: released by its finally, or by the registry below. */
interface ReaderHold {
  pins: Set<ReaderPin> | undefined;
  pin: ReaderPin | null;
  handle: FileHandle | null;
}

function releaseHold(hold: ReaderHold): void {
  if (hold.pin) hold.pins?.delete(hold.pin);
  hold.pin = null;
  const h = hold.handle;
  hold.handle = null;
  try {
    h?.close();
  } catch {
    // Read-only descriptor: nothing to lose.
  }
}

const abandoned = new FinalizationRegistry<ReaderHold>(releaseHold);

export function readLogRecords(
  fs: FileSystem,
  extents: readonly SegmentExtent[],
  fromLsn: number,
  toLsn: number,
  pins?: Set<ReaderPin>,
): Generator<LogRecord, void, undefined> {
  const hold: ReaderHold = { pins, pin: null, handle: null };
  const it = readSteps(fs, extents, fromLsn, toLsn, hold);
  abandoned.register(it, hold, hold);
  return it;
}

function* readSteps(fs: FileSystem, extents: readonly SegmentExtent[], fromLsn: number, toLsn: number, hold: ReaderHold): Generator<LogRecord, void, undefined> {
  // Pinned at the first next(), not at the call: a reader that is never iterated holds nothing.
  const pin: ReaderPin = { lsn: fromLsn };
  hold.pin = pin;
  hold.pins?.add(pin);
  try {
    let next = fromLsn;
    for (const ext of extents) {
      if (next > toLsn) break;
      if (ext.lastLsn < next) continue;
      const seg = ext.segment;
      const start = seg.seek(next);
      let h: FileHandle;
      try {
        h = fs.open(seg.path, "r");
        hold.handle = h;
      } catch (e) {
        if ((e as NodeJS.ErrnoException)?.code === "ENOENT") {
          throw new KeelError("NOT_FOUND", `log segment ${seg.name} was deleted before it was read`, { segment: seg.name, lsn: next }, { cause: e });
        }
        throw ioError(e, "open", seg.path);
      }
      try {
        const reader = new SegmentReader(h, ext.end);
        let pos = start.offset;
        let lsn = start.lsn;
        while (lsn <= ext.lastLsn && next <= toLsn) {
          const p = reader.probe(pos);
          if (p.status !== "ok") {
            const reason = p.status === "bad" ? p.reason : "the log ends early";
            throw corrupt(`bad log record in segment ${seg.name} at offset ${pos} (LSN ${lsn} expected): ${reason}`, {
              segment: seg.name,
              offset: pos,
              expectedLsn: lsn,
              reason,
            });
          }
          if (p.record.lsn !== lsn) {
            throw corrupt(`segment ${seg.name} holds LSN ${p.record.lsn} at offset ${pos} where LSN ${lsn} belongs`, {
              segment: seg.name,
              offset: pos,
              expectedLsn: lsn,
              foundLsn: p.record.lsn,
            });
          }
          pos += p.size;
          lsn++;
          if (p.record.lsn >= next) {
            next = p.record.lsn + 1;
            pin.lsn = next;
            yield p.record;
          }
        }
      } finally {
        hold.handle = null;
        try {
          h.close();
        } catch {
          // Read-only descriptor: nothing to lose.
        }
      }
    }
  } finally {
    releaseHold(hold);
    abandoned.unregister(hold);
  }
}
