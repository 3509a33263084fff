/**
 * LogRecord: one committed transaction in the write-ahead log, and its binary codec.
 *
 * Invariants kept:
 * - I6: decoding any bytes either returns a record whose checksum, lengths and fields all
 *   validate, reports "end of log" (an all-zero record header), or reports why the bytes are not a
 *   record. `decodeLogRecord` turns the latter into KeelError CORRUPT with the segment and offset;
 *   no other exception escapes, and every loop is bounded by the record's declared length.
 * - Records start on 8-byte boundaries and are zero-padded to 8 bytes, so that a scanner looking
 *   for the next record start (recovery deciding between a torn tail and corruption) only probes
 *   aligned offsets.
 * - The checksum covers every byte of the record but the checksum field itself, so a damaged
 *   length, LSN or op is detected, not only a damaged payload.
 *
 * Layout (see docs/WAL-FORMAT.md): a 44-byte header
 *   magic u32 | length u32 | crc32 u32 | opCount u32 | lsn u64 | txTime u64 | syncedThrough u64 |
 *   kindLength u8 | flags u8 (0) | reserved u16 (0)
 * then the kind (UTF-8), then each op:
 *   type u8 | opFlags u8 (bit0 key, bit1 value) | dbLength u16 | keyLength u32 | valueLength u32 |
 *   db (UTF-8) | key | value
 * then zero padding to a multiple of 8. All integers little-endian.
 */
import { writeLatin1 } from "../util/latin1.js";
import { corrupt, invalidArgument, KeelError } from "../errors.js";
import { crc32 } from "./Crc32.js";

export type LogOpType = "put" | "remove" | "createDB" | "dropDB" | "clearDB";

export interface LogOp {
  type: LogOpType;
  /** Sub-database name ("" may name the default one: the db layer decides). */
  db: string;
  /**
   * Already-encoded key bytes; required by put and remove. When appending, the bytes may also be
   * given as a latin1 string (one char per byte), as the tree holds them: no copy is made.
   * Decoded records always carry Uint8Array.
   */
  key?: Uint8Array | string;
  /** Already-encoded value bytes (or a latin1 string of them when appending); required by put. */
  value?: Uint8Array | string;
}


/** An op as read back from the log: bytes are always Uint8Array. */
export interface StoredLogOp extends LogOp {
  key?: Uint8Array;
  value?: Uint8Array;
}

export interface LogRecord {
  /** Log sequence number: positive, contiguous, strictly increasing (I3). */
  lsn: number;
  /** Commit time, ms since the epoch. */
  txTime: number;
  /** "txn" for a normal commit; other kinds are room for later record types. */
  kind: string;
  ops: StoredLogOp[];
}

/** What the db layer hands to `append`: the log assigns the LSN; txTime defaults to now, kind to "txn". */
export interface NewLogRecord {
  txTime?: number;
  kind?: string;
  ops: LogOp[];
}

export const RECORD_MAGIC = 0x31524c4b; // bytes "KLR1"
export const RECORD_HEADER_SIZE = 44;
export const OP_HEADER_SIZE = 12;
export const RECORD_ALIGN = 8;
/** A larger transaction is refused at append; a larger declared length is corruption. */
export const MAX_RECORD_BYTES = 1 << 30;
export const MAX_KIND_BYTES = 255;
export const MAX_DB_NAME_BYTES = 0xffff;

const OP_CODES: Record<LogOpType, number> = { put: 1, remove: 2, createDB: 3, dropDB: 4, clearDB: 5 };
const OP_TYPES: (LogOpType | undefined)[] = [undefined, "put", "remove", "createDB", "dropDB", "clearDB"];
const FLAG_KEY = 1;
const FLAG_VALUE = 2;
const TWO32 = 0x1_0000_0000;
// The high word of a u64 that is still a safe integer.
const MAX_SAFE_HIGH = Math.floor(Number.MAX_SAFE_INTEGER / TWO32);

const utf8 = new TextEncoder();
// ignoreBOM: a leading U+FEFF is part of a sub-database name (TextEncoder wrote it), not a mark
// to strip: stripped, "\uFEFFusers" replayed into "users".
const utf8Strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * UTF-8 of record kinds and sub-database names, cached: every commit names them, and there are
 * few of them. Bounded, so a program that makes names up cannot grow it without limit.
 */
