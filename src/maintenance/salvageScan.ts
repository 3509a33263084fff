/**
 * salvageScan: the raw page scan behind salvage. Every page below the end of the file is read
 * (never through the meta's view of the file, which may be damaged) and kept only when it proves
 * itself: its checksum verifies and its header names its own page number.
 *
 * Invariants:
 * - Nothing unverified is kept: a leaf or branch page is decoded (with every length checked) only
 *   after its checksum and page number check out; an overflow or free-list run only after the
 *   checksum of the whole run does. The pages after the first page of a verified run are its
 *   payload and are not read as pages of their own.
 * - Memory stays proportional to the keys, not the values: leaves keep their keys and the location
 *   of their overflow values; values are read again, and verified again, when they are copied.
 * - Read-only: the source is opened "r" and never written.
 */
import { decodeNode } from "../btree/NodeCodec.js";
import { OverflowValue, type LeafNode } from "../btree/Node.js";
import type { FileHandle } from "../io/FileSystem.js";
import { pageChecksum, readHeader, verifyPage } from "../pager/PageCodec.js";
import { OFF_CHECKSUM, PAGE_HEADER, PageType, isValidPageSize, overflowPages } from "../pager/PageLayout.js";
import { decodeCatalogRecord } from "../txn/CatalogRecord.js";
import { corrupt } from "../errors.js";
import { loadFreeList } from "../pager/FreeListChain.js";
import type { Progress, Work } from "./verifyTypes.js";

const TWO32 = 0x100000000;
/** Largest run read in one piece: past it, a run header is taken for damage. */
const MAX_RUN_BYTES = 2 ** 31;

export interface ScannedLeaf {
  txn: number;
  keys: string[];
  /** Entries whose value is an overflow run: [entry index, first page, run txn (low 32 bits), length]. */
  overflow: Array<[number, number, number, number]>;
  /** Every value is a valid 48-byte catalog record: this is (an old version of) a catalog page. */
  catalogLike: boolean;
}

export interface ScannedBranch {
  txn: number;
  keys: string[];
  children: number[];
  childTxn: number[];
}

export interface ScannedRun {
  type: number;
  txn: number;
  pages: number;
  bytes: number;
}

export interface PageScan {
  pageSize: number;
  filePages: number;
  leaves: Map<number, ScannedLeaf>;
  branches: Map<number, ScannedBranch>;
  runs: Map<number, ScannedRun>;
  /** Pages that fail verification (all-zero pages and the payload pages of damaged runs excluded). */
  badPages: number[];
  zeroPages: number;
  /**
   * The all-zero pages. Past the high-water mark or on the free list they are unused space; below
   * it and not free they are pages a checkpoint wrote that came back as zeros: damage (salvage.ts).
   */
  zeroList: number[];
  /** Pages inside the extent of a run whose first page failed its checksum. */
  damagedRunPages: number;
}

