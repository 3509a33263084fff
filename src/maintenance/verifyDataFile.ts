/**
 * verifyDataFile: every check of data.keel that verify makes, reading through a FileHandle only.
 *
 * In order:
 *   1. Both meta slots: a damaged slot is reported even when the other one is valid; the newest
 *      valid meta is used for the rest, as open would. A one-sync meta whose checkpoint did not
 *      reach the disk whole (txn/checkpointIntact.ts) is a warning, and the other slot is used.
 *   2. The catalog tree and every sub-database tree it names (checkTree: checksums, page numbers,
 *      types, the txn each parent recorded, key order, separator bounds, uniform depth, the
 *      statistics recorded in the meta and in the catalog records), every overflow run read and
 *      checked.
 *   3. The free-list run (checksum) and its entries (range, duplicates).
 *   4. Reachability: every page below the high-water mark must be exactly one of meta, tree page,
 *      overflow page, free-list run page or free page. A page claimed twice is reported (two trees
 *      sharing a page, or a free page that a tree still reaches); a page claimed by nothing is
 *      leaked.
 *   5. The tree of the older meta slot, which open falls back to when the newest meta is lost
 *      (I1: it must be intact too). Subtrees the newest tree shares with it are not read twice.
 *
 * Invariants: read-only (the handle may be the open engine's; nothing is written or cached); no
 * damage escapes as an exception: every failure becomes a problem naming the file and the page.
 */
import { formatVersionOfFile } from "../pager/formatVersionOf.js";
import { checkTreeSteps, type TreeProblem } from "../btree/TreeCheck.js";
import { OverflowValue, type LeafNode, type Node } from "../btree/Node.js";
import type { TreeReader, TreeState } from "../btree/TreeState.js";
import { KeelError } from "../errors.js";
import type { FileHandle } from "../io/FileSystem.js";
import { mayBeTorn, type Meta } from "../pager/Meta.js";
import { FORMAT_VERSION, PageType, pageLimits, type PageLimits } from "../pager/PageLayout.js";
import { Pager } from "../pager/Pager.js";
import type { FreeList } from "../pager/FreeList.js";
import { loadFreeList, type FreeListSegment } from "../pager/FreeListChain.js";
import { decodeCatalogRecord } from "../txn/CatalogRecord.js";
import { checkpointIntact, type IntactResult } from "../txn/checkpointIntact.js";
import { claimedTxn, isZero, readMetaSlots, type MetaSlots } from "./verifyMeta.js";
import { Aborted, errorText, reasonOf, stoppedKind, type ProblemList, type Progress, type VerifyStats, type Work } from "./verifyTypes.js";

const TWO32 = 0x100000000;

const enum Role {
  None = 0,
  Meta = 1,
  Tree = 2, // claimed by a parent; not (yet) read
  Branch = 3,
  Leaf = 4,
  Overflow = 5,
  FreeListRun = 6,
  Free = 7,
}

const ROLE_NAMES = ["nothing", "meta page", "tree page", "branch page", "leaf page", "overflow page", "free-list run page", "free page"];

export interface DataFileOutcome {
  /** The meta the checks used (the newest valid one), null when none is valid. */
  meta: Meta | null;
  slot: 0 | 1 | -1;
  /** The older valid meta, when there is one. */
  older: Meta | null;
  pageSize: number;
}

const META_REASONS: Record<string, string> = {
  short: "the file is too short to hold it",
  magic: "it does not carry the KEEL magic number",
  checksum: "its checksum does not match",
  "page-size": "its page size is invalid or does not fit the file",
  "page-number": "its header is not a meta page header for this slot",
  "counter-range": "its txn or applied LSN is 2^53 or more, past what can be counted",
};

export const CATALOG_TREE = "(catalog)";

