/**
 * BTree: get, put and remove on a copy-on-write B+tree.
 *
 * Invariants:
 * - Copy-on-write: a node not created by the running write transaction is copied before it is
 *   changed, and the whole path from the root to it is copied with it, so every committed
 *   snapshot keeps seeing exactly the tree it was given (MVCC).
 * - Each copied node that was on disk reports its page as freed by this transaction; the pager
 *   reuses it only when no reader and no durable meta can reach it (I2, kept by the FreeList).
 * - After every operation every non-root node fits in a page, holds at least one entry (leaf) or
 *   one child (branch), keys are strictly ascending, and separators bound their subtrees:
 *   keys(children[i]) < keys[i] <= keys(children[i+1]).
 * - The statistics in TreeState (entries, depth, page counts) are exact.
 */
import { KeelError } from "../errors.js";
import { PAGE_HEADER, BRANCH_FIRST_BYTES, overflowPages } from "../pager/PageLayout.js";
import {
  BranchNode,
  LeafNode,
  OverflowValue,
  branchEntryBytes,
  branchIndex,
  leafIndex,
  pfxInsert,
  pfxRemove,
  pfxSlice,
  searchPrefix,
  sharesHead,
  leafEntryBytes,
  ownBranchArrays,
  ownLeafArrays,
  withInserted,
  withRemoved,
  type LeafValue,
  type Node,
  type NodeRef,
} from "./Node.js";
import type { TreeReader, TreeState, TreeWriter } from "./TreeState.js";

function resolve(io: TreeReader, ref: NodeRef, txn: number): Node {
  return typeof ref === "number" ? io.load(ref, txn) : ref;
}

/**
 * A path longer than the tree's recorded depth means a damaged (or forged) page points back
 * up the tree: refuse it instead of descending forever (I6).
 */
export function tooDeep(st: TreeState, n: Node): KeelError {
  return new KeelError("CORRUPT", `tree path passes its recorded depth ${st.depth} at page ${n.page}: a branch points back up the tree`, {
    page: n.page,
    reason: "depth",
    depth: st.depth,
  });
}

/** The root node, decoded and kept in the TreeState on first use. */
export function rootNode(io: TreeReader, st: TreeState): Node | null {
  const r = st.root;
  if (r === null || typeof r !== "number") return r;
  const n = io.load(r, st.rootTxn);
  st.root = n;
  return n;
}

/** Child i of a branch, decoded and swizzled into the branch on first use (see Node.ts). */
export function childNode(io: TreeReader, b: BranchNode, i: number): Node {
  const ref = b.children[i]!;
  if (typeof ref !== "number") {
    ref.hot = true;
    return ref;
  }
  const n = io.load(ref, b.childTxn[i]!);
  b.children[i] = n;
  return n;
}

export function treeGet(io: TreeReader, st: TreeState, key: string): LeafValue | undefined {
  let node = rootNode(io, st);
  if (node === null) return undefined;
  let level = 1;
  while (!node.leaf) {
    if (++level > st.depth) throw tooDeep(st, node);
    const i = branchIndex(node, key, searchPrefix(node, key));
    const ref: NodeRef = node.children[i]!;
    if (typeof ref === "number") {
      const c: Node = io.load(ref, node.childTxn[i]!);
      node.children[i] = c;
      node = c;
    } else {
      ref.hot = true;
      node = ref;
    }
  }
  const keys = node.keys;
  const i = leafIndex(node, key, searchPrefix(node, key));
  return i < keys.length && keys[i] === key ? node.vals[i] : undefined;
}

function ownRoot(w: TreeWriter, st: TreeState): Node {
  const n = resolve(w, st.root!, st.rootTxn);
  if (n.txn === w.txn) return n;
  const c = n.clone(w.txn);
  if (n.page) w.freed(n.page, 1);
  else w.unplaced?.(n);
  st.root = c;
  st.rootTxn = 0;
  return c;
}

function ownChild(w: TreeWriter, parent: BranchNode, i: number): Node {
  const ref = parent.children[i]!;
  const n = typeof ref === "number" ? w.load(ref, parent.childTxn[i]!) : ref;
  if (n.txn === w.txn) return n;
  const c = n.clone(w.txn);
  if (n.page) w.freed(n.page, 1);
  else w.unplaced?.(n);
  parent.children[i] = c; // childTxn[i] now means nothing (see BranchNode): left as it is
  return c;
}