const nameCache = new Map<string, Uint8Array>();
function encodeName(s: string): Uint8Array {
  let b = nameCache.get(s);
  if (b === undefined) {
    b = utf8.encode(s);
    if (nameCache.size >= 4096) nameCache.clear();
    nameCache.set(s, b);
  }
  return b;
}

export function alignRecord(n: number): number {
  return Math.ceil(n / RECORD_ALIGN) * RECORD_ALIGN;
}

function writeU64(out: Buffer, at: number, v: number): void {
  out.writeUInt32LE(v % TWO32, at);
  out.writeUInt32LE(Math.floor(v / TWO32), at + 4);
}

/** undefined when the value is not a safe integer. */
function readU64(view: DataView, at: number): number | undefined {
  const high = view.getUint32(at + 4, true);
  if (high > MAX_SAFE_HIGH) return undefined;
  const v = high * TWO32 + view.getUint32(at, true);
  return Number.isSafeInteger(v) ? v : undefined;
}

function checkSafeNonNegative(name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw invalidArgument(`${name} must be a non-negative safe integer`, { argument: name, value: v });
  }
  return v;
}

/** The record bytes of one op list, measured without encoding (used to decide a roll before encoding). */
export interface PreparedRecord {
  kind: Uint8Array;
  dbs: Uint8Array[];
  length: number;
}

function prepare(rec: { kind: string; ops: LogOp[] }): PreparedRecord {
  if (typeof rec.kind !== "string" || rec.kind.length === 0) {
    throw invalidArgument("record kind must be a non-empty string", { argument: "kind", value: rec.kind });
  }
  const kind = encodeName(rec.kind);
  if (kind.length > MAX_KIND_BYTES) {
    throw invalidArgument(`record kind is longer than ${MAX_KIND_BYTES} UTF-8 bytes`, { argument: "kind", limit: MAX_KIND_BYTES });
  }
  if (!Array.isArray(rec.ops)) throw invalidArgument("record ops must be an array", { argument: "ops" });
  if (rec.ops.length > 0xffff_ffff) throw invalidArgument("too many ops in one record", { argument: "ops" });
  let length = RECORD_HEADER_SIZE + kind.length;
  const dbs: Uint8Array[] = [];
  for (let i = 0; i < rec.ops.length; i++) {
    const op = rec.ops[i]!;
    if (op === null || typeof op !== "object" || OP_CODES[op.type] === undefined) {
      throw invalidArgument(`op ${i} has an unknown type`, { argument: `ops[${i}].type`, value: op?.type });
    }
    if (typeof op.db !== "string") throw invalidArgument(`op ${i} needs a db name`, { argument: `ops[${i}].db` });
    // encodeName caches: a transaction of a million ops names a handful of sub-databases.
    const db = encodeName(op.db);
    if (db.length > MAX_DB_NAME_BYTES) {
      throw invalidArgument(`op ${i} db name is longer than ${MAX_DB_NAME_BYTES} UTF-8 bytes`, { argument: `ops[${i}].db`, limit: MAX_DB_NAME_BYTES });
    }
    if (op.key !== undefined && typeof op.key !== "string" && !(op.key instanceof Uint8Array)) {
      throw invalidArgument(`op ${i} key must be a Uint8Array`, { argument: `ops[${i}].key` });
    }
    if (op.value !== undefined && typeof op.value !== "string" && !(op.value instanceof Uint8Array)) {
      throw invalidArgument(`op ${i} value must be a Uint8Array`, { argument: `ops[${i}].value` });
    }
    if ((op.type === "put" || op.type === "remove") && op.key === undefined) {
      throw invalidArgument(`op ${i} (${op.type}) needs a key`, { argument: `ops[${i}].key` });
    }
    if (op.type === "put" && op.value === undefined) throw invalidArgument(`op ${i} (put) needs a value`, { argument: `ops[${i}].value` });
    dbs.push(db);
    length += OP_HEADER_SIZE + db.length + (op.key?.length ?? 0) + (op.value?.length ?? 0);
    if (length > MAX_RECORD_BYTES) {
      throw invalidArgument(`a log record may not exceed ${MAX_RECORD_BYTES} bytes`, { argument: "ops", limit: MAX_RECORD_BYTES });
    }
  }
  return { kind, dbs, length };
}

