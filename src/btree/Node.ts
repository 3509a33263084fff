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
 * - A copy-on-write clone may share arrays with the node it copies (flags `own` and `pfxOwn`).
 *   A shared array is never written: whoever changes one first takes its own copy, so the
 *   committed node never sees a change.
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
  /**
   * Key prefixes (see BranchNode.pfx). Writers keep it in step with `keys` on insert, remove and
   * split (in place when this node owns the array, else in a copy: arrays are shared with clones),
   * so a random insert searches contiguous numbers instead of chasing one cold heap string per
   * probe. null after other changes; rebuilt on the next search. It may be longer than `keys`:
   * only the first keys.length entries mean anything.
   */
  pfx: number[] | null = null;
  /** Whether `pfx` belongs to this node alone (not shared with a clone), so it may be written in place. */
  pfxOwn = false;
  /** The leading bytes every key shares, which `pfx` entries skip (see BranchNode.pfxHead). */
  pfxHead = "";
  /**
   * Whether `keys` and `vals` belong to this node alone. A clone shares them with the node it
   * copies until its first change, which then builds its own arrays with the change made (one
   * copy, not a copy and then a splice): see ownLeafArrays. Arrays never shared are never copied.
   */
  own = true;
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
    const c = new LeafNode(this.keys, this.vals, txn, this.bytes);
    c.own = false;
    c.pfx = this.pfx;
    c.pfxHead = this.pfxHead;
    return c;
  }
}

/** Give a leaf its own `keys` and `vals` before they are changed in place. */
export function ownLeafArrays(l: LeafNode): void {
  if (l.own) return;
  l.keys = l.keys.slice();
  l.vals = l.vals.slice();
  l.own = true;
}

/** A copy of `a` with `x` inserted at index i (one allocation: slice + splice would make two). */
export function withInserted<T>(a: T[], i: number, x: T): T[] {
  const n = a.length;
  const r = new Array<T>(n + 1);
  for (let j = 0; j < i; j++) r[j] = a[j]!;
  r[i] = x;
  for (let j = i; j < n; j++) r[j + 1] = a[j]!;
  return r;
}

/** A copy of `a` without index i. */
export function withRemoved<T>(a: T[], i: number): T[] {
  const n = a.length;
  const r = new Array<T>(n - 1);
  for (let j = 0; j < i; j++) r[j] = a[j]!;
  for (let j = i + 1; j < n; j++) r[j - 1] = a[j]!;
  return r;
}

export type NodeRef = Node | number;

export class BranchNode {
  readonly leaf = false;
  /** keys[i] separates children[i] and children[i+1]: every key in children[i+1] is >= keys[i]. */
  keys: string[];
  children: NodeRef[];
  /**
   * For a child held as a page number: the txn its page header must carry. Meaningless (stale)
   * where the child is held as a Node, so swapping a child in never writes here.
   */
  childTxn: number[];
  /**
   * The 6 bytes after pfxHead of each separator as a number, built on first search and dropped (set to null)
   * by every change to `keys`: the search runs over contiguous numbers and compares strings only
   * on a tie, instead of chasing one heap string per probe. A plain array of doubles (V8 stores
   * them unboxed and contiguous), not a Float64Array: a typed array's backing store lives off the
   * JS heap and costs far more to allocate, and every copy-on-write of a node needs a new one.
   */
  pfx: number[] | null = null;
  /** Whether `pfx` belongs to this node alone (not shared with a clone), so it may be written in place. */
  pfxOwn = false;
  /**
   * The leading bytes every key of the node shares (set when `pfx` is built). `pfx` entries are the
   * 6 bytes after them: keys like "user:000123" all tie on their first 6 bytes, and a search that
   * ties compares strings, one cold heap string per probe. Every key the node gains must start
   * with pfxHead, or `pfx` is dropped and rebuilt; a key removed cannot break it.
   */
  pfxHead = "";
  /**
   * Whether `keys` and `childTxn` belong to this node alone. A clone (a copy-on-write on the path
   * of every put) copies only `children`, which changes at once, and shares the other two with
   * the node it copies until a split, merge or memory sweep changes them: see ownBranchArrays.
   */
  own = true;
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
    const c = new BranchNode(this.keys, this.children.slice(), this.childTxn, txn, this.bytes);
    c.own = false;
    c.pfx = this.pfx; // shared (pfxOwn stays false): a change to the copy replaces it, never writes into it
    c.pfxHead = this.pfxHead;
    return c;
  }
}