function addValue(w: TreeWriter, st: TreeState, v: LeafValue): void {
  if (v instanceof OverflowValue) st.overflowPages += overflowPages(v.length, w.limits.pageSize);
}

function dropValue(w: TreeWriter, st: TreeState, v: LeafValue): void {
  if (v instanceof OverflowValue) {
    const n = overflowPages(v.length, w.limits.pageSize);
    st.overflowPages -= n;
    if (v.page) w.freed(v.page, n);
    else w.unplaced?.(v);
  }
}

/**
 * Copy on write the path from the root to the leaf that holds (or would hold) `key`; the
 * branches on the way and the child index taken in each are left in `parents` and `idxs`.
 */
function ownPath(w: TreeWriter, st: TreeState, key: string, parents: BranchNode[], idxs: number[]): LeafNode {
  let node = ownRoot(w, st);
  while (!node.leaf) {
    if (parents.length + 1 >= st.depth) throw tooDeep(st, node);
    const i = branchIndex(node, key, searchPrefix(node, key));
    parents.push(node);
    idxs.push(i);
    node = ownChild(w, node, i);
  }
  return node;
}

/**
 * Insert or replace. Returns the value it replaced (undefined for an insert), so a caller that needs
 * the old value pays one descent, not two. An old overflow value's pages are reported freed, but no
 * page is reused before this transaction commits (commits never allocate), so it can still be read.
 */
export function treePut(w: TreeWriter, st: TreeState, key: string, val: LeafValue): LeafValue | undefined {
  if (st.root === null) {
    st.root = new LeafNode([key], [val], w.txn);
    st.rootTxn = 0;
    st.depth = 1;
    st.leafPages = 1;
    st.entries = 1;
    addValue(w, st, val);
    return undefined;
  }
  const parents: BranchNode[] = [];
  const idxs: number[] = [];
  const leaf = ownPath(w, st, key, parents, idxs);
  const kp = searchPrefix(leaf, key);
  const i = leafIndex(leaf, key, kp);
  let old: LeafValue | undefined;
  // Compare prefixes first: a random insert then never touches the (cold) neighbouring key string.
  if (i < leaf.keys.length && leaf.pfx![i] === kp && leaf.keys[i] === key) {
    old = leaf.vals[i]!;
    leaf.bytes += leafEntryBytes(key, val) - leafEntryBytes(key, old);
    ownLeafArrays(leaf);
    leaf.vals[i] = val;
    dropValue(w, st, old);
  } else {
    if (leaf.own) {
      leaf.keys.splice(i, 0, key);
      leaf.vals.splice(i, 0, val);
    } else {
      leaf.keys = withInserted(leaf.keys, i, key);
      leaf.vals = withInserted(leaf.vals, i, val);
      leaf.own = true;
    }
    // searchPrefix above built the array if it was missing; a key outside pfxHead drops it.
    if (sharesHead(kp)) pfxInsert(leaf, i, kp, leaf.keys.length - 1);
    else leaf.pfx = null;
    leaf.bytes += leafEntryBytes(key, val);
    st.entries++;
  }
  addValue(w, st, val);
  const existed = old !== undefined;
  const appended = !existed && i === leaf.keys.length - 1;
  if (leaf.bytes > w.limits.pageSize || (existed && leaf.bytes - PAGE_HEADER < w.limits.minFill)) {
    fixUp(w, st, parents, idxs, leaf, appended);
  }
  return old;
}

/**
 * Remove a key. Returns whether it existed. `present`: the caller has just found the key in this
 * tree, so the lookup that keeps a miss from copying the path is skipped.
 */
export function treeRemove(w: TreeWriter, st: TreeState, key: string, present = false): boolean {
  if (!present && treeGet(w, st, key) === undefined) return false; // no copy-on-write for a miss
  const parents: BranchNode[] = [];
  const idxs: number[] = [];
  const leaf = ownPath(w, st, key, parents, idxs);
  const i = leafIndex(leaf, key, searchPrefix(leaf, key));
  const old = leaf.vals[i]!;
  leaf.bytes -= leafEntryBytes(key, old);
  if (leaf.own) {
    leaf.keys.splice(i, 1);
    leaf.vals.splice(i, 1);
  } else {
    leaf.keys = withRemoved(leaf.keys, i);
    leaf.vals = withRemoved(leaf.vals, i);
    leaf.own = true;
  }
  pfxRemove(leaf, i, leaf.keys.length + 1);
  st.entries--;
  dropValue(w, st, old);
  fixUp(w, st, parents, idxs, leaf, false);
  return true;
}

