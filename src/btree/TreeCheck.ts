/**
 * TreeCheck: walks one tree and reports every broken structural invariant (see BTree.ts):
 * key order, separator bounds, page fill, uniform depth, exact statistics. Pages that fail to
 * load (checksum, type, stale txn) are reported with their page number instead of thrown, so
 * one walk lists every problem. Used by verify and by the tests.
 */
import { KeelError } from "../errors.js";
import { overflowPages } from "../pager/PageLayout.js";
import { OverflowValue, keyPrefix, type Node, type NodeRef } from "./Node.js";
import type { TreeReader, TreeState } from "./TreeState.js";

export interface TreeProblem {
  tree: string;
  page: number;
  kind: string;
  message: string;
}

export interface TreeCheckOptions {
  name: string;
  /** Called for every page the tree uses: tree pages (count 1) and overflow runs. */
  onPages?: (page: number, count: number, kind: "branch" | "leaf" | "overflow") => void;
  /** Also read every overflow run (checksums). */
  readOverflow?: (v: OverflowValue) => void;
  /** checkTreeSteps pauses (yields) after a page when this returns true. */
  wantsYield?: () => boolean;
}

/** The whole walk in one call. */
export function checkTree(io: TreeReader, st: TreeState, o: TreeCheckOptions): TreeProblem[] {
  const steps = checkTreeSteps(io, st, o);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * The walk as steps: it pauses after a page whenever `o.wantsYield()` says so, so that a caller
 * can give the event loop a turn inside one large tree (an online verify). The tree must stay
 * intact across the pauses: the caller pins it (a registered reader, I2).
 */
export function* checkTreeSteps(io: TreeReader, st: TreeState, o: TreeCheckOptions): Generator<void, TreeProblem[], void> {
  const problems: TreeProblem[] = [];
  const pageSize = io.limits.pageSize;
  const add = (page: number, kind: string, message: string) => problems.push({ tree: o.name, page, kind, message });
  const counted = { entries: 0, branch: 0, leaf: 0, overflow: 0 };
  let leafDepth = -1;
  const wantsYield = o.wantsYield;
  function* visit(ref: NodeRef, txn: number, depth: number, lo: string | null, hi: string | null, isRoot: boolean): Generator<void, void, void> {
    if (depth > Math.max(st.depth, 1)) {
      add(typeof ref === "number" ? ref : ref.page, "depth", `path passes the recorded depth ${st.depth}: a branch points back up the tree`);
      return;
    }
    let n: Node;
    try {
      n = typeof ref === "number" ? io.load(ref, txn) : ref;
    } catch (e) {
      if (e instanceof KeelError) add(typeof ref === "number" ? ref : 0, e.code === "CORRUPT" ? String(e.details.reason ?? "corrupt") : e.code, e.message);
      else throw e;
      return;
    }
    const page = n.page;
    if (n.bytes > pageSize) add(page, "overfull", `node holds ${n.bytes} bytes, more than a ${pageSize}-byte page`);
    const keys = n.keys;
    const pfx = n.pfx;
    if (pfx !== null) {
      if (pfx.length < keys.length) add(page, "prefix", `prefix cache holds ${pfx.length} entries for ${keys.length} keys`);
      else {
        const head = n.pfxHead;
        for (let i = 0; i < keys.length; i++) {
          if (!keys[i]!.startsWith(head) || pfx[i] !== keyPrefix(keys[i]!, head.length)) {
            add(page, "prefix", `prefix cache is stale at key ${i}`);
            break;
          }
        }
      }
    }
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      if (i > 0 && !(keys[i - 1]! < k)) add(page, "order", `keys ${i - 1} and ${i} are out of order`);
      if (lo !== null && k < lo) add(page, "bounds", `key ${i} is below its separator`);
      if (hi !== null && k >= hi) add(page, "bounds", `key ${i} is not below the next separator`);
    }
    if (wantsYield?.()) yield;
    if (n.leaf) {
      o.onPages?.(page, 1, "leaf");
      counted.leaf++;
      counted.entries += keys.length;
      if (keys.length === 0 && !isRoot) add(page, "empty", "empty leaf below the root");
      if (leafDepth < 0) leafDepth = depth;
      else if (leafDepth !== depth) add(page, "depth", `leaf at depth ${depth}, others at ${leafDepth}`);
      for (const v of n.vals) {
        if (v instanceof OverflowValue) {
          const c = overflowPages(v.length, pageSize);
          counted.overflow += c;
          if (v.page) o.onPages?.(v.page, c, "overflow");
          if (o.readOverflow) {
            try {
              o.readOverflow(v);
            } catch (e) {
              if (e instanceof KeelError) add(v.page, String(e.details.reason ?? e.code), e.message);
              else throw e;
            }
            // One leaf can name a hundred values of 100 KB: a turn between them, not only between pages.
            if (wantsYield?.()) yield;
          }
        }
      }
      return;
    }
    o.onPages?.(page, 1, "branch");
    counted.branch++;
    if (n.children.length !== keys.length + 1) add(page, "shape", `${n.children.length} children for ${keys.length} separators`);
    if (n.children.length < 2 && !isRoot) add(page, "underfull", "branch with a single child below the root");
    for (let i = 0; i < n.children.length; i++) {
      yield* visit(n.children[i]!, n.childTxn[i]!, depth + 1, i === 0 ? lo : keys[i - 1]!, i < keys.length ? keys[i]! : hi, false);
    }
  }
  if (st.root !== null) yield* visit(st.root, st.rootTxn, 1, null, null, true);
  const expectDepth = st.root === null ? 0 : leafDepth;
  if (problems.length === 0) {
    if (expectDepth !== st.depth) add(0, "stats", `depth is ${expectDepth}, statistics say ${st.depth}`);
    if (counted.entries !== st.entries) add(0, "stats", `${counted.entries} entries, statistics say ${st.entries}`);
    if (counted.branch !== st.branchPages) add(0, "stats", `${counted.branch} branch pages, statistics say ${st.branchPages}`);
    if (counted.leaf !== st.leafPages) add(0, "stats", `${counted.leaf} leaf pages, statistics say ${st.leafPages}`);
    if (counted.overflow !== st.overflowPages) add(0, "stats", `${counted.overflow} overflow pages, statistics say ${st.overflowPages}`);
  }
  return problems;
}
