/**
 * copyDatabase: a consistent, compacted copy of one snapshot of an open engine into a new
 * directory, made while writers go on (DESIGN.md section 5; `backup(dest)`, `compactTo`).
 *
 * The sequence, in order:
 *   1. Refuse an existing `dest` (EXISTS); create `<dest>.partial-<pid>/data.keel` (PartialOutput).
 *   2. (The caller) holds `snap` as a registered reader for the whole call (I2: no page it
 *      reaches is reused). Not registered again here: a second slot per copy made a copy fail
 *      READERS_FULL with one slot free (and with maxReaders 1, always).
 *   3. Write every sub-database bottom-up from a key-order scan, then the catalog
 *      (CompactTreeWriter): leaves filled to `fill`, then the branch levels, all in one sequential
 *      pass from page 2, cut into time slices so that the event loop (writers, readers) runs
 *      between them.
 *   4. Write the meta (txn = the snapshot's txn, applied LSN = its LSN, no free list) into both
 *      slots.
 *   5. One fdatasync of data.keel (off the event loop), fsync the partial directory, rename it to
 *      `dest`, fsync the parent (I7).
 *
 * Invariants:
 * - Consistency: every entry comes from one read snapshot, so the copy equals that snapshot entry
 *   by entry, in every sub-database, and opens at its LSN with no log.
 * - Compaction: no free page, every page written once; high water = pages written.
 * - Atomic output (I7): on failure or abort (signal: ABORTED) the partial directory is removed and
 *   `dest` does not exist.
 * - The writer is never held: the copy runs outside the write queue, in slices of `sliceMs`.
 */
import { join } from "node:path";
import { KeelError, ioError } from "../errors.js";
import type { FileSystem } from "../io/FileSystem.js";
import { META_FLAG_ONE_SYNC, encodeMeta, type Meta } from "../pager/Meta.js";
import { FORMAT_VERSION } from "../pager/PageLayout.js";
import { DATA_FILE, type Engine } from "../txn/Engine.js";
import type { Snapshot } from "../txn/Snapshot.js";
import { writeCompactTrees } from "./CompactTreeWriter.js";
import { PartialOutput } from "./PartialOutput.js";
import { callerError, progressCallback } from "./progressCallback.js";
import { TimeSlicer } from "./TimeSlicer.js";

export interface CopyOptions {
  signal?: AbortSignal | undefined;
  onProgress?: ((p: { entries: number; totalEntries: number }) => void) | undefined;
  /** Meta flags for the copy. */
  flags?: number | undefined;
  /** Work between yields to the event loop, in ms (default 2; 0 = yield at every check). */
  sliceMs?: number | undefined;
  /** Share of the event loop the job takes while writers are committing (default 0.1; 1 = no stepping back). */
  share?: number | undefined;
  /** Fraction of a page's usable bytes that leaves and branches are filled to (0.5..1; default 0.9). */
  fill?: number | undefined;
}

export interface CopyResult {
  dest: string;
  txn: number;
  lsn: number;
  entries: number;
  bytes: number;
  ms: number;
}

/** `snap` must stay registered in `src.readers` by the caller until this settles (step 2). */
export async function copySnapshot(src: Engine, snap: Snapshot, fs: FileSystem, dest: string, o: CopyOptions = {}): Promise<CopyResult> {
  const t0 = performance.now();
  const slicer = new TimeSlicer({ signal: o.signal, isClosed: () => src.closed, budgetMs: o.sliceMs, what: "the copy", activity: () => src.head.txn, share: o.share });
  slicer.check();
  // Step 1. Nothing between the creation and the try: a throw there would leak the partial
  // output and its handle (I7).
  const onProgress = progressCallback<{ entries: number; totalEntries: number }>(o.onProgress, "a compacting copy");
  const out = PartialOutput.create(fs, dest, "a copy");
  try {
    let total = 0;
    for (const e of snap.dbs.values()) total += e.tree.entries;
    const ps = src.limits.pageSize;
    const txn = Math.max(1, snap.txn);
    // Step 3.
    const res = await writeCompactTrees(src, snap, out.handle(), out.path, txn, slicer, {
      fill: o.fill,
      onEntries: (n) => onProgress?.({ entries: n, totalEntries: total }),
    });
    slicer.check();
    // Step 4.
    const now = Date.now();
    const c = res.catalog;
    const meta: Meta = {
      version: FORMAT_VERSION,
      pageSize: ps,
      txn,
      appliedLsn: snap.lsn,
      highWater: res.highWater,
      catalogRoot: typeof c.root === "number" ? c.root : 0,
      catalogRootTxn: c.root === null ? 0 : c.rootTxn,
      catalogDepth: c.depth,
      catalogEntries: c.entries,
      catalogBranchPages: c.branchPages,
      catalogLeafPages: c.leafPages,
      catalogOverflowPages: c.overflowPages,
      freelistPage: 0,
      freelistPages: 0,
      freelistTxn: 0,
      flags: (o.flags ?? src.flags) & ~META_FLAG_ONE_SYNC, // the copy is synced whole before its rename
      bootTag: 0,
      createdAt: now,
      checkpointAt: now,
    };
    const f = out.handle();
    try {
      f.write(encodeMeta(meta, 0), 0, ps, 0);
      f.write(encodeMeta(meta, 1), 0, ps, ps);
    } catch (e) {
      throw ioError(e, "write", out.path);
    }
    // Step 5.
    await out.syncData();
    slicer.check();
    onProgress?.({ entries: res.entries, totalEntries: total });
    out.publish();
    return { dest, txn: snap.txn, lsn: snap.lsn, entries: res.entries, bytes: res.highWater * ps, ms: performance.now() - t0 };
  } catch (thrown) {
    out.discard();
    const [e, callers] = callerError(thrown);
    throw e instanceof KeelError || callers ? e : ioError(e, "copy", dest);
  }
}

export function dataFileOf(dir: string): string {
  return join(dir, DATA_FILE);
}