/** Restore the size invariants from a changed node up to the root. */
function fixUp(w: TreeWriter, st: TreeState, parents: BranchNode[], idxs: number[], node: Node, appended: boolean): void {
  const { pageSize, minFill } = w.limits;
  let child: Node = node;
  for (let d = parents.length - 1; d >= 0; d--) {
    const parent = parents[d]!;
    const i = idxs[d]!;
    if (child.bytes > pageSize) splitChild(w, st, parent, i, child, appended && d === parents.length - 1);
    else if (child.bytes - PAGE_HEADER < minFill || (child.leaf && child.keys.length === 0)) rebalanceChild(w, st, parent, i, child);
    child = parent;
  }
  // `child` is the root now.
  if (child.bytes > pageSize) {
    const root = new BranchNode([], [child], [0], w.txn);
    st.root = root;
    st.depth++;
    st.branchPages++;
    splitChild(w, st, root, 0, child, appended && parents.length === 0);
    if (root.bytes > pageSize) throw new KeelError("INTERNAL", "new root overflows its page", { bytes: root.bytes });
  }
  collapseRoot(st);
}

function collapseRoot(st: TreeState): void {
  for (;;) {
    const root = st.root;
    if (root === null || typeof root === "number") return;
    if (root.leaf) {
      if (root.keys.length === 0) {
        st.root = null;
        st.depth = 0;
        st.leafPages = 0;
      }
      return;
    }
    if (root.children.length !== 1) return;
    st.root = root.children[0]!;
    st.rootTxn = root.childTxn[0]!;
    st.depth--;
    st.branchPages--;
  }
}

export function shortestSeparator(left: string, right: string): string {
  // Any s with left < s <= right works; the shortest keeps branches wide.
  const n = Math.min(left.length, right.length);
  let p = 0;
  while (p < n && left.charCodeAt(p) === right.charCodeAt(p)) p++;
  return right.slice(0, p + 1);
}

/** Choose where to cut a leaf (left = [0, s)) so both halves fit, as balanced as possible. */
export function leafSplitPoint(keys: string[], vals: LeafValue[], pageSize: number, appended: boolean): number {
  const n = keys.length;
  const sizes = new Array<number>(n);
  let total = 0;
  for (let j = 0; j < n; j++) total += sizes[j] = leafEntryBytes(keys[j]!, vals[j]!);
  if (appended && n >= 2 && PAGE_HEADER + total - sizes[n - 1]! <= pageSize) return n - 1;
  let best = -1;
  let bestMax = Infinity;
  let prefix = 0;
  for (let s = 1; s < n; s++) {
    prefix += sizes[s - 1]!;
    const l = PAGE_HEADER + prefix;
    const r = PAGE_HEADER + total - prefix;
    if (l <= pageSize && r <= pageSize && Math.max(l, r) < bestMax) {
      bestMax = Math.max(l, r);
      best = s;
    }
  }
  if (best < 0) throw new KeelError("INTERNAL", "leaf cannot be split into two pages", { entries: n, total });
  return best;
}

/** Choose the separator index m promoted from a branch (left keeps keys[0, m), right keys(m, n)). */
export function branchSplitPoint(keys: string[], pageSize: number): number {
  const n = keys.length;
  let total = 0;
  for (const k of keys) total += branchEntryBytes(k);
  let best = -1;
  let bestMax = Infinity;
  let prefix = 0;
  const base = PAGE_HEADER + BRANCH_FIRST_BYTES;
  for (let m = 0; m < n; m++) {
    const em = branchEntryBytes(keys[m]!);
    const l = base + prefix;
    const r = base + total - prefix - em;
    if (l <= pageSize && r <= pageSize && Math.max(l, r) < bestMax) {
      bestMax = Math.max(l, r);
      best = m;
    }
    prefix += em;
  }
  if (best < 0) throw new KeelError("INTERNAL", "branch cannot be split into two pages", { separators: n, total });
  return best;
}

