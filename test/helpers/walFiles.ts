/**
 * walFiles: look at and damage log segment files on the real file system, for the recovery and
 * phase suites. The layout (src/wal/SegmentHeader.ts, src/wal/LogRecord.ts): a 64-byte segment
 * header, then records on 8-byte boundaries, each starting with magic "KLR1" (u32 LE), its
 * unpadded length (u32 LE) ... and the LSN (u64 LE) at byte 16; zeros after the last record.
 */
import { closeSync, openSync, readdirSync, readFileSync, rmSync, truncateSync, writeSync } from "node:fs";
import { join } from "node:path";
import { encodeLogRecord, RECORD_MAGIC, alignRecord } from "../../src/wal/LogRecord.js";
import { probeSegmentHeader, SEGMENT_HEADER_SIZE } from "../../src/wal/SegmentHeader.js";
import { segmentName } from "../../src/wal/SegmentName.js";

export interface RecordPos {
  lsn: number;
  offset: number;
  /** Aligned size on disk. */
  size: number;
}

export interface SegmentScan {
  name: string;
  path: string;
  firstLsn: number;
  records: RecordPos[];
  /** Offset just after the last record. */
  end: number;
  fileSize: number;
}

export function segmentNames(dbDir: string): string[] {
  return readdirSync(join(dbDir, "wal"))
    .filter((n) => n.endsWith(".wal"))
    .sort();
}

/** Walk the records of a segment (trusting lengths; stops at zeros or anything else). */
export function scanSegment(dbDir: string, name: string): SegmentScan {
  const path = join(dbDir, "wal", name);
  const b = readFileSync(path);
  const records: RecordPos[] = [];
  let pos = SEGMENT_HEADER_SIZE;
  while (pos + 24 <= b.length && b.readUInt32LE(pos) === RECORD_MAGIC) {
    const len = b.readUInt32LE(pos + 4);
    const lsn = b.readUInt32LE(pos + 16) + b.readUInt32LE(pos + 20) * 0x1_0000_0000;
    const size = alignRecord(len);
    if (pos + size > b.length) break;
    records.push({ lsn, offset: pos, size });
    pos += size;
  }
  return { name, path, firstLsn: Number(name.slice(0, 20)), records, end: pos, fileSize: b.length };
}

export function writeAt(path: string, bytes: Uint8Array, offset: number): void {
  const fd = openSync(path, "r+");
  try {
    writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    closeSync(fd);
  }
}

/** XOR one byte of a file. */
export function flipByte(path: string, offset: number, mask = 0x5a): void {
  const b = readFileSync(path);
  const v = Buffer.from([b[offset]! ^ mask]);
  writeAt(path, v, offset);
}

/**
 * A torn append at the end of the newest segment: the first `fraction` of a well-formed record
 * for LSN lastLsn + 1 (as an interrupted write leaves it). Returns where it was written.
 */
export function appendTornRecord(dbDir: string, fraction = 0.5): { segment: string; offset: number; bytes: number } {
  let names = segmentNames(dbDir);
  // A kill during a segment roll can leave a newest segment whose header never reached the file (it
  // holds no record: recovery removes it). The torn record goes after the last real record instead.
  const top = names[names.length - 1]!;
  if (names.length > 1 && probeSegmentHeader(readFileSync(join(dbDir, "wal", top)).subarray(0, SEGMENT_HEADER_SIZE), top).status === "torn") {
    rmSync(join(dbDir, "wal", top));
    names = segmentNames(dbDir);
  }
  const newest = names[names.length - 1]!;
  const scan = scanSegment(dbDir, newest);
  const last = scan.records.length ? scan.records[scan.records.length - 1]!.lsn : scan.firstLsn - 1;
  const rec = encodeLogRecord(
    { lsn: last + 1, txTime: Date.now(), kind: "txn", ops: [{ type: "put", db: "", key: Buffer.from("torn-key"), value: Buffer.alloc(300, 7) }] },
    last,
  );
  const n = Math.max(9, Math.floor(rec.length * fraction));
  writeAt(scan.path, rec.subarray(0, n), scan.end);
  return { segment: newest, offset: scan.end, bytes: n };
}

/**
 * A newest segment whose header never fully reached the disk (an interrupted roll): a new file after
 * the newest segment, or, when the newest segment holds no record yet, that segment's own header cut.
 */
export function addTornSegment(dbDir: string): string {
  const names = segmentNames(dbDir);
  const newest = scanSegment(dbDir, names[names.length - 1]!);
  if (newest.records.length === 0) {
    truncateSync(newest.path, 10);
    return newest.name;
  }
  const last = newest.records[newest.records.length - 1]!.lsn;
  const name = segmentName(last + 1);
  const fd = openSync(join(dbDir, "wal", name), "wx");
  try {
    writeSync(fd, Buffer.from("KLWS\u0001\u0000torn", "latin1"));
  } finally {
    closeSync(fd);
  }
  return name;
}
