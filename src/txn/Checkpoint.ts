/**
 * Checkpoint: the one way state becomes durable in data.keel (DESIGN.md section 3).
 *
 * The sequence, in order (each numbered step below is marked in the code):
 *   1. Compute the release limit = min(txn of the older meta slot, oldest reader, oldest
 *      read-only process's view, published snapshot) and release the free pages freed at or
 *      before it (I2).
 *   2. Give page numbers to every node and overflow value no checkpoint has written yet
 *      (reusable pages first, then the end of the file).
 *   3. Update the catalog tree with each changed sub-database's root and statistics.
 *   4. Write the free list into a fresh run: a delta segment naming the newest meta's chain
 *      (what this checkpoint freed and took), or, when the chain is full, a base segment with the
 *      whole list, freeing every segment of the old chain (FreeListChain.ts).
 *   5. Write all those pages, then fdatasync the data file (unless noSync). A small checkpoint
 *      (at most `oneSyncMaxPages` pages, wal: false) skips this sync: see "One sync" below.
 *   6. Write the meta page into the slot that does not hold the newest valid meta (I1), then
 *      fdatasync again (unless noSync or noMetaSync).
 *   7. Adopt: stamp page numbers on the nodes (they are clean now, and count against the
 *      memory budget), install the new free list and meta.
 *
 * Invariant I1 holds because steps 2 and 4 hand out only pages that neither meta slot's tree
 * uses (the release rule) or pages past the old end of the file, and because the meta that
 * names the new tree is written only after the tree is durable. Nothing in memory changes
 * before step 7, so a failure in steps 1-6 leaves the engine at its last good state.
 *
 * One sync: a checkpoint of at most `oneSyncMaxPages` pages (and neither noSync nor noMetaSync)
 * writes its pages and its meta, then syncs once, and marks the meta META_FLAG_ONE_SYNC. A power
 * cut during that sync may leave the meta on disk without some of its pages; open then finds a
 * page that fails its checksum or carries an older txn, and uses the other slot instead
 * (txn/checkpointIntact.ts). That slot's state was durable before this checkpoint wrote anything,
 * and step 2 never hands out its pages, so it is intact: I1 holds with one sync. The commits of
 * such a checkpoint were not acknowledged (the sync had not returned), so nothing acknowledged
 * is lost. The bound keeps open's check (it reads every page of that checkpoint) short.
 *
 * The steps are a generator (checkpointSteps) that pauses between units of work in steps 1-5;
 * runCheckpoint runs them in one call, RunningCheckpoint.drive between commits. Steps 6
 * and 7 always run in one call, so a run dropped at a pause has changed nothing.
 */
import { KeelError, corrupt } from "../errors.js";
import { treePut, treeRemove } from "../btree/BTree.js";
import { OverflowValue, type BranchNode, type Node, type NodeRef } from "../btree/Node.js";
import { encodeBranch, encodeLeaf } from "../btree/NodeCodec.js";
import { copyTree, type TreeState, type TreeWriter } from "../btree/TreeState.js";
import { FreeList } from "../pager/FreeList.js";
import { FREELIST_DELTA, MAX_CHAIN_SEGMENTS, deltaBytes, encodeDelta, type FreeListChain } from "../pager/FreeListChain.js";
import { META_FLAG_ONE_SYNC, encodeMeta, type Meta } from "../pager/Meta.js";
import { seal, writeHeader } from "../pager/PageCodec.js";
import { FORMAT_VERSION, PAGE_HEADER, PageType, overflowPages, type PageLimits } from "../pager/PageLayout.js";
import type { Pager } from "../pager/Pager.js";
import { encodeCatalogRecord, recordFromTree } from "./CatalogRecord.js";
import type { Snapshot } from "./Snapshot.js";

