/**
 * WalRecovery: what opening the log does before the first append: list the segments, check their
 * names and headers, scan every record, repair an interrupted append or roll, report corruption.
 *
 * Invariants kept:
 * - I3: LSNs are contiguous inside a segment and from one segment to the next; a gap or an
 *   out-of-order LSN is CORRUPT naming the segment and offset. The recovered log is a prefix of
 *   the committed history.
 * - I5: a bad or cut-short record at the tail of the newest segment is an interrupted append and
 *   is truncated (then synced). A bad record in a sealed segment, or a bad record followed later in
 *   the newest segment by a valid record that had seen it durable, is corruption: CORRUPT is raised
 *   and nothing is deleted or overwritten.
 * - I6: damage raises KeelError CORRUPT with the segment and offset, never another exception.
 * - Idempotent: the only repairs (truncating a torn tail, removing a torn newest segment holding
 *   no record) leave a log that this function accepts unchanged; a crash in the middle of a repair
 *   leaves either the old state (repaired again the same way) or the repaired one.
 * - With `readOnly` it writes nothing at all (see RecoveryOptions.readOnly) and reads the same
 *   records a repairing run would keep.
 *
 * Telling a torn tail from corruption. Writes that were not yet synced can reach the disk in any
 * order and in pieces (sector by sector), so after a power loss the unsynced tail may be: zeros,
 * part of a record, or a hole (record N lost) followed by a complete record N+1. None of this is
 * corruption: none of those records was acknowledged as durable. Each record therefore carries
 * `syncedThrough`, the highest LSN known durable when it was written. If a bad spot where record E
 * should be is followed by a valid record whose syncedThrough >= E, record E had been synced before
 * that later one was written, so it was on stable storage and has been damaged since: CORRUPT.
 * Otherwise everything from the bad spot on was unsynced and is dropped as a torn tail.
 */
import { dirname, join } from "node:path";
import { corrupt, ioError } from "../errors.js";
import type { FileHandle, FileSystem } from "../io/FileSystem.js";
import { RECORD_MAGIC, alignRecord, plausibleRecordLength, type RecordProbe } from "./LogRecord.js";
import { LogSegment, type PhaseHook } from "./LogSegment.js";
import { probeSegmentHeader, SEGMENT_HEADER_SIZE } from "./SegmentHeader.js";
import { looksLikeSegment, parseSegmentName } from "./SegmentName.js";
import { SegmentReader } from "./SegmentReader.js";

export interface RecoveryOptions {
  onPhase?: PhaseHook;
  /**
   * Repair nothing (a read-only open, which holds no LOCK): a missing directory stays missing, a
   * torn newest segment stays on disk (skipped, as if removed) and a torn tail is only left out of
   * the segment's records. A writer may open meanwhile, repair the same tail and append
   * acknowledged records after it; a cut computed here before that would destroy them.
   */
  readOnly?: boolean;
}

export interface TornTailRepair {
  segment: string;
  /** Where the log now ends (the file was truncated here). */
  offset: number;
  /** Bytes cut off (the torn record and any unsynced bytes after it, preallocated zeros included). */
  droppedBytes: number;
  /** Complete records found after the bad spot and dropped with it (all unsynced when written). */
  droppedRecords: number;
  reason: string;
}

export interface RecoveryReport {
  /** Segments in LSN order, after repairs. Empty when the log holds no segment. */
  segments: LogSegment[];
  /** The last valid LSN; `firstLsnHint - 1` when the log holds no record. */
  lastLsn: number;
  /**
   * The first LSN the log should continue from when it holds no segment: the name of a removed
   * torn segment says which LSN its creator was about to write. undefined when there is no hint.
   */
  firstLsnHint: number | undefined;
  truncated: TornTailRepair | undefined;
  /** Newest segments removed because their header was torn and they held no record. */
  removedSegments: string[];
  /** True when the wal directory did not exist and was created. */
  createdDir: boolean;
}

const SCAN_CHUNK = 1 << 20;

export interface Evidence {
  /** Any non-zero byte after the bad spot. */
  nonZero: boolean;
  /** Complete, valid records found after the bad spot with LSN >= the expected one. */
  laterValid: number;
  /** The first later valid record proving the bad spot had been synced. */
  proof: { offset: number; lsn: number; syncedThrough: number } | undefined;
  /** The highest LSN among those later valid records. */
  maxLsn: number | undefined;
}

