/**
 * salvageTrees: what salvage learns from the trees that still verify: which leaf belongs to which
 * sub-database (walking from a meta's catalog), and the key ranges each tree vouches for (so an
 * entry deleted by a newer tree is not brought back from a stale free page). Reads only.
 */
import type { FileHandle } from "../io/FileSystem.js";
import { lowerBound } from "../btree/Node.js";
import { decodeCatalogRecord } from "../txn/CatalogRecord.js";
import type { KeyEncodingName, ValueEncodingName } from "../txn/Snapshot.js";
import { readLeafPage, type PageScan, type ScannedLeaf } from "./salvageScan.js";

const TWO32 = 0x100000000;
/** The owner name salvage gives catalog leaves (no sub-database can be named with a NUL first). */
export const CATALOG = "\u0000catalog";

export interface Source {
  label: string;
  txn: number;
  catalogRoot: number;
  catalogRootTxn: number;
}

export interface Interval {
  lo: string | null;
  hi: string | null;
  /** Leaf page that vouches for the range; 0 for an empty tree. */
  page: number;
}

export interface Vouch {
  txn: number;
  intervals: Interval[];
}

export interface DbInfo {
  keyEncoding: KeyEncodingName;
  valueEncoding: ValueEncodingName;
  /** Entries its catalog record counted, and the txn of that catalog (undefined for the orphans). */
  entries?: number;
  txn?: number;
}

export function walkSource(
  scan: PageScan,
  handle: FileHandle,
  file: string,
  src: Source,
  leafOwner: Map<number, string>,
  vouches: Map<string, Vouch[]>,
): { complete: boolean; catalogPages: number; dbs: Map<string, DbInfo>; leavesOf: Map<string, number[]>; broken: number[] } {
  const dbs = new Map<string, DbInfo>();
  /** Pages the tree references that are not what it recorded: unreadable, another txn (a lost or misdirected write), or a loop. */
  const broken: number[] = [];
  const leavesOf = new Map<string, number[]>();
  let catalogPages = 0;
  const walk = (root: number, rootTxn: number, onLeaf: (page: number, leaf: ScannedLeaf, lo: string | null, hi: string | null) => void, onBranch?: () => void): boolean => {
    const path = new Set<number>();
    const visit = (page: number, txn: number, lo: string | null, hi: string | null, depth: number): boolean => {
      const leaf = scan.leaves.get(page);
      const br = leaf ? undefined : scan.branches.get(page);
      const node = leaf ?? br;
      // A stale or reused page, a lost one, or a loop: the tree is broken there.
      if (depth > 64 || path.has(page) || !node || (txn !== 0 && node.txn % TWO32 !== txn % TWO32)) {
        broken.push(page);
        return false;
      }
      if (leaf) {
        onLeaf(page, leaf, lo, hi);
        return true;
      }
      onBranch?.();
      path.add(page);
      let ok = true;
      for (let i = 0; i < br!.children.length; i++) {
        ok = visit(br!.children[i]!, br!.childTxn[i]!, i === 0 ? lo : br!.keys[i - 1]!, i < br!.keys.length ? br!.keys[i]! : hi, depth + 1) && ok;
      }
      path.delete(page);
      return ok;
    };
    return visit(root, rootTxn, null, null, 1);
  };
  if (!src.catalogRoot) return { complete: true, catalogPages: 0, dbs, leavesOf, broken };
  const records: Array<[string, string]> = [];
  let complete = walk(
    src.catalogRoot,
    src.catalogRootTxn,
    (page) => {
      catalogPages++;
      if (!leafOwner.has(page)) leafOwner.set(page, CATALOG);
      const node = readLeafPage(handle, file, scan, page);
      if (!node) return;
      for (let i = 0; i < node.keys.length; i++) {
        const v = node.vals[i]!;
        if (typeof v === "string") records.push([node.keys[i]!, v]);
      }
    },
    () => catalogPages++,
  );
  for (const [key, val] of records) {
    const name = Buffer.from(key, "latin1").toString("utf8");
    let rec;
    try {
      rec = decodeCatalogRecord(Buffer.from(val, "latin1"), { file, name });
    } catch {
      complete = false;
      continue;
    }
    dbs.set(name, { keyEncoding: rec.keyEncoding, valueEncoding: rec.valueEncoding, entries: rec.entries, txn: src.txn });
    const intervals: Interval[] = [];
    const mine: number[] = [];
    if (rec.root === 0) intervals.push({ lo: null, hi: null, page: 0 });
    else {
      walk(rec.root, rec.rootTxn, (page, _leaf, lo, hi) => {
        intervals.push({ lo, hi, page });
        mine.push(page);
        if (!leafOwner.has(page)) leafOwner.set(page, name);
      });
    }
    leavesOf.set(name, mine);
    let list = vouches.get(name);
    if (!list) vouches.set(name, (list = []));
    list.push({ txn: src.txn, intervals });
    list.sort((a, b) => b.txn - a.txn);
  }
  return { complete, catalogPages, dbs, leavesOf, broken };
}

/** The interval of a walk's in-order list that holds `key` (intervals are disjoint and sorted). */
export function findInterval(intervals: Interval[], key: string): Interval | undefined {
  let lo = 0;
  let hi = intervals.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const l = intervals[mid]!.lo;
    if (l === null || l <= key) lo = mid + 1;
    else hi = mid;
  }
  const iv = intervals[lo - 1];
  if (!iv) return undefined;
  if (iv.lo !== null && key < iv.lo) return undefined;
  if (iv.hi !== null && key >= iv.hi) return undefined;
  return iv;
}

export function sortedHas(keys: string[], key: string): boolean {
  return keys[lowerBound(keys, key)] === key;
}


/** The encodings an old catalog record gives a sub-database, and the txn of the leaf it was read from. */
export interface EncodingHint {
  keyEncoding: KeyEncodingName;
  valueEncoding: ValueEncodingName;
  txn: number;
}

/**
 * The encodings that the old catalog pages no walk reached give each sub-database, from the newest
 * such page that names it. Only a hint (the sub-database may have been dropped and created again
 * with other encodings since), but every page it comes from verified: it is better than a guess for
 * a sub-database that the log writes to and whose createDB record is gone.
 */
export function catalogHints(scan: PageScan, handle: FileHandle, file: string, pages: Iterable<number>): Map<string, EncodingHint> {
  const hints = new Map<string, EncodingHint>();
  for (const page of pages) {
    const txn = scan.leaves.get(page)?.txn;
    const node = txn === undefined ? null : readLeafPage(handle, file, scan, page);
    if (!node || txn === undefined) continue;
    for (let i = 0; i < node.keys.length; i++) {
      const v = node.vals[i]!;
      if (typeof v !== "string") continue;
      const name = Buffer.from(node.keys[i]!, "latin1").toString("utf8");
      const had = hints.get(name);
      if (had && had.txn >= txn) continue;
      try {
        const rec = decodeCatalogRecord(Buffer.from(v, "latin1"), { file, name });
        hints.set(name, { keyEncoding: rec.keyEncoding, valueEncoding: rec.valueEncoding, txn });
      } catch {
        // not a record: no hint from it
      }
    }
  }
  return hints;
}
