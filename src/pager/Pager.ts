/**
 * Pager: page-level access to data.keel through the io/ FileSystem.
 *
 * Invariants:
 * - Every page read is verified (checksum, page number, type, the txn its parent recorded) before
 *   it is decoded; a failure is KeelError CORRUPT naming the file and page (I6).
 * - Reads past the high-water mark are refused as CORRUPT rather than returning zeros.
 * - Writes go out in page-number order, coalesced into runs, and only `sync()` makes them durable.
 */
import { KeelError, corrupt, ioError } from "../errors.js";
import type { FileHandle } from "../io/FileSystem.js";
import { decodeNode } from "../btree/NodeCodec.js";
import type { Node, OverflowValue } from "../btree/Node.js";
import { PageCache } from "./PageCache.js";
import { verifyPage } from "./PageCodec.js";
import { PAGE_HEADER, PageType, overflowPages, type PageLimits } from "./PageLayout.js";

export interface PageWrite {
  page: number;
  data: Buffer; // one page, or a whole run
}

/** Bytes a stepped write (writeOrderedSteps) writes between two "flush" pauses. */
const FLUSH_EVERY = 8 << 20;

const TREE_TYPES = [PageType.Branch, PageType.Leaf] as const;

export class Pager {
  readonly file: FileHandle;
  readonly path: string;
  readonly limits: PageLimits;
  readonly pageSize: number;
  readonly cache: PageCache;
  /** First page number never allocated by a durable checkpoint. */
  highWater: number;
  /** Newest txn a page may carry (the txn of the newest checkpoint). */
  maxTxn: number;
  pagesRead = 0;
  /** Reused between checkpoints: a commit of a few pages must not allocate megabytes. */
  #chunk = Buffer.alloc(0);
  pagesWritten = 0;
  bytesWritten = 0;

  constructor(file: FileHandle, path: string, limits: PageLimits, cachePages: number, highWater: number, maxTxn: number) {
    this.file = file;
    this.path = path;
    this.limits = limits;
    this.pageSize = limits.pageSize;
    this.cache = new PageCache(cachePages);
    this.highWater = highWater;
    this.maxTxn = maxTxn;
  }

  #closed = false;
  /** Known size of the file: refreshed (one fstat) only when a read reaches past it. */
  #fileSize = 0;

  #read(page: number, count: number): Buffer {
    if (this.#closed) throw new KeelError("CLOSED", `${this.path} is closed`, { file: this.path });
    if (page < 2 || page + count > this.highWater) {
      throw corrupt(`page ${page} (+${count - 1}) of ${this.path} is past the end of the database (${this.highWater} pages)`, {
        file: this.path,
        page,
        reason: "out-of-range",
      });
    }
    // Check the request against the real file before allocating for it: a damaged meta or
    // overflow header must not turn into a multi-gigabyte allocation.
    const end = (page + count) * this.pageSize;
    if (end > this.#fileSize) {
      try {
        this.#fileSize = this.file.size();
      } catch (e) {
        throw ioError(e, "fstat", this.path);
      }
      if (end > this.#fileSize) {
        throw corrupt(`page ${page} (+${count - 1}) of ${this.path} lies past the end of the file (${this.#fileSize} bytes)`, {
          file: this.path,
          page,
          reason: "past-eof",
        });
      }
    }
    const buf = Buffer.allocUnsafe(count * this.pageSize);
    let n: number;
    try {
      n = this.file.read(buf, 0, buf.length, page * this.pageSize);
    } catch (e) {
      throw ioError(e, "read", this.path);
    }
    if (n < buf.length) {
      throw corrupt(`page ${page} of ${this.path} is cut short: the file ends ${buf.length - n} bytes early`, { file: this.path, page, reason: "short-read" });
    }
    this.pagesRead += count;
    return buf;
  }

  /** A branch or leaf node verified and decoded from disk. The caller keeps it (swizzles it in). */
  load(page: number, txn: number): Node {
    const buf = this.#read(page, 1);
    const h = verifyPage(buf, { pageNo: page, types: TREE_TYPES, txn, maxTxn: this.maxTxn, file: this.path });
    const node = decodeNode(buf, h, { file: this.path, highWater: this.highWater });
    this.cache.loads++;
    this.cache.added();
    return node;
  }

  /** The payload of an overflow value, verified. */
  readOverflow(v: OverflowValue): Buffer {
    if (v.data) return v.data;
    const count = overflowPages(v.length, this.pageSize);
    const buf = this.#read(v.page, count);
    const h = verifyPage(buf, { pageNo: v.page, types: [PageType.Overflow], txn: v.pageTxn, maxTxn: this.maxTxn, file: this.path });
    if (h.aux1 !== count || h.aux2 !== v.length) {
      throw corrupt(`overflow run at page ${v.page} of ${this.path} holds ${h.aux2} bytes in ${h.aux1} pages; its leaf says ${v.length} bytes`, {
        file: this.path,
        page: v.page,
        reason: "overflow-length",
      });
    }
    return buf.subarray(PAGE_HEADER, PAGE_HEADER + v.length);
  }

