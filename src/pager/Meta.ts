/**
 * Meta: the two meta pages (page 0 and page 1) that name the durable state.
 *
 * Invariants:
 * - A checkpoint writes its meta into the slot that does NOT hold the newest valid meta, so a
 *   torn meta write leaves the other slot intact (I1).
 * - Open takes the valid meta with the highest txn. A meta is valid when its checksum, magic,
 *   page number and page size check out. A meta with our magic but another format version is
 *   refused with VERSION naming both versions, never guessed at; only a meta that is otherwise
 *   valid (checksum, type, page number) counts as one: anything else is damage, never VERSION.
 *
 * Layout after the common 32-byte page header (offsets from the page start):
 *   32 u32 magic "KEEL" (big-endian, the only BE field)     36 u16 format version   38 u16 reserved
 *   40 u32 page size        44 u32 high water (first never-allocated page)
 *   48 u32 catalog root     52 u32 catalog root txn 56 u32 catalog depth
 *   60 u32 free list page   64 u32 free list pages  68 u32 free list txn
 *   72 u32 flags            76 u32 boot tag (CRC-32 of the boot id the meta was written in; 0: unknown)
 *   80 u64 applied LSN      88 f64 created at (ms)  96 f64 checkpoint at (ms)
 *  104 u32 catalog entries 108 u32 catalog branch pages 112 u32 catalog leaf pages
 *  116 u32 catalog overflow pages; the rest of the page is zero. The CRC covers the whole page.
 */
import { KeelError } from "../errors.js";
import { crc32 } from "../util/crc32.js";
import { pageChecksum, readHeader, seal, writeHeader } from "./PageCodec.js";
import { FORMAT_VERSION, MAGIC, OFF_CHECKSUM, PageType, isValidPageSize } from "./PageLayout.js";

const TWO32 = 0x100000000;

export interface Meta {
  version: number;
  pageSize: number;
  txn: number;
  appliedLsn: number;
  highWater: number;
  catalogRoot: number;
  catalogRootTxn: number;
  catalogDepth: number;
  catalogEntries: number;
  catalogBranchPages: number;
  catalogLeafPages: number;
  catalogOverflowPages: number;
  freelistPage: number;
  freelistPages: number;
  freelistTxn: number;
  flags: number;
  /** CRC-32 of the machine's boot id when this meta was written (0: unknown): see bootTag(). */
  bootTag: number;
  createdAt: number;
  checkpointAt: number;
}

/** Meta flag: the database was last written with the write-ahead log on. */
export const META_FLAG_WAL = 1;
/**
 * Meta flag: this meta's checkpoint synced its pages and the meta in ONE fdatasync (a small
 * checkpoint of wal: false, Checkpoint.ts step 5), so a power cut during that sync may have
 * left this meta on disk without all of its pages. Open checks those pages before trusting it
 * (txn/checkpointIntact.ts) and falls back to the other slot when one did not reach the disk.
 */
export const META_FLAG_ONE_SYNC = 2;

/** The tag of a boot id as a meta stores it: 0 when the boot id is unknown. */
export function bootTag(bootId: string): number {
  return bootId ? crc32(Buffer.from(bootId, "latin1")) || 1 : 0;
}

/**
 * Whether a power cut may have cut the one sync of this meta's checkpoint short: it is a
 * ONE_SYNC meta, and not known to be written in this boot (`thisBoot`, a bootTag). In the boot
 * that wrote it the page cache holds all its pages, whatever became of the writing process.
 */
export function mayBeTorn(m: Meta, thisBoot: number): boolean {
  return (m.flags & META_FLAG_ONE_SYNC) !== 0 && !(m.bootTag !== 0 && m.bootTag === thisBoot);
}

export function encodeMeta(m: Meta, slot: 0 | 1): Buffer {
  const buf = Buffer.alloc(m.pageSize);
  writeHeader(buf, { type: PageType.Meta, flags: 0, count: 0, pageNo: slot, txn: m.txn, aux1: 0, aux2: 0 });
  buf.writeUInt32BE(MAGIC, 32); // big-endian so that a hex dump shows "KEEL"
  buf.writeUInt16LE(m.version, 36);
  buf.writeUInt32LE(m.pageSize, 40);
  buf.writeUInt32LE(m.highWater, 44);
  buf.writeUInt32LE(m.catalogRoot, 48);
  buf.writeUInt32LE(m.catalogRootTxn % TWO32, 52);
  buf.writeUInt32LE(m.catalogDepth, 56);
  buf.writeUInt32LE(m.freelistPage, 60);
  buf.writeUInt32LE(m.freelistPages, 64);
  buf.writeUInt32LE(m.freelistTxn % TWO32, 68);
  buf.writeUInt32LE(m.flags, 72);
  buf.writeUInt32LE(m.bootTag >>> 0, 76);
  buf.writeUInt32LE(m.appliedLsn % TWO32, 80);
  buf.writeUInt32LE(Math.floor(m.appliedLsn / TWO32), 84);
  buf.writeDoubleLE(m.createdAt, 88);
  buf.writeDoubleLE(m.checkpointAt, 96);
  buf.writeUInt32LE(m.catalogEntries, 104);
  buf.writeUInt32LE(m.catalogBranchPages, 108);
  buf.writeUInt32LE(m.catalogLeafPages, 112);
  buf.writeUInt32LE(m.catalogOverflowPages, 116);
  seal(buf);
  return buf;
}

