/**
 * PageLayout: byte offsets and constants shared by every page codec. docs/FORMAT.md is the prose
 * version of this file; change both together.
 *
 * Every page (meta included) starts with the common header:
 *   0  u8   page type
 *   1  u8   flags
 *   2  u16  entry count (branch: children; leaf: entries)
 *   4  u32  page number (catches misdirected writes and reads)
 *   8  u32  txn id low 32 bits  \ id of the checkpoint that wrote the page
 *  12  u32  txn id high 32 bits /
 *  16  u32  CRC-32 of the page (or overflow/freelist run) with these 4 bytes taken out
 *  20  u32  aux1 (overflow/freelist: pages in the run)
 *  24  u32  aux2 (overflow/freelist: payload bytes)
 *  28  u32  reserved, zero
 */
export const PAGE_HEADER = 32;
export const OFF_TYPE = 0;
export const OFF_FLAGS = 1;
export const OFF_COUNT = 2;
export const OFF_PAGENO = 4;
export const OFF_TXN_LO = 8;
export const OFF_TXN_HI = 12;
export const OFF_CHECKSUM = 16;
export const OFF_AUX1 = 20;
export const OFF_AUX2 = 24;

export const enum PageType {
  Meta = 1,
  Branch = 2,
  Leaf = 3,
  Overflow = 4,
  FreeList = 5,
}

export const PAGE_TYPE_NAMES: Record<number, string> = {
  1: "meta",
  2: "branch",
  3: "leaf",
  4: "overflow",
  5: "freelist",
};

/** File format version written into every meta page. A new version needs a migration shipped in the package. */
export const FORMAT_VERSION = 2;
export const MAGIC = 0x4b45454c; // "KEEL"
export const MIN_PAGE_SIZE = 1024;
export const MAX_PAGE_SIZE = 65536;
export const DEFAULT_PAGE_SIZE = 4096;
/** Page numbers are u32; 0 and 1 are the meta pages, so 0 doubles as "no page". */
export const MAX_PAGE_NO = 0xffffffff;
export const FIRST_DATA_PAGE = 2;

/** Leaf entry: u16 key length, u8 flags, u32 value length, key, value (or u32 overflow page + u32 txn). */
export const LEAF_ENTRY_OVERHEAD = 7;
export const LEAF_FLAG_OVERFLOW = 1;
export const OVERFLOW_REF_BYTES = 8;
/** Branch: u32 first child + u32 its txn; then per separator: u16 key length, key, u32 child, u32 child txn. */
export const BRANCH_FIRST_BYTES = 8;
export const BRANCH_ENTRY_OVERHEAD = 10;

export interface PageLimits {
  pageSize: number;
  /** Bytes usable after the header. */
  usable: number;
  /** Largest key, so that a branch page always holds at least 4 separators. */
  maxKeySize: number;
  /** Largest leaf entry kept inline: half the usable space, so any overfull leaf splits in two. */
  maxInlineEntry: number;
  /** Under this many bytes a node is merged with or refilled from a sibling. */
  minFill: number;
}

export function pageLimits(pageSize: number): PageLimits {
  const usable = pageSize - PAGE_HEADER;
  const maxKeySize = Math.floor((usable - BRANCH_FIRST_BYTES) / 4) - BRANCH_ENTRY_OVERHEAD;
  return {
    pageSize,
    usable,
    maxKeySize,
    maxInlineEntry: Math.floor(usable / 2),
    minFill: Math.floor(usable / 4),
  };
}

export function isValidPageSize(n: number): boolean {
  return Number.isInteger(n) && n >= MIN_PAGE_SIZE && n <= MAX_PAGE_SIZE && (n & (n - 1)) === 0;
}

/** Pages needed for an overflow run holding `bytes` of payload after the header of its first page. */
export function overflowPages(bytes: number, pageSize: number): number {
  return Math.ceil((bytes + PAGE_HEADER) / pageSize);
}