export function* verifyDataFile(handle: FileHandle, path: string, out: ProblemList, stats: VerifyStats, progress: Progress, thisBoot: number): Work<DataFileOutcome> {
  const outcome: DataFileOutcome = { meta: null, slot: -1, older: null, pageSize: 0 };
  const err = (kind: string, message: string, page?: number, tree?: string) => out.add({ severity: "error", kind, file: path, page, tree, message });
  const warn = (kind: string, message: string, page?: number, tree?: string) => out.add({ severity: "warning", kind, file: path, page, tree, message });

  // ---- 1. meta pages ----
  let slots: MetaSlots;
  try {
    slots = readMetaSlots(handle);
  } catch (e) {
    err("io", `cannot read the meta pages of ${path}: ${errorText(e)}`, 0);
    return outcome;
  }
  const { probes, metas, raw } = slots;
  let fatal = false;
  for (const s of [0, 1] as const) {
    const p = probes[s];
    if (!p.ok && p.reason === "version") {
      err("meta-version", `meta page ${s} of ${path} has format version ${p.version}; this KeelDB reads format version ${FORMAT_VERSION}${p.version !== undefined && p.version < FORMAT_VERSION ? " (open() migrates it)" : ""}`, s);
      fatal = true;
    }
  }
  if (!fatal && !probes[0].ok && !probes[1].ok) {
    // A meta of an older layout (version 0's little-endian magic) is no meta of this one, but no
    // damage either: formatVersionOf knows every layout KeelDB wrote.
    let older: number | undefined;
    try {
      older = formatVersionOfFile(handle);
    } catch {
      older = undefined; // unreadable: reported as the meta pages' damage below
    }
    if (older !== undefined && older !== FORMAT_VERSION) {
      err("meta-version", `${path} has format version ${older}; this KeelDB reads format version ${FORMAT_VERSION}${older < FORMAT_VERSION ? " (open() migrates it)" : ""}`, 0);
      fatal = true;
    }
  }
  if (fatal) return outcome;
  for (const s of [0, 1] as const) {
    const p = probes[s];
    if (p.ok) continue;
    // A database that was never checkpointed has a zero page in slot 1.
    if (s === 1 && metas[0]?.txn === 0 && raw[1].length > 0 && isZero(raw[1])) continue;
    const other = metas[s === 0 ? 1 : 0];
    const claimed = claimedTxn(raw[s]);
    let msg = `meta page ${s} of ${path} is damaged: ${META_REASONS[p.reason] ?? p.reason}`;
    if (other) {
      msg +=
        p.reason === "checksum" && claimed > other.txn
          ? `; its header claims txn ${claimed}, newer than meta page ${s === 0 ? 1 : 0} (txn ${other.txn}): the newest meta is lost, and open falls back to the older one`
          : `; meta page ${s === 0 ? 1 : 0} (txn ${other.txn}) is intact and is the one open uses`;
    }
    err("meta-damaged", msg, s);
  }
  if (slots.newest === -1) {
    err("no-valid-meta", `${path} has no valid meta page: nothing in it can be read as a database`, 0);
    return outcome;
  }
  const m0 = metas[0];
  const m1 = metas[1];
  if (m0 && m1 && m0.pageSize !== m1.pageSize) {
    err("meta-page-size", `the meta pages of ${path} disagree on the page size (${m0.pageSize} and ${m1.pageSize})`, 1);
    return outcome;
  }
  let slot: 0 | 1 = slots.newest;
  let meta = metas[slot]!;
  let olderSlot: 0 | 1 = slot === 0 ? 1 : 0;
  let older = metas[olderSlot];
  if (mayBeTorn(meta, thisBoot)) {
    // As open does: after a reboot, a one-sync checkpoint cut short by a power loss is passed
    // over for the other slot. (In the boot that wrote it, a bad page of it is damage: below.)
    let check: IntactResult;
    try {
      check = checkpointIntact(handle, path, meta);
    } catch (e) {
      err("io", `cannot read the pages of the newest checkpoint of ${path}: ${errorText(e)}`, slot);
      return outcome;
    }
    if (!check.ok) {
      const where = `the newest checkpoint of ${path} (meta page ${slot}, txn ${meta.txn}) synced its pages with its meta, and one did not reach the disk whole (${check.message})`;
      if (!older) {
        err("checkpoint-torn", `${where}, and meta page ${olderSlot} is not valid: nothing to fall back to`, check.page);
        return outcome;
      }
      warn("checkpoint-torn", `${where}: a power cut during its sync, before its commits were acknowledged. Open uses meta page ${olderSlot} (txn ${older.txn}), as verified below`, check.page);
      [slot, olderSlot] = [olderSlot, slot];
      meta = older;
      older = null;
    }
  }
  outcome.meta = meta;
  outcome.slot = slot;
  outcome.older = older && older.txn < meta.txn ? older : null;
  outcome.pageSize = meta.pageSize;

  const ps = meta.pageSize;
  const limits = pageLimits(ps);
  const hw = meta.highWater;
  const filePages = Math.floor(slots.fileSize / ps);
  stats.pages = hw;
  progress.total = hw;
  if (slots.fileSize % ps !== 0) warn("file-size", `${path} is ${slots.fileSize} bytes, not a whole number of ${ps}-byte pages`, filePages);
  if (hw < 2) {
    err("meta-high-water", `meta page ${slot} of ${path} has high-water mark ${hw}, below the two meta pages`, slot);
    return outcome;
  }
  if (filePages < hw) {
    err("file-short", `${path} holds ${filePages} pages but its meta's high-water mark is ${hw}: pages ${filePages}..${hw - 1} are missing`, filePages);
  }
  // freelistPage 0 is an empty free list: a new file, or a compacted copy (it has no free page).
  // A checkpoint that lost track of free pages shows up below as pages neither reached nor free.

  // ---- page accounting ----
  const n = Math.max(2, Math.min(hw, filePages));
  const role = new Uint8Array(n);
  const owner = new Uint16Array(n);
  /** Low 32 bits of the txn of each tree page (and first overflow page) read and verified; 0 = not. */
  const verifiedTxn = new Uint32Array(n);
  const owners: string[] = ["nothing", "the meta", `the catalog`, "the free list"];
  const ownerIndex = (label: string): number => {
    if (owners.length >= 0xffff) return 0xffff;
    owners.push(label);
    return owners.length - 1;
  };
  role[0] = role[1] = Role.Meta;
  owner[0] = owner[1] = 1;
  let unreached = false; // some subtree or run could not be walked: unaccounted pages may be its own

  /** Claim pages for `who`; false when some page was already claimed (reported once per call). */
  const mark = (page: number, count: number, r: Role, who: number): boolean => {
    let reported = false;
    for (let p = page; p < page + count; p++) {
      if (p < 0 || p >= n) continue;
      const old = role[p]!;
      if (old === Role.None) {
        role[p] = r;
        owner[p] = who;
        continue;
      }
      if (reported) continue;
      reported = true;
      const kind = old === Role.Free && r === Role.Free ? "freelist-duplicate" : old === Role.Free || r === Role.Free ? "freelist-overlap" : "page-shared";
      const a = `${ROLE_NAMES[old]} of ${owners[owner[p]!] ?? "?"}`;
      const b = `${ROLE_NAMES[r]} of ${owners[who] ?? "?"}`;
      err(
        kind,
        kind === "freelist-overlap"
          ? `page ${p} of ${path} is on the free list but is also in use (${old === Role.Free ? b : a}): it could be handed out again while still reachable`
          : kind === "freelist-duplicate"
            ? `page ${p} of ${path} is listed twice on the free list`
            : `page ${p} of ${path} is used twice: as ${a} and as ${b}`,
        p,
      );
    }
    return !reported;
  };

  const pager = new Pager(handle, path, limits, 64, hw, meta.txn);

  const reader = (who: number, onNode?: (n: Node) => void): TreeReader => ({
    limits,
    load: (page: number, txn: number): Node => {
      progress.step();
      const claimed = mark(page, 1, Role.Tree, who);
      let node: Node;
      try {
        node = pager.load(page, txn);
      } catch (e) {
        unreached = true;
        throw e;
      }
      if (claimed && page >= 2 && page < n) role[page] = node.leaf ? Role.Leaf : Role.Branch;
      if (page < n) verifiedTxn[page] = node.pageTxn % TWO32;
      onNode?.(node);
      return node;
    },
  });
  const readOverflow = (v: OverflowValue) => {
    progress.step(Math.max(1, Math.ceil((v.length + 32) / ps)));
    const buf = pager.readOverflow(v);
    if (v.page < n) verifiedTxn[v.page] = v.pageTxn % TWO32;
    return buf;
  };
  const report = (label: string, problems: TreeProblem[]) => {
    for (const p of problems) {
      unreached = true;
      err(p.kind, p.kind === "stats" ? `${describeTree(label)}: ${p.message}` : p.message.includes(path) ? p.message : `${describeTree(label)}, page ${p.page}: ${p.message}`, p.page || undefined, label);
    }
  };
  const wantsYield = () => progress.wantsYield;
  function* runCheck(label: string, who: number, st: TreeState, onNode?: (n: Node) => void): Work<void> {
    try {
      report(
        label,
        yield* checkTreeSteps(reader(who, onNode), st, {
          name: label,
          onPages: (page, count, kind) => {
            if (kind === "overflow" && page) mark(page, count, Role.Overflow, who);
          },
          readOverflow,
          wantsYield,
        }),
      );
    } catch (e) {
      if (e instanceof Aborted) throw e;
      unreached = true;
      err(reasonOf(e), `${describeTree(label)} could not be walked: ${errorText(e)}`, undefined, label);
    }
  }

  // ---- 2. the catalog, then every sub-database ----
  const catalogEntries: Array<[string, string | OverflowValue]> = [];
  const catalogState: TreeState = {
    root: meta.catalogRoot || null,
    rootTxn: meta.catalogRootTxn,
    depth: meta.catalogDepth,
    entries: meta.catalogEntries,
    branchPages: meta.catalogBranchPages,
    leafPages: meta.catalogLeafPages,
    overflowPages: meta.catalogOverflowPages,
  };
  yield* runCheck(CATALOG_TREE, 2, catalogState, (node) => {
    if (!node.leaf) return;
    for (let i = 0; i < node.keys.length; i++) catalogEntries.push([node.keys[i]!, node.vals[i]!]);
  });
  yield;
  for (const [key, val] of catalogEntries) {
    const name = Buffer.from(key, "latin1").toString("utf8");
    if (val instanceof OverflowValue) {
      err("catalog-record", `the catalog record of sub-database "${name}" in ${path} is stored as an overflow value`, val.page, CATALOG_TREE);
      unreached = true;
      continue;
    }
    let rec;
    try {
      rec = decodeCatalogRecord(Buffer.from(val, "latin1"), { file: path, name });
    } catch (e) {
      err("catalog-record", errorText(e), undefined, CATALOG_TREE);
      unreached = true;
      continue;
    }
    stats.dbs++;
    const st: TreeState = {
      root: rec.root || null,
      rootTxn: rec.rootTxn,
      depth: rec.depth,
      entries: rec.entries,
      branchPages: rec.branchPages,
      leafPages: rec.leafPages,
      overflowPages: rec.overflowPages,
    };
    yield* runCheck(name, ownerIndex(`sub-database "${name}"`), st, (node) => {
      if (node.leaf) stats.entries += node.keys.length;
    });
    if (progress.wantsYield) yield;
  }

  // ---- 3. the free list ----
  if (meta.freelistPage) {
    const fp = meta.freelistPage;
    const fn = meta.freelistPages;
    if (fp < 2 || fn < 1 || fp + fn > hw) {
      err("freelist-range", `meta page ${slot} of ${path} names free-list run ${fp} (+${fn} pages), outside [2, ${hw})`, fp);
      unreached = true;
    } else {
      // Every segment of the chain (FreeListChain.ts), then every page of the list it encodes.
      const segments: FreeListSegment[] = [];
      let list: FreeList | null = null;
      try {
        list = loadFreeList(
          (page, pages, txn) => {
            segments.push({ page, pages, txn });
            return pager.readRun(page, pages, PageType.FreeList, txn);
          },
          { page: fp, pages: fn, txn: meta.freelistTxn },
          { file: path, highWater: hw },
        ).freelist;
      } catch (e) {
        if (e instanceof Aborted) throw e;
        const at = e instanceof KeelError && typeof e.details.page === "number" ? e.details.page : fp;
        err(reasonOf(e), `free list: ${errorText(e)}`, at);
        unreached = true;
      }
      for (const seg of segments) {
        mark(seg.page, seg.pages, Role.FreeListRun, 3);
        progress.step(seg.pages);
      }
      if (list) {
        let newer = 0;
        let firstNewer = 0;
        let k = 0;
        for (const [p, txn] of list.allPages()) {
          if (txn > meta.txn && newer++ === 0) firstNewer = p;
          mark(p, 1, Role.Free, 3);
          if ((++k & 4095) === 0 && progress.wantsYield) yield;
        }
        if (newer) warn("freelist-txn", `the free list at page ${fp} of ${path} names ${newer} page(s) (first ${firstNewer}) as freed by a txn newer than its meta (txn ${meta.txn})`, fp);
      }
    }
  }

  // ---- 4. reachability ----
  let runStart = -1;
  const flush = (end: number) => {
    if (runStart < 0) return;
    const count = end - runStart;
    stats.leakedPages += count;
    const what = count === 1 ? `page ${runStart}` : `pages ${runStart}..${end - 1} (${count} pages)`;
    if (unreached) {
      warn("unaccounted", `${what} of ${path} are neither reached nor free; they are probably below the damaged pages reported above`, runStart);
    } else {
      warn("leaked", `${what} of ${path} ${count === 1 ? "is" : "are"} neither used by any tree nor on the free list (leaked: the space is lost until a compaction)`, runStart);
    }
    runStart = -1;
  };
  for (let p = 2; p < n; p++) {
    const r = role[p]!;
    if (r === Role.None) {
      if (runStart < 0) runStart = p;
    } else {
      flush(p);
      if (r === Role.Tree || r === Role.Branch || r === Role.Leaf) stats.treePages++;
      else if (r === Role.Overflow) stats.overflowPages++;
      else if (r === Role.Free) stats.freePages++;
      else if (r === Role.FreeListRun) stats.freelistPages++;
    }
  }
  flush(n);
  yield;

  // ---- 5. the older meta's tree ----
  if (outcome.older && outcome.older.txn > 0) {
    yield* checkOlder(handle, path, limits, outcome.older, olderSlot, n, verifiedTxn, out, progress);
  }
  return outcome;
}