export type MetaProbe =
  | { ok: true; meta: Meta }
  | { ok: false; reason: "short" | "magic" | "checksum" | "page-size" | "page-number" | "counter-range"; version?: number; pageSize?: number }
  | { ok: false; reason: "version"; version: number; pageSize: number };

/** Decode the meta at `slot` from a buffer holding at least that page. Never throws. */
export function probeMeta(buf: Buffer, slot: 0 | 1): MetaProbe {
  if (buf.length < 128) return { ok: false, reason: "short" };
  if (buf.readUInt32BE(32) !== MAGIC) return { ok: false, reason: "magic" };
  const version = buf.readUInt16LE(36);
  const pageSize = buf.readUInt32LE(40);
  if (!isValidPageSize(pageSize) || buf.length < pageSize) return { ok: false, reason: "page-size", version, pageSize };
  const page = buf.subarray(0, pageSize);
  if (page.readUInt32LE(OFF_CHECKSUM) !== pageChecksum(page)) return { ok: false, reason: "checksum", version, pageSize };
  // Type and page number before the version: a misdirected write (another page's copy, a meta
  // of the other slot) is damage that open passes over, whatever version it carries. Read as a
  // version mismatch it would refuse the file: after a migration, which converts only the slots
  // that are metas of their own page, such a slot left behind would refuse it forever.
  const h = readHeader(page);
  if (h.type !== PageType.Meta || h.pageNo !== slot) return { ok: false, reason: "page-number", version, pageSize };
  if (version !== FORMAT_VERSION) return { ok: false, reason: "version", version, pageSize };
  const meta = { ...readMetaFields(page, pageSize), txn: h.txn };
  // Counters at 2^53 and past cannot be counted on: txn + 1 would equal txn, so every later
  // checkpoint would carry the same txn and open could not tell the newer slot (acknowledged
  // commits lost); LSN + 1 likewise. As in the log (WAL-FORMAT.md), such a value is damage.
  if (!Number.isSafeInteger(meta.txn + 1) || !Number.isSafeInteger(meta.appliedLsn + 1)) return { ok: false, reason: "counter-range", version, pageSize };
  return { ok: true, meta };
}

/**
 * Every field of a meta page, read without any check. probeMeta uses it after its checks; salvage
 * uses it for hints from a meta whose checksum failed (every page they lead to is still verified).
 */
export function readMetaFields(page: Buffer, pageSize: number): Meta {
  return {
    version: page.readUInt16LE(36),
    pageSize,
    txn: page.readUInt32LE(8) + page.readUInt32LE(12) * TWO32,
    highWater: page.readUInt32LE(44),
    catalogRoot: page.readUInt32LE(48),
    catalogRootTxn: page.readUInt32LE(52),
    catalogDepth: page.readUInt32LE(56),
    freelistPage: page.readUInt32LE(60),
    freelistPages: page.readUInt32LE(64),
    freelistTxn: page.readUInt32LE(68),
    flags: page.readUInt32LE(72),
    bootTag: page.readUInt32LE(76),
    appliedLsn: page.readUInt32LE(80) + page.readUInt32LE(84) * TWO32,
    createdAt: page.readDoubleLE(88),
    checkpointAt: page.readDoubleLE(96),
    catalogEntries: page.readUInt32LE(104),
    catalogBranchPages: page.readUInt32LE(108),
    catalogLeafPages: page.readUInt32LE(112),
    catalogOverflowPages: page.readUInt32LE(116),
  };
}

export function versionError(file: string, found: number, pageSizeFound?: number): KeelError {
  return new KeelError(
    "VERSION",
    `${file} has format version ${found}; this KeelDB reads format version ${FORMAT_VERSION}` +
      (found > FORMAT_VERSION ? " (the file was written by a newer KeelDB: upgrade KeelDB to open it)" : ""),
    { file, found, supported: FORMAT_VERSION, pageSize: pageSizeFound },
  );
}