  /** A run of pages of one type whose first page records the run length in aux1 (free list, overflow). */
  readRun(page: number, count: number, type: PageType, txn: number): { payload: Buffer; aux1: number; aux2: number; flags: number; txn: number } {
    const buf = this.#read(page, count);
    const h = verifyPage(buf, { pageNo: page, types: [type], txn, maxTxn: this.maxTxn, file: this.path });
    if (h.aux1 !== count || h.aux2 > buf.length - PAGE_HEADER) {
      throw corrupt(`run at page ${page} of ${this.path} is malformed (${h.aux1} pages, ${h.aux2} bytes)`, { file: this.path, page, reason: "run-length" });
    }
    return { payload: buf.subarray(PAGE_HEADER, PAGE_HEADER + h.aux2), aux1: h.aux1, aux2: h.aux2, flags: h.flags, txn: h.txn };
  }

  /** Raw bytes of a page, unverified (verify and salvage use it). */
  readRaw(page: number, count = 1): Buffer {
    const buf = Buffer.alloc(count * this.pageSize);
    try {
      this.file.read(buf, 0, buf.length, page * this.pageSize);
    } catch (e) {
      throw ioError(e, "read", this.path);
    }
    return buf;
  }

  /**
   * Write pages in page-number order through one reusable chunk buffer: `fill(view)` encodes a
   * page (or run) straight into the zeroed bytes it will be written from, so a checkpoint of a
   * million entries allocates no per-page buffers.
   */
  writeOrdered(jobs: Array<{ page: number; count: number; fill: (view: Buffer) => void }>): number {
    const steps = this.writeOrderedSteps(jobs);
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
    }
  }

  /**
   * writeOrdered as steps: yields "slice" after each page (or run) is encoded, so that a caller can
   * pause between them (a concurrent checkpoint, Engine.ts), and "flush" after every
   * FLUSH_EVERY bytes written, where such a caller may sync them (sharing the disk with other syncs
   * in small steps rather than one burst at the end); returns the bytes written. The chunk buffer
   * is this pager's: only one such writer may be unfinished at a time.
   */
  *writeOrderedSteps(jobs: Array<{ page: number; count: number; fill: (view: Buffer) => void }>): Generator<"slice" | "flush", number, void> {
    jobs.sort((a, b) => a.page - b.page);
    const ps = this.pageSize;
    let needed = 0;
    for (const j of jobs) needed += j.count;
    const chunkPages = Math.max(1, Math.min(needed, Math.floor((4 << 20) / ps)));
    if (this.#chunk.length < chunkPages * ps) this.#chunk = Buffer.allocUnsafeSlow(chunkPages * ps);
    const chunk = this.#chunk;
    let start = -1;
    let used = 0;
    let total = 0;
    let flushed = 0;
    const flush = () => {
      if (used === 0) return;
      try {
        this.file.write(chunk, 0, used * ps, start * ps);
      } catch (e) {
        throw ioError(e, "write", this.path);
      }
      this.pagesWritten += used;
      this.bytesWritten += used * ps;
      total += used * ps;
      used = 0;
      start = -1;
    };
    for (const j of jobs) {
      if (j.count > chunkPages) {
        flush();
        const big = Buffer.alloc(j.count * ps);
        j.fill(big);
        try {
          this.file.write(big, 0, big.length, j.page * ps);
        } catch (e) {
          throw ioError(e, "write", this.path);
        }
        this.pagesWritten += j.count;
        this.bytesWritten += big.length;
        total += big.length;
        yield "slice";
        if (total - flushed >= FLUSH_EVERY) {
          flushed = total;
          yield "flush";
        }
        continue;
      }
      if (used > 0 && (start + used !== j.page || used + j.count > chunkPages)) flush();
      if (used === 0) start = j.page;
      const view = chunk.subarray(used * ps, (used + j.count) * ps);
      view.fill(0);
      j.fill(view);
      used += j.count;
      yield "slice";
      if (total - flushed >= FLUSH_EVERY) {
        flushed = total;
        yield "flush";
      }
    }
    flush();
    return total;
  }

  /** Write pages (sorted by page number here), coalescing adjacent ones into one write each. */
  writePages(writes: PageWrite[]): void {
    writes.sort((a, b) => a.page - b.page);
    const ps = this.pageSize;
    let i = 0;
    try {
      while (i < writes.length) {
        let j = i + 1;
        let next = writes[i]!.page + writes[i]!.data.length / ps;
        while (j < writes.length && writes[j]!.page === next && j - i < 1024) {
          next += writes[j]!.data.length / ps;
          j++;
        }
        const data = j - i === 1 ? writes[i]!.data : Buffer.concat(writes.slice(i, j).map((w) => w.data));
        this.file.write(data, 0, data.length, writes[i]!.page * ps);
        this.pagesWritten += data.length / ps;
        this.bytesWritten += data.length;
        i = j;
      }
    } catch (e) {
      throw ioError(e, "write", this.path);
    }
  }

  writeMetaPage(slot: 0 | 1, data: Buffer): void {
    try {
      this.file.write(data, 0, data.length, slot * this.pageSize);
    } catch (e) {
      throw ioError(e, "write", this.path);
    }
    this.bytesWritten += data.length;
  }

  sync(): void {
    try {
      this.file.sync();
    } catch (e) {
      throw ioError(e, "fdatasync", this.path);
    }
  }

  /** sync() on the thread pool: the event loop goes on while the data file is flushed. */
  async syncAsync(): Promise<void> {
    try {
      await this.file.syncAsync();
    } catch (e) {
      throw ioError(e, "fdatasync", this.path);
    }
  }

  close(): void {
    this.#closed = true;
    this.cache.close();
    try {
      this.file.close();
    } catch (e) {
      throw ioError(e, "close", this.path);
    }
  }
}
