/**
 * LogSegment: one segment file of the log: its identity, the extent of its records, a sparse
 * LSN -> offset index, and (while it is the active segment) its write handle.
 *
 * Invariants kept:
 * - A segment file becomes visible to recovery only after its header (and the first preallocated
 *   chunk) is synced and the wal directory is synced: no record is ever written into a segment
 *   whose header might not be durable. This is what makes a torn header of the newest segment
 *   provably an interrupted roll (see WalRecovery).
 * - Records are only written at `end`, into bytes that preallocation has already zeroed and synced
 *   (when preallocation is on), so a commit's fdatasync overwrites allocated blocks instead of
 *   growing the file, and the zeros after the last record read as "end of log".
 * - A large record whose own write fails (a full disk: it skips preallocation) is taken back, zeros
 *   again and the file cut to its allocated size, so nothing of it can be read as a record later.
 * - A sealed segment is truncated to its last record and synced before the next segment is
 *   created: every segment but the newest is entirely on stable storage.
 * - The write handle is closed only when no asynchronous sync is running on it (closing a file
 *   descriptor while fdatasync runs on libuv's pool could sync, or fail on, a reused descriptor).
 */
import { join } from "node:path";
import { ioError, KeelError } from "../errors.js";
import type { FileHandle, FileSystem } from "../io/FileSystem.js";
import { encodeSegmentHeader, SEGMENT_HEADER_SIZE } from "./SegmentHeader.js";
import { segmentName } from "./SegmentName.js";

/** What `WriteAheadLog.segments()` reports per segment. */
export interface SegmentInfo {
  name: string;
  path: string;
  firstLsn: number;
  /** firstLsn - 1 when the segment holds no record yet. */
  lastLsn: number;
  records: number;
  /** Bytes in use: the header and the records (what retention counts). */
  bytes: number;
  /** Bytes on disk, preallocated zeros included. */
  fileBytes: number;
  /** Every segment but the active one is sealed: complete, synced, never written again. */
  sealed: boolean;
  /** ms since the epoch, from the segment header. */
  createdAt: number;
  /** txTime of the newest record, undefined when empty. */
  lastTxTime: number | undefined;
}

export interface SegmentState {
  name: string;
  path: string;
  firstLsn: number;
  createdAt: number;
  lastLsn: number;
  end: number;
  fileSize: number;
  lastTxTime: number | undefined;
}

export type PhaseHook = (name: string) => void;

/**
 * A record's write failed and left the segment exactly as before it (see LogSegment.write): the
 * record was not committed and later records may be appended. `error` is the coded IO/FULL error.
 */
export class RecordNotWritten extends Error {
  constructor(readonly error: KeelError) {
    super(error.message);
  }
}

// One index entry per this many bytes of records keeps a reader's seek within one chunk read.
const INDEX_STRIDE = 256 * 1024;
const ZEROS = new Uint8Array(1 << 20);

export class LogSegment {
  readonly name: string;
  readonly path: string;
  readonly firstLsn: number;
  readonly createdAt: number;
  #lastLsn: number;
  #end: number;
  #fileSize: number;
  #lastTxTime: number | undefined;
  #index: { lsn: number; offset: number }[] = [];
  #handle: FileHandle | undefined;
  #inflight = 0;
  #retired = false;

  constructor(s: SegmentState) {
    this.name = s.name;
    this.path = s.path;
    this.firstLsn = s.firstLsn;
    this.createdAt = s.createdAt;
    this.#lastLsn = s.lastLsn;
    this.#end = s.end;
    this.#fileSize = s.fileSize;
    this.#lastTxTime = s.lastTxTime;
  }

  /**
   * Create a new segment file: header plus first preallocated chunk, synced, then the directory
   * synced. On failure the partial file is removed; if even that fails the error carries
   * `details.leftBehind = true` and the caller must stop appending (recovery would otherwise take
   * the leftover for the newest segment and the segment before it for sealed).
   */
  static create(fs: FileSystem, walDir: string, firstLsn: number, createdAt: number, preallocBytes: number, onPhase?: PhaseHook): LogSegment {
    const name = segmentName(firstLsn);
    const path = join(walDir, name);
    let hookThrew = false;
    const hook = (phase: string): void => {
      try {
        onPhase?.(phase);
      } catch (e) {
        hookThrew = true;
        throw e;
      }
    };
    hook("wal-segment-roll:before-header");
    let handle: FileHandle;
    try {
      handle = fs.open(path, "createExclusive");
    } catch (e) {
      throw ioError(e, "create segment", path);
    }
    let fileSize = SEGMENT_HEADER_SIZE;
    try {
      handle.write(encodeSegmentHeader(firstLsn, createdAt), 0, SEGMENT_HEADER_SIZE, 0);
      if (preallocBytes > 0) fileSize = writeZeros(handle, SEGMENT_HEADER_SIZE, roundUp(SEGMENT_HEADER_SIZE, preallocBytes));
      handle.sync();
      hook("wal-segment-roll:after-header");
      fs.syncDir(walDir);
      hook("wal-segment-roll:after-dir-sync");
    } catch (e) {
      // A hook that throws stands for a crash at that point: leave the disk exactly as it is.
      if (hookThrew) throw e;
      let leftBehind = false;
      try {
        handle.close();
      } catch {
        // The descriptor is gone either way; removing the file is what matters.
      }
      try {
        fs.remove(path);
        fs.syncDir(walDir);
      } catch {
        leftBehind = true;
      }
      const err = ioError(e, "create segment", path);
      throw new KeelError(err.code, err.message, { ...err.details, leftBehind }, { cause: e });
    }
    const seg = new LogSegment({ name, path, firstLsn, createdAt, lastLsn: firstLsn - 1, end: SEGMENT_HEADER_SIZE, fileSize, lastTxTime: undefined });
    seg.#handle = handle;
    return seg;
  }

