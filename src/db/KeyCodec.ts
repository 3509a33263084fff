/**
 * KeyCodec: user keys <-> encoded key bytes (held in memory as latin1 strings: byte order).
 *
 * - "ordered-binary" (default): strings, numbers, booleans, null, arrays of those and Buffers,
 *   ordered naturally (numbers numerically, strings by code point, arrays element-wise), via
 *   the ordered-binary package that lmdb-js uses.
 * - "binary": Buffer/Uint8Array keys as raw bytes, ordered bytewise.
 * - "string": strings as UTF-8, ordered bytewise.
 */
import { latin1Of } from "../util/latin1.js";
import { readKey, writeKey } from "ordered-binary";
import "../util/latin1.js";
import { invalidArgument } from "../errors.js";
import { wellFormed } from "../util/wellFormed.js";
import type { KeyEncodingName } from "../txn/Snapshot.js";

export type Key = string | number | boolean | null | Uint8Array | Key[];

const scratch = Buffer.allocUnsafeSlow(70 * 1024);
/** latin1Slice works on any Uint8Array: no Buffer view needs to be made for a binary key. */

export function encodeKey(key: unknown, enc: KeyEncodingName, maxKeySize: number): string {
  let len: number;
  if (enc === "ordered-binary") {
    if (key === undefined) throw invalidArgument("key is undefined", { argument: "key" });
    if (key instanceof Uint8Array) {
      if (key.length > maxKeySize) throw tooLong(key.length, maxKeySize);
      return latin1Of(key);
    }
    const k = normalize(key);
    if (roughSize(k) > maxKeySize) throw tooLong(roughSize(k), maxKeySize);
    // Past the scratch buffer writeKey fails with a bare RangeError: measure such a key in a
    // buffer of its own, so the refusal names the limit and the real size.
    // (ordered-binary views its target in whole 4-byte words: a length that is a multiple of 4.)
    const target = upperSize(k) > scratch.length ? Buffer.allocUnsafeSlow(((upperSize(k) + 3) >> 2) << 2) : scratch;
    try {
      len = writeKey(k as never, target, 0);
    } catch (e) {
      throw invalidArgument(`key cannot be encoded with ordered-binary: ${(e as Error).message}`, { argument: "key", keyEncoding: enc });
    }
    if (target !== scratch) {
      if (len > maxKeySize) throw tooLong(len, maxKeySize);
      return target.latin1Slice(0, len); // the bound overestimates: the key itself may fit
    }
  } else if (enc === "binary") {
    if (!(key instanceof Uint8Array)) throw invalidArgument('keyEncoding "binary" takes Buffer or Uint8Array keys', { argument: "key", keyEncoding: enc });
    if (key.length > maxKeySize) throw tooLong(key.length, maxKeySize);
    return latin1Of(key);
  } else {
    if (typeof key !== "string") throw invalidArgument('keyEncoding "string" takes string keys', { argument: "key", keyEncoding: enc });
    // A lone surrogate has no UTF-8 form: encoded as U+FFFD, two such keys would be one key.
    if (!wellFormed(key)) throw invalidArgument('keyEncoding "string" takes well-formed strings (this one holds a lone surrogate)', { argument: "key", keyEncoding: enc });
    if (key.length * 3 > scratch.length) throw tooLong(Buffer.byteLength(key), maxKeySize);
    len = scratch.write(key, 0, "utf8");
  }
  if (len > maxKeySize) throw tooLong(len, maxKeySize);
  return scratch.latin1Slice(0, len);
}

/**
 * -0 and 0 are one key (ordered-binary would encode -0 apart, after +Infinity). Only the types
 * README lists get through: ordered-binary itself also takes a BigInt (5n is the key 5, and
 * reads back as the number), a Symbol (stored by its description, read back as Symbol.for of it,
 * not the symbol given) and undefined or a hole inside an array (read back as null).
 */
function normalize(key: unknown): unknown {
  switch (typeof key) {
    case "string":
    case "boolean":
      return key;
    case "number":
      return key === 0 ? 0 : key;
    case "object":
      if (key === null || key instanceof Uint8Array) return key;
      if (Array.isArray(key)) {
        // By index, not map: map skips the holes of a sparse array, which ordered-binary writes as
        // nothing ([1, , 2] would read back as [1, null, 2]; new Array(2) would be the key null).
        const out = new Array<unknown>(key.length);
        for (let i = 0; i < key.length; i++) out[i] = normalize(key[i]);
        return out;
      }
  }
  const type = key === null ? "null" : typeof key === "object" ? (key.constructor?.name ?? "object") : typeof key;
  throw invalidArgument(`an ordered-binary key is a string, number, boolean, null, Buffer/Uint8Array or an array of those, not ${type === "undefined" ? "undefined" : `a ${type}`}`, {
    argument: "key",
    keyEncoding: "ordered-binary",
    type,
  });
}