export interface CheckpointInput {
  pager: Pager;
  limits: PageLimits;
  head: Snapshot;
  freelist: FreeList;
  /** The chain the newest meta's free list was read from or written as (FreeListChain.ts). */
  freelistChain: FreeListChain;
  /** Whether this checkpoint may write a delta segment (false: a base, as format version 1 did). */
  freelistDeltas: boolean;
  /** Frees of the transactions since the last checkpoint: txn -> [page, count, page, count...]. */
  frees: ReadonlyArray<{ txn: number; pages: number[] }>;
  catalog: TreeState;
  /** Encoded catalog record of each sub-database as of the last checkpoint. */
  written: ReadonlyMap<string, Buffer>;
  metas: readonly [Meta | null, Meta | null];
  newest: 0 | 1;
  releaseLimit: number;
  noSync: boolean;
  noMetaSync: boolean;
  /** Sync pages and meta together when the checkpoint writes at most this many pages (0: never). */
  oneSyncMaxPages: number;
  /** Meta.bootTag of the boot this checkpoint runs in. */
  bootTag: number;
  flags: number;
  createdAt: number;
  onPhase?: ((phase: string) => void) | undefined;
}

export interface CheckpointResult {
  meta: Meta;
  slot: 0 | 1;
  freelist: FreeList;
  freelistChain: FreeListChain;
  catalog: TreeState;
  written: Map<string, Buffer>;
  /** Every page this checkpoint wrote (for failure handling by the caller). */
  allocated: number[];
  highWater: number;
  bytes: number;
  /** The nodes and overflow values it gave pages to (of the sub-databases, not the catalog). */
  nodes: Node[];
  values: OverflowValue[];
}

/** Raised by runCheckpoint; `metaAttempted` says whether the meta page may have reached disk. */
export class CheckpointError extends Error {
  constructor(
    readonly reason: unknown,
    readonly metaAttempted: boolean,
    readonly allocated: number[],
    readonly highWater: number,
  ) {
    super("checkpoint failed");
  }
}

class Allocator {
  highWater: number;
  readonly taken: number[] = [];
  constructor(
    private readonly fl: FreeList,
    highWater: number,
  ) {
    this.highWater = highWater;
  }
  singles(k: number): number[] {
    const pages = this.fl.takeMany(k);
    while (pages.length < k) pages.push(this.highWater++);
    for (const p of pages) this.taken.push(p);
    if (this.highWater > 0xfffffffe) throw new KeelError("FULL", "the database reached the largest page number a file can hold", { highWater: this.highWater });
    return pages;
  }
  run(n: number): number {
    let p = this.fl.takeRun(n);
    if (!p) {
      p = this.highWater;
      this.highWater += n;
    }
    for (let i = 0; i < n; i++) this.taken.push(p + i);
    if (this.highWater > 0xfffffffe) throw new KeelError("FULL", "the database reached the largest page number a file can hold", { highWater: this.highWater });
    return p;
  }
}

/** Post-order list of nodes no checkpoint has written; overflow values likewise. */
function collectDirty(ref: NodeRef | null, nodes: Node[], values: OverflowValue[]): void {
  const steps = collectDirtySteps(ref, nodes, values);
  while (!steps.next().done);
}

/** collectDirty without recursion, pausing ("slice") every STEP_ITEMS nodes. */
function* collectDirtySteps(root: NodeRef | null, nodes: Node[], values: OverflowValue[]): Generator<"slice", void, void> {
  if (root === null || typeof root === "number" || root.page !== 0) return;
  const stack: Node[] = [root];
  const next: number[] = [0];
  while (stack.length) {
    const top = stack.length - 1;
    const n = stack[top]!;
    if (!n.leaf && next[top]! < n.children.length) {
      const c = n.children[next[top]!++]!;
      if (typeof c !== "number" && c.page === 0) {
        stack.push(c);
        next.push(0);
      }
      continue;
    }
    if (n.leaf) for (const v of n.vals) if (v instanceof OverflowValue && v.page === 0) values.push(v);
    nodes.push(n);
    stack.pop();
    next.pop();
    if (nodes.length % STEP_ITEMS === 0) yield "slice";
  }
}