function splitChild(w: TreeWriter, st: TreeState, parent: BranchNode, i: number, child: Node, appended: boolean): void {
  const pageSize = w.limits.pageSize;
  let sep: string;
  let right: Node;
  ownBranchArrays(parent);
  if (child.leaf) {
    ownLeafArrays(child);
    const s = leafSplitPoint(child.keys, child.vals, pageSize, appended);
    right = new LeafNode(child.keys.slice(s), child.vals.slice(s), w.txn);
    const cp = child.pfx;
    if (cp !== null) {
      right.pfx = pfxSlice(cp, s, child.keys.length);
      right.pfxOwn = true;
      right.pfxHead = child.pfxHead; // a part of the keys shares what all of them share
    }
    child.keys.length = s; // child's array keeps its first s entries, still right
    child.vals.length = s;
    child.bytes -= right.bytes - PAGE_HEADER;
    sep = shortestSeparator(child.keys[s - 1]!, (right as LeafNode).keys[0]!);
    st.leafPages++;
  } else {
    ownBranchArrays(child);
    const m = branchSplitPoint(child.keys, pageSize);
    sep = child.keys[m]!;
    right = new BranchNode(child.keys.slice(m + 1), child.children.slice(m + 1), child.childTxn.slice(m + 1), w.txn);
    child.keys.length = m;
    child.pfx = null;
    child.children.length = m + 1;
    child.childTxn.length = m + 1;
    child.bytes = PAGE_HEADER + BRANCH_FIRST_BYTES;
    for (const k of child.keys) child.bytes += branchEntryBytes(k);
    st.branchPages++;
  }
  parent.keys.splice(i, 0, sep);
  // Keep the prefix array in step: copying numbers is far cheaper than re-deriving them.
  if (parent.pfx !== null) {
    const kp = searchPrefix(parent, sep);
    if (sharesHead(kp)) pfxInsert(parent, i, kp, parent.keys.length - 1);
    else parent.pfx = null;
  }
  parent.children.splice(i + 1, 0, right);
  parent.childTxn.splice(i + 1, 0, 0);
  parent.bytes += branchEntryBytes(sep);
}

function removeChild(parent: BranchNode, i: number): void {
  ownBranchArrays(parent);
  const sepIdx = i > 0 ? i - 1 : 0;
  parent.bytes -= branchEntryBytes(parent.keys[sepIdx]!);
  parent.keys.splice(sepIdx, 1);
  if (parent.pfx !== null) pfxRemove(parent, sepIdx, parent.keys.length + 1);
  parent.children.splice(i, 1);
  parent.childTxn.splice(i, 1);
}