/** The aligned on-disk size of a record, with the same validation as encoding. */
export function measureLogRecord(rec: { kind: string; ops: LogOp[] }): number {
  return alignRecord(prepare(rec).length);
}

/** Validate and measure once (alignRecord(p.length) is the size); hand the result to encodeLogRecord. */
export function prepareLogRecord(rec: { kind: string; ops: LogOp[] }): PreparedRecord {
  return prepare(rec);
}

/**
 * Encode a record into a new zero-padded buffer of its aligned size.
 * `syncedThrough` is the highest LSN known durable when the record is written; recovery uses it
 * to tell an interrupted append from damage to a record that had been synced.
 * The buffer comes from Node's Buffer pool (a small record then costs no allocation of its own:
 * every commit encodes one), so every byte is written here: the header field by field, the
 * reserved header bytes and the padding as zeros.
 */
export function encodeLogRecord(
  rec: Omit<LogRecord, "ops"> & { ops: LogOp[] },
  syncedThrough = 0,
  /** prepareLogRecord of this very kind and op list, when the caller measured it already. */
  prepared?: PreparedRecord,
): Buffer {
  const lsn = checkSafeNonNegative("lsn", rec.lsn);
  if (lsn === 0) throw invalidArgument("lsn must be positive", { argument: "lsn", value: lsn });
  const txTime = checkSafeNonNegative("txTime", rec.txTime);
  checkSafeNonNegative("syncedThrough", syncedThrough);
  const p = prepared ?? prepare(rec);
  const size = alignRecord(p.length);
  const out = Buffer.allocUnsafe(size);
  out.writeUInt32LE(RECORD_MAGIC, 0);
  out.writeUInt32LE(p.length, 4);
  out.writeUInt32LE(rec.ops.length, 12);
  writeU64(out, 16, lsn);
  writeU64(out, 24, txTime);
  writeU64(out, 32, syncedThrough);
  out[40] = p.kind.length;
  out[41] = 0; // flags
  out[42] = 0; // reserved u16
  out[43] = 0;
  out.set(p.kind, RECORD_HEADER_SIZE);
  let at = RECORD_HEADER_SIZE + p.kind.length;
  for (let i = 0; i < rec.ops.length; i++) {
    const op = rec.ops[i]!;
    const db = p.dbs[i]!;
    out[at] = OP_CODES[op.type];
    out[at + 1] = (op.key !== undefined ? FLAG_KEY : 0) | (op.value !== undefined ? FLAG_VALUE : 0);
    out.writeUInt16LE(db.length, at + 2);
    out.writeUInt32LE(op.key?.length ?? 0, at + 4);
    out.writeUInt32LE(op.value?.length ?? 0, at + 8);
    at += OP_HEADER_SIZE;
    out.set(db, at);
    at += db.length;
    if (op.key !== undefined) {
      if (typeof op.key === "string") writeLatin1(out, op.key, at);
      else out.set(op.key, at);
      at += op.key.length;
    }
    if (op.value !== undefined) {
      if (typeof op.value === "string") writeLatin1(out, op.value, at);
      else out.set(op.value, at);
      at += op.value.length;
    }
  }
  out.fill(0, p.length, size);
  out.writeUInt32LE(recordCrc(out, p.length), 8);
  return out;
}

function recordCrc(bytes: Uint8Array, length: number): number {
  return crc32(bytes.subarray(12, length), crc32(bytes.subarray(0, 8)));
}

/** The outcome of looking at the bytes where a record may start. */
export type RecordProbe =
  | { status: "ok"; record: LogRecord; syncedThrough: number; size: number }
  /** An all-zero header (or nothing at all): the end of the log. */
  | { status: "end" }
  /** Not a valid record; `truncated` when the declared length runs past the bytes available. */
  | { status: "bad"; reason: string; truncated: boolean };

/** Whether a record may declare this length (header included, padding not). */
export function plausibleRecordLength(length: number): boolean {
  return length >= RECORD_HEADER_SIZE && length <= MAX_RECORD_BYTES;
}

