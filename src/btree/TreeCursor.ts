/**
 * TreeCursor: ordered traversal of one tree snapshot, forwards or backwards.
 *
 * The cursor holds the nodes on its path, and only those; the caller guarantees the snapshot stays alive
 * (a registered reader, or the write transaction that owns the tree) so that pages it has yet
 * to load are not reused (I2).
 */
import type { LeafNode, LeafValue, Node, NodeRef, BranchNode } from "./Node.js";
import { childIndex, lowerBound } from "./Node.js";
import { tooDeep } from "./BTree.js";
import type { TreeReader, TreeState } from "./TreeState.js";

export class TreeCursor {
  #io: TreeReader;
  #root: NodeRef | null;
  #rootTxn: number;
  #branches: BranchNode[] = [];
  #idx: number[] = [];
  #leaf: LeafNode | null = null;
  #pos = 0;
  #depth: number;
  #state: TreeState;

  constructor(io: TreeReader, st: TreeState) {
    this.#io = io;
    this.#root = st.root;
    this.#rootTxn = st.rootTxn;
    this.#depth = st.depth;
    this.#state = st;
  }

  get valid(): boolean {
    return this.#leaf !== null && this.#pos >= 0 && this.#pos < this.#leaf.keys.length;
  }

  get key(): string {
    return this.#leaf!.keys[this.#pos]!;
  }

  get value(): LeafValue {
    return this.#leaf!.vals[this.#pos]!;
  }

  /**
   * A child for the walk. Nodes already held in memory are used; a child that is only a page
   * number is read but NOT attached to its parent: a full scan must hold only its current path,
   * not every page it passes (the memory sweep cannot reach nodes attached under an old
   * snapshot or under a root the cursor loaded itself). Point reads (treeGet) do the caching.
   */
  #child(b: BranchNode, i: number): Node {
    const ref = b.children[i]!;
    return typeof ref === "number" ? this.#io.load(ref, b.childTxn[i]!) : ref;
  }

  #descend(key: string | null, toEnd: boolean): void {
    this.#branches.length = 0;
    this.#idx.length = 0;
    this.#leaf = null;
    if (this.#root === null) return;
    if (typeof this.#root === "number") this.#root = this.#io.load(this.#root, this.#rootTxn);
    let n = this.#root;
    while (!n.leaf) {
      if (this.#branches.length + 1 >= this.#depth) throw tooDeep(this.#state, n);
      const i = key !== null ? childIndex(n.keys, key) : toEnd ? n.children.length - 1 : 0;
      this.#branches.push(n);
      this.#idx.push(i);
      n = this.#child(n, i);
    }
    this.#leaf = n;
  }

  /** Position at the first entry >= key (or the first entry when key is null). */
  seekGE(key: string | null): void {
    this.#descend(key, false);
    if (!this.#leaf) return;
    this.#pos = key === null ? 0 : lowerBound(this.#leaf.keys, key);
    if (this.#pos >= this.#leaf.keys.length) this.next();
  }

  /** Position at the last entry <= key (or the last entry when key is null). */
  seekLE(key: string | null): void {
    this.#descend(key, true);
    if (!this.#leaf) return;
    const keys = this.#leaf.keys;
    if (key === null) this.#pos = keys.length - 1;
    else {
      const i = lowerBound(keys, key);
      this.#pos = i < keys.length && keys[i] === key ? i : i - 1;
    }
    if (this.#pos < 0) this.prev();
  }

  /** Position at the last entry < key. */
  seekLT(key: string): void {
    this.#descend(key, true);
    if (!this.#leaf) return;
    this.#pos = lowerBound(this.#leaf.keys, key) - 1;
    if (this.#pos < 0) this.prev();
  }

  next(): void {
    const leaf = this.#leaf;
    if (!leaf) return;
    if (++this.#pos < leaf.keys.length) return;
    // Climb to the first ancestor with a right sibling subtree, then go down its left edge.
    let d = this.#branches.length - 1;
    while (d >= 0 && this.#idx[d]! >= this.#branches[d]!.children.length - 1) d--;
    if (d < 0) {
      this.#leaf = null;
      return;
    }
    this.#idx[d]!++;
    let n = this.#child(this.#branches[d]!, this.#idx[d]!);
    this.#branches.length = d + 1;
    this.#idx.length = d + 1;
    while (!n.leaf) {
      if (this.#branches.length + 1 >= this.#depth) throw tooDeep(this.#state, n);
      this.#branches.push(n);
      this.#idx.push(0);
      n = this.#child(n, 0);
    }
    this.#leaf = n;
    this.#pos = 0;
    if (n.keys.length === 0) this.next();
  }

  prev(): void {
    if (!this.#leaf) return;
    if (--this.#pos >= 0) return;
    let d = this.#branches.length - 1;
    while (d >= 0 && this.#idx[d]! <= 0) d--;
    if (d < 0) {
      this.#leaf = null;
      return;
    }
    this.#idx[d]!--;
    let n = this.#child(this.#branches[d]!, this.#idx[d]!);
    this.#branches.length = d + 1;
    this.#idx.length = d + 1;
    while (!n.leaf) {
      if (this.#branches.length + 1 >= this.#depth) throw tooDeep(this.#state, n);
      this.#branches.push(n);
      this.#idx.push(n.children.length - 1);
      n = this.#child(n, n.children.length - 1);
    }
    this.#leaf = n;
    this.#pos = n.keys.length - 1;
    if (this.#pos < 0) this.prev();
  }
}
