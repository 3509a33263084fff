/**
 * NodeCodec: turns a Node into page bytes and back.
 *
 * Leaf page after the header: per entry u16 key length, u8 flags, u32 value length, the key bytes,
 * then the value bytes, or (flag OVERFLOW) u32 first overflow page + u32 txn of that run.
 * Branch page after the header: u32 first child page + u32 its txn; then per separator
 * u16 key length, key bytes, u32 child page, u32 child txn.
 *
 * Invariant: decode never trusts a length it has not checked against the page end; any
 * inconsistency (which a valid checksum makes a bug or a forged page) is CORRUPT naming the page.
 */
import { writeLatin1 } from "../util/latin1.js";
import { putU16, putU32 } from "../util/littleEndian.js";
import { KeelError, corrupt } from "../errors.js";
import { writeHeader, seal, type PageHeader } from "../pager/PageCodec.js";
import { LEAF_FLAG_OVERFLOW, PAGE_HEADER, PageType } from "../pager/PageLayout.js";
import { BranchNode, LeafNode, OverflowValue, type LeafValue, type Node } from "./Node.js";
export type { OverflowValue };

const TWO32 = 0x100000000;

/** The byte writers store past a buffer's end silently (typed arrays drop such stores): check first. */
function fits(node: Node, buf: Buffer): void {
  if (node.bytes > buf.length) throw new KeelError("INTERNAL", `node of ${node.bytes} bytes does not fit a ${buf.length}-byte page`, { bytes: node.bytes, pageSize: buf.length });
}

/** `overflowAt(v)` gives the [page, txn] of an overflow run (a checkpoint may be placing it now). */
export function encodeLeaf(node: LeafNode, buf: Buffer, pageNo: number, txn: number, overflowAt: (v: OverflowValue) => [number, number]): void {
  const { keys, vals } = node;
  fits(node, buf);
  writeHeader(buf, { type: PageType.Leaf, flags: 0, count: keys.length, pageNo, txn, aux1: 0, aux2: 0 });
  let off = PAGE_HEADER;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const v = vals[i]!;
    putU16(buf, off, k.length);
    if (typeof v !== "string") {
      buf[off + 2] = LEAF_FLAG_OVERFLOW;
      putU32(buf, off + 3, v.length);
      off += 7;
      off += writeLatin1(buf, k, off);
      const [p, t] = overflowAt(v);
      if (!p) throw new KeelError("INTERNAL", "overflow value without a page", { page: pageNo });
      putU32(buf, off, p);
      putU32(buf, off + 4, t % TWO32);
      off += 8;
    } else {
      buf[off + 2] = 0;
      putU32(buf, off + 3, v.length);
      off += 7;
      off += writeLatin1(buf, k, off);
      off += writeLatin1(buf, v, off);
    }
  }
  if (off !== node.bytes) throw new KeelError("INTERNAL", `leaf size accounting is off: ${off} != ${node.bytes}`, { page: pageNo, offset: off, bytes: node.bytes });
  seal(buf);
}

/** `childPages[i]`/`childTxns[i]` give the on-disk location of node.children[i] (arrays at least that long). */
export function encodeBranch(node: BranchNode, buf: Buffer, pageNo: number, txn: number, childPages: number[], childTxns: number[]): void {
  const { keys } = node;
  fits(node, buf);
  writeHeader(buf, { type: PageType.Branch, flags: 0, count: keys.length + 1, pageNo, txn, aux1: 0, aux2: 0 });
  let off = PAGE_HEADER;
  putU32(buf, off, childPages[0]!);
  putU32(buf, off + 4, childTxns[0]! % TWO32);
  off += 8;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    putU16(buf, off, k.length);
    off += 2;
    off += writeLatin1(buf, k, off);
    putU32(buf, off, childPages[i + 1]!);
    putU32(buf, off + 4, childTxns[i + 1]! % TWO32);
    off += 8;
  }
  if (off !== node.bytes) throw new KeelError("INTERNAL", `branch size accounting is off: ${off} != ${node.bytes}`, { page: pageNo, offset: off, bytes: node.bytes });
  seal(buf);
}