/** Read the record length declared at `pos`, or undefined when it is not plausible. Never throws. */
export function declaredRecordLength(bytes: Uint8Array, pos: number, available: number): number | undefined {
  if (available < 8) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset + pos, 8);
  if (view.getUint32(0, true) !== RECORD_MAGIC) return undefined;
  const length = view.getUint32(4, true);
  return plausibleRecordLength(length) ? length : undefined;
}

/**
 * Examine `available` bytes at `bytes[pos..]` (the rest of the file from there, or at least the
 * record and its padding) as a record. Never throws. A record is "ok" only when its magic, length, checksum and every field validate.
 */
/**
 * `withOps` false: every check is made (structure, lengths, UTF-8 names) but no op is copied out and
 * the record comes back with no ops: for scans that need only LSNs and offsets (recovery), so that
 * opening a database does not copy every key and value of the log it will not replay.
 */
export function probeLogRecord(bytes: Uint8Array, pos: number, available: number, withOps = true): RecordProbe {
  available = Math.min(available, bytes.length - pos);
  if (available <= 0) return { status: "end" };
  const headLen = Math.min(8, available);
  let zero = true;
  for (let i = 0; i < headLen; i++) if (bytes[pos + i] !== 0) zero = false;
  if (zero) return { status: "end" };
  if (available < 8) return { status: "bad", reason: "record header cut short", truncated: true };
  const view = new DataView(bytes.buffer, bytes.byteOffset + pos, available);
  if (view.getUint32(0, true) !== RECORD_MAGIC) return { status: "bad", reason: "no record magic", truncated: false };
  const length = view.getUint32(4, true);
  if (!plausibleRecordLength(length)) {
    return { status: "bad", reason: `implausible record length ${length}`, truncated: false };
  }
  if (length > available) return { status: "bad", reason: `record of ${length} bytes cut short at ${available}`, truncated: true };
  const rec = bytes.subarray(pos, pos + length);
  if (view.getUint32(8, true) !== recordCrc(rec, length)) return { status: "bad", reason: "record checksum mismatch", truncated: false };
  // Padding is outside the checksum; requiring zeros there means any flipped byte is detected.
  const padEnd = Math.min(alignRecord(length), available);
  for (let i = length; i < padEnd; i++) if (bytes[pos + i] !== 0) return bad("record padding is not zero");
  return parseBody(view, rec, length, withOps);
}

const NO_OPS: readonly StoredLogOp[] = Object.freeze([]);

function bad(reason: string): RecordProbe {
  return { status: "bad", reason, truncated: false };
}

