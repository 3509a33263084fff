/**
 * formatVersionOf (pager layer: it reads only meta pages, so open, verify and the migrations can all
 * call it): which data-file format a file's meta pages are written in, judged without opening
 * it. The one place that knows every meta layout KeelDB ever wrote: detectVersion (open() migrates
 * by it), and the readers that must tell an older format from damage (Engine.open, so that restore
 * and a read-only open say VERSION; verify, which says "meta-version") all ask here.
 *
 * Layouts:
 * - version 0: the meta magic stored little-endian (its bytes read "LEEK"); the u16 at offset 36
 *   holds 0 or 1 (the code of that time wrote its FORMAT_VERSION there): the byte order, not that
 *   field, marks version 0. Otherwise the layout of version 1.
 * - version 1 on: the big-endian magic; the version field says which.
 *
 * Invariants:
 * - Only a meta that checks out (checksum, type meta, page number = slot, page size) counts: damage
 *   is never read as a version.
 * - A version newer than FORMAT_VERSION found in either slot wins, so that it is refused, never
 *   migrated or read.
 * - Never throws (formatVersionOfFile passes on the read's own errors).
 */
import type { FileHandle } from "../io/FileSystem.js";
import { FORMAT_VERSION, MAGIC, MAX_PAGE_SIZE, MIN_PAGE_SIZE, OFF_CHECKSUM, PageType, isValidPageSize } from "./PageLayout.js";
import { pageChecksum, readHeader } from "./PageCodec.js";

/**
 * Whether `page` (one whole page, slot 0 or 1) is a valid version-0 meta: little-endian magic,
 * valid page size, checksum, type meta, page number = slot, version field 0 or 1. Never throws.
 */
export function isV0Meta(page: Buffer, slot: 0 | 1): boolean {
  if (page.length < 128 || page.readUInt32LE(32) !== MAGIC) return false;
  const pageSize = page.readUInt32LE(40);
  if (!isValidPageSize(pageSize) || page.length !== pageSize) return false;
  if (page.readUInt32LE(OFF_CHECKSUM) !== pageChecksum(page)) return false;
  if (page.readUInt16LE(36) > 1) return false;
  const h = readHeader(page);
  return h.type === PageType.Meta && h.pageNo === slot;
}

type SlotProbe = { layout: "v0"; txn: number } | { layout: "current"; version: number; txn: number } | null;

function probeSlot(page: Buffer, slot: 0 | 1): SlotProbe {
  if (page.length < 128) return null;
  if (page.readUInt32BE(32) === MAGIC) {
    const pageSize = page.readUInt32LE(40);
    if (!isValidPageSize(pageSize) || page.length < pageSize) return null;
    const p = page.subarray(0, pageSize);
    if (p.readUInt32LE(OFF_CHECKSUM) !== pageChecksum(p)) return null;
    const h = readHeader(p);
    if (h.type !== PageType.Meta || h.pageNo !== slot) return null;
    return { layout: "current", version: p.readUInt16LE(36), txn: h.txn };
  }
  if (page.readUInt32LE(32) === MAGIC) {
    const pageSize = page.readUInt32LE(40);
    if (!isValidPageSize(pageSize) || page.length < pageSize) return null;
    const p = page.subarray(0, pageSize);
    return isV0Meta(p, slot) ? { layout: "v0", txn: readHeader(p).txn } : null;
  }
  return null;
}

/**
 * The format version of the data file whose first bytes (up to two pages of the largest size) are
 * `head`: 0 for the little-endian-magic layout, the meta's version field otherwise; undefined when
 * no meta of any known layout is valid.
 */
export function formatVersionOf(head: Buffer): number | undefined {
  const p0 = probeSlot(head, 0);
  let p1: SlotProbe = null;
  const ps0 = head.length >= 128 ? head.readUInt32LE(40) : 0;
  if (p0 && isValidPageSize(ps0)) p1 = probeSlot(head.subarray(ps0), 1);
  else {
    for (let ps = MIN_PAGE_SIZE; ps <= MAX_PAGE_SIZE && !p1; ps *= 2) {
      if (head.length >= 2 * ps) p1 = probeSlot(head.subarray(ps, 2 * ps), 1);
    }
  }
  const found = [p0, p1].filter((p): p is NonNullable<SlotProbe> => p !== null);
  if (!found.length) return undefined;
  const newer = found.filter((p) => p.layout === "current" && p.version > FORMAT_VERSION) as Array<{ version: number }>;
  if (newer.length) return Math.max(...newer.map((p) => p.version));
  if (found.some((p) => p.layout === "v0")) return 0;
  return Math.max(...found.map((p) => (p.layout === "current" ? p.version : 0)));
}

/** formatVersionOf the file open as `f` (its read errors are thrown as they are). */
export function formatVersionOfFile(f: FileHandle): number | undefined {
  const head = Buffer.alloc(Math.min(f.size(), 2 * MAX_PAGE_SIZE));
  const n = f.read(head, 0, head.length, 0);
  return formatVersionOf(head.subarray(0, n));
}