export interface DecodeContext {
  file: string;
  /** First page number past the end of the allocated file: a child at or past it is corrupt. */
  highWater: number;
}

export function decodeNode(buf: Buffer, h: PageHeader, ctx: DecodeContext): Node {
  const node = h.type === PageType.Leaf ? decodeLeaf(buf, h, ctx) : decodeBranch(buf, h, ctx);
  node.page = h.pageNo;
  node.pageTxn = h.txn;
  return node;
}

function bad(ctx: DecodeContext, h: PageHeader, what: string, offset: number): never {
  throw corrupt(`${h.type === PageType.Leaf ? "leaf" : "branch"} page ${h.pageNo} of ${ctx.file} is malformed: ${what} at offset ${offset}`, {
    file: ctx.file,
    page: h.pageNo,
    offset,
    reason: what,
  });
}

function checkChild(ctx: DecodeContext, h: PageHeader, child: number, off: number): void {
  if (child < 2 || child >= ctx.highWater) bad(ctx, h, `child page ${child} out of range`, off);
}

function decodeLeaf(buf: Buffer, h: PageHeader, ctx: DecodeContext): LeafNode {
  const n = h.count;
  const keys = new Array<string>(n);
  const vals = new Array<LeafValue>(n);
  const end = buf.length;
  let off = PAGE_HEADER;
  let prev: string | null = null;
  for (let i = 0; i < n; i++) {
    if (off + 7 > end) bad(ctx, h, "entry header past page end", off);
    const kl = buf.readUInt16LE(off);
    const flags = buf[off + 2]!;
    const vl = buf.readUInt32LE(off + 3);
    off += 7;
    if (off + kl > end) bad(ctx, h, "key past page end", off);
    const key = buf.latin1Slice(off, off + kl);
    off += kl;
    if (prev !== null && !(prev < key)) bad(ctx, h, "keys out of order", off);
    prev = key;
    keys[i] = key;
    if (flags === LEAF_FLAG_OVERFLOW) {
      if (off + 8 > end) bad(ctx, h, "overflow reference past page end", off);
      const page = buf.readUInt32LE(off);
      checkChild(ctx, h, page, off);
      vals[i] = new OverflowValue(vl, page, buf.readUInt32LE(off + 4), null);
      off += 8;
    } else if (flags === 0) {
      if (off + vl > end) bad(ctx, h, "value past page end", off);
      vals[i] = buf.latin1Slice(off, off + vl);
      off += vl;
    } else {
      bad(ctx, h, `unknown entry flags ${flags}`, off - 7 - kl);
    }
  }
  return new LeafNode(keys, vals, 0, off);
}

function decodeBranch(buf: Buffer, h: PageHeader, ctx: DecodeContext): BranchNode {
  const n = h.count;
  if (n < 1) bad(ctx, h, "branch without children", PAGE_HEADER);
  const end = buf.length;
  const keys = new Array<string>(n - 1);
  const children = new Array<number>(n);
  const childTxn = new Array<number>(n);
  let off = PAGE_HEADER;
  if (off + 8 > end) bad(ctx, h, "first child past page end", off);
  children[0] = buf.readUInt32LE(off);
  checkChild(ctx, h, children[0]!, off);
  childTxn[0] = buf.readUInt32LE(off + 4);
  off += 8;
  let prev: string | null = null;
  for (let i = 1; i < n; i++) {
    if (off + 2 > end) bad(ctx, h, "separator header past page end", off);
    const kl = buf.readUInt16LE(off);
    off += 2;
    if (off + kl + 8 > end) bad(ctx, h, "separator past page end", off);
    const key = buf.latin1Slice(off, off + kl);
    off += kl;
    if (prev !== null && !(prev < key)) bad(ctx, h, "separators out of order", off);
    prev = key;
    keys[i - 1] = key;
    children[i] = buf.readUInt32LE(off);
    checkChild(ctx, h, children[i]!, off);
    childTxn[i] = buf.readUInt32LE(off + 4);
    off += 8;
  }
  return new BranchNode(keys, children, childTxn, 0, off);
}