/** A lower bound of the encoded size, so a huge key is refused by its limit before encoding. */
function roughSize(key: unknown): number {
  if (typeof key === "string") return key.length;
  if (Array.isArray(key)) {
    let n = 0;
    for (const k of key) n += roughSize(k) + 1;
    return n;
  }
  if (key instanceof Uint8Array) return key.length;
  return 1;
}

/** An upper bound of the encoded size (ordered-binary: UTF-8 strings, 9-byte numbers, separators). */
function upperSize(key: unknown): number {
  if (typeof key === "string") return key.length * 3 + 2;
  if (Array.isArray(key)) {
    let n = 1;
    for (const k of key) n += upperSize(k) + 1;
    return n;
  }
  if (key instanceof Uint8Array) return key.length + 2;
  return 10;
}

function tooLong(size: number, max: number) {
  return invalidArgument(`key of ${size} bytes exceeds maxKeySize ${max}`, { argument: "key", limit: "maxKeySize", max, size });
}

export function decodeKey(s: string, enc: KeyEncodingName): Key {
  if (enc === "binary") return Buffer.from(s, "latin1");
  const n = scratch.latin1Write(s, 0);
  if (enc === "string") return scratch.toString("utf8", 0, n);
  // readKey reads its first byte whatever the end: an empty key would decode stale scratch bytes.
  // Both keys that encode to nothing ([] and an empty Buffer) read back as an empty Buffer.
  if (n === 0) return Buffer.alloc(0);
  // readKey also reads a byte or so past `n` (an array ending in null): zeros there, not what an
  // earlier key left, or the key would read back as it did.
  scratch.fill(0, n, Math.min(n + 8, scratch.length));
  let k: Key;
  try {
    k = readFlatArray(scratch, n) ?? (readKey(scratch, 0, n) as Key);
  } catch {
    // Some arrays holding a Buffer have bytes readKey cannot parse (RangeError): such a key reads
    // back as its raw bytes, a Buffer key that names the same entry (a Buffer is stored raw).
    return Buffer.from(scratch.subarray(0, n));
  }
  return k instanceof Uint8Array ? Buffer.from(k) : k;
}

/**
 * readKey misreads flat arrays with a null followed by an element that starts with a 0x00 byte (the
 * next null): it takes the null's byte for the separator after it, so `["a", "b", null, null]`
 * (stored apart from `["a", "b", null]`) read back as that other key. The bytes themselves are
 * unambiguous for flat arrays of scalars, so the elements are bounded here and readKey decodes each
 * one alone. Undefined when `buf` is not such an array: one value, or an element this cannot bound
 * (raw Buffer bytes, a string of 64+ units holding raw control bytes): readKey reads those as ever.
 *
 * Element forms (writeKey with inSequence): null 0x00; false/true 0x06/0x07; a number 9 bytes whose
 * first is 0x08-0x17; a string starting with 0x1B (its escape) or a byte >= 0x1C, ending at a byte
 * below 4 (0x04 escapes the byte after it). Elements are joined by one 0x00.
 */
function readFlatArray(buf: Buffer, n: number): Key[] | undefined {
  const out: Key[] = [];
  let p = 0;
  for (;;) {
    const c = buf[p]!;
    let q: number;
    if (c === 0 || c === 6 || c === 7) q = p + 1;
    else if (c >= 8 && c < 24) q = p + 9;
    else if (c >= 27) {
      q = c === 27 ? p + 1 : p;
      while (q < n) {
        const b = buf[q]!;
        if (b < 4) break;
        q += b === 4 ? 2 : 1;
      }
    } else return undefined;
    if (p === 0 && q >= n) return undefined;
    if (q > n || (q < n && buf[q] !== 0)) return undefined;
    out.push(readKey(buf, p, q) as Key);
    if (q === n) return out;
    p = q + 1;
    if (p === n) return undefined;
  }
}

/** Key bytes for the write-ahead log and dumps. */
export function keyBytes(s: string): Buffer {
  return Buffer.from(s, "latin1");
}
