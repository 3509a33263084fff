/**
 * CompactTreeWriter: writes a snapshot's trees into a fresh data file bottom-up, in one
 * sequential pass (the compacting copy of `backup()`, `compact()` and `compactTo()`).
 *
 * The sequence, for each sub-database in turn, then for the catalog:
 *   1. Scan the source tree in key order (TreeCursor over a pinned snapshot). Pack entries into
 *      leaves filled up to `fill` of the usable page bytes; write each leaf as soon as it is full,
 *      at the next page number. An overflow value is copied to a run of its own, written before the
 *      leaf that refers to it.
 *   2. Over the leaves' first keys, build the branch levels the same way (a separator is the first
 *      key of the child on its right), until one node is left: the root.
 *   3. The catalog tree (name -> catalog record with root and statistics) is built by the same code.
 *   4. The meta (txn = the snapshot's txn, applied LSN = its LSN, no free list) is written into both
 *      slots by the caller.
 *
 * Invariants:
 * - Pages are handed out in increasing order from page 2 and written in large sequential chunks;
 *   nothing is ever rewritten, so the file holds no free page: high water = pages written.
 * - Every page carries the copy's txn, as does every child and overflow reference: the file is a
 *   valid tree for any meta naming that txn (I1 holds once the caller's sync precedes its rename).
 * - Leaves hold at least one entry and branches at least two children; every leaf is at the same
 *   depth; the statistics in each catalog record are exact (they are counted, not estimated).
 * - Work is cut into slices (TimeSlicer): the caller's event loop turns between them. The source
 *   snapshot must stay registered as a reader for the whole run (I2).
 */
import { ioError } from "../errors.js";
import type { FileHandle } from "../io/FileSystem.js";
import { BranchNode, LeafNode, OverflowValue, branchEntryBytes, leafEntryBytes, type LeafValue } from "../btree/Node.js";
import { encodeBranch, encodeLeaf } from "../btree/NodeCodec.js";
import { TreeCursor } from "../btree/TreeCursor.js";
import { emptyTree, type TreeState } from "../btree/TreeState.js";
import { seal, writeHeader } from "../pager/PageCodec.js";
import { BRANCH_FIRST_BYTES, FIRST_DATA_PAGE, PAGE_HEADER, PageType, overflowPages, type PageLimits } from "../pager/PageLayout.js";
import { encodeCatalogRecord, recordFromTree } from "../txn/CatalogRecord.js";
import { catalogKey } from "../txn/Checkpoint.js";
import type { Engine } from "../txn/Engine.js";
import type { Snapshot } from "../txn/Snapshot.js";
import type { TimeSlicer } from "./TimeSlicer.js";

export const DEFAULT_FILL = 0.9;

/** Appends pages at increasing page numbers through one chunk buffer (sequential writes only). */
class PageAppender {
  #out: FileHandle;
  #path: string;
  #ps: number;
  #chunk: Buffer;
  /** Page number of the chunk's first page. */
  #first = FIRST_DATA_PAGE;
  #used = 0;
  /** A run larger than the chunk, handed out whole; written before anything after it. */
  #big: { page: number; view: Buffer } | null = null;
  next = FIRST_DATA_PAGE;
  bytes = 0;

  constructor(out: FileHandle, path: string, pageSize: number, chunkBytes: number) {
    this.#out = out;
    this.#path = path;
    this.#ps = pageSize;
    this.#chunk = Buffer.allocUnsafeSlow(Math.max(1, Math.floor(chunkBytes / pageSize)) * pageSize);
  }