function rebalanceChild(w: TreeWriter, st: TreeState, parent: BranchNode, i: number, child: Node): void {
  if (parent.children.length < 2) return; // only child: the parent's own rebalance or root collapse deals with it
  if (child.leaf && child.keys.length === 0) {
    removeChild(parent, i);
    st.leafPages--;
    return;
  }
  const pageSize = w.limits.pageSize;
  const l = i > 0 ? i - 1 : i;
  const L = l === i ? child : ownChild(w, parent, l);
  const R = l === i ? ownChild(w, parent, i + 1) : child;
  const sep = parent.keys[l]!;
  if (L.leaf && R.leaf) {
    if (L.bytes + R.bytes - PAGE_HEADER <= pageSize) {
      ownLeafArrays(L);
      L.keys.push(...R.keys);
      L.pfx = null;
      L.vals.push(...R.vals);
      L.bytes += R.bytes - PAGE_HEADER;
      removeChild(parent, l + 1);
      st.leafPages--;
      return;
    }
    const keys = L.keys.concat(R.keys);
    const vals = L.vals.concat(R.vals);
    const s = leafSplitPoint(keys, vals, pageSize, false);
    L.keys = keys.slice(0, s);
    L.vals = vals.slice(0, s);
    L.own = true;
    R.own = true;
    L.pfx = null;
    R.pfx = null;
    R.keys = keys.slice(s);
    R.vals = vals.slice(s);
    L.bytes = PAGE_HEADER;
    for (let j = 0; j < s; j++) L.bytes += leafEntryBytes(keys[j]!, vals[j]!);
    R.bytes = PAGE_HEADER;
    for (let j = s; j < keys.length; j++) R.bytes += leafEntryBytes(keys[j]!, vals[j]!);
    setSeparator(parent, l, shortestSeparator(L.keys[s - 1]!, R.keys[0]!));
    return;
  }
  if (L.leaf || R.leaf) throw new KeelError("INTERNAL", "siblings at different depths", { page: parent.page });
  const Lb = L as BranchNode;
  const Rb = R as BranchNode;
  const merged = Lb.bytes + (Rb.bytes - PAGE_HEADER - BRANCH_FIRST_BYTES) + branchEntryBytes(sep);
  if (merged <= pageSize) {
    ownBranchArrays(Lb);
    Lb.keys.push(sep, ...Rb.keys);
    Lb.pfx = null;
    Lb.children.push(...Rb.children);
    Lb.childTxn.push(...Rb.childTxn);
    Lb.bytes = merged;
    removeChild(parent, l + 1);
    st.branchPages--;
    return;
  }
  const keys = Lb.keys.concat([sep], Rb.keys);
  const children = Lb.children.concat(Rb.children);
  const childTxn = Lb.childTxn.concat(Rb.childTxn);
  const m = branchSplitPoint(keys, pageSize);
  Lb.keys = keys.slice(0, m);
  Lb.pfx = null;
  Rb.pfx = null;
  Lb.children = children.slice(0, m + 1);
  Lb.childTxn = childTxn.slice(0, m + 1);
  Rb.keys = keys.slice(m + 1);
  Rb.children = children.slice(m + 1);
  Rb.childTxn = childTxn.slice(m + 1);
  Lb.own = true;
  Rb.own = true;
  Lb.bytes = PAGE_HEADER + BRANCH_FIRST_BYTES;
  for (const k of Lb.keys) Lb.bytes += branchEntryBytes(k);
  Rb.bytes = PAGE_HEADER + BRANCH_FIRST_BYTES;
  for (const k of Rb.keys) Rb.bytes += branchEntryBytes(k);
  setSeparator(parent, l, keys[m]!);
}

function setSeparator(parent: BranchNode, idx: number, sep: string): void {
  parent.bytes += branchEntryBytes(sep) - branchEntryBytes(parent.keys[idx]!);
  ownBranchArrays(parent);
  parent.keys[idx] = sep;
  parent.pfx = null;
}

/**
 * Report every on-disk page of the tree as freed (drop or clear of a sub-database).
 * Leaves are read only when the tree holds overflow values, whose runs they name.
 */
export function treeFreeAll(w: TreeWriter, st: TreeState): void {
  if (st.root === null) return;
  const pageSize = w.limits.pageSize;
  const needLeaves = st.overflowPages > 0;
  const visit = (ref: NodeRef, txn: number, leafLevel: boolean): void => {
    if (typeof ref === "number" && leafLevel && !needLeaves) {
      w.freed(ref, 1);
      return;
    }
    const n = resolve(w, ref, txn);
    if (n.page) w.freed(n.page, 1);
    else if (n.txn !== w.txn) w.unplaced?.(n);
    if (n.leaf) {
      for (const v of n.vals) {
        if (!(v instanceof OverflowValue)) continue;
        if (v.page) w.freed(v.page, overflowPages(v.length, pageSize));
        else w.unplaced?.(v); // an owned leaf's copy still holds its original's values
      }
      return;
    }
    for (let j = 0; j < n.children.length; j++) visit(n.children[j]!, n.childTxn[j]!, false);
  };
  // Depth tells which level holds leaves, so an on-disk leaf need not be read to be freed.
  const walk = (ref: NodeRef, txn: number, level: number): void => {
    if (level === 1) return visit(ref, txn, true);
    const n = resolve(w, ref, txn);
    if (n.page) w.freed(n.page, 1);
    else if (n.txn !== w.txn) w.unplaced?.(n);
    if (n.leaf) throw new KeelError("CORRUPT", `tree depth ${st.depth} disagrees with a leaf found at level ${level}`, { page: n.page });
    for (let j = 0; j < n.children.length; j++) walk(n.children[j]!, n.childTxn[j]!, level - 1);
  };
  walk(st.root, st.rootTxn, st.depth);
}
