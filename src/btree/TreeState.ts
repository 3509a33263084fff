/**
 * TreeState: the root and the statistics of one B+tree (one sub-database or the catalog).
 *
 * A TreeState object belongs either to a committed snapshot (then it is never mutated) or to the
 * write transaction that copied it (then only that transaction mutates it).
 */
import type { Node, NodeRef, OverflowValue } from "./Node.js";
import type { PageLimits } from "../pager/PageLayout.js";

export interface TreeStats {
  depth: number;
  entries: number;
  branchPages: number;
  leafPages: number;
  overflowPages: number;
}

export interface TreeState extends TreeStats {
  /** null for an empty tree. */
  root: NodeRef | null;
  /** When `root` is a page number: the txn its page header must carry. */
  rootTxn: number;
}

export function emptyTree(): TreeState {
  return { root: null, rootTxn: 0, depth: 0, entries: 0, branchPages: 0, leafPages: 0, overflowPages: 0 };
}

export function copyTree(t: TreeState): TreeState {
  return { root: t.root, rootTxn: t.rootTxn, depth: t.depth, entries: t.entries, branchPages: t.branchPages, leafPages: t.leafPages, overflowPages: t.overflowPages };
}

/** What a tree needs from the pager to read. */
export interface TreeReader {
  readonly limits: PageLimits;
  /** Load a branch or leaf page, verified against the txn its parent recorded. */
  load(page: number, txn: number): Node;
}

/** What a tree needs from the write transaction to change itself. */
export interface TreeWriter extends TreeReader {
  /** Id of the running write transaction: nodes with this txn are its own and mutable. */
  readonly txn: number;
  /** `count` pages from `page` were reachable before this transaction and are not any more. */
  freed(page: number, count: number): void;
  /**
   * A node or overflow value of an earlier commit, with no page yet, was replaced or dropped. A
   * concurrent checkpoint may give it a page before this transaction commits (it froze a head
   * that holds it): the commit must then free that page, or it leaks (WriteTxn.placedFrees).
   */
  unplaced?(x: Node | OverflowValue): void;
}
