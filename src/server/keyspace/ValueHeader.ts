/**
 * ValueHeader: the layout of a key's value in the main sub-database of a logical db.
 *
 *   byte 0      type (0 string, 1 hash)
 *   bytes 1..8  expireAt: absolute Unix time in ms, big-endian u64; 0 = no expiry
 *   string:     bytes 9.. the value
 *   hash:       bytes 9..12 number of fields (u32 BE); the fields live in the hash sub-database
 *
 * Invariants: expireAt is absolute, so an expiry survives a restart unchanged; a hash header's field
 * count equals the number of its entries in the hash sub-database, and is never 0 (an empty hash is
 * deleted).
 */
export const T_STRING = 0;
export const T_HASH = 1;
export const HEADER = 9;
const TWO32 = 2 ** 32;

export interface Header {
  readonly type: number;
  readonly expireAt: number;
}

export function readExpireAt(v: Buffer): number {
  return v.readUInt32BE(1) * TWO32 + v.readUInt32BE(5);
}

/** readExpireAt of a value held as a latin1 string (one char per byte). */
export function readExpireAtLatin1(v: string): number {
  const hi = ((v.charCodeAt(1) << 24) | (v.charCodeAt(2) << 16) | (v.charCodeAt(3) << 8) | v.charCodeAt(4)) >>> 0;
  const lo = ((v.charCodeAt(5) << 24) | (v.charCodeAt(6) << 16) | (v.charCodeAt(7) << 8) | v.charCodeAt(8)) >>> 0;
  return hi * TWO32 + lo;
}

export function writeU64(b: Buffer, off: number, n: number): void {
  b.writeUInt32BE(Math.floor(n / TWO32), off);
  b.writeUInt32BE(n % TWO32 >>> 0, off + 4);
}

export function encodeString(value: Buffer, expireAt: number): Buffer {
  const b = Buffer.allocUnsafe(HEADER + value.length);
  b[0] = T_STRING;
  writeU64(b, 1, expireAt);
  value.copy(b, HEADER);
  return b;
}

export function encodeHash(count: number, expireAt: number): Buffer {
  const b = Buffer.allocUnsafe(HEADER + 4);
  b[0] = T_HASH;
  writeU64(b, 1, expireAt);
  b.writeUInt32BE(count, HEADER);
  return b;
}

export function hashCount(v: Buffer): number {
  return v.readUInt32BE(HEADER);
}

/** Same value with another expireAt (a copy). */
export function withExpireAt(v: Buffer, expireAt: number): Buffer {
  const b = Buffer.from(v);
  writeU64(b, 1, expireAt);
  return b;
}

/** Key of the expiry index: expireAt (u64 BE, so keys sort by time) followed by the key. */
export function expiryKey(expireAt: number, key: Buffer): Buffer {
  const b = Buffer.allocUnsafe(8 + key.length);
  writeU64(b, 0, expireAt);
  key.copy(b, 8);
  return b;
}

/** Prefix of a hash's fields in the hash sub-database: u32 BE key length, then the key. */
export function fieldPrefix(key: Buffer): Buffer {
  const b = Buffer.allocUnsafe(4 + key.length);
  b.writeUInt32BE(key.length, 0);
  key.copy(b, 4);
  return b;
}

/** The smallest key greater than every key starting with `prefix` (undefined: no bound). */
export function prefixEnd(prefix: Buffer): Buffer | undefined {
  const b = Buffer.from(prefix);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i]! < 0xff) {
      b[i] = b[i]! + 1;
      return b.subarray(0, i + 1);
    }
  }
  return undefined;
}
