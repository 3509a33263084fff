/**
 * backupPages: a non-compacting online backup. It copies data.keel page by page, as it stands at one
 * checkpoint, while readers and writers go on (DESIGN.md section 5, `backup(dest, { compact: false })`).
 *
 * The sequence, in order:
 *   1. Find the meta that names `snap` (the caller checkpointed it in the same queue task, so it is
 *      the durable meta, or the older slot if one more checkpoint ran since). Register `snap` as a
 *      reader for the whole copy.
 *   2. Create `<dest>.partial-<pid>/data.keel` and copy the pages [2, high water) of that meta from
 *      the live file, in large sequential chunks (1 MiB by default), yielding to the event loop
 *      between chunks so that writers go on.
 *   3. Write that meta into BOTH meta slots of the copy (same txn: allowed in a copy only, where no
 *      checkpoint ever wrote either slot; the second one is a spare against damage of the first).
 *   4. fdatasync the copy, fsync the partial directory, rename it to `dest`, fsync the parent.
 *
 * Invariants:
 * - Consistency (I1, I2): while `snap` is a registered reader, every checkpoint's release limit is
 *   at most snap.txn, so no page that snapshot's meta reaches (tree pages, overflow runs, catalog,
 *   free-list run) is reused or overwritten during the copy. Pages below its high water that a later
 *   checkpoint rewrites were free in that meta's state: they are free in the copy too (listed in the
 *   copied free list, or unreachable), so their bytes do not matter. Pages past the high water are not
 *   copied. The copy therefore opens at exactly `snap` (same txn, same applied LSN) with no log.
 * - The live meta pages (0 and 1) are never copied: step 3 writes them from the decoded meta.
 * - Atomic output (I7): nothing appears at `dest` until it is complete and durable; on failure or
 *   abort the partial directory is removed. `dest` must not exist (EXISTS).
 * - Reads go through their own read-only handle; if the source engine closes meanwhile, the copy
 *   stops with CLOSED (another process could then reuse the pages).
 */
import { dirname, join } from "node:path";
import { KeelError, corrupt, invalidArgument, ioError } from "../errors.js";
import type { FileHandle, FileSystem } from "../io/FileSystem.js";
import { encodeMeta, type Meta } from "../pager/Meta.js";
import { DATA_FILE, type Engine } from "../txn/Engine.js";
import type { Snapshot } from "../txn/Snapshot.js";

export interface BackupProgress {
  /** Bytes of data.keel copied so far, and the total (high water x page size). */
  bytes: number;
  totalBytes: number;
  /** Entries of the snapshot, and an estimate of those copied (proportional to the bytes). */
  entries: number;
  totalEntries: number;
}

export interface BackupPagesOptions {
  signal?: AbortSignal | undefined;
  onProgress?: ((p: BackupProgress) => void) | undefined;
  /** Bytes per read/write (rounded down to whole pages, at least one page). Default 1 MiB. */
  chunkBytes?: number | undefined;
  /**
   * The meta that names `snap`, taken in the same queue task as the checkpoint
   * (`engine.durableMeta`). Without it, `engine.metas` is searched, which works as long as at most
   * one more checkpoint ran before this call.
   */
  meta?: Meta | undefined;
}

export interface BackupPagesResult {
  dest: string;
  txn: number;
  lsn: number;
  entries: number;
  /** Size of the copy's data.keel. */
  bytes: number;
  pages: number;
  ms: number;
  compacted: false;
}

export const DEFAULT_BACKUP_CHUNK = 1 << 20;

const tick = () => new Promise<void>((r) => setImmediate(r));

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new KeelError("ABORTED", "the backup was aborted", { reason: String(signal.reason ?? "") });
}

/** The meta that names `snap` (txn and applied LSN), or undefined. */
export function metaOfSnapshot(engine: Engine, snap: Snapshot): Meta | undefined {
  const m = engine.metas.find((x) => x !== null && x.txn === snap.txn && x.appliedLsn === snap.lsn);
  return m ?? undefined;
}