/**
 * Every valid record at an aligned offset in [from, fileEnd), in file order, skipping over each one
 * found (a record's bytes are never searched for another). `nonZero` is set on `seen` when any
 * byte looked at is not zero.
 */
function* validRecordsAfter(reader: SegmentReader, from: number, seen: { nonZero: boolean }): Generator<{ offset: number; probe: Extract<RecordProbe, { status: "ok" }> }> {
  const fileEnd = reader.fileEnd;
  let pos = from;
  while (pos < fileEnd) {
    const w = reader.window(pos, Math.min(SCAN_CHUNK, fileEnd - pos));
    const view = new DataView(w.bytes.buffer, w.bytes.byteOffset + w.at, w.available);
    let k = 0;
    let candidate = -1;
    for (; k + 8 <= w.available; k += 8) {
      const a = view.getUint32(k, true);
      if ((a | view.getUint32(k + 4, true)) === 0) continue;
      seen.nonZero = true;
      if (a === RECORD_MAGIC) {
        candidate = pos + k;
        break;
      }
    }
    if (candidate < 0) {
      for (; k < w.available; k++) if (w.bytes[w.at + k] !== 0) seen.nonZero = true;
      pos += w.available;
      if (w.available === 0) break;
      continue;
    }
    // Probing moves the reader's window: the loop restarts from the candidate's end.
    const p = reader.probe(candidate);
    if (p.status === "ok") {
      yield { offset: candidate, probe: p };
      pos = candidate + p.size;
    } else {
      pos = candidate + 8;
    }
  }
}

/**
 * Look at every aligned offset in [from, fileEnd) for valid records. Recovery stops at the first
 * proof of damage; verify (`stopAtProof: false`) scans on to count everything that follows.
 */
export function scanAfter(reader: SegmentReader, from: number, expectedLsn: number, stopAtProof = true): Evidence {
  const ev: Evidence = { nonZero: false, laterValid: 0, proof: undefined, maxLsn: undefined };
  for (const { offset, probe: p } of validRecordsAfter(reader, from, ev)) {
    if (p.record.lsn < expectedLsn) continue;
    ev.laterValid++;
    ev.maxLsn = Math.max(ev.maxLsn ?? 0, p.record.lsn);
    if (p.syncedThrough >= expectedLsn && ev.proof === undefined) {
      ev.proof = { offset, lsn: p.record.lsn, syncedThrough: p.syncedThrough };
      if (stopAtProof) return ev;
    }
  }
  return ev;
}

/** The first valid record at or after `from` with LSN >= `minLsn` (salvage's resync after damage). */
export function nextRecordAfter(reader: SegmentReader, from: number, minLsn: number): { offset: number; lsn: number } | undefined {
  for (const { offset, probe: p } of validRecordsAfter(reader, from, { nonZero: false })) if (p.record.lsn >= minLsn) return { offset, lsn: p.record.lsn };
  return undefined;
}

/** The length and LSN a record header at `at` declares (whatever its checksum), if the length is plausible. */
function declaredHeader(reader: SegmentReader, at: number): { length: number; lsn: number; magic: boolean } | undefined {
  const head = reader.window(at, 24);
  if (head.available < 24) return undefined;
  const view = new DataView(head.bytes.buffer, head.bytes.byteOffset + head.at, 24);
  const length = view.getUint32(4, true);
  if (!plausibleRecordLength(length)) return undefined;
  return { length, lsn: view.getUint32(16, true) + view.getUint32(20, true) * 0x1_0000_0000, magic: view.getUint32(0, true) === RECORD_MAGIC };
}

/**
 * Where salvage goes on after damage at `pos`, where LSN `expected` belongs. The damaged record's
 * header usually still gives its length (damage to a payload byte shows as a checksum mismatch):
 * follow it, and the lengths of further damaged records that still name the next LSN, to the first
 * valid record of the LSN that belongs there, or to the end of a sealed segment (which ends with
 * its last record). That never looks inside a damaged record's payload, where a value can hold
 * bytes shaped like records of this log (its own segments stored as a value, say). Only when the
 * lengths lead nowhere does it scan forward from the damage for the first valid record (the
 * documented limit: that scan can take such bytes for a record).
 */
