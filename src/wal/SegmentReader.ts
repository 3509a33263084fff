/**
 * SegmentReader: buffered, bounds-checked reads of one segment file, and record probing on top.
 *
 * Invariants kept:
 * - Never reads past `fileEnd` (the end the caller vouches for: the file size at recovery, or
 *   the end of the last committed record for a reader running beside the appender).
 * - I/O failures surface as KeelError IO/FULL naming the file; malformed bytes never throw here
 *   (probing reports them and the caller decides between torn tail and CORRUPT).
 */
import { ioError } from "../errors.js";
import type { FileHandle } from "../io/FileSystem.js";
import { alignRecord, declaredRecordLength, probeLogRecord, type RecordProbe } from "./LogRecord.js";

const DEFAULT_CHUNK = 1 << 20;

export interface ByteWindow {
  bytes: Uint8Array;
  /** Index in `bytes` of the requested position. */
  at: number;
  /** Bytes available from `at` (fewer than asked only at fileEnd). */
  available: number;
}

export class SegmentReader {
  readonly #handle: FileHandle;
  readonly #fileEnd: number;
  readonly #chunk: number;
  #buf: Uint8Array;
  #bufPos = 0;
  #bufLen = 0;

  constructor(handle: FileHandle, fileEnd: number, chunk = DEFAULT_CHUNK) {
    this.#handle = handle;
    this.#fileEnd = fileEnd;
    this.#chunk = chunk;
    this.#buf = new Uint8Array(Math.min(chunk, Math.max(fileEnd, 64)));
  }

  get fileEnd(): number {
    return this.#fileEnd;
  }

  /** Make bytes [pos, pos+length) (clipped at fileEnd) available. The window is valid until the next call. */
  window(pos: number, length: number): ByteWindow {
    const want = Math.max(0, Math.min(length, this.#fileEnd - pos));
    if (pos >= this.#bufPos && pos + want <= this.#bufPos + this.#bufLen) {
      return { bytes: this.#buf, at: pos - this.#bufPos, available: want };
    }
    if (want > this.#buf.length) this.#buf = new Uint8Array(want);
    const toRead = Math.min(this.#buf.length, this.#fileEnd - pos);
    let got: number;
    try {
      got = toRead > 0 ? this.#handle.read(this.#buf, 0, toRead, pos) : 0;
    } catch (e) {
      throw ioError(e, "read", this.#handle.path);
    }
    this.#bufPos = pos;
    this.#bufLen = got;
    // A file shorter than promised reads as zeros past its end, i.e. as the end of the log;
    // recovery measured the size itself, so this only matters for a file shrunk under a reader.
    if (got < want) this.#buf.fill(0, got, want);
    this.#bufLen = Math.max(got, want);
    return { bytes: this.#buf, at: 0, available: want };
  }

  /**
   * Probe the bytes at `pos` as a record (never throws for bad bytes). `withOps` false checks the
   * record fully but returns it without its ops (see probeLogRecord).
   */
  probe(pos: number, withOps = true): RecordProbe {
    const head = this.window(pos, 8);
    if (head.available === 0) return { status: "end" };
    const declared = declaredRecordLength(head.bytes, head.at, head.available);
    if (declared === undefined) return probeLogRecord(head.bytes, head.at, head.available, withOps);
    const w = this.window(pos, alignRecord(declared));
    return probeLogRecord(w.bytes, w.at, w.available, withOps);
  }

  /**
   * Whether `pos` holds a valid record of LSN `lsn` in bytes read now, not in what this reader
   * kept: a log read without the LOCK (a read-only open, verify of a stopped database) may be
   * appended to by a writer that opened since.
   */
  holdsNow(pos: number, lsn: number): boolean {
    this.#bufLen = 0;
    const p = this.probe(pos, false);
    return p.status === "ok" && p.record.lsn === lsn;
  }

  get chunk(): number {
    return this.#chunk;
  }
}
