/**
 * memTree: an in-memory TreeWriter for the B+tree unit tests. No pager: nodes stay in memory, so
 * `load` throws (a call to it is a bug in the tree code: it dereferenced a page that was never
 * written). `freed` records what the tree reports as freed; `stamp` plays the part of a checkpoint
 * by giving fake page numbers to every node and overflow value not written yet, so that later
 * transactions have on-disk pages to free.
 */
import { OverflowValue, type LeafValue, type Node, type NodeRef } from "../../src/btree/Node.js";
import type { TreeState, TreeWriter } from "../../src/btree/TreeState.js";
import { overflowPages, pageLimits, type PageLimits } from "../../src/pager/PageLayout.js";

export class MemWriter implements TreeWriter {
  readonly txn: number;
  readonly limits: PageLimits;
  readonly freedRuns: Array<[number, number]> = [];

  constructor(txn: number, pageSize = 1024) {
    this.txn = txn;
    this.limits = pageLimits(pageSize);
  }

  load(page: number, txn: number): Node {
    throw new Error(`in-memory tree: load(${page}, ${txn}) called, but every node is in memory`);
  }

  freed(page: number, count: number): void {
    this.freedRuns.push([page, count]);
  }

  /** Every freed page, one entry per page. */
  freedPages(): number[] {
    const out: number[] = [];
    for (const [p, n] of this.freedRuns) for (let i = 0; i < n; i++) out.push(p + i);
    return out;
  }
}

/** The leaf value WriteTxn would store for `value` under `key` (inline or overflow). */
export function leafValue(limits: PageLimits, key: string, value: string): LeafValue {
  return 7 + key.length + value.length <= limits.maxInlineEntry ? value : new OverflowValue(value.length, 0, 0, Buffer.from(value, "latin1"));
}

export function valueText(v: LeafValue): string {
  if (typeof v === "string") return v;
  if (!v.data) throw new Error("overflow value without data in an in-memory tree");
  return v.data.toString("latin1");
}

function walk(ref: NodeRef | null, fn: (n: Node) => void): void {
  if (ref === null) return;
  if (typeof ref === "number") throw new Error("in-memory tree holds a page number");
  fn(ref);
  if (!ref.leaf) for (const c of ref.children) walk(c, fn);
}

let nextFakePage = 2;

/** Give page numbers to every unwritten node and overflow value (a pretend checkpoint). */
export function stamp(st: TreeState, txn: number, pageSize = 1024): void {
  walk(st.root, (n) => {
    if (n.page === 0) {
      n.page = nextFakePage++;
      n.pageTxn = txn;
    }
    if (n.leaf) {
      for (const v of n.vals) {
        if (v instanceof OverflowValue && v.page === 0) {
          v.page = nextFakePage;
          v.pageTxn = txn;
          nextFakePage += overflowPages(v.length, pageSize);
        }
      }
    }
  });
}

/** Every page the tree reaches (tree pages and overflow runs), one entry per page. */
export function reachablePages(st: TreeState, pageSize = 1024): Set<number> {
  const out = new Set<number>();
  walk(st.root, (n) => {
    if (n.page) out.add(n.page);
    if (n.leaf) {
      for (const v of n.vals) {
        if (v instanceof OverflowValue && v.page) for (let i = 0; i < overflowPages(v.length, pageSize); i++) out.add(v.page + i);
      }
    }
  });
  return out;
}

/** A string picture of the whole tree (structure, keys and values), to prove it did not change. */
export function picture(st: TreeState): string {
  const parts: string[] = [`d${st.depth} e${st.entries} b${st.branchPages} l${st.leafPages} o${st.overflowPages}`];
  const rec = (ref: NodeRef | null, depth: number): void => {
    if (ref === null) return;
    if (typeof ref === "number") {
      parts.push(`${depth}:#${ref}`);
      return;
    }
    if (ref.leaf) {
      parts.push(`${depth}:L${ref.bytes}[${ref.keys.map((k, i) => JSON.stringify(k) + "=" + JSON.stringify(valueText(ref.vals[i]!))).join(",")}]`);
      return;
    }
    parts.push(`${depth}:B${ref.bytes}[${ref.keys.map((k) => JSON.stringify(k)).join(",")}]`);
    for (const c of ref.children) rec(c, depth + 1);
  };
  rec(st.root, 0);
  return parts.join("\n");
}

/** Sorted in byte order (the tree's order: latin1 strings compare as bytes). */
export function sortedKeys(m: Map<string, string>): string[] {
  return [...m.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