  #pending = new Uint8Array(64 * 1024);
  #pendingLen = 0;
  #pendingAt = 0;

  get lastLsn(): number {
    return this.#lastLsn;
  }
  get end(): number {
    return this.#end;
  }
  get fileSize(): number {
    return this.#fileSize;
  }
  get lastTxTime(): number | undefined {
    return this.#lastTxTime;
  }
  get records(): number {
    return this.#lastLsn - this.firstLsn + 1;
  }
  get isActive(): boolean {
    return this.#handle !== undefined && !this.#retired;
  }

  /** Make this segment the one appended to, with a handle opened read-write. */
  attach(handle: FileHandle): void {
    this.#handle = handle;
  }

  /** Record that the record `lsn` of `size` aligned bytes sits at `offset` (recovery scan or append). */
  noteRecord(lsn: number, offset: number, size: number, txTime: number): void {
    const lastIndexed = this.#index[this.#index.length - 1];
    if (lastIndexed === undefined || offset - lastIndexed.offset >= INDEX_STRIDE) this.#index.push({ lsn, offset });
    this.#lastLsn = lsn;
    this.#end = offset + size;
    this.#lastTxTime = txTime;
    if (this.#end > this.#fileSize) this.#fileSize = this.#end;
  }

  /** Recovery cut the file at `size` (the end of the last valid record). */
  noteTruncated(size: number): void {
    this.#fileSize = size;
  }

  /** The offset to start scanning at to find `lsn`: the nearest indexed record at or before it. */
  seek(lsn: number): { offset: number; lsn: number } {
    let lo = 0;
    let hi = this.#index.length - 1;
    let best: { offset: number; lsn: number } = { offset: SEGMENT_HEADER_SIZE, lsn: this.firstLsn };
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const e = this.#index[mid]!;
      if (e.lsn <= lsn) {
        best = e;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return best;
  }

  #active(): FileHandle {
    if (this.#handle === undefined || this.#retired) {
      throw new KeelError("INTERNAL", `segment ${this.name} is not open for writing`, { segment: this.name });
    }
    return this.#handle;
  }

  /**
   * Make sure [0, needEnd) is allocated: zero-fill up to the next multiple of `chunk` and sync
   * once. Returns true when it synced (which also made every record written before durable).
   * With chunk 0 preallocation is off and the file grows with each write.
   */
  ensureCapacity(needEnd: number, chunk: number): boolean {
    if (needEnd <= this.#fileSize || chunk <= 0) return false;
    // A record larger than a chunk (a bulk transaction) just extends the file: zero-filling
    // first would write it twice. Preallocation pays off for the many small appends.
    if (needEnd - this.#fileSize > chunk) return false;
    const h = this.#active();
    const target = roundUp(needEnd, chunk);
    try {
      writeZeros(h, this.#fileSize, target);
    } catch (e) {
      // The zeros that did land would hold the space of a full disk for nothing: cut them off
      // (best effort: zeros past the records read as the end of the log either way).
      try {
        h.truncate(this.#fileSize);
      } catch {
        // the preallocate error below is the one to report
      }
      throw ioError(e, "preallocate", this.path);
    }
    this.#fileSize = target;
    this.syncSync();
    return true;
  }

  /**
   * Append `bytes` at `offset` (always the current end). Records are gathered in memory and
   * written in one call: before every sync, seal and read of this segment, when 64 KiB are
   * waiting, and when the log asks (flush). A record is never durable before a sync, so holding
   * it until the sync that would make it durable changes no guarantee; it saves one system call
   * per commit. A failed flush means records with LSNs are missing from the file: the caller
   * must put the log in its failed state. The one exception is RecordNotWritten: a large record
   * written by itself failed and was taken back (#writeAlone).
   */
  write(bytes: Uint8Array, offset: number): void {
    if (this.#pendingLen > 0 && this.#pendingAt + this.#pendingLen !== offset) this.flush();
    if (this.#pendingLen === 0) this.#pendingAt = offset;
    if (this.#pendingLen + bytes.length > this.#pending.length) {
      if (this.#pendingLen > 0) this.flush();
      if (bytes.length > this.#pending.length) {
        this.#writeAlone(bytes, offset);
        return;
      }
      this.#pendingAt = offset;
    }
    this.#pending.set(bytes, this.#pendingLen);
    this.#pendingLen += bytes.length;
    if (offset + bytes.length > this.#fileSize) this.#fileSize = offset + bytes.length;
  }

  /** Bytes appended but not yet handed to the operating system. */
  get unflushed(): number {
    return this.#pendingLen;
  }

  /** Hand every gathered record to the operating system (one write). */
  flush(): void {
    if (this.#pendingLen === 0) return;
    // Kept until the write succeeds: a retry rewrites the same bytes at the same offset, so a
    // failed (or partial) write never leaves a hole behind later records.
    this.#writeNow(this.#pending.subarray(0, this.#pendingLen), this.#pendingAt);
    this.#pendingLen = 0;
  }

  /**
   * Write one large record by itself (nothing gathered is waiting: write() flushed it first).
   * If that write fails, the bytes it may have left are taken back before the error goes up:
   * zeros again inside the allocated extent, the file cut back to it beyond. The record had no
   * LSN yet and nothing else was pending, so the log is then exactly as before the call and stays
   * usable (RecordNotWritten). A large record skips preallocation (ensureCapacity), so this is
   * where a full disk meets it; if the bytes cannot be taken back (or that cannot be synced), the
   * error is a plain failed write, which the caller treats as fatal.
   */
  #writeAlone(bytes: Uint8Array, offset: number): void {
    const allocated = this.#fileSize;
    try {
      this.#writeNow(bytes, offset);
    } catch (e) {
      try {
        const h = this.#active();
        if (offset < allocated) writeZeros(h, offset, Math.min(allocated, offset + bytes.length));
        h.truncate(allocated);
        // Durable before anything is appended over it: a power cut must not find the failed
        // record's prefix behind the next records (a payload can hold record-shaped bytes).
        h.sync();
      } catch {
        throw e;
      }
      throw new RecordNotWritten(e as KeelError);
    }
  }

  #writeNow(bytes: Uint8Array, offset: number): void {
    try {
      this.#active().write(bytes, 0, bytes.length, offset);
    } catch (e) {
      throw ioError(e, "write", this.path);
    }
    if (offset + bytes.length > this.#fileSize) this.#fileSize = offset + bytes.length;
  }

  syncSync(): void {
    this.flush();
    try {
      this.#active().sync();
    } catch (e) {
      throw ioError(e, "fdatasync", this.path);
    }
  }

  /** fdatasync on the pool; the handle stays open until this settles, even if the segment is retired meanwhile. */
  async syncAsync(): Promise<void> {
    this.flush();
    const h = this.#active();
    this.#inflight++;
    try {
      await h.syncAsync();
    } catch (e) {
      throw ioError(e, "fdatasync", this.path);
    } finally {
      this.#inflight--;
      if (this.#retired && this.#inflight === 0) this.#closeHandle();
    }
  }

  /** Seal: cut the preallocated zeros off and sync, so the file holds exactly its records. */
  seal(): void {
    this.flush();
    const h = this.#active();
    try {
      if (this.#fileSize !== this.#end) h.truncate(this.#end);
    } catch (e) {
      throw ioError(e, "truncate", this.path);
    }
    this.#fileSize = this.#end;
    this.syncSync();
  }

  /** Stop writing here; the handle closes now or when the running async sync settles. */
  retire(): void {
    if (this.#retired) return;
    try {
      this.flush();
    } catch {
      // Retiring after a failure: the log is failed already and recovery decides what survived.
    }
    this.#retired = true;
    if (this.#inflight === 0) this.#closeHandle();
  }

  #closeHandle(): void {
    const h = this.#handle;
    this.#handle = undefined;
    try {
      h?.close();
    } catch {
      // Everything that mattered was synced before retiring; a failing close loses nothing.
    }
  }

  info(sealed: boolean): SegmentInfo {
    return {
      name: this.name,
      path: this.path,
      firstLsn: this.firstLsn,
      lastLsn: this.#lastLsn,
      records: this.records,
      bytes: this.#end,
      fileBytes: this.#fileSize,
      sealed,
      createdAt: this.createdAt,
      lastTxTime: this.#lastTxTime,
    };
  }
}

function roundUp(n: number, chunk: number): number {
  return Math.ceil(n / chunk) * chunk;
}

/** Write zeros over [from, to); returns `to`. */
function writeZeros(h: FileHandle, from: number, to: number): number {
  for (let at = from; at < to; ) {
    const n = Math.min(ZEROS.length, to - at);
    h.write(ZEROS, 0, n, at);
    at += n;
  }
  return to;
}
