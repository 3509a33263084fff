/**
 * FreeListChain: how the free list is persisted (format version 2, docs/FORMAT.md "Free list").
 *
 * The meta names the newest segment of a chain. Each segment is a run of pages of type FreeList:
 * - a base segment (flags 0) holds the whole list (FreeList.encode): it ends the chain;
 * - a delta segment (flags FREELIST_DELTA) names the segment before it and holds what one
 *   checkpoint changed: the runs it freed (first, count, freeing txn) and the runs it took for
 *   reuse (first, count). The list a meta names is its base with every delta applied, oldest
 *   first, each delta's frees before its takes (a checkpoint takes only after it frees).
 *
 * Why: rewriting the whole list at every checkpoint costs what the list's fragmentation costs.
 * After a long-lived reader (an online backup) pins the tree, tens of thousands of scattered pages
 * are free, and with `wal: false` (a checkpoint per commit) every commit then rewrote hundreds of
 * KiB. A delta costs what the checkpoint changed; the base is rewritten only when the deltas add
 * up to as many pages as the base takes, or the chain reaches MAX_CHAIN_SEGMENTS (a bound on the
 * pages read at open), so the amortised cost per checkpoint is about two deltas.
 *
 * Invariants:
 * - Segments are written in the checkpoint's page writes, before its meta (step 5), into pages
 *   taken from the list or past the end of the file: like any page, never one either meta slot
 *   uses (I1). A segment stays in use while a chain that a meta slot names holds it; the checkpoint
 *   that writes a new base frees every segment of the chain it replaces, under its own txn (I2).
 * - Loading checks every segment's header (type, page number, txn, checksum) and every change
 *   against the list it applies to: a page freed twice or taken while not free is CORRUPT naming
 *   the segment, so a damaged chain can never hand one page to two trees.
 */
import { corrupt } from "../errors.js";
import { FreeList, type FreeListJournal } from "./FreeList.js";

/** Page-header flag of a delta segment (a base segment has flags 0). */
export const FREELIST_DELTA = 1;
/** At most this many segments in a chain (base included): the next checkpoint writes a base. */
export const MAX_CHAIN_SEGMENTS = 64;

const TWO32 = 0x100000000;
const HEAD = 32;
const ADD = 16;
const TAKE = 8;

export interface FreeListSegment {
  page: number;
  pages: number;
  /** The txn of the checkpoint that wrote it (its page header's txn). */
  txn: number;
}

export interface FreeListChain {
  /** Oldest (the base) first; empty when the meta names no free list. */
  segments: FreeListSegment[];
  basePages: number;
  /** Pages of all delta segments. */
  deltaPages: number;
}

export const EMPTY_CHAIN: FreeListChain = Object.freeze({ segments: [], basePages: 0, deltaPages: 0 }) as FreeListChain;

/** Bytes of the delta segment a journal encodes to. */
export function deltaBytes(j: FreeListJournal): number {
  return HEAD + (j.adds.length / 3) * ADD + j.takes.runCount * TAKE;
}

/**
 * Delta payload: prev page u32, prev pages u32, prev txn u64, add count u32, take count u32,
 * 8 bytes zero; then each add (first u32, count u32, txn u64); then each take (first u32, count u32).
 */
export function encodeDelta(prev: FreeListSegment, j: FreeListJournal): Buffer {
  const adds = j.adds.length / 3;
  const buf = Buffer.alloc(deltaBytes(j));
  buf.writeUInt32LE(prev.page, 0);
  buf.writeUInt32LE(prev.pages, 4);
  buf.writeUInt32LE(prev.txn % TWO32, 8);
  buf.writeUInt32LE(Math.floor(prev.txn / TWO32), 12);
  buf.writeUInt32LE(adds, 16);
  buf.writeUInt32LE(j.takes.runCount, 20);
  let off = HEAD;
  for (let i = 0; i < j.adds.length; i += 3) {
    const txn = j.adds[i]!;
    buf.writeUInt32LE(j.adds[i + 1]!, off);
    buf.writeUInt32LE(j.adds[i + 2]!, off + 4);
    buf.writeUInt32LE(txn % TWO32, off + 8);
    buf.writeUInt32LE(Math.floor(txn / TWO32), off + 12);
    off += ADD;
  }
  for (let i = 0; i < j.takes.runCount; i++) {
    buf.writeUInt32LE(j.takes.starts[i]!, off);
    buf.writeUInt32LE(j.takes.counts[i]!, off + 4);
    off += TAKE;
  }
  return buf;
}

/**
 * Reads one segment, verified (type FreeList, page number, low 32 bits of `txn`, checksum); returns
 * its payload, flags and the full txn of its page header (a meta keeps only the low 32 bits).
 */
