/**
 * verifyWal: reads every segment of <dir>/wal without changing anything, and reports what log
 * recovery would find: bad names, gaps between segments, torn or damaged headers, records out of
 * LSN order, damaged records, and the torn tail of the newest segment. Used by verify (problems)
 * and by salvage (the records, in order, and where the readable log breaks).
 *
 * Invariants:
 * - Read-only: files are opened "r"; unlike WriteAheadLog.open, a torn tail is reported, never
 *   truncated, and a torn newest segment is reported, never removed.
 * - The same rules as recovery (WAL-FORMAT.md, "Torn tail or corruption"): a bad spot in a sealed
 *   segment, or in the newest one when a later valid record had seen it durable (syncedThrough), is
 *   an error; otherwise the newest segment's bad tail is an interrupted append, a warning.
 * - Records are handed to `onRecord` in file order, each validated; every break in the sequence is
 *   handed to `onBreak` at the point where it occurs, so a caller can stop at the first one.
 */
import { KeelError } from "../errors.js";
import { join } from "node:path";
import type { FileHandle, FileSystem } from "../io/FileSystem.js";
import type { LogRecord } from "../wal/LogRecord.js";
import { nextRecordAfter, resyncAfterDamage, scanAfter } from "../wal/WalRecovery.js";
import { probeSegmentHeader, SEGMENT_HEADER_SIZE } from "../wal/SegmentHeader.js";
import { parseSegmentName, looksLikeSegment } from "../wal/SegmentName.js";
import { SegmentReader } from "../wal/SegmentReader.js";
import { Aborted, errorText, type ProblemList, type Progress, type VerifySeverity, type Work } from "./verifyTypes.js";

export interface WalBreak {
  kind: string;
  severity: VerifySeverity;
  segment: string;
  offset: number;
  /** The LSN that should have come next at the break (undefined when not known). */
  expectedLsn: number | undefined;
  /** A torn tail of the newest segment (an interrupted append), as opposed to damage or a gap. */
  torn: boolean;
  message: string;
}

export interface WalScanHooks {
  onRecord?: (rec: LogRecord, segment: string, offset: number) => void;
  onBreak?: (b: WalBreak) => void;
  /**
   * After damage that is not a torn tail (a damaged record or segment header), go on from the
   * next valid record of the segment instead of leaving the rest of it unread. Salvage sets this:
   * damage in records the data file already holds must not hide the intact ones after it.
   */
  resync?: boolean;
}

/**
 * Where an online scan stops (the open log's active segment and the end of its last record when
 * the scan was pinned): later segments and bytes past `end` are skipped, since the writer may be
 * appending to them while the scan reads.
 */
export interface WalScanBound {
  segment: string;
  end: number;
  /**
   * The applied LSN of the newest meta slot when the bound was taken (online verify). A
   * checkpoint after that point may write a meta past the bound's last record: the data file is
   * compared with the log as of the bound, not ahead of it.
   */
  appliedLsn?: number;
}

export interface WalScanResult {
  exists: boolean;
  segments: number;
  records: number;
  /** First LSN of the first segment whose name parses. */
  firstLsn: number | undefined;
  /** LSN of the last valid record read in order. */
  lastLsn: number | undefined;
  /** Number of error-severity problems found in the log. */
  errors: number;
  breaks: WalBreak[];
}


/** Record bytes between yields of a scan (about 10-50 ms of a salvage's replay). */
const YIELD_BYTES = 2 * 1024 * 1024;

function closeQuietly(h: FileHandle): void {
  try {
    h.close();
  } catch {
    // read-only handle
  }
}

/**
 * Scan the log in `walDir`. Problems go to `out`; records and breaks to `hooks`, in log order.
 * Never throws on damage (I/O errors reading a segment become problems too).
 */
