/**
 * CompactTreeWriter: writes a snapshot's trees into a fresh data file bottom-up, in one
 * sequential pass (the compacting copy of `backup()`, `compact()` and `compactTo()`).
 *
 * The sequence, for each sub-database in turn, then for the catalog:
 *   1. Walk the source tree in key order (a pinned snapshot). A leaf on disk is read with one pread,
 *      verified (checksum, page number, type, the txn its parent recorded) and its entries copied as
 *      bytes, with bounds, flags and key order checked; a node held in memory (not yet checkpointed)
 *      is encoded from its strings. Entries are packed into leaves filled up to `fill` of the usable
 *      page bytes; each leaf is written as soon as it is full, at the next page number. An overflow
 *      value is copied to a run of its own, written before the leaf that refers to it.
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
import { corrupt, ioError } from "../errors.js";
import type { FileHandle } from "../io/FileSystem.js";
import { BranchNode, OverflowValue, branchEntryBytes, type NodeRef } from "../btree/Node.js";
import { encodeBranch } from "../btree/NodeCodec.js";
import { emptyTree, type TreeState } from "../btree/TreeState.js";
import { seal, verifyPage, writeHeader } from "../pager/PageCodec.js";
import {
  BRANCH_FIRST_BYTES,
  FIRST_DATA_PAGE,
  LEAF_ENTRY_OVERHEAD,
  LEAF_FLAG_OVERFLOW,
  OVERFLOW_REF_BYTES,
  PAGE_HEADER,
  PageType,
  overflowPages,
  type PageLimits,
} from "../pager/PageLayout.js";
import { encodeCatalogRecord, recordFromTree } from "../txn/CatalogRecord.js";
import { catalogKey } from "../txn/Checkpoint.js";
import type { Engine } from "../txn/Engine.js";
import type { Snapshot } from "../txn/Snapshot.js";
import { writeLatin1 } from "../util/latin1.js";
import { putU16, putU32 } from "../util/littleEndian.js";
import type { TimeSlicer } from "./TimeSlicer.js";

export const DEFAULT_FILL = 1;
const TWO32 = 0x100000000;

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

  /** A view of `count` pages at the next page number (zeroed unless `zero` is false: the caller then writes every byte), to fill before the next call. */
  take(count: number, zero = true): { page: number; view: Buffer } {
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
    if (zero) view.fill(0);
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

/** One tree under construction: leaves first (built as bytes), then branch levels. */
class TreeBuilder {
  readonly stats: TreeState = emptyTree();
  #app: PageAppender;
  #txn: number;
  #ps: number;
  #limit: number;
  #branchLimit: number;
  /** The leaf being filled, as page bytes (header written at emit time). */
  #leaf: Buffer;
  #off = PAGE_HEADER;
  #count = 0;
  /** Last key added (bytes in #lastKey[0..#lastLen)), for the order check of raw entries. */
  #lastKey: Buffer;
  #lastLen = -1;
  /** First key and page of every node of the level being built (leaves, then each branch level). */
  #childKeys: string[] = [];
  #childPages: number[] = [];
  #firstKey = "";

  constructor(app: PageAppender, limits: PageLimits, txn: number, fill: number) {
    this.#app = app;
    this.#txn = txn;
    this.#ps = limits.pageSize;
    this.#limit = PAGE_HEADER + Math.max(limits.maxInlineEntry, Math.floor(limits.usable * fill));
    // fill >= 0.5 and maxKeySize (a quarter of a branch) leave room for 2 separators at least.
    this.#branchLimit = PAGE_HEADER + Math.floor(limits.usable * fill);
    this.#leaf = Buffer.alloc(limits.pageSize);
    this.#lastKey = Buffer.alloc(limits.pageSize);
  }

  /** Room for an entry of `bytes`; the key that starts a new leaf is its separator. */
  #room(bytes: number): void {
    if (this.#count > 0 && this.#off + bytes > this.#limit) this.#emitLeaf();
  }

  #startEntry(keyStart: number, keyLen: number): void {
    if (this.#count === 0) this.#firstKey = this.#leaf.latin1Slice(keyStart, keyStart + keyLen);
    this.#count++;
    this.stats.entries++;
  }

  /** A value stored out of line: copy its run to the next pages; returns its page. */
  #copyRun(data: Buffer): number {
    const count = overflowPages(data.length, this.#ps);
    const { page, view } = this.#app.take(count);
    writeHeader(view, { type: PageType.Overflow, flags: 0, count: 0, pageNo: page, txn: this.#txn, aux1: count, aux2: data.length });
    view.set(data, PAGE_HEADER);
    seal(view);
    this.stats.overflowPages += count;
    return page;
  }

  /** Add an entry held as strings (a node in memory). Keys strictly increasing. */
  addDecoded(key: string, inline: string | null, overflow: Buffer | null): void {
    const kl = key.length;
    const bytes = LEAF_ENTRY_OVERHEAD + kl + (inline !== null ? inline.length : OVERFLOW_REF_BYTES);
    const page = inline === null ? this.#copyRun(overflow!) : 0;
    this.#room(bytes);
    const b = this.#leaf;
    let off = this.#off;
    putU16(b, off, kl);
    b[off + 2] = inline === null ? LEAF_FLAG_OVERFLOW : 0;
    putU32(b, off + 3, inline === null ? overflow!.length : inline.length);
    off += 7;
    writeLatin1(b, key, off);
    this.#startEntry(off, kl);
    off += kl;
    if (inline === null) {
      putU32(b, off, page);
      putU32(b, off + 4, this.#txn % TWO32);
      off += 8;
    } else off += writeLatin1(b, inline, off);
    this.#off = off;
  }

  /**
   * Add every entry of a verified leaf page as bytes (no decoding into strings). Overflow runs are
   * read (verified) through `readRun` and copied. Bounds, flags and key order are checked.
   */
  addRawLeaf(src: Buffer, count: number, where: { file: string; page: number }, readRun: (length: number, page: number, txn: number) => Buffer): void {
    const end = src.length;
    // Inline entries that go to the same output leaf are copied in one run.
    let runStart = 0;
    let runBytes = 0;
    let runCount = 0;
    const flushRun = () => {
      if (runCount === 0) return;
      src.copy(this.#leaf, this.#off, runStart, runStart + runBytes);
      this.#off += runBytes;
      this.#count += runCount;
      this.stats.entries += runCount;
      runBytes = 0;
      runCount = 0;
    };
    let prevK0 = -1;
    let prevKl = 0;
    let off = PAGE_HEADER;
    for (let i = 0; i < count; i++) {
      if (off + 7 > end) badLeaf(where, "entry header past page end", off);
      const kl = src.readUInt16LE(off);
      const flags = src[off + 2]!;
      const vl = src.readUInt32LE(off + 3);
      const k0 = off + 7;
      if (k0 + kl > end) badLeaf(where, "key past page end", off);
      const ordered = prevK0 >= 0 ? keyAfter(src, k0, kl, src, prevK0, prevKl) : this.#lastLen < 0 || keyAfter(src, k0, kl, this.#lastKey, 0, this.#lastLen);
      if (!ordered) badLeaf(where, "keys out of order", off);
      prevK0 = k0;
      prevKl = kl;
      if (flags === LEAF_FLAG_OVERFLOW) {
        if (k0 + kl + 8 > end) badLeaf(where, "overflow reference past page end", off);
        flushRun();
        const data = readRun(vl, src.readUInt32LE(k0 + kl), src.readUInt32LE(k0 + kl + 4));
        const page = this.#copyRun(data);
        const bytes = LEAF_ENTRY_OVERHEAD + kl + OVERFLOW_REF_BYTES;
        this.#room(bytes);
        const o = this.#off;
        src.copy(this.#leaf, o, off, k0 + kl);
        this.#leaf.writeUInt32LE(page, o + 7 + kl);
        this.#leaf.writeUInt32LE(this.#txn % TWO32, o + 11 + kl);
        this.#startEntry(o + 7, kl);
        this.#off = o + bytes;
        off = k0 + kl + 8;
      } else if (flags === 0) {
        const bytes = LEAF_ENTRY_OVERHEAD + kl + vl;
        if (off + bytes > end) badLeaf(where, "value past page end", off);
        if (this.#count + runCount > 0 && this.#off + runBytes + bytes > this.#limit) {
          flushRun();
          this.#emitLeaf();
        }
        if (this.#count + runCount === 0) this.#firstKey = src.latin1Slice(k0, k0 + kl);
        if (runCount === 0) runStart = off;
        runBytes += bytes;
        runCount++;
        off += bytes;
      } else badLeaf(where, `unknown entry flags ${flags}`, off);
    }
    flushRun();
    if (prevK0 >= 0) {
      src.copy(this.#lastKey, 0, prevK0, prevK0 + prevKl);
      this.#lastLen = prevKl;
    }
  }

  /** Keys of decoded entries count for the order check of raw ones that follow. */
  noteDecodedKey(key: string): void {
    this.#lastLen = this.#lastKey.latin1Write(key, 0);
  }

  #emitLeaf(): void {
    const { page, view } = this.#app.take(1, false);
    this.#leaf.copy(view, 0, 0, this.#off);
    view.fill(0, this.#off);
    writeHeader(view, { type: PageType.Leaf, flags: 0, count: this.#count, pageNo: page, txn: this.#txn, aux1: 0, aux2: 0 });
    seal(view);
    this.#childKeys.push(this.#firstKey);
    this.#childPages.push(page);
    this.stats.leafPages++;
    this.#off = PAGE_HEADER;
    this.#count = 0;
  }

  /** Step 2: the branch levels, sliced. Returns the finished tree's statistics and root. */
  async finish(slicer: TimeSlicer): Promise<TreeState> {
    if (this.#count > 0) this.#emitLeaf();
    const st = this.stats;
    if (this.#childPages.length === 0) return st;
    st.depth = 1;
    let keys = this.#childKeys;
    let pages = this.#childPages;
    const txn = this.#txn;
    while (pages.length > 1) {
      const upKeys: string[] = [];
      const upPages: number[] = [];
      // Greedy packing, then the last node takes a child from its left neighbour if it has one.
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
        groups[groups.length - 2]![1]--;
        last[0]--;
      }
      for (const [a, b] of groups) {
        const kids = pages.slice(a, b);
        const node = new BranchNode(keys.slice(a + 1, b), kids, kids.map(() => txn), txn);
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

/** Whether key a[aOff, aOff+aLen) sorts strictly after b[bOff, bOff+bLen) (bytewise). */
function keyAfter(a: Buffer, aOff: number, aLen: number, b: Buffer, bOff: number, bLen: number): boolean {
  if (aLen >= 4 && bLen >= 4) {
    const x = a.readUInt32BE(aOff);
    const y = b.readUInt32BE(bOff);
    if (x !== y) return x > y;
  }
  return a.compare(b, bOff, bOff + bLen, aOff, aOff + aLen) > 0;
}

function badLeaf(where: { file: string; page: number }, what: string, offset: number): never {
  throw corrupt(`leaf page ${where.page} of ${where.file} is malformed: ${what} at offset ${offset}`, { file: where.file, page: where.page, offset, reason: what });
}

export interface CompactWriteResult {
  highWater: number;
  catalog: TreeState;
  entries: number;
  bytes: number;
}

const TREE_TYPES = [PageType.Branch, PageType.Leaf];
/** Most pages read with one pread when a branch's children are consecutive. */
const MAX_RUN = 64;

/**
 * Walks one source tree in key order: nodes held in memory (not yet checkpointed, or cached) are
 * read as they are; a child held as a page number is read from the file (one pread into a reused
 * buffer), verified (checksum, page number, type, the txn its parent recorded) and, for a leaf,
 * copied entry by entry as bytes.
 */
class SourceWalker {
  #src: Engine;
  #file: FileHandle;
  #bufs: Buffer[] = [];
  #slicer: TimeSlicer;
  #onLeaf: () => void;
  constructor(src: Engine, file: FileHandle, slicer: TimeSlicer, onLeaf: () => void) {
    this.#src = src;
    this.#file = file;
    this.#slicer = slicer;
    this.#onLeaf = onLeaf;
  }

  readonly readRun = (length: number, page: number, txn: number): Buffer => this.#src.pager.readOverflow(new OverflowValue(length, page, txn, null));

  async walk(ref: NodeRef, txn: number, b: TreeBuilder, depth: number): Promise<void> {
    if (depth > 64) throw corrupt(`a tree of ${this.#src.path} is deeper than 64 levels at page ${typeof ref === "number" ? ref : ref.page}`, { file: this.#src.path, reason: "depth" });
    // A node a checkpoint has written (page !== 0) is read from its page like a page number: its
    // bytes are copied without decoding. Only nodes no checkpoint has written yet are encoded here.
    if (typeof ref === "number" || ref.page !== 0) {
      await this.#walkPages([typeof ref === "number" ? ref : ref.page], [typeof ref === "number" ? txn : ref.pageTxn], b, depth);
      return;
    }
    if (ref.leaf) {
      for (let i = 0; i < ref.keys.length; i++) {
        const k = ref.keys[i]!;
        const v = ref.vals[i]!;
        if (typeof v === "string") b.addDecoded(k, v, null);
        else b.addDecoded(k, null, this.#src.pager.readOverflow(v));
        b.noteDecodedKey(k);
      }
      this.#onLeaf();
      if (this.#slicer.due()) await this.#slicer.pause();
      return;
    }
    // Children on disk go in groups (one pread per run of consecutive pages).
    const kids = ref.children;
    for (let i = 0; i < kids.length; ) {
      const c = kids[i]!;
      if (typeof c !== "number" && c.page === 0) {
        await this.walk(c, ref.childTxn[i]!, b, depth + 1);
        i++;
        continue;
      }
      const pages: number[] = [];
      const txns: number[] = [];
      for (; i < kids.length; i++) {
        const k = kids[i]!;
        if (typeof k === "number") {
          pages.push(k);
          txns.push(ref.childTxn[i]!);
        } else if (k.page !== 0) {
          pages.push(k.page);
          txns.push(k.pageTxn);
        } else break;
      }
      await this.#walkPages(pages, txns, b, depth + 1);
    }
  }

  /**
   * Children held as page numbers, in order. Runs of consecutive page numbers (a checkpoint writes
   * the children of a branch next to each other) are read with one pread of up to 64 pages.
   */
  async #walkPages(pages: number[], txns: number[], b: TreeBuilder, depth: number): Promise<void> {
    const ps = this.#src.limits.pageSize;
    const highWater = this.#src.pager.highWater;
    const path = this.#src.path;
    for (let i = 0; i < pages.length; ) {
      let j = i + 1;
      while (j < pages.length && j - i < MAX_RUN && pages[j] === pages[j - 1]! + 1) j++;
      const first = pages[i]!;
      const n = j - i;
      if (first < 2 || first + n > highWater) throw corrupt(`child page ${first} of ${path} is out of range (${highWater} pages)`, { file: path, page: first, reason: "out-of-range" });
      // One buffer per tree level, reused: a level's group is done before its next one is read,
      // and deeper levels use their own (no per-group allocation for the GC to chase).
      const buf = (this.#bufs[depth] ??= Buffer.allocUnsafeSlow(MAX_RUN * ps)).subarray(0, n * ps);
      let got: number;
      try {
        got = this.#file.read(buf, 0, n * ps, first * ps);
      } catch (e) {
        throw ioError(e, "read", path);
      }
      if (got < n * ps) throw corrupt(`page ${first + Math.floor(got / ps)} of ${path} is cut short`, { file: path, page: first + Math.floor(got / ps), reason: "short-read" });
      for (let k = 0; k < n; k++) await this.#walkPage(buf.subarray(k * ps, (k + 1) * ps), first + k, txns[i + k]!, b, depth);
      i = j;
    }
  }

  async #walkPage(buf: Buffer, ref: number, txn: number, b: TreeBuilder, depth: number): Promise<void> {
    const ps = this.#src.limits.pageSize;
    const path = this.#src.path;
    const h = verifyPage(buf, { pageNo: ref, types: TREE_TYPES, txn, maxTxn: this.#src.pager.maxTxn, file: path });
    if (h.type === PageType.Leaf) {
      b.addRawLeaf(buf, h.count, { file: path, page: ref }, this.readRun);
      this.#onLeaf();
      if (this.#slicer.due()) await this.#slicer.pause();
      return;
    }
    if (depth > 64) throw corrupt(`a tree of ${path} is deeper than 64 levels at page ${ref}`, { file: path, page: ref, reason: "depth" });
    // A branch: its children's (page, txn) pairs.
    const count = h.count;
    if (count < 1) throw corrupt(`branch page ${ref} of ${path} has no children`, { file: path, page: ref, reason: "branch without children" });
    const kids = new Array<number>(count);
    const kidTxn = new Array<number>(count);
    let off = PAGE_HEADER;
    for (let i = 0; i < count; i++) {
      if (i > 0) {
        if (off + 2 > ps) throw corrupt(`branch page ${ref} of ${path} is malformed at offset ${off}`, { file: path, page: ref, offset: off, reason: "separator past page end" });
        off += 2 + buf.readUInt16LE(off);
      }
      if (off + 8 > ps) throw corrupt(`branch page ${ref} of ${path} is malformed at offset ${off}`, { file: path, page: ref, offset: off, reason: "child past page end" });
      kids[i] = buf.readUInt32LE(off);
      kidTxn[i] = buf.readUInt32LE(off + 4);
      off += 8;
    }
    await this.#walkPages(kids, kidTxn, b, depth + 1);
  }
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
  let leaves = 0;
  let file: FileHandle;
  try {
    file = src.fs.open(src.path, "r");
  } catch (e) {
    throw ioError(e, "open", src.path);
  }
  try {
    for (const e of snap.dbs.values()) {
      const b = new TreeBuilder(app, limits, txn, fill);
      const before = b.stats.entries;
      const walker = new SourceWalker(src, file, slicer, () => {
        if ((++leaves & 255) === 0 || slicer.due()) o.onEntries?.(copied + b.stats.entries - before);
      });
      if (e.tree.root !== null) await walker.walk(e.tree.root, e.tree.rootTxn, b, 1);
      const t = await b.finish(slicer);
      if (t.entries !== e.tree.entries) {
        throw corrupt(`sub-database "${e.name}" of ${src.path} holds ${t.entries} entries where its catalog record says ${e.tree.entries}`, {
          file: src.path,
          name: e.name,
          reason: "entry-count",
        });
      }
      copied += t.entries;
      const rec = encodeCatalogRecord(recordFromTree(t, typeof t.root === "number" ? t.root : 0, t.root === null ? 0 : t.rootTxn, e.keyEncoding, e.valueEncoding));
      records.push([catalogKey(e.name), rec.latin1Slice(0, rec.length)]);
    }
  } finally {
    try {
      file.close();
    } catch {
      // read-only handle
    }
  }
  records.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const cb = new TreeBuilder(app, limits, txn, fill);
  for (const [k, v] of records) cb.addDecoded(k, v, null);
  const catalog = await cb.finish(slicer);
  app.flush();
  o.onEntries?.(copied);
  return { highWater: app.next, catalog, entries: copied, bytes: app.bytes };
}