  /** A zeroed view of `count` pages at the next page number, to fill before the next call. */
  take(count: number): { page: number; view: Buffer } {
    if (this.#big) this.flush();
    const len = count * this.#ps;
    if (len > this.#chunk.length) {
      this.flush();
      const big = { page: this.next, view: Buffer.alloc(len) };
      this.next += count;
      this.#big = big;
      return big;
    }
    if (this.#used + len > this.#chunk.length) this.flush();
    if (this.#used === 0) this.#first = this.next;
    const page = this.next;
    this.next += count;
    const view = this.#chunk.subarray(this.#used, this.#used + len);
    view.fill(0);
    this.#used += len;
    return { page, view };
  }

  /** Write what is pending, in page order. */
  flush(): void {
    if (this.#used > 0) this.#write(this.#chunk, this.#used, this.#first);
    this.#used = 0;
    const b = this.#big;
    this.#big = null;
    if (b) this.#write(b.view, b.view.length, b.page);
  }

  #write(buf: Buffer, len: number, page: number): void {
    try {
      this.#out.write(buf, 0, len, page * this.#ps);
    } catch (e) {
      throw ioError(e, "write", this.#path);
    }
    this.bytes += len;
  }
}

/** One tree under construction: leaves first, then branch levels. */
class TreeBuilder {
  readonly stats: TreeState = emptyTree();
  #app: PageAppender;
  #txn: number;
  #ps: number;
  #limit: number;
  #branchLimit: number;
  #keys: string[] = [];
  #vals: LeafValue[] = [];
  #bytes = PAGE_HEADER;
  /** First key and page of every node of the level being built (leaves, then each branch level). */
  #childKeys: string[] = [];
  #childPages: number[] = [];

  constructor(app: PageAppender, limits: PageLimits, txn: number, fill: number) {
    this.#app = app;
    this.#txn = txn;
    this.#ps = limits.pageSize;
    this.#limit = PAGE_HEADER + Math.max(limits.maxInlineEntry, Math.floor(limits.usable * fill));
    // fill >= 0.5 and maxKeySize (a quarter of a branch) leave room for 2 separators at least.
    this.#branchLimit = PAGE_HEADER + Math.floor(limits.usable * fill);
  }

  /** Add the next entry (keys strictly increasing). `overflow` is the bytes of a value stored out of line. */
  add(key: string, inline: string | null, overflow: Buffer | null): void {
    let v: LeafValue;
    if (inline !== null) v = inline;
    else {
      const data = overflow!;
      const count = overflowPages(data.length, this.#ps);
      const { page, view } = this.#app.take(count);
      writeHeader(view, { type: PageType.Overflow, flags: 0, count: 0, pageNo: page, txn: this.#txn, aux1: count, aux2: data.length });
      view.set(data, PAGE_HEADER);
      seal(view);
      this.stats.overflowPages += count;
      v = new OverflowValue(data.length, page, this.#txn, null);
    }
    const eb = leafEntryBytes(key, v);
    if (this.#keys.length > 0 && this.#bytes + eb > this.#limit) this.#emitLeaf();
    this.#keys.push(key);
    this.#vals.push(v);
    this.#bytes += eb;
    this.stats.entries++;
  }

  #emitLeaf(): void {
    const node = new LeafNode(this.#keys, this.#vals, this.#txn, this.#bytes);
    const { page, view } = this.#app.take(1);
    const txn = this.#txn;
    encodeLeaf(node, view, page, txn, (o) => [o.page, txn]);
    this.#childKeys.push(this.#keys[0]!);
    this.#childPages.push(page);
    this.stats.leafPages++;
    this.#keys = [];
    this.#vals = [];
    this.#bytes = PAGE_HEADER;
  }

  /** Steps 2: the branch levels, sliced. Returns the finished tree's statistics and root. */
  async finish(slicer: TimeSlicer): Promise<TreeState> {
    if (this.#keys.length > 0) this.#emitLeaf();
    const st = this.stats;
    if (this.#childPages.length === 0) return st;
    st.depth = 1;
    let keys = this.#childKeys;
    let pages = this.#childPages;
    const txn = this.#txn;
    while (pages.length > 1) {
      const upKeys: string[] = [];
      const upPages: number[] = [];
      // Greedy packing, then the last node takes children from its left neighbour if it has one.
      const groups: Array<[number, number]> = [];
      let start = 0;
      let bytes = PAGE_HEADER + BRANCH_FIRST_BYTES;
      for (let i = 1; i < pages.length; i++) {
        const eb = branchEntryBytes(keys[i]!);
        if (bytes + eb > this.#branchLimit) {
          groups.push([start, i]);
          start = i;
          bytes = PAGE_HEADER + BRANCH_FIRST_BYTES;
        } else bytes += eb;
      }
      groups.push([start, pages.length]);
      const last = groups[groups.length - 1]!;
      if (last[1] - last[0] < 2 && groups.length > 1) {
        const prev = groups[groups.length - 2]!;
        prev[1]--;
        last[0]--;
      }
      for (const [a, b] of groups) {
        const sep = keys.slice(a + 1, b);
        const kids = pages.slice(a, b);
        const node = new BranchNode(sep, kids, kids.map(() => txn), txn);
        const { page, view } = this.#app.take(1);
        encodeBranch(node, view, page, txn, kids, node.childTxn);
        upKeys.push(keys[a]!);
        upPages.push(page);
        st.branchPages++;
        if (slicer.due()) await slicer.pause();
      }
      keys = upKeys;
      pages = upPages;
      st.depth++;
    }
    st.root = pages[0]!;
    st.rootTxn = txn;
    return st;
  }
}

export interface CompactWriteResult {
  highWater: number;
  catalog: TreeState;
  entries: number;
  bytes: number;
}

/**
 * Steps 1-3 for every sub-database of `snap` (a registered reader of `src`), into `out` from page 2.
 * Pages 0 and 1 (the metas) are left to the caller.
 */
export async function writeCompactTrees(
  src: Engine,
  snap: Snapshot,
  out: FileHandle,
  outPath: string,
  txn: number,
  slicer: TimeSlicer,
  o: { fill?: number | undefined; chunkBytes?: number | undefined; onEntries?: ((copied: number) => void) | undefined } = {},
): Promise<CompactWriteResult> {
  const limits = src.limits;
  const fill = Math.min(1, Math.max(0.5, o.fill ?? DEFAULT_FILL));
  const app = new PageAppender(out, outPath, limits.pageSize, o.chunkBytes ?? 4 << 20);
  const records: Array<[string, string]> = [];
  let copied = 0;
  for (const e of snap.dbs.values()) {
    const b = new TreeBuilder(app, limits, txn, fill);
    const cur = new TreeCursor(src.pager, e.tree);
    let n = 0;
    for (cur.seekGE(null); cur.valid; cur.next()) {
      const v = cur.value;
      if (typeof v === "string") b.add(cur.key, v, null);
      else b.add(cur.key, null, src.pager.readOverflow(v));
      copied++;
      if ((++n & 63) === 0 && slicer.due()) {
        o.onEntries?.(copied);
        await slicer.pause();
      }
    }
    const t = await b.finish(slicer);
    const rec = encodeCatalogRecord(recordFromTree(t, typeof t.root === "number" ? t.root : 0, t.root === null ? 0 : t.rootTxn, e.keyEncoding, e.valueEncoding));
    records.push([catalogKey(e.name), rec.latin1Slice(0, rec.length)]);
  }
  records.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const cb = new TreeBuilder(app, limits, txn, fill);
  for (const [k, v] of records) cb.add(k, v, null);
  const catalog = await cb.finish(slicer);
  app.flush();
  o.onEntries?.(copied);
  return { highWater: app.next, catalog, entries: copied, bytes: app.bytes };
}