export function resyncAfterDamage(reader: SegmentReader, pos: number, expected: number, sealed: boolean): { offset: number; lsn: number } | undefined {
  let at = pos;
  let lsn = expected;
  for (let hop = 0; hop < 64; hop++) {
    const h = declaredHeader(reader, at);
    // The first record's magic or LSN may be what was damaged; a later one must still look like the next record.
    if (!h || (hop > 0 && (!h.magic || h.lsn !== lsn))) break;
    const next = at + alignRecord(h.length);
    if (next > reader.fileEnd) break;
    if (next === reader.fileEnd) {
      if (sealed) return { offset: next, lsn: lsn + 1 };
      break;
    }
    const p = reader.probe(next, false);
    if (p.status === "ok") {
      if (p.record.lsn === lsn + 1) return { offset: next, lsn: lsn + 1 };
      break;
    }
    if (p.status === "end") break;
    at = next;
    lsn++;
  }
  return nextRecordAfter(reader, pos + 8, expected);
}

function openRead(fs: FileSystem, path: string): FileHandle {
  try {
    return fs.open(path, "r");
  } catch (e) {
    throw ioError(e, "open", path);
  }
}

function fileSize(h: FileHandle): number {
  try {
    return h.size();
  } catch (e) {
    throw ioError(e, "fstat", h.path);
  }
}

function closeQuietly(h: FileHandle): void {
  try {
    h.close();
  } catch {
    // Read-only descriptor: nothing to lose.
  }
}

/**
 * Recover the log in `walDir`. Creates the directory when it is missing (and syncs its parent),
 * unless readOnly.
 * Returns the segments (none open for writing) and the last valid LSN.
 */
export function recoverWal(fs: FileSystem, walDir: string, opts: RecoveryOptions = {}): RecoveryReport {
  const report: RecoveryReport = { segments: [], lastLsn: 0, firstLsnHint: undefined, truncated: undefined, removedSegments: [], createdDir: false };
  let st;
  try {
    st = fs.stat(walDir);
  } catch (e) {
    throw ioError(e, "stat", walDir);
  }
  if (st === undefined) {
    if (opts.readOnly) return report;
    try {
      fs.mkdir(walDir);
      fs.syncDir(dirname(walDir));
    } catch (e) {
      throw ioError(e, "mkdir", walDir);
    }
    report.createdDir = true;
    return report;
  }
  if (!st.isDirectory) throw corrupt(`${walDir} is not a directory`, { file: walDir });

  let names: string[];
  try {
    names = fs.list(walDir).filter(looksLikeSegment);
  } catch (e) {
    throw ioError(e, "list", walDir);
  }
  const parsed = names.map((name) => {
    const lsn = parseSegmentName(name);
    if (lsn === undefined) throw corrupt(`${name} in ${walDir} is not a valid segment name`, { segment: name, offset: 0 });
    return { name, lsn };
  });
  parsed.sort((a, b) => a.lsn - b.lsn);

  let prevLast: number | undefined;
  for (let i = 0; i < parsed.length; i++) {
    const { name, lsn: nameLsn } = parsed[i]!;
    const newest = i === parsed.length - 1;
    const path = join(walDir, name);
    if (prevLast !== undefined && nameLsn !== prevLast + 1) {
      throw corrupt(`log gap: segment ${name} starts at LSN ${nameLsn} but the previous segment ends at LSN ${prevLast}`, {
        segment: name,
        offset: 0,
        expectedLsn: prevLast + 1,
        foundLsn: nameLsn,
      });
    }
    const h = openRead(fs, path);
    let seg: LogSegment | undefined;
    try {
      seg = recoverSegment(fs, h, name, path, nameLsn, newest, walDir, report, opts);
    } finally {
      closeQuietly(h);
    }
    if (seg === undefined) continue; // a removed torn newest segment
    report.segments.push(seg);
    prevLast = seg.lastLsn;
  }
  const last = report.segments[report.segments.length - 1];
  report.lastLsn = last !== undefined ? last.lastLsn : (report.firstLsnHint ?? 1) - 1;
  return report;
}