export function* scanWal(
  fs: FileSystem,
  walDir: string,
  out: ProblemList | null,
  hooks: WalScanHooks = {},
  progress?: Progress,
  bound?: WalScanBound,
): Work<WalScanResult> {
  const res: WalScanResult = { exists: false, segments: 0, records: 0, firstLsn: undefined, lastLsn: undefined, errors: 0, breaks: [] };
  const problem = (severity: VerifySeverity, kind: string, file: string, message: string, segment?: string, offset?: number) => {
    if (severity === "error") res.errors++;
    out?.add({ severity, kind, file, message, segment, offset });
  };
  const brk = (b: WalBreak, file: string) => {
    res.breaks.push(b);
    problem(b.severity, b.kind, file, b.message, b.segment, b.offset);
    hooks.onBreak?.(b);
  };
  const st = fs.stat(walDir);
  if (!st) return res;
  res.exists = true;
  if (!st.isDirectory) {
    problem("error", "wal-not-directory", walDir, `${walDir} is not a directory`);
    return res;
  }
  let names: string[];
  try {
    names = fs.list(walDir).filter(looksLikeSegment);
  } catch (e) {
    problem("error", "wal-io", walDir, `cannot list ${walDir}: ${errorText(e)}`);
    return res;
  }
  const parsed: Array<{ name: string; lsn: number }> = [];
  for (const name of names) {
    const lsn = parseSegmentName(name);
    if (lsn === undefined) problem("error", "wal-name", join(walDir, name), `${name} in ${walDir} is not a valid segment name (20 digits naming its first LSN, then .wal)`, name, 0);
    else parsed.push({ name, lsn });
  }
  parsed.sort((a, b) => a.lsn - b.lsn);
  if (bound) {
    const last = parsed.findIndex((p) => p.name === bound.segment);
    if (last >= 0) parsed.length = last + 1;
  }
  res.segments = bound ? parsed.length : names.length;
  res.firstLsn = parsed[0]?.lsn;

  // The last LSN of the previous segment, when it is known.
  let prevLast: number | undefined;
  for (let i = 0; i < parsed.length; i++) {
    const { name, lsn: nameLsn } = parsed[i]!;
    const newest = i === parsed.length - 1;
    const path = join(walDir, name);
    if (prevLast !== undefined && nameLsn !== prevLast + 1) {
      brk(
        {
          kind: "wal-gap",
          severity: "error",
          segment: name,
          offset: 0,
          expectedLsn: prevLast + 1,
          torn: false,
          message:
            nameLsn > prevLast + 1
              ? `log gap: segment ${name} starts at LSN ${nameLsn} but the previous segment ends at LSN ${prevLast}: LSNs ${prevLast + 1}..${nameLsn - 1} are missing`
              : `segment ${name} starts at LSN ${nameLsn}, inside the previous segment (which ends at LSN ${prevLast})`,
        },
        path,
      );
    }
    let h: FileHandle;
    try {
      h = fs.open(path, "r");
    } catch (e) {
      brk({ kind: "wal-io", severity: "error", segment: name, offset: 0, expectedLsn: prevLast === undefined ? undefined : prevLast + 1, torn: false, message: `cannot open segment ${name}: ${errorText(e)}` }, path);
      prevLast = undefined;
      continue;
    }
    try {
      const end = bound?.segment === name ? bound.end : undefined;
      const r = yield* scanSegment(h, name, path, nameLsn, newest, res, brk, hooks, progress, end);
      prevLast = r;
    } catch (e) {
      // VERSION here comes from a hook that refuses a segment of another format (salvage): its
      // decision, not a read error of the segment.
      if (e instanceof Aborted || (e instanceof KeelError && e.code === "VERSION")) throw e;
      brk({ kind: "wal-io", severity: "error", segment: name, offset: 0, expectedLsn: undefined, torn: false, message: `cannot read segment ${name}: ${errorText(e)}` }, path);
      prevLast = undefined;
    } finally {
      closeQuietly(h);
    }
  }
  return res;
}

/** Returns the last LSN of the segment when it is known. */
function* scanSegment(
  h: FileHandle,
  name: string,
  path: string,
  nameLsn: number,
  newest: boolean,
  res: WalScanResult,
  brk: (b: WalBreak, file: string) => void,
  hooks: WalScanHooks,
  progress: Progress | undefined,
  end: number | undefined,
): Work<number | undefined> {
  const size = end === undefined ? h.size() : Math.min(h.size(), end);
  const reader = new SegmentReader(h, size);
  const head = reader.window(0, SEGMENT_HEADER_SIZE);
  let hp;
  try {
    hp = probeSegmentHeader(head.bytes.slice(head.at, head.at + head.available), name);
  } catch (e) {
    brk({ kind: "wal-version", severity: "error", segment: name, offset: 0, expectedLsn: nameLsn, torn: false, message: errorText(e) }, path);
    return undefined;
  }
  if (hp.status === "torn") {
    const ev = scanAfter(reader, SEGMENT_HEADER_SIZE, 0, false);
    if (newest && ev.laterValid === 0) {
      brk(
        {
          kind: "wal-torn-segment",
          severity: "warning",
          segment: name,
          offset: 0,
          expectedLsn: nameLsn,
          torn: true,
          message: `the newest segment ${name} has a torn header (${hp.reason}) and holds no record: an interrupted roll, which the next open removes`,
        },
        path,
      );
      return undefined;
    }
    brk(
      {
        kind: "wal-header",
        severity: "error",
        segment: name,
        offset: 0,
        expectedLsn: nameLsn,
        torn: false,
        message: `segment ${name} has a damaged header (${hp.reason})${ev.laterValid ? ` but holds ${ev.laterValid} valid records` : ""}`,
      },
      path,
    );
    const first = hooks.resync ? nextRecordAfter(reader, SEGMENT_HEADER_SIZE, nameLsn) : undefined;
    if (first === undefined) return ev.maxLsn;
    return yield* scanRecords(reader, size, name, path, newest, first.offset, first.lsn, res, brk, hooks, progress);
  }
  if (hp.header.firstLsn !== nameLsn) {
    brk(
      {
        kind: "wal-header",
        severity: "error",
        segment: name,
        offset: 8,
        expectedLsn: nameLsn,
        torn: false,
        message: `segment ${name} header says its first LSN is ${hp.header.firstLsn}, its name says ${nameLsn}`,
      },
      path,
    );
  }
  return yield* scanRecords(reader, size, name, path, newest, SEGMENT_HEADER_SIZE, nameLsn, res, brk, hooks, progress);
}

