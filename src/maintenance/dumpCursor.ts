/**
 * DumpCursor: a forward scan of one tree snapshot, in key order, that holds only its path.
 *
 * Why not TreeCursor: TreeCursor swizzles every node it loads into its parent (childNode), and
 * keeps a root it loads to itself. The engine's memory sweep only walks the trees of the head,
 * published and durable snapshots. So once writers have moved past the dumped snapshot (or when
 * its root was still a page number), every node a full scan loads would stay reachable from the
 * dumped snapshot until the dump ends: a database larger than memory could not be dumped.
 * DumpCursor uses a node already in memory as it is, loads a missing one through the pager
 * (verified) without storing it anywhere, and drops it when it leaves the path.
 *
 * Invariants:
 * - Memory: the cursor references the nodes on one root-to-leaf path, nothing else.
 * - Reads nothing the snapshot does not reach; the caller keeps the snapshot registered as a
 *   reader (I2) for as long as the cursor is used.
 * - A path longer than the tree's recorded depth is CORRUPT (a branch pointing back up), never a
 *   hang.
 */
import { tooDeep } from "../btree/BTree.js";
import type { BranchNode, LeafNode, LeafValue, Node, NodeRef } from "../btree/Node.js";
import type { TreeReader, TreeState } from "../btree/TreeState.js";

export class DumpCursor {
  #io: TreeReader;
  #st: TreeState;
  #branches: BranchNode[] = [];
  #idx: number[] = [];
  #leaf: LeafNode | null = null;
  #pos = 0;

  constructor(io: TreeReader, st: TreeState) {
    this.#io = io;
    this.#st = st;
  }

  #node(ref: NodeRef, txn: number): Node {
    return typeof ref === "number" ? this.#io.load(ref, txn) : ref;
  }

  /** Go down the left edge from `n` to a leaf. */
  #down(n: Node): void {
    while (!n.leaf) {
      if (this.#branches.length + 1 >= this.#st.depth) throw tooDeep(this.#st, n);
      this.#branches.push(n);
      this.#idx.push(0);
      n = this.#node(n.children[0]!, n.childTxn[0]!);
    }
    this.#leaf = n;
    this.#pos = 0;
  }

  /** Position at the first entry (invalid for an empty tree). */
  first(): void {
    this.#branches.length = 0;
    this.#idx.length = 0;
    this.#leaf = null;
    const r = this.#st.root;
    if (r === null) return;
    this.#down(this.#node(r, this.#st.rootTxn));
    if (this.#leaf!.keys.length === 0) this.next();
  }

  get valid(): boolean {
    return this.#leaf !== null && this.#pos < this.#leaf.keys.length;
  }

  /** The encoded key, as a latin1 string. */
  get key(): string {
    return this.#leaf!.keys[this.#pos]!;
  }

  get value(): LeafValue {
    return this.#leaf!.vals[this.#pos]!;
  }

  next(): void {
    for (;;) {
      const leaf = this.#leaf;
      if (!leaf) return;
      if (++this.#pos < leaf.keys.length) return;
      // Climb to the nearest ancestor with a next child, then down its left edge.
      let d = this.#branches.length - 1;
      while (d >= 0 && this.#idx[d]! >= this.#branches[d]!.children.length - 1) d--;
      if (d < 0) {
        this.#leaf = null;
        return;
      }
      const b = this.#branches[d]!;
      const i = ++this.#idx[d]!;
      this.#branches.length = d + 1;
      this.#idx.length = d + 1;
      this.#down(this.#node(b.children[i]!, b.childTxn[i]!));
      this.#pos = -1; // the loop's ++ makes it 0; an empty leaf moves on
    }
  }
}
