/**
 * Node: the in-memory form of a B+tree page.
 *
 * Invariants:
 * - A node whose `txn` differs from the running write transaction's id is shared with committed
 *   snapshots and is immutable: writers copy it first (copy-on-write). Only the transaction that
 *   created a node (node.txn === its id) mutates it, and only before it commits.
 * - `page` is 0 until a checkpoint has written the node; then it names the page holding exactly
 *   this content, written by checkpoint `pageTxn`.
 * - `bytes` is the exact encoded size of the node's page content (header included).
 * - Keys are the encoded key bytes as latin1 strings, so that JS string order is byte order.
 *   Inline values are latin1 strings too: a million small strings cost the garbage collector far
 *   less than a million small Buffers.
 * - A branch child is held either as a page number or as the Node decoded from that page
 *   ("swizzled in" on first use). Swapping one for the other never changes what a reader sees:
 *   the page is intact for as long as any snapshot can reach it (I2). The engine's sweep swaps
 *   cold clean nodes back to page numbers to bound memory.
 */
import {
  BRANCH_ENTRY_OVERHEAD,
  BRANCH_FIRST_BYTES,
  LEAF_ENTRY_OVERHEAD,
  OVERFLOW_REF_BYTES,
  PAGE_HEADER,
} from "../pager/PageLayout.js";

/** A value stored in an overflow run. `data` is held until a checkpoint writes the run. */
export class OverflowValue {
  readonly length: number;
  page: number;
  pageTxn: number;
  data: Buffer | null;

  constructor(length: number, page: number, pageTxn: number, data: Buffer | null) {
    this.length = length;
    this.page = page;
    this.pageTxn = pageTxn;
    this.data = data;
  }
}

export type LeafValue = string | OverflowValue;

export class LeafNode {
  readonly leaf = true;
  keys: string[];
  vals: LeafValue[];
  bytes: number;
  txn: number;
  page = 0;
  pageTxn = 0;
  hot = true;
  /** Epoch of the last memory sweep that visited this node. */
  mark = 0;

  constructor(keys: string[], vals: LeafValue[], txn: number, bytes?: number) {
    this.keys = keys;
    this.vals = vals;
    this.txn = txn;
    this.bytes = bytes ?? leafBytes(keys, vals);
  }

  clone(txn: number): LeafNode {
    return new LeafNode(this.keys.slice(), this.vals.slice(), txn, this.bytes);
  }
}

export type NodeRef = Node | number;

export class BranchNode {
  readonly leaf = false;
  /** keys[i] separates children[i] and children[i+1]: every key in children[i+1] is >= keys[i]. */
  keys: string[];
  children: NodeRef[];
  /** For a child held as a page number: the txn its page header must carry. */
  childTxn: number[];
  bytes: number;
  txn: number;
  page = 0;
  pageTxn = 0;
  hot = true;
  /** Epoch of the last memory sweep that visited this node. */
  mark = 0;

  constructor(keys: string[], children: NodeRef[], childTxn: number[], txn: number, bytes?: number) {
    this.keys = keys;
    this.children = children;
    this.childTxn = childTxn;
    this.txn = txn;
    this.bytes = bytes ?? branchBytes(keys);
  }

  clone(txn: number): BranchNode {
    return new BranchNode(this.keys.slice(), this.children.slice(), this.childTxn.slice(), txn, this.bytes);
  }
}

export type Node = LeafNode | BranchNode;

export function leafEntryBytes(key: string, val: LeafValue): number {
  return LEAF_ENTRY_OVERHEAD + key.length + (typeof val === "string" ? val.length : OVERFLOW_REF_BYTES);
}

export function leafBytes(keys: string[], vals: LeafValue[]): number {
  let n = PAGE_HEADER;
  for (let i = 0; i < keys.length; i++) n += leafEntryBytes(keys[i]!, vals[i]!);
  return n;
}

export function branchEntryBytes(key: string): number {
  return BRANCH_ENTRY_OVERHEAD + key.length;
}

export function branchBytes(keys: string[]): number {
  let n = PAGE_HEADER + BRANCH_FIRST_BYTES;
  for (const k of keys) n += BRANCH_ENTRY_OVERHEAD + k.length;
  return n;
}

/** Index of the first key >= `key` (keys sorted ascending). */
export function lowerBound(keys: string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Child index of a branch that may hold `key`: the number of separators <= key. */
export function childIndex(keys: string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! <= key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