/** The records of a segment from `pos` on, where LSN `expected` belongs; returns the last LSN when known. */
function* scanRecords(
  reader: SegmentReader,
  size: number,
  name: string,
  path: string,
  newest: boolean,
  pos: number,
  expected: number,
  res: WalScanResult,
  brk: (b: WalBreak, file: string) => void,
  hooks: WalScanHooks,
  progress: Progress | undefined,
): Work<number | undefined> {
  let n = 0;
  // Bytes of records handed on since the last yield: a hook's work grows with a record's size
  // (salvage applies every op), so big records yield sooner than every 256.
  let bytes = 0;
  // One pass per run of intact records: damage ends a run, and with `resync` the next valid record starts another.
  resync: for (;;) {
    let badReason: string | undefined;
    for (;;) {
      const p = reader.probe(pos);
      if (p.status === "end") break;
      if (p.status === "bad") {
        badReason = p.reason;
        break;
      }
      if (p.record.lsn !== expected) {
        brk(
          {
            kind: "wal-lsn",
            severity: "error",
            segment: name,
            offset: pos,
            expectedLsn: expected,
            torn: false,
            message: `segment ${name} holds LSN ${p.record.lsn} at offset ${pos} where LSN ${expected} belongs`,
          },
          path,
        );
        expected = p.record.lsn;
      }
      res.records++;
      res.lastLsn = p.record.lsn;
      hooks.onRecord?.(p.record, name, pos);
      pos += p.size;
      expected++;
      bytes += p.size;
      if (++n % 256 === 0 || bytes >= YIELD_BYTES) {
        bytes = 0;
        progress?.step(0);
        yield;
      }
    }
    if (pos >= size) return expected - 1;
    const ev = scanAfter(reader, pos + 8, expected, false);
    if (badReason === undefined && !ev.nonZero) return expected - 1; // clean end of the log, zeros after it
    const reason = badReason ?? "non-zero bytes after the end of the log";
    const later = ev.laterValid ? `; ${ev.laterValid} valid records follow it (up to LSN ${ev.maxLsn})` : "";
    // A sealed segment damaged, or the newest one with proof that the bad spot had been synced:
    // damage, not an interrupted append.
    // Unless the log grew under the walk (a writer opened since: `pos` holds LSN `expected` now):
    // then the walk's view ends before it.
    if (newest && ev.proof !== undefined && reader.holdsNow(pos, expected)) return expected - 1;
    if (!newest || ev.proof !== undefined) {
      const message = !newest
        ? `sealed segment ${name} is damaged at offset ${pos} where LSN ${expected} belongs: ${reason}${later}`
        : `segment ${name} is damaged at offset ${pos} where LSN ${expected} belongs (${reason}): the valid record of LSN ${ev.proof!.lsn} at offset ${ev.proof!.offset} was written after LSN ${expected} had been synced${later}`;
      brk({ kind: "wal-damaged", severity: "error", segment: name, offset: pos, expectedLsn: expected, torn: false, message }, path);
      const next = hooks.resync ? resyncAfterDamage(reader, pos, expected, !newest) : undefined;
      if (next !== undefined) {
        pos = next.offset;
        expected = next.lsn;
        continue resync;
      }
      return ev.maxLsn;
    }
    brk(
      {
        kind: "wal-torn-tail",
        severity: "warning",
        segment: name,
        offset: pos,
        expectedLsn: expected,
        torn: true,
        message: `the newest segment ${name} ends with a torn record at offset ${pos} (${reason}; ${size - pos} bytes${ev.laterValid ? `, ${ev.laterValid} unsynced records after it` : ""}): an interrupted append, which the next open truncates`,
      },
      path,
    );
    return expected - 1;
  }
}