/** Items (pages freed, nodes listed or numbered, jobs built) between two pauses of steps 1-5. */
const STEP_ITEMS = 2048;

/**
 * Where the checkpoint steps pause: "slice" after each page (or run) is encoded and written, so a
 * concurrent checkpoint can give the event loop back; "flush" after every few MiB written, where a
 * concurrent checkpoint syncs what it wrote so far (its write-back then shares the disk with the
 * log's syncs in small steps; a synchronous run skips it); "data-sync" where step 5 needs the data
 * file fdatasync'ed (the driver runs it, blocking or on the thread pool, and throws its error in).
 */
export type CheckpointPause = "slice" | "flush" | "data-sync";

/** The checkpoint run to its end in one call (every commit of wal: false, close, explicit calls). */
export function runCheckpoint(input: CheckpointInput): CheckpointResult {
  return finishSteps(checkpointSteps(input), input.pager);
}

/** Run the rest of `steps` synchronously; the data sync blocks. */
export function finishSteps(
  steps: Generator<CheckpointPause, CheckpointResult, void>,
  pager: Pager,
  /** Where the steps paused last (null: not started); at "data-sync" the sync runs first. */
  last: IteratorResult<CheckpointPause, CheckpointResult> | null = null,
): CheckpointResult {
  if (last?.done) return last.value;
  let r = last ?? steps.next();
  while (!r.done) {
    let failed = false;
    let err: unknown;
    if (r.value === "data-sync") {
      try {
        pager.sync();
      } catch (e) {
        failed = true;
        err = e;
      }
    }
    r = failed ? steps.throw(err) : steps.next();
  }
  return r.value;
}

/**
 * The checkpoint sequence of this file's top comment as steps. Nothing shared changes before
 * step 7, which runs with step 6 in one call: a run dropped at a pause leaves the engine as it was
 * (its pages went to pages no meta and no reader uses).
 */