function isZero(buf: Buffer): boolean {
  for (let i = 0; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

function readAt(handle: FileHandle, page: number, count: number, ps: number): Buffer {
  const buf = Buffer.alloc(count * ps);
  handle.read(buf, 0, buf.length, page * ps);
  return buf;
}

/** Guess the page size of a file whose meta pages are both lost: the size under which most early pages verify. */
export function inferPageSize(handle: FileHandle): number {
  const size = handle.size();
  let best = 0;
  let bestCount = 0;
  for (let ps = 1024; ps <= 65536; ps *= 2) {
    let count = 0;
    const pages = Math.min(64, Math.floor(size / ps) - 2);
    for (let i = 0; i < pages; i++) {
      const p = 2 + i;
      const buf = readAt(handle, p, 1, ps);
      if (buf.readUInt32LE(OFF_CHECKSUM) === pageChecksum(buf) && buf.readUInt32LE(4) === p) count++;
    }
    if (count > bestCount) {
      best = ps;
      bestCount = count;
    }
  }
  return best;
}

export function* scanPages(handle: FileHandle, file: string, pageSize: number, progress: Progress): Work<PageScan> {
  if (!isValidPageSize(pageSize)) throw new Error(`invalid page size ${pageSize}`);
  const ps = pageSize;
  const filePages = Math.floor(handle.size() / ps);
  const scan: PageScan = { pageSize: ps, filePages, leaves: new Map(), branches: new Map(), runs: new Map(), badPages: [], zeroPages: 0, zeroList: [], damagedRunPages: 0 };
  progress.total = filePages;
  const chunkPages = Math.max(1, Math.floor((4 << 20) / ps));
  let chunk: Buffer = Buffer.alloc(0);
  let chunkStart = 0;
  let chunkCount = 0;
  let damagedRunEnd = 0;
  const ctx = { file, highWater: filePages };
  let p = 2;
  while (p < filePages) {
    if (p < chunkStart || p >= chunkStart + chunkCount) {
      chunkStart = p;
      chunkCount = Math.min(chunkPages, filePages - p);
      chunk = readAt(handle, p, chunkCount, ps);
    }
    const buf = chunk.subarray((p - chunkStart) * ps, (p - chunkStart + 1) * ps);
    const here = p;
    p++;
    progress.step();
    if (progress.wantsYield) yield;
    if (isZero(buf)) {
      scan.zeroPages++;
      scan.zeroList.push(here);
      continue;
    }
    const type = buf[0]!;
    if (type === PageType.Overflow || type === PageType.FreeList) {
      const h = readHeader(buf);
      const count = h.aux1;
      const plausible =
        h.pageNo === here && count >= 1 && here + count <= filePages && count * ps <= MAX_RUN_BYTES && h.aux2 <= count * ps - PAGE_HEADER && (type !== PageType.Overflow || overflowPages(h.aux2, ps) === count);
      if (plausible) {
        const run = count === 1 ? buf : here + count <= chunkStart + chunkCount ? chunk.subarray((here - chunkStart) * ps, (here - chunkStart + count) * ps) : readAt(handle, here, count, ps);
        let ok = false;
        try {
          verifyPage(run, { pageNo: here, types: [type], file });
          ok = true;
        } catch {
          ok = false;
        }
        if (ok) {
          scan.runs.set(here, { type, txn: h.txn, pages: count, bytes: h.aux2 });
          p = here + count; // the rest of the run is its payload
          if (count > 1) progress.step(count - 1);
          continue;
        }
        scan.badPages.push(here);
        damagedRunEnd = Math.max(damagedRunEnd, here + count);
        continue;
      }
    } else if (type === PageType.Leaf || type === PageType.Branch) {
      try {
        const h = verifyPage(buf, { pageNo: here, types: [PageType.Leaf, PageType.Branch], file });
        const node = decodeNode(buf, h, ctx);
        if (node.leaf) scan.leaves.set(here, leafInfo(node, h.txn));
        else scan.branches.set(here, { txn: h.txn, keys: node.keys, children: node.children as number[], childTxn: node.childTxn });
        continue;
      } catch {
        // falls through to "bad"
      }
    }
    if (here < damagedRunEnd) scan.damagedRunPages++;
    else scan.badPages.push(here);
  }
  return scan;
}

function leafInfo(node: LeafNode, txn: number): ScannedLeaf {
  const overflow: Array<[number, number, number, number]> = [];
  let catalogLike = node.keys.length > 0;
  for (let i = 0; i < node.vals.length; i++) {
    const v = node.vals[i]!;
    if (v instanceof OverflowValue) {
      overflow.push([i, v.page, v.pageTxn, v.length]);
      catalogLike = false;
    } else if (catalogLike) {
      catalogLike = v.length === 48 && isCatalogRecord(v);
    }
  }
  return { txn, keys: node.keys, overflow, catalogLike };
}

function isCatalogRecord(v: string): boolean {
  const b = Buffer.from(v, "latin1");
  for (let i = 36; i < 48; i++) if (b[i] !== 0) return false;
  if (b[3] !== 0) return false;
  try {
    decodeCatalogRecord(b, { file: "", name: "" });
    return true;
  } catch {
    return false;
  }
}

/** Whether the overflow run a leaf names at `page` (run txn low 32 bits, value length) verified in the scan. */
export function runMatches(scan: PageScan, page: number, txn: number, length: number): boolean {
  const r = scan.runs.get(page);
  return !!r && r.type === PageType.Overflow && r.txn % TWO32 === txn % TWO32 && r.bytes === length && r.pages === overflowPages(length, scan.pageSize);
}

/** Read a leaf page again and decode it, verified (values are taken from here when copying). */
export function readLeafPage(handle: FileHandle, file: string, scan: PageScan, page: number): LeafNode | null {
  try {
    const buf = readAt(handle, page, 1, scan.pageSize);
    const h = verifyPage(buf, { pageNo: page, types: [PageType.Leaf], file });
    const node = decodeNode(buf, h, { file, highWater: scan.filePages });
    return node.leaf ? node : null;
  } catch {
    return null;
  }
}

/** Read an overflow run again, verified against the reference its leaf holds; null if it fails. */
export function readRunValue(handle: FileHandle, file: string, scan: PageScan, page: number, txn: number, length: number): Buffer | null {
  const count = overflowPages(length, scan.pageSize);
  if (page < 2 || page + count > scan.filePages) return null;
  try {
    const buf = readAt(handle, page, count, scan.pageSize);
    const h = verifyPage(buf, { pageNo: page, types: [PageType.Overflow], txn, file });
    if (h.aux1 !== count || h.aux2 !== length) return null;
    return buf.subarray(PAGE_HEADER, PAGE_HEADER + length);
  } catch {
    return null;
  }
}

/** The pages of a verified free-list chain (FreeListChain.ts); empty when a segment did not verify or does not match. */
export function readFreePages(handle: FileHandle, file: string, scan: PageScan, page: number, pages: number, txn: number): number[] {
  try {
    const { freelist } = loadFreeList(
      (p, n, t) => {
        const r = scan.runs.get(p);
        if (!r || r.type !== PageType.FreeList || r.pages !== n || r.txn % TWO32 !== t % TWO32) {
          throw corrupt(`no verified free-list run of ${n} page(s) at page ${p}`, { file, page: p, reason: "freelist-segment" });
        }
        const buf = readAt(handle, p, n, scan.pageSize);
        const h = verifyPage(buf, { pageNo: p, types: [PageType.FreeList], txn: t, file });
        return { payload: buf.subarray(PAGE_HEADER, PAGE_HEADER + r.bytes), flags: h.flags, txn: h.txn };
      },
      { page, pages, txn },
      { file, highWater: scan.filePages },
    );
    return Array.from(freelist.allPages(), ([p]) => p);
  } catch {
    return [];
  }
}
