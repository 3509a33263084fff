/**
 * Reply: what a command answers, independent of the protocol version. RespWriter turns it into
 * RESP2 or RESP3 bytes; commands never build wire bytes themselves.
 *
 * Invariant: an `err` text starts with its Redis error code (ERR, WRONGTYPE, NOAUTH, ...) and is one
 * valid simple-error line: each CR or LF becomes a space (as Redis does), and it holds only chars
 * 0-255, because the writer sends simple strings as latin1 (a char above 255 would be cut to its low
 * byte, and U+010D would become a raw CR). User bytes quoted in an error are decoded as latin1, so
 * they go back to the client unchanged.
 */
export type Reply =
  | { readonly t: "simple"; readonly s: string }
  | { readonly t: "err"; readonly s: string }
  | { readonly t: "int"; readonly n: number | bigint }
  | { readonly t: "bulk"; readonly b: Buffer }
  /** A bulk string whose bytes are given as a latin1 string (one char per byte), as the tree holds small values. */
  | { readonly t: "bulkLatin1"; readonly s: string }
  | { readonly t: "null" }
  | { readonly t: "nullarr" }
  | { readonly t: "arr"; readonly items: readonly Reply[] }
  | { readonly t: "map"; readonly entries: ReadonlyArray<readonly [Reply, Reply]> }
  | { readonly t: "set"; readonly items: readonly Reply[] }
  | { readonly t: "verbatim"; readonly s: string }
  | { readonly t: "bool"; readonly v: boolean };

export const OK: Reply = { t: "simple", s: "OK" };
export const QUEUED: Reply = { t: "simple", s: "QUEUED" };
export const NULL: Reply = { t: "null" };
export const NULL_ARRAY: Reply = { t: "nullarr" };
export const ZERO: Reply = { t: "int", n: 0 };
export const ONE: Reply = { t: "int", n: 1 };
export const EMPTY_ARRAY: Reply = { t: "arr", items: [] };

export function simple(s: string): Reply {
  return { t: "simple", s };
}
/** An argument as redis-server echoes it in an error (C's %s): its bytes up to the first NUL. */
export function cText(b: Buffer): string {
  const nul = b.indexOf(0);
  return b.toString("latin1", 0, nul < 0 ? b.length : nul);
}

export function err(s: string): Reply {
  return { t: "err", s: s.replace(/[\r\n]/g, " ").replace(/[^\x00-\xff]/g, "?") };
}
export function int(n: number | bigint): Reply {
  return { t: "int", n };
}
export function bulk(b: Buffer | string): Reply {
  return { t: "bulk", b: typeof b === "string" ? Buffer.from(b) : b };
}
export function bulkOrNull(b: Buffer | undefined): Reply {
  return b === undefined ? NULL : { t: "bulk", b };
}
/** A value's bytes, as a Buffer or as a latin1 string (KeyView.getStringBytes), or the null bulk. */
export function bytesOrNull(b: Buffer | string | undefined): Reply {
  return b === undefined ? NULL : typeof b === "string" ? { t: "bulkLatin1", s: b } : { t: "bulk", b };
}
export function arr(items: readonly Reply[]): Reply {
  return { t: "arr", items };
}
export function map(entries: ReadonlyArray<readonly [Reply, Reply]>): Reply {
  return { t: "map", entries };
}
export function set(items: readonly Reply[]): Reply {
  return { t: "set", items };
}
/** A map from string names, as HELLO and CONFIG GET answer. */
export function strMap(pairs: ReadonlyArray<readonly [string, Reply | string | number]>): Reply {
  return map(pairs.map(([k, v]) => [bulk(k), typeof v === "string" ? bulk(v) : typeof v === "number" ? int(v) : v] as const));
}
