/**
 * buildTree: fill an empty tree bottom-up from entries in ascending key order, as numbered steps:
 *   1. Leaves: entries packed left to right, each leaf as full as its page allows.
 *   2. Each level of branches over the one below, packed the same way, the separator between
 *      two neighbours being the shortest string above the left one's last key and at most the
 *      right one's first key (as a split chooses it).
 *   3. The last two nodes of a level are evened out (the split of an overfull node), so none is
 *      left nearly empty.
 *   4. The level of one node is the root; the tree's statistics are those of the nodes built.
 * No descent per key, no split, no copy: a large batch into an empty sub-database (a bulk load)
 * costs one pass over its entries per level, and the leaves come out full instead of the two
 * thirds random inserts leave.
 *
 * Invariants: the tree must be empty and the keys unique and ascending (the caller sorts and
 * keeps the last write per key); every node fits its page; every branch has two children or
 * more; the nodes are the transaction's own (txn = w.txn, no page yet), like any node it creates.
 */
import { KeelError } from "../errors.js";
import { BRANCH_FIRST_BYTES, PAGE_HEADER, overflowPages } from "../pager/PageLayout.js";
import { branchSplitPoint, leafSplitPoint, shortestSeparator } from "./BTree.js";
import { BranchNode, LeafNode, OverflowValue, branchEntryBytes, leafEntryBytes, type LeafValue, type Node } from "./Node.js";
import type { TreeState, TreeWriter } from "./TreeState.js";

/** A node of the level being built, with the first and last key below it. */
interface Built {
  node: Node;
  first: string;
  last: string;
}

export function buildTree(w: TreeWriter, st: TreeState, keys: string[], vals: LeafValue[]): void {
  if (st.root !== null) throw new KeelError("INTERNAL", "buildTree needs an empty tree", { entries: st.entries });
  const n = keys.length;
  if (n === 0) return;
  const { pageSize, minFill } = w.limits;
  // 1. Leaves.
  let level: Built[] = [];
  // `bytes`: the leaf's size when the packing loop has measured it already.
  const leaf = (a: number, b: number, bytes?: number): Built => ({ node: new LeafNode(keys.slice(a, b), vals.slice(a, b), w.txn, bytes), first: keys[a]!, last: keys[b - 1]! });
  let start = 0;
  let bytes = PAGE_HEADER;
  for (let i = 0; i < n; i++) {
    if (i > 0 && !(keys[i - 1]! < keys[i]!)) throw new KeelError("INTERNAL", "buildTree needs unique ascending keys", { index: i });
    const e = leafEntryBytes(keys[i]!, vals[i]!);
    if (bytes + e > pageSize && i > start) {
      level.push(leaf(start, i, bytes));
      start = i;
      bytes = PAGE_HEADER;
    }
    bytes += e;
  }
  // 3. for the leaves: a short last leaf shares its left neighbour's entries.
  if (level.length > 0 && bytes - PAGE_HEADER < minFill) {
    const prev = level.pop()!.node as LeafNode;
    const from = start - prev.keys.length;
    const s = from + leafSplitPoint(keys.slice(from, n), vals.slice(from, n), pageSize, false);
    level.push(leaf(from, s));
    start = s;
  }
  level.push(leaf(start, n));
  st.leafPages = level.length;
  st.depth = 1;

  // 2. Branch levels.
  let branches = 0;
  while (level.length > 1) {
    const up: Built[] = [];
    const seps: string[] = [];
    for (let i = 1; i < level.length; i++) seps.push(shortestSeparator(level[i - 1]!.last, level[i]!.first));
    // Children [a, b) under one branch hold separators seps[a .. b-2] (seps[i] is between i and i+1).
    const branch = (a: number, b: number): Built => {
      const kids = level.slice(a, b);
      const node = new BranchNode(seps.slice(a, b - 1), kids.map((k) => k.node), new Array<number>(b - a).fill(0), w.txn);
      if (node.bytes > pageSize || b - a < 2) throw new KeelError("INTERNAL", "a built branch does not fit its page", { bytes: node.bytes, children: b - a });
      return { node, first: kids[0]!.first, last: kids[kids.length - 1]!.last };
    };
    let a = 0;
    let size = PAGE_HEADER + BRANCH_FIRST_BYTES;
    for (let i = 1; i < level.length; i++) {
      const e = branchEntryBytes(seps[i - 1]!);
      if (size + e > pageSize && i - a >= 2) {
        up.push(branch(a, i));
        a = i;
        size = PAGE_HEADER + BRANCH_FIRST_BYTES;
        continue; // seps[i-1] separates this branch from the next: it goes up a level
      }
      size += e;
    }
    // 3. for a branch level: a short last branch (one child, or under minFill) shares its left
    // neighbour's children, split where a full branch would be split.
    if (up.length > 0 && (level.length - a < 2 || size - PAGE_HEADER < minFill)) {
      const from = a - (up.pop()!.node as BranchNode).children.length;
      const m = branchSplitPoint(seps.slice(from, level.length - 1), pageSize);
      up.push(branch(from, from + m + 1));
      a = from + m + 1;
    }
    up.push(branch(a, level.length));
    branches += up.length;
    level = up;
    st.depth++;
  }

  // 4.
  st.root = level[0]!.node;
  st.rootTxn = 0;
  st.entries = n;
  st.branchPages = branches;
  let overflow = 0;
  for (const v of vals) if (v instanceof OverflowValue) overflow += overflowPages(v.length, pageSize);
  st.overflowPages = overflow;
}