function recoverSegment(
  fs: FileSystem,
  h: FileHandle,
  name: string,
  path: string,
  nameLsn: number,
  newest: boolean,
  walDir: string,
  report: RecoveryReport,
  opts: RecoveryOptions,
): LogSegment | undefined {
  const size = fileSize(h);
  const reader = new SegmentReader(h, size);
  const head = reader.window(0, SEGMENT_HEADER_SIZE);
  const hp = probeSegmentHeader(head.bytes.slice(head.at, head.at + head.available), name);
  if (hp.status === "torn") {
    if (!newest) throw corrupt(`segment ${name} has a damaged header (${hp.reason})`, { segment: name, offset: 0, reason: hp.reason });
    // Why removing it is safe: a segment's header and the directory entry are synced before any
    // record is written into it (LogSegment.create), and the segment before it was sealed and synced
    // before it was created. So a newest segment whose header did not survive never received a record,
    // and removing it loses nothing. The scan below makes sure of it: a valid record in its body means
    // the header was damaged after records were written, which is corruption, not an interrupted roll.
    const ev = scanAfter(reader, SEGMENT_HEADER_SIZE, 0);
    if (ev.laterValid > 0) {
      throw corrupt(`segment ${name} has a damaged header (${hp.reason}) but holds records`, { segment: name, offset: 0, reason: hp.reason });
    }
    report.firstLsnHint = nameLsn;
    if (opts.readOnly) return undefined;
    opts.onPhase?.("wal-recovery:before-remove-torn-segment");
    try {
      fs.remove(path);
      fs.syncDir(walDir);
    } catch (e) {
      throw ioError(e, "remove", path);
    }
    opts.onPhase?.("wal-recovery:after-remove-torn-segment");
    report.removedSegments.push(name);
    return undefined;
  }
  const header = hp.header;
  if (header.firstLsn !== nameLsn) {
    throw corrupt(`segment ${name} header says its first LSN is ${header.firstLsn}`, { segment: name, offset: 8, expectedLsn: nameLsn, foundLsn: header.firstLsn });
  }
  const seg = new LogSegment({
    name,
    path,
    firstLsn: nameLsn,
    createdAt: header.createdAt,
    lastLsn: nameLsn - 1,
    end: SEGMENT_HEADER_SIZE,
    fileSize: size,
    lastTxTime: undefined,
  });
  let pos = SEGMENT_HEADER_SIZE;
  let expected = nameLsn;
  let badReason: string | undefined;
  for (;;) {
    // Only LSNs, times and offsets are needed here: replay reads the records it applies again.
    const p = reader.probe(pos, false);
    if (p.status === "end") break;
    if (p.status === "bad") {
      badReason = p.reason;
      break;
    }
    if (p.record.lsn !== expected) {
      throw corrupt(`segment ${name} holds LSN ${p.record.lsn} at offset ${pos} where LSN ${expected} belongs`, {
        segment: name,
        offset: pos,
        expectedLsn: expected,
        foundLsn: p.record.lsn,
      });
    }
    seg.noteRecord(p.record.lsn, pos, p.size, p.record.txTime);
    pos += p.size;
    expected++;
  }
  if (pos >= size) return seg;

  // The scan stopped before the end of the file: at zeros (normal end, preallocated space after it)
  // or at a bad record. Decide what the bytes after it are.
  const ev = scanAfter(reader, pos + 8, expected);
  const reason = badReason ?? "non-zero bytes after the end of the log";
  if (badReason === undefined && !ev.nonZero) return seg; // clean end of log
  const where = { segment: name, offset: pos, expectedLsn: expected, reason };
  if (!newest) throw corrupt(`sealed segment ${name} is damaged at offset ${pos}: ${reason}`, where);
  if (ev.proof !== undefined) {
    // A read-only open holds no LOCK: a writer that opened after it may have appended at `pos`
    // between this scan's read there and scanAfter's reads past it. Then `pos` holds LSN
    // `expected` now, and this view of the log simply ends before it.
    if (opts.readOnly && reader.holdsNow(pos, expected)) return seg;
    throw corrupt(
      `segment ${name} is damaged at offset ${pos} (${reason}): a valid record (LSN ${ev.proof.lsn}) at offset ${ev.proof.offset} was written after LSN ${expected} had been synced`,
      { ...where, laterValidOffset: ev.proof.offset, laterValidLsn: ev.proof.lsn },
    );
  }
  // Torn tail of an interrupted append: cut it off, and sync so that the cut is durable before
  // anything is appended over it. Read-only: the records end here all the same; the file stays.
  if (opts.readOnly) return seg;
  opts.onPhase?.("wal-recovery:before-truncate");
  let rw: FileHandle;
  try {
    rw = fs.open(path, "rw");
  } catch (e) {
    throw ioError(e, "open", path);
  }
  try {
    rw.truncate(pos);
    rw.sync();
  } catch (e) {
    throw ioError(e, "truncate", path);
  } finally {
    closeQuietly(rw);
  }
  opts.onPhase?.("wal-recovery:after-truncate");
  report.truncated = { segment: name, offset: pos, droppedBytes: size - pos, droppedRecords: ev.laterValid, reason };
  seg.noteTruncated(pos);
  return seg;
}
