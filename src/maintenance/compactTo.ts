/**
 * compactTo: compaction of a CLOSED database directory into a new one (DESIGN.md section 5,
 * `compactTo(src, dest)`; the offline counterpart of `backup(dest, { compact: true })`).
 *
 * The sequence, in order:
 *   1. Refuse a destination that exists (EXISTS) before touching the source.
 *   2. Open the source read-only (`openSync(src, { readOnly: true })`): LOCKED if a live process has
 *      it open; VERSION for a format this code does not read (an older format is migrated by a
 *      read-write open only, never by a read-only one). Log records the data file lacks are
 *      replayed in memory; nothing is checkpointed into the source.
 *   3. Copy the resulting state, compacted, with copySnapshot: entries in key order into a fresh
 *      file under `<dest>.partial-<pid>-<n>`, fsynced, renamed, the parent fsynced (I7). The copy keeps
 *      the source's page size and meta flags; its format version is the source's (the only one
 *      this code reads and writes); its applied LSN is the source's last replayed LSN.
 *   4. Close the source.
 *
 * Invariants:
 * - The source is never written, except what log recovery may do to a torn log tail (truncate it
 *   and sync the newest segment), exactly as a read-only open does.
 * - An AbortSignal cancels the copy between batches; the partial destination is removed and `dest`
 *   is not created (ABORTED). Any other failure removes its partial output too. A `dest` that
 *   exists after a failure is never this call's: another compaction to it published first.
 */
import { KeelError, ioError } from "../errors.js";
import type { FileSystem } from "../io/FileSystem.js";
import { nodeFileSystem, pinnedPath } from "../io/NodeFileSystem.js";
import { openSync } from "../db/open.js";
import { copySnapshot, type CopyResult } from "./copyDatabase.js";
import { META_FLAG_ONE_SYNC } from "../pager/Meta.js";
import { checkedStat } from "../io/checkedStat.js";
import { methodOptions } from "../db/options.js";

export interface CompactToOptions {
  fs?: FileSystem | undefined;
  signal?: AbortSignal | undefined;
  onProgress?: ((p: { entries: number; totalEntries: number }) => void) | undefined;
}

export interface CompactToResult extends CopyResult {
  /** Size of the source's data.keel. */
  srcBytes: number;
  pageSize: number;
  version: number;
  flags: number;
  /** Log records of the source replayed in memory before the copy. */
  replayedRecords: number;
}

export async function compactTo(srcDir: string, destDir: string, options?: CompactToOptions): Promise<CompactToResult> {
  const opts = methodOptions(options, "compactTo", { fs: "fs", signal: "signal", onProgress: "function" });
  const fs = opts.fs ?? nodeFileSystem;
  if (typeof destDir === "string" && destDir !== "") destDir = pinnedPath(fs, destDir);
  // Step 1.
  if (checkedStat(fs, destDir)) throw new KeelError("EXISTS", `${destDir} already exists; compaction never overwrites`, { dest: destDir });
  if (opts.signal?.aborted) throw new KeelError("ABORTED", "the compaction was aborted", { reason: String(opts.signal.reason ?? "") });
  // Step 2.
  const db = openSync(srcDir, { readOnly: true, fs });
  try {
    const engine = db.engine;
    const meta = engine.durableMeta;
    const snap = engine.published;
    let srcBytes: number;
    try {
      srcBytes = engine.pager.file.size();
    } catch (e) {
      throw ioError(e, "fstat", engine.path);
    }
    // Step 3.
    let res: CopyResult;
    engine.readers.acquire(snap.txn); // copySnapshot's precondition (the engine is this call's own)
    try {
      res = await copySnapshot(engine, snap, fs, destDir, { signal: opts.signal, onProgress: opts.onProgress, flags: meta.flags });
    } catch (e) {
      // Nothing to remove: copySnapshot's PartialOutput discards its partial directory, and removes
      // the destination itself if the sync after its rename failed. A destination that exists now
      // is someone else's (another compaction that published first): never touched here.
      // An errno error is coded here; anything else copySnapshot lets through is a KeelError or
      // what the caller's onProgress threw (progressCallback.ts), passed on as it is.
      const errno = (e as NodeJS.ErrnoException | null)?.code;
      throw typeof errno === "string" && /^E[A-Z]+$/.test(errno) ? ioError(e, "compact", destDir) : e;
    } finally {
      engine.readers.release(snap.txn);
    }
    return {
      ...res,
      srcBytes,
      pageSize: engine.limits.pageSize,
      version: meta.version,
      flags: meta.flags & ~META_FLAG_ONE_SYNC, // how its meta was synced is not a setting

      replayedRecords: snap.lsn - meta.appliedLsn,
    };
  } finally {
    // Step 4. The source was opened read-only: a failing close loses nothing, and must neither
    // fail a finished compaction nor hide the error of a failed one.
    await db.close().catch(() => {});
  }
}