function describeTree(label: string): string {
  return label === CATALOG_TREE ? "the catalog tree" : `sub-database "${label}"`;
}

function* checkOlder(
  handle: FileHandle,
  path: string,
  limits: PageLimits,
  older: Meta,
  slot: 0 | 1,
  n: number,
  verifiedTxn: Uint32Array,
  out: ProblemList,
  progress: Progress,
): Work<void> {
  const opager = new Pager(handle, path, limits, 64, older.highWater, older.txn);
  const prefix = `in the tree of the older meta (page ${slot}, txn ${older.txn}), which open falls back to if the newest meta is lost`;
  const problem = (tree: string, page: number | undefined, e: unknown) =>
    out.add({ severity: "error", kind: reasonOf(e), file: path, page, tree, message: `${prefix}: ${errorText(e)}` });
  const visited = new Set<number>();
  function* walk(tree: string, page: number, txn: number, depth: number, onLeaf?: (l: LeafNode) => void): Work<void> {
    if (page === 0) return;
    if (depth > 64) {
      out.add({ severity: "error", kind: "depth", file: path, page, tree, message: `${prefix}: a path passes depth 64 at page ${page}` });
      return;
    }
    // The newest tree verified this very page (same number, same txn): its subtree was walked there.
    if (!onLeaf && page < n && txn !== 0 && verifiedTxn[page] === txn % TWO32) return;
    if (visited.has(page)) return;
    visited.add(page);
    progress.step();
    let node: Node;
    try {
      node = opager.load(page, txn);
    } catch (e) {
      if (!(e instanceof KeelError)) throw e;
      problem(tree, page, e);
      return;
    }
    if (node.leaf) {
      onLeaf?.(node);
      for (const v of node.vals) {
        if (!(v instanceof OverflowValue)) continue;
        if (v.page < n && verifiedTxn[v.page] === v.pageTxn % TWO32 && v.pageTxn !== 0) continue;
        try {
          opager.readOverflow(v);
        } catch (e) {
          if (!(e instanceof KeelError)) throw e;
          problem(tree, v.page, e);
        }
      }
      return;
    }
    if (progress.wantsYield) yield;
    for (let i = 0; i < node.children.length; i++) yield* walk(tree, node.children[i] as number, node.childTxn[i]!, depth + 1, onLeaf);
  }
  try {
    const records: Array<[string, string]> = [];
    yield* walk(CATALOG_TREE, older.catalogRoot, older.catalogRootTxn, 1, (l) => {
      for (let i = 0; i < l.keys.length; i++) {
        const v = l.vals[i]!;
        if (typeof v === "string") records.push([l.keys[i]!, v]);
      }
    });
    yield;
    for (const [key, val] of records) {
      const name = Buffer.from(key, "latin1").toString("utf8");
      let rec;
      try {
        rec = decodeCatalogRecord(Buffer.from(val, "latin1"), { file: path, name });
      } catch (e) {
        problem(CATALOG_TREE, undefined, e);
        continue;
      }
      yield* walk(name, rec.root, rec.rootTxn, 1);
      // A sub-database of one leaf never reaches the branch pause inside walk: pause between them too.
      if (progress.wantsYield) yield;
    }
    if (older.freelistPage) {
      try {
        loadFreeList(
          (page, pages, txn) => opager.readRun(page, pages, PageType.FreeList, txn),
          { page: older.freelistPage, pages: older.freelistPages, txn: older.freelistTxn },
          { file: path, highWater: older.highWater },
        );
      } catch (e) {
        if (!(e instanceof KeelError)) throw e;
        problem("(free list)", older.freelistPage, e);
      }
    }
  } catch (e) {
    if (e instanceof Aborted) throw e;
    out.add({ severity: "error", kind: stoppedKind(e, "io"), file: path, message: `${prefix}: the walk failed: ${errorText(e)}` });
  }
}