// Fields are validated even though the checksum matched: a checksum only proves the bytes are
// what some writer wrote, and the decoder must hold up against crafted input too (it is fuzzed).
function parseBody(view: DataView, rec: Uint8Array, length: number, withOps: boolean): RecordProbe {
  const opCount = view.getUint32(12, true);
  const lsn = readU64(view, 16);
  const txTime = readU64(view, 24);
  const syncedThrough = readU64(view, 32);
  if (lsn === undefined || lsn === 0) return bad("record LSN is not a positive safe integer");
  if (txTime === undefined) return bad("record txTime is not a safe integer");
  if (syncedThrough === undefined || syncedThrough >= lsn) return bad("record syncedThrough is not below its LSN");
  const kindLen = view.getUint8(40);
  if (view.getUint8(41) !== 0 || view.getUint16(42, true) !== 0) return bad("record reserved header bytes are not zero");
  if (kindLen === 0 || RECORD_HEADER_SIZE + kindLen > length) return bad("record kind length out of range");
  const kind = decodeUtf8(rec.subarray(RECORD_HEADER_SIZE, RECORD_HEADER_SIZE + kindLen));
  if (kind === undefined) return bad("record kind is not UTF-8");
  let at = RECORD_HEADER_SIZE + kindLen;
  // Each op takes at least OP_HEADER_SIZE bytes: bounds the loop before it starts.
  if (opCount > (length - at) / OP_HEADER_SIZE) return bad(`op count ${opCount} does not fit the record`);
  const ops: StoredLogOp[] = [];
  let lastDbAt = -1;
  let lastDbLen = -1;
  for (let i = 0; i < opCount; i++) {
    if (at + OP_HEADER_SIZE > length) return bad(`op ${i} header runs past the record`);
    const type = OP_TYPES[view.getUint8(at)];
    const flags = view.getUint8(at + 1);
    const dbLen = view.getUint16(at + 2, true);
    const keyLen = view.getUint32(at + 4, true);
    const valueLen = view.getUint32(at + 8, true);
    if (type === undefined) return bad(`op ${i} has unknown type ${view.getUint8(at)}`);
    if ((flags & ~(FLAG_KEY | FLAG_VALUE)) !== 0) return bad(`op ${i} has unknown flags ${flags}`);
    const hasKey = (flags & FLAG_KEY) !== 0;
    const hasValue = (flags & FLAG_VALUE) !== 0;
    if ((!hasKey && keyLen !== 0) || (!hasValue && valueLen !== 0)) return bad(`op ${i} has a length for an absent field`);
    if ((type === "put" || type === "remove") && !hasKey) return bad(`op ${i} (${type}) has no key`);
    if (type === "put" && !hasValue) return bad(`op ${i} (put) has no value`);
    at += OP_HEADER_SIZE;
    if (dbLen + keyLen + valueLen > length - at) return bad(`op ${i} runs past the record`);
    if (!withOps) {
      // Ops of one record mostly name the same sub-database: decode a name only when it changes.
      if (!sameBytes(rec, at, lastDbAt, dbLen, lastDbLen) && decodeUtf8(rec.subarray(at, at + dbLen)) === undefined) return bad(`op ${i} db name is not UTF-8`);
      lastDbAt = at;
      lastDbLen = dbLen;
      at += dbLen + keyLen + valueLen;
      continue;
    }
    const db = decodeUtf8(rec.subarray(at, at + dbLen));
    if (db === undefined) return bad(`op ${i} db name is not UTF-8`);
    at += dbLen;
    const op: StoredLogOp = { type, db };
    if (hasKey) {
      op.key = rec.slice(at, at + keyLen);
      at += keyLen;
    }
    if (hasValue) {
      op.value = rec.slice(at, at + valueLen);
      at += valueLen;
    }
    ops.push(op);
  }
  if (at !== length) return bad(`record has ${length - at} bytes after its last op`);
  return { status: "ok", record: { lsn, txTime, kind, ops: withOps ? ops : (NO_OPS as StoredLogOp[]) }, syncedThrough, size: alignRecord(length) };
}

function sameBytes(b: Uint8Array, at: number, prevAt: number, len: number, prevLen: number): boolean {
  if (prevAt < 0 || len !== prevLen) return false;
  for (let j = 0; j < len; j++) if (b[at + j] !== b[prevAt + j]) return false;
  return true;
}

function decodeUtf8(b: Uint8Array): string | undefined {
  try {
    return utf8Strict.decode(b);
  } catch {
    return undefined;
  }
}

/** Where a record was read, for error details. */
export interface RecordLocation {
  segment?: string;
  offset?: number;
}

/**
 * Decode the record at `bytes[pos..]`. Returns undefined at the end of the log (zero header);
 * throws KeelError CORRUPT, naming the segment and offset, on anything else that is not a record.
 */
export function decodeLogRecord(
  bytes: Uint8Array,
  pos = 0,
  where: RecordLocation = {},
): { record: LogRecord; syncedThrough: number; size: number } | undefined {
  if (!Number.isSafeInteger(pos) || pos < 0) throw invalidArgument("pos must be a non-negative integer", { argument: "pos", value: pos });
  let probe: RecordProbe;
  try {
    probe = probeLogRecord(bytes, pos, bytes.length - pos);
  } catch (e) {
    // probeLogRecord is written not to throw; this keeps I6 even if it ever does.
    if (e instanceof KeelError) throw e;
    probe = { status: "bad", reason: `decoder failure: ${String(e)}`, truncated: false };
  }
  if (probe.status === "end") return undefined;
  if (probe.status === "bad") {
    const offset = where.offset ?? pos;
    throw corrupt(`bad log record${where.segment ? ` in segment ${where.segment}` : ""} at offset ${offset}: ${probe.reason}`, {
      segment: where.segment,
      offset,
      reason: probe.reason,
    });
  }
  return probe;
}