export type ReadSegment = (page: number, pages: number, txn: number) => { payload: Buffer; flags: number; txn: number };

/**
 * The free list of a meta whose newest segment is `head`, and the chain it was read from.
 * CORRUPT when a segment is malformed, the chain is too long or loops, or a change does not apply.
 */
export function loadFreeList(read: ReadSegment, head: FreeListSegment, where: { file: string; highWater: number }): { freelist: FreeList; chain: FreeListChain } {
  const deltas: Array<{ seg: FreeListSegment; payload: Buffer }> = [];
  let seg = head;
  for (;;) {
    if (deltas.length >= MAX_CHAIN_SEGMENTS) {
      throw corrupt(`the free-list chain from page ${head.page} of ${where.file} is longer than ${MAX_CHAIN_SEGMENTS} segments`, { file: where.file, page: seg.page, reason: "freelist-chain" });
    }
    if (seg.page < 2 || seg.pages < 1 || seg.page + seg.pages > where.highWater) {
      throw corrupt(`a free-list segment of ${where.file} is named at pages ${seg.page} (+${seg.pages}), outside [2, ${where.highWater})`, { file: where.file, page: seg.page, reason: "freelist-range" });
    }
    const { payload, flags, txn } = read(seg.page, seg.pages, seg.txn);
    seg = { page: seg.page, pages: seg.pages, txn };
    if (flags === 0) {
      const freelist = FreeList.decode(payload, { file: where.file, page: seg.page, highWater: where.highWater });
      const segments = [seg];
      let deltaPages = 0;
      for (let i = deltas.length - 1; i >= 0; i--) {
        const d = deltas[i]!;
        applyDelta(freelist, d.payload, d.seg, where);
        segments.push(d.seg);
        deltaPages += d.seg.pages;
      }
      return { freelist, chain: { segments, basePages: seg.pages, deltaPages } };
    }
    if (flags !== FREELIST_DELTA || payload.length < HEAD) {
      throw corrupt(`free-list segment at page ${seg.page} of ${where.file} is malformed (flags ${flags}, ${payload.length} bytes)`, { file: where.file, page: seg.page, reason: "freelist-segment" });
    }
    deltas.push({ seg, payload });
    const prev = {
      page: payload.readUInt32LE(0),
      pages: payload.readUInt32LE(4),
      txn: payload.readUInt32LE(8) + payload.readUInt32LE(12) * TWO32,
    };
    if (prev.txn >= seg.txn) {
      throw corrupt(`free-list segment at page ${seg.page} of ${where.file} (txn ${seg.txn}) names an earlier segment of txn ${prev.txn}`, { file: where.file, page: seg.page, reason: "freelist-chain" });
    }
    seg = prev;
  }
}

function applyDelta(fl: FreeList, p: Buffer, seg: FreeListSegment, where: { file: string; highWater: number }): void {
  const adds = p.readUInt32LE(16);
  const takes = p.readUInt32LE(20);
  const bad = (what: string, reason: string, offset: number) =>
    corrupt(`free-list segment at page ${seg.page} of ${where.file} ${what}`, { file: where.file, page: seg.page, reason, offset });
  if (p.length !== HEAD + adds * ADD + takes * TAKE) throw bad(`holds ${p.length} bytes, not what its ${adds} frees and ${takes} takes need`, "freelist-length", 16);
  const inRange = (first: number, count: number) => first >= 2 && count >= 1 && first + count <= where.highWater;
  let off = HEAD;
  for (let i = 0; i < adds; i++, off += ADD) {
    const first = p.readUInt32LE(off);
    const count = p.readUInt32LE(off + 4);
    const txn = p.readUInt32LE(off + 8) + p.readUInt32LE(off + 12) * TWO32;
    if (!inRange(first, count)) throw bad(`frees pages ${first}..${first + count - 1}, outside [2, ${where.highWater})`, "freelist-range", off);
    if (txn > seg.txn) throw bad(`frees pages ${first}..${first + count - 1} under txn ${txn}, after its own txn ${seg.txn}`, "freelist-txn", off);
    if (fl.hasAny(first, count)) throw bad(`frees pages ${first}..${first + count - 1}, already free`, "freelist-duplicate", off);
    fl.free(txn, first, count);
  }
  for (let i = 0; i < takes; i++, off += TAKE) {
    const first = p.readUInt32LE(off);
    const count = p.readUInt32LE(off + 4);
    if (!inRange(first, count)) throw bad(`takes pages ${first}..${first + count - 1}, outside [2, ${where.highWater})`, "freelist-range", off);
    if (!fl.remove(first, count)) throw bad(`takes pages ${first}..${first + count - 1}, not all of them free`, "freelist-take", off);
  }
}