/** Give a branch its own `keys` and `childTxn` before either is changed in place. */
export function ownBranchArrays(b: BranchNode): void {
  if (b.own) return;
  b.keys = b.keys.slice();
  b.childTxn = b.childTxn.slice();
  b.own = true;
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

/**
 * Bytes [s, s+6) of a key, big-endian, as an exact integer: monotonic in key order among keys
 * that share their first s bytes.
 */
export function keyPrefix(k: string, s = 0): number {
  const n = k.length;
  return (
    (n > s ? k.charCodeAt(s) : 0) * 1099511627776 +
    (n > s + 1 ? k.charCodeAt(s + 1) : 0) * 4294967296 +
    (n > s + 2 ? k.charCodeAt(s + 2) : 0) * 16777216 +
    (n > s + 3 ? k.charCodeAt(s + 3) : 0) * 65536 +
    (n > s + 4 ? k.charCodeAt(s + 4) : 0) * 256 +
    (n > s + 5 ? k.charCodeAt(s + 5) : 0)
  );
}

/**
 * `key`'s prefix as node n's prefix array counts it, building the array if it is missing: the 6
 * bytes after n.pfxHead; -1 if `key` sorts before every key starting with pfxHead, Infinity if
 * after (a search then ends at the first or past the last entry without touching a key).
 */
export function searchPrefix(n: Node, key: string): number {
  if (n.pfx === null) ownPrefixes(n);
  const head = n.pfxHead;
  if (head.length === 0) return keyPrefix(key);
  if (key.startsWith(head)) return keyPrefix(key, head.length);
  return key < head ? -1 : Infinity;
}

/** Whether a prefix from searchPrefix may be stored in the node's array (the key starts with pfxHead). */
export function sharesHead(kp: number): boolean {
  return kp >= 0 && kp !== Infinity;
}

/** Index of the first key >= `key` in a leaf, searching its prefix array; kp = searchPrefix(l, key). */
export function leafIndex(l: LeafNode, key: string, kp: number): number {
  const pfx = l.pfx!;
  const keys = l.keys;
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const p = pfx[mid]!;
    if (p < kp || (p === kp && keys[mid]! < key)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * A shared head shorter than this is not skipped: the 6-byte window still tells the keys apart, and
 * random keys (whose leaves share a byte or two) keep the search that needs no startsWith.
 */
const MIN_HEAD = 4;

function ownPrefixes(n: Node): number[] {
  // Keys are sorted, so what the first and the last share, every key shares.
  const keys = n.keys;
  let s = 0;
  if (keys.length > 1) {
    const a = keys[0]!;
    const b = keys[keys.length - 1]!;
    const m = Math.min(a.length, b.length);
    while (s < m && a.charCodeAt(s) === b.charCodeAt(s)) s++;
    if (s < MIN_HEAD) s = 0;
  }
  n.pfxHead = s === 0 ? "" : keys[0]!.slice(0, s);
  n.pfxOwn = true;
  const pfx: number[] = [];
  for (let i = 0; i < keys.length; i++) pfx.push(keyPrefix(keys[i]!, s));
  return (n.pfx = pfx);
}

/**
 * Insert prefix `kp` at index `i` of `n`'s prefix array, which held `count` entries: in place when
 * the node owns the array, else into a copy the node then owns (the shared one is never written).
 */
export function pfxInsert(n: Node, i: number, kp: number, count: number): void {
  const pfx = n.pfx!;
  if (n.pfxOwn) {
    if (pfx.length > count) pfx.length = count;
    for (let j = count; j > i; j--) pfx[j] = pfx[j - 1]!;
    pfx[i] = kp;
    return;
  }
  const np = pfx.slice(0, i);
  np.push(kp);
  for (let j = i; j < count; j++) np.push(pfx[j]!);
  n.pfx = np;
  n.pfxOwn = true;
}

/** Remove entry `i` of `n`'s prefix array, which held `count` entries. */
export function pfxRemove(n: Node, i: number, count: number): void {
  const pfx = n.pfx!;
  if (n.pfxOwn) {
    for (let j = i; j < count - 1; j++) pfx[j] = pfx[j + 1]!;
    pfx.length = count - 1;
    return;
  }
  const np = pfx.slice(0, i);
  for (let j = i + 1; j < count; j++) np.push(pfx[j]!);
  n.pfx = np;
  n.pfxOwn = true;
}

/** A node's own copy of entries [from, to) of a prefix array. */
export function pfxSlice(pfx: number[], from: number, to: number): number[] {
  return pfx.slice(from, to);
}

/** Child index of branch `b` that may hold `key`; kp = searchPrefix(b, key). */
export function branchIndex(b: BranchNode, key: string, kp: number): number {
  const pfx = b.pfx!;
  const keys = b.keys;
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const p = pfx[mid]!;
    if (p < kp || (p === kp && keys[mid]! <= key)) lo = mid + 1;
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