export function* checkpointSteps(input: CheckpointInput): Generator<CheckpointPause, CheckpointResult, void> {
  const { pager, limits, head } = input;
  const C = head.txn;
  const pageSize = limits.pageSize;
  let metaAttempted = false;
  const fl = input.freelist.clone();
  fl.startJournal();
  const alloc = new Allocator(fl, pager.highWater);
  try {
    // Step 1: release what no meta slot and no reader can reach. First what was listed before
    // (so the frees added below, none of them releasable yet, cannot merge with it: FreeList's
    // group cap), then again after them.
    fl.release(input.releaseLimit);
    let freed = 0;
    for (const f of input.frees) {
      for (let i = 0; i < f.pages.length; i += 2) {
        const page = f.pages[i]!;
        const count = f.pages[i + 1]!;
        // A page freed twice is one two trees share (a damaged catalog, a forged page): listing it
        // twice would make the next open fail and could hand it out twice. Nothing is written.
        if (fl.hasAny(page, count)) {
          throw corrupt(`txn ${f.txn} frees pages ${page}..${page + count - 1} of ${pager.path}, which the free list already holds: two trees share them (run keel verify)`, {
            file: pager.path,
            page,
            count,
            txn: f.txn,
            reason: "double-free",
          });
        }
        fl.free(f.txn, page, count);
      }
      freed += f.pages.length;
      if (freed >= STEP_ITEMS) {
        freed = 0;
        yield "slice";
      }
    }
    fl.release(input.releaseLimit);

    // Step 2: page numbers for new nodes and overflow values of every sub-database.
    const nodes: Node[] = [];
    const values: OverflowValue[] = [];
    for (const e of head.dbs.values()) yield* collectDirtySteps(e.tree.root, nodes, values);
    const pageOf = new Map<Node, number>();
    const valuePage = new Map<OverflowValue, number>();
    const treePages = alloc.singles(nodes.length);
    for (let i = 0; i < nodes.length; i++) {
      pageOf.set(nodes[i]!, treePages[i]!);
      if (i % STEP_ITEMS === STEP_ITEMS - 1) yield "slice";
    }
    for (const v of values) valuePage.set(v, alloc.run(overflowPages(v.length, pageSize)));
    // A node holds page 0 until a checkpoint adopts it (step 7), so page 0 means "placed above".
    const placed = (n: Node): number => {
      const q = pageOf.get(n);
      if (q === undefined) throw new KeelError("INTERNAL", "a changed node was not given a page", { txn: C });
      return q;
    };
    const refPage = (n: NodeRef): [number, number] => (typeof n === "number" ? [n, 0] : n.page !== 0 ? [n.page, n.pageTxn] : [placed(n), C]);

    // Step 3: the catalog tree, copied on write under a txn id no transaction uses.
    const catalog = copyTree(input.catalog);
    const catalogFreed: number[] = [];
    const catWriter: TreeWriter = {
      txn: -C,
      limits,
      load: (p, t) => pager.load(p, t),
      freed: (p, n) => catalogFreed.push(p, n),
    };
    const written = new Map<string, Buffer>();
    for (const [name, e] of head.dbs) {
      const [root, rootTxn] = e.tree.root === null ? [0, 0] : rootOf(e.tree, refPage);
      const rec = encodeCatalogRecord(recordFromTree(e.tree, root, rootTxn, e.keyEncoding, e.valueEncoding));
      written.set(name, rec);
      const before = input.written.get(name);
      if (!before || !before.equals(rec)) treePut(catWriter, catalog, catalogKey(name), rec.latin1Slice(0, rec.length));
    }
    for (const name of input.written.keys()) {
      if (!head.dbs.has(name)) treeRemove(catWriter, catalog, catalogKey(name));
    }
    for (let i = 0; i < catalogFreed.length; i += 2) fl.free(C, catalogFreed[i]!, catalogFreed[i + 1]!);
    const catNodes: Node[] = [];
    collectDirty(catalog.root, catNodes, []);
    const catPages = alloc.singles(catNodes.length);
    for (let i = 0; i < catNodes.length; i++) pageOf.set(catNodes[i]!, catPages[i]!);

    // Step 4: the free list (FreeListChain.ts): a delta segment on the newest meta's chain when
    // the chain has room, else a new base holding the whole list, which frees the old chain.
    // Allocating the segment's run changes the list, so size it, take it, and retry with a
    // bigger run if the encoding grew past it.
    const chain = input.freelistChain;
    const journal = fl.journal!;
    const prev = chain.segments[chain.segments.length - 1];
    let flPages = 0;
    let flPage = 0;
    let flFlags = 0;
    let flBytes: Buffer = Buffer.alloc(0);
    const giveBackRun = () => {
      if (flPage) fl.giveBack(Array.from({ length: flPages }, (_, i) => flPage + i));
      flPage = 0;
    };
    if (prev && input.freelistDeltas && chain.segments.length < MAX_CHAIN_SEGMENTS) {
      for (let attempt = 0; ; attempt++) {
        const want = overflowPages(deltaBytes(journal) + 8 * 4, pageSize);
        giveBackRun();
        if (chain.deltaPages + want > chain.basePages) break; // the deltas would outweigh the base
        flPage = alloc.run(want);
        flPages = want;
        flBytes = encodeDelta(prev, journal);
        if (overflowPages(flBytes.length, pageSize) <= flPages) {
          flFlags = FREELIST_DELTA;
          break;
        }
        if (attempt > 8) throw new KeelError("INTERNAL", "free-list delta size did not settle", { bytes: flBytes.length });
      }
    }
    if (flFlags === 0) {
      giveBackRun();
      for (const seg of chain.segments) fl.free(C, seg.page, seg.pages);
      for (let attempt = 0; ; attempt++) {
        const want = Math.max(1, overflowPages(fl.encodedBytes() + 16 * 4, pageSize));
        giveBackRun();
        flPage = alloc.run(want);
        flPages = want;
        flBytes = fl.encode();
        if (overflowPages(flBytes.length, pageSize) <= flPages) break;
        if (attempt > 8) throw new KeelError("INTERNAL", "free list size did not settle", { bytes: flBytes.length });
      }
    }
    const segment = { page: flPage, pages: flPages, txn: C };
    const newChain: FreeListChain =
      flFlags === FREELIST_DELTA
        ? { segments: [...chain.segments, segment], basePages: chain.basePages, deltaPages: chain.deltaPages + flPages }
        : { segments: [segment], basePages: flPages, deltaPages: 0 };

    // Step 5: encode and write every page (in page order, through one chunk buffer), then
    // make them durable.
    const jobs: Array<{ page: number; count: number; fill: (view: Buffer) => void }> = [];
    // refPage without a tuple per child; one pair of arrays for every branch (fills run one at a
    // time, writeOrderedSteps).
    const childPages: number[] = [];
    const childTxns: number[] = [];
    const fillBranch = (n: BranchNode, p: number, buf: Buffer): void => {
      const kids = n.children;
      for (let i = 0; i < kids.length; i++) {
        const c = kids[i]!;
        if (typeof c === "number") {
          childPages[i] = c;
          childTxns[i] = n.childTxn[i]!;
        } else if (c.page !== 0) {
          childPages[i] = c.page;
          childTxns[i] = c.pageTxn;
        } else {
          childPages[i] = placed(c);
          childTxns[i] = C;
        }
      }
      encodeBranch(n, buf, p, C, childPages, childTxns);
    };
    for (const n of nodes.concat(catNodes)) {
      if (jobs.length % STEP_ITEMS === STEP_ITEMS - 1) yield "slice";
      const p = pageOf.get(n)!;
      if (n.leaf) {
        jobs.push({ page: p, count: 1, fill: (buf) => encodeLeaf(n, buf, p, C, (v) => (valuePage.has(v) ? [valuePage.get(v)!, C] : [v.page, v.pageTxn])) });
      } else jobs.push({ page: p, count: 1, fill: (buf) => fillBranch(n, p, buf) });
    }
    for (const v of values) {
      const count = overflowPages(v.length, pageSize);
      const p = valuePage.get(v)!;
      jobs.push({
        page: p,
        count,
        fill: (buf) => {
          writeHeader(buf, { type: PageType.Overflow, flags: 0, count: 0, pageNo: p, txn: C, aux1: count, aux2: v.length });
          buf.set(v.data!, PAGE_HEADER);
          seal(buf);
        },
      });
    }
    jobs.push({
      page: flPage,
      count: flPages,
      fill: (buf) => {
        writeHeader(buf, { type: PageType.FreeList, flags: flFlags, count: 0, pageNo: flPage, txn: C, aux1: flPages, aux2: flBytes.length });
        buf.set(flBytes, PAGE_HEADER);
        seal(buf);
      },
    });
    let pageCount = 0;
    for (const j of jobs) pageCount += j.count;
    const oneSync = !input.noSync && !input.noMetaSync && pageCount <= input.oneSyncMaxPages;
    input.onPhase?.("checkpoint:before-write");
    const bytes = yield* pager.writeOrderedSteps(jobs);
    input.onPhase?.("checkpoint:after-write");
    if (!input.noSync && !oneSync) yield "data-sync";
    input.onPhase?.("checkpoint:after-data-sync");

    // Step 6: the meta, into the slot that does not hold the newest valid meta.
    const slot: 0 | 1 = input.metas[input.newest] ? (input.newest === 0 ? 1 : 0) : input.newest;
    const catRoot = catalog.root === null ? [0, 0] : rootOf(catalog, refPage);
    const meta: Meta = {
      version: FORMAT_VERSION,
      pageSize,
      txn: C,
      appliedLsn: head.lsn,
      highWater: alloc.highWater,
      catalogRoot: catRoot[0]!,
      catalogRootTxn: catRoot[1]!,
      catalogDepth: catalog.depth,
      catalogEntries: catalog.entries,
      catalogBranchPages: catalog.branchPages,
      catalogLeafPages: catalog.leafPages,
      catalogOverflowPages: catalog.overflowPages,
      freelistPage: flPage,
      freelistPages: flPages,
      freelistTxn: C,
      flags: oneSync ? input.flags | META_FLAG_ONE_SYNC : input.flags & ~META_FLAG_ONE_SYNC,
      bootTag: input.bootTag,
      createdAt: input.createdAt,
      checkpointAt: Date.now(),
    };
    metaAttempted = true;
    input.onPhase?.("checkpoint:before-meta");
    pager.writeMetaPage(slot, encodeMeta(meta, slot));
    input.onPhase?.("checkpoint:after-meta");
    if (!input.noSync && !input.noMetaSync) pager.sync();
    input.onPhase?.("checkpoint:after-meta-sync");

    // Step 7: adopt. Nothing above changed shared state; from here on nothing can fail.
    for (const n of nodes.concat(catNodes)) {
      n.page = pageOf.get(n)!;
      n.pageTxn = C;
      n.hot = true;
    }
    for (const v of values) {
      v.page = valuePage.get(v)!;
      v.pageTxn = C;
      v.data = null;
    }
    fl.endJournal();
    pager.highWater = alloc.highWater;
    pager.maxTxn = C;
    pager.cache.added(nodes.length + catNodes.length);
    return { meta, slot, freelist: fl, freelistChain: newChain, catalog, written, allocated: alloc.taken, highWater: alloc.highWater, bytes, nodes, values };
  } catch (e) {
    throw new CheckpointError(e, metaAttempted, alloc.taken, alloc.highWater);
  }
}

