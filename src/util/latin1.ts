/**
 * Typing for Buffer's latin1 fast paths (present on Buffer.prototype in every Node release we
 * support). Keys live in memory as latin1 strings, one char per byte, so `<` on strings is
 * memcmp order; these two calls are on the hot path of every page decode and encode.
 */
declare global {
  interface Buffer {
    latin1Slice(start: number, end: number): string;
    latin1Write(str: string, offset: number, length?: number): number;
  }
}

if (typeof (Buffer.prototype as { latin1Slice?: unknown }).latin1Slice !== "function") {
  Buffer.prototype.latin1Slice = function (this: Buffer, start: number, end: number) {
    return this.toString("latin1", start, end);
  };
  Buffer.prototype.latin1Write = function (this: Buffer, str: string, offset: number, length?: number) {
    return this.write(str, offset, length ?? this.length - offset, "latin1");
  };
}

export {};

const sliceImpl = Buffer.prototype.latin1Slice as (this: Uint8Array, start: number, end: number) => string;
const writeImpl = Buffer.prototype.latin1Write as (this: Uint8Array, s: string, offset: number) => number;

/** The bytes [start, end) of any Uint8Array as a latin1 string (no Buffer view is made). */
export function latin1Of(bytes: Uint8Array, start = 0, end = bytes.length): string {
  return sliceImpl.call(bytes, start, end);
}

/**
 * Up to this many chars are copied by a loop in JS: a call into latin1Write costs about what
 * copying 30 chars does (page encoding spends most of its time on short keys, and branch pages
 * hold nothing but short separators).
 */
const SHORT = 32;

/**
 * Write a latin1 string's bytes into any Uint8Array at `offset`; returns the count written, which
 * is short when the target ends first (as Buffer's latin1Write: callers check it).
 */
export function writeLatin1(target: Uint8Array, s: string, offset: number): number {
  const n = s.length;
  if (n > SHORT || offset + n > target.length) return writeImpl.call(target, s, offset);
  for (let i = 0; i < n; i++) target[offset + i] = s.charCodeAt(i);
  return n;
}
