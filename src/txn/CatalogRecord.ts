/**
 * CatalogRecord: the value stored for each sub-database in the catalog tree (key = its name as
 * UTF-8). 48 bytes:
 *   0 u8 record version (1)   1 u8 key encoding   2 u8 value encoding   3 u8 flags
 *   4 u32 root page            8 u32 root txn     12 u32 depth
 *  16 f64 entries             24 u32 branch pages 28 u32 leaf pages     32 u32 overflow pages
 *  36..47 reserved (zero)
 */
import { corrupt } from "../errors.js";
import type { TreeState } from "../btree/TreeState.js";
import type { KeyEncodingName, ValueEncodingName } from "./Snapshot.js";

export const KEY_ENCODINGS: readonly KeyEncodingName[] = ["ordered-binary", "binary", "string"];
export const VALUE_ENCODINGS: readonly ValueEncodingName[] = ["msgpack", "json", "string", "binary"];
const SIZE = 48;
/**
 * Deeper than any tree can be: the smallest branch (1 KiB pages, the largest keys) still holds 3
 * children, and 3^34 > 2^53 entries.
 */
const MAX_DEPTH = 64;

export interface CatalogRecord {
  keyEncoding: KeyEncodingName;
  valueEncoding: ValueEncodingName;
  root: number;
  rootTxn: number;
  depth: number;
  entries: number;
  branchPages: number;
  leafPages: number;
  overflowPages: number;
}

export function encodeCatalogRecord(r: CatalogRecord): Buffer {
  const b = Buffer.alloc(SIZE);
  b[0] = 1;
  b[1] = KEY_ENCODINGS.indexOf(r.keyEncoding) + 1;
  b[2] = VALUE_ENCODINGS.indexOf(r.valueEncoding) + 1;
  b.writeUInt32LE(r.root, 4);
  b.writeUInt32LE(r.rootTxn % 0x100000000, 8);
  b.writeUInt32LE(r.depth, 12);
  b.writeDoubleLE(r.entries, 16);
  b.writeUInt32LE(r.branchPages, 24);
  b.writeUInt32LE(r.leafPages, 28);
  b.writeUInt32LE(r.overflowPages, 32);
  return b;
}

export function decodeCatalogRecord(b: Buffer, where: { file: string; name: string }): CatalogRecord {
  const ke = KEY_ENCODINGS[(b[1] ?? 0) - 1];
  const ve = VALUE_ENCODINGS[(b[2] ?? 0) - 1];
  if (b.length !== SIZE || b[0] !== 1 || !ke || !ve) {
    throw corrupt(`catalog record of sub-database "${where.name}" in ${where.file} is malformed`, { ...where, reason: "catalog-record" });
  }
  // Counts the engine serves and keeps adding to (getCount, getStats): a record whose checksum
  // holds but whose count is no count (NaN, negative, fractional) or whose depth no tree reaches
  // would be served and written on by every later checkpoint.
  const depth = b.readUInt32LE(12);
  const entries = b.readDoubleLE(16);
  if (!Number.isSafeInteger(entries) || entries < 0 || depth > MAX_DEPTH) {
    throw corrupt(`catalog record of sub-database "${where.name}" in ${where.file} is malformed: ${entries} entries, depth ${depth}`, { ...where, reason: "catalog-record", entries, depth });
  }
  return {
    keyEncoding: ke,
    valueEncoding: ve,
    root: b.readUInt32LE(4),
    rootTxn: b.readUInt32LE(8),
    depth,
    entries,
    branchPages: b.readUInt32LE(24),
    leafPages: b.readUInt32LE(28),
    overflowPages: b.readUInt32LE(32),
  };
}

export function recordFromTree(t: TreeState, root: number, rootTxn: number, keyEncoding: KeyEncodingName, valueEncoding: ValueEncodingName): CatalogRecord {
  return {
    keyEncoding,
    valueEncoding,
    root,
    rootTxn,
    depth: t.depth,
    entries: t.entries,
    branchPages: t.branchPages,
    leafPages: t.leafPages,
    overflowPages: t.overflowPages,
  };
}