/**
 * The pages of a finished checkpoint's nodes and values that `live` no longer reaches: commits
 * after its freeze replaced them. As [page, count, ...] runs. After step 7 this checkpoint's nodes
 * and values are the ones with its txn as pageTxn; nodes written earlier lead only to earlier ones,
 * and nodes not written yet (page 0) are newer than the freeze, so the walk descends through those
 * two kinds only. `epoch` marks the nodes reached (a number no memory sweep uses: Engine#sweep).
 */
export function unreachablePages(res: CheckpointResult, live: Snapshot, pageSize: number, epoch: number): number[] {
  const C = res.meta.txn;
  const reachedValues = new Set<OverflowValue>();
  // A memory sweep may already have turned one of them back into its page number in a parent.
  const reachedPages = new Set<number>();
  const stack: Node[] = [];
  const push = (ref: NodeRef | null, txn: number) => {
    if (ref === null) return;
    if (typeof ref === "number") {
      if (txn === C) reachedPages.add(ref);
      return;
    }
    if (ref.mark === epoch || (ref.page !== 0 && ref.pageTxn !== C)) return; // seen, or written earlier
    ref.mark = epoch;
    stack.push(ref);
  };
  for (const e of live.dbs.values()) push(e.tree.root, e.tree.rootTxn);
  while (stack.length) {
    const n = stack.pop()!;
    if (!n.leaf) for (let i = 0; i < n.children.length; i++) push(n.children[i]!, n.childTxn[i]!);
    else if (res.values.length) for (const v of n.vals) if (v instanceof OverflowValue && v.pageTxn === C) reachedValues.add(v);
  }
  const out: number[] = [];
  for (const n of res.nodes) if (n.mark !== epoch && !reachedPages.has(n.page)) out.push(n.page, 1);
  for (const v of res.values) if (!reachedValues.has(v)) out.push(v.page, overflowPages(v.length, pageSize));
  return out;
}

/** Catalog keys are sub-database names as UTF-8 bytes (held as latin1 strings like every key). */
export function catalogKey(name: string): string {
  return Buffer.from(name, "utf8").toString("latin1");
}

function rootOf(t: TreeState, refPage: (n: NodeRef) => [number, number]): [number, number] {
  const r = t.root!;
  if (typeof r === "number") return [r, t.rootTxn];
  return refPage(r);
}