export async function backupPages(engine: Engine, snap: Snapshot, fs: FileSystem, dest: string, o: BackupPagesOptions = {}): Promise<BackupPagesResult> {
  const t0 = performance.now();
  // Step 1: the meta of the snapshot, and the reader that pins its pages.
  if (engine.closed) throw new KeelError("CLOSED", "the database is closed", { path: engine.path });
  const meta = o.meta ?? metaOfSnapshot(engine, snap);
  if (!meta || meta.txn !== snap.txn || meta.appliedLsn !== snap.lsn) {
    throw invalidArgument(
      `a page-by-page backup needs a checkpointed snapshot: txn ${snap.txn} (LSN ${snap.lsn}) is not what a meta page of ${engine.path} names; checkpoint in the same task first`,
      { argument: "snap", txn: snap.txn, lsn: snap.lsn, durableTxn: engine.durable.txn },
    );
  }
  if (o.chunkBytes !== undefined && (!Number.isSafeInteger(o.chunkBytes) || o.chunkBytes <= 0)) {
    throw invalidArgument("chunkBytes must be a positive integer", { argument: "chunkBytes", value: o.chunkBytes });
  }
  checkAborted(o.signal);
  let exists: boolean;
  try {
    exists = fs.stat(dest) !== undefined;
  } catch (e) {
    throw ioError(e, "stat", dest);
  }
  if (exists) throw new KeelError("EXISTS", `${dest} already exists; a backup never overwrites`, { dest });
  const ps = meta.pageSize;
  const totalPages = meta.highWater;
  const totalBytes = totalPages * ps;
  let totalEntries = 0;
  for (const e of snap.dbs.values()) totalEntries += e.tree.entries;
  const chunkPages = Math.max(1, Math.floor((o.chunkBytes ?? DEFAULT_BACKUP_CHUNK) / ps));
  const parent = dirname(dest);
  const tmp = `${dest}.partial-${process.pid}`;
  const outPath = join(tmp, DATA_FILE);

  engine.readers.acquire(snap.txn);
  let src: FileHandle | null = null;
  let out: FileHandle | null = null;
  try {
    try {
      fs.mkdir(parent);
      fs.removeDir(tmp);
      fs.mkdir(tmp);
      out = fs.open(outPath, "createExclusive");
      src = fs.open(engine.path, "r");
    } catch (e) {
      throw ioError(e, "create", tmp);
    }
    // Step 2: the pages, in big sequential chunks.
    const buf = Buffer.allocUnsafeSlow(chunkPages * ps);
    const progress = (page: number) =>
      o.onProgress?.({
        bytes: page * ps,
        totalBytes,
        entries: totalBytes ? Math.round((totalEntries * page * ps) / totalBytes) : totalEntries,
        totalEntries,
      });
    for (let page = 2; page < totalPages; ) {
      const n = Math.min(chunkPages, totalPages - page);
      const len = n * ps;
      let got: number;
      try {
        got = src.read(buf, 0, len, page * ps);
      } catch (e) {
        throw ioError(e, "read", engine.path);
      }
      if (got < len) {
        throw corrupt(`${engine.path} ends inside page ${page + Math.floor(got / ps)}, below the high water ${totalPages} of the meta being backed up`, {
          file: engine.path,
          page: page + Math.floor(got / ps),
          reason: "short-read",
        });
      }
      try {
        out.write(buf, 0, len, page * ps);
      } catch (e) {
        throw ioError(e, "write", outPath);
      }
      page += n;
      progress(page);
      await tick();
      checkAborted(o.signal);
      if (engine.closed) throw new KeelError("CLOSED", "the source database was closed during the backup", { path: engine.path });
    }
    // Step 3: the meta, into both slots.
    try {
      out.write(encodeMeta(meta, 0), 0, ps, 0);
      out.write(encodeMeta(meta, 1), 0, ps, ps);
    } catch (e) {
      throw ioError(e, "write", outPath);
    }
    // Step 4: durable, then visible.
    try {
      await out.syncAsync();
    } catch (e) {
      throw ioError(e, "fdatasync", outPath);
    }
    checkAborted(o.signal);
    const o2 = out;
    out = null;
    try {
      o2.close();
    } catch (e) {
      throw ioError(e, "close", outPath);
    }
    let renamed = false;
    try {
      fs.syncDir(tmp);
      fs.rename(tmp, dest);
      renamed = true;
      fs.syncDir(parent);
    } catch (e) {
      // Not known to be durable: a failed backup leaves nothing behind, under either name.
      if (renamed) {
        try {
          fs.removeDir(dest);
        } catch {
          // report the sync error
        }
      }
      throw ioError(e, "rename", dest);
    }
    progress(totalPages);
    return { dest, txn: snap.txn, lsn: snap.lsn, entries: totalEntries, bytes: totalBytes, pages: totalPages, ms: performance.now() - t0, compacted: false };
  } catch (e) {
    try {
      out?.close();
    } catch {
      // the backup error is the one to report
    }
    try {
      fs.removeDir(tmp);
    } catch {
      // the backup error is the one to report
    }
    throw e;
  } finally {
    try {
      src?.close();
    } catch {
      // nothing to do: read-only handle
    }
    engine.readers.release(snap.txn);
  }
}
