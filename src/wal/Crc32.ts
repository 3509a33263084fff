/**
 * crc32: the CRC-32 (IEEE, the zlib/gzip polynomial) of a byte range, continuable.
 *
 * Invariants kept:
 * - The same bytes always give the same value whichever implementation runs: node's native
 *   zlib.crc32 (Node >= 20.15) and the table-driven fallback compute the identical function, so a
 *   log written by one Node version verifies under another.
 * - Never throws on any byte input.
 */
import * as zlib from "node:zlib";

type Crc32Fn = (data: Uint8Array, value?: number) => number;

let table: Uint32Array | undefined;

function tableCrc32(data: Uint8Array, value = 0): number {
  if (table === undefined) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  const t = table;
  let c = (value ^ 0xffffffff) >>> 0;
  for (let i = 0; i < data.length; i++) c = (t[(c ^ data[i]!) & 0xff]! ^ (c >>> 8)) >>> 0;
  return (c ^ 0xffffffff) >>> 0;
}

// Looked up through the namespace object so that a Node without zlib.crc32 loads this module
// (a named import of a missing export would fail at link time).
const native = (zlib as unknown as { crc32?: Crc32Fn }).crc32;

/** CRC-32 of `data`, continuing from `value` (the CRC of the bytes before it). */
export const crc32: Crc32Fn =
  typeof native === "function" ? (data, value = 0) => native(data, value) >>> 0 : tableCrc32;

/** The JS fallback, exported so that tests can check it agrees with the native one. */
export const crc32Fallback: Crc32Fn = tableCrc32;
