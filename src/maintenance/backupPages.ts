/**
 * backupPages: the non-compacting online backup (DESIGN.md section 5, `backup(dest, { compact: false })`).
 * It copies data.keel page by page as the last checkpoint left it, then applies the committed log
 * records after that checkpoint, up to the backup's LSN, to the copy. It never checkpoints the
 * source and never holds its writer (its online caller may checkpoint first, in its pin task, when
 * the tail is long: db/onlineCopy.ts).
 *
 * The sequence, in order:
 *   1. The caller, in one write-queue task: takes the durable meta and its snapshot (`snap`,
 *      engine.durable), registers it as a reader, sets a log floor at its applied LSN + 1, and
 *      captures the log records after it up to the head's LSN (`log`: read lazily later; with
 *      wal: false, or nothing after the checkpoint, there are none). The caller keeps `snap`
 *      registered until this call settles; it is not registered again here (one reader slot per
 *      backup).
 *   2. Create `<dest>.partial-<pid>/data.keel` and copy the pages [2, high water) of that meta from
 *      the live file in large sequential chunks (1 MiB), checking the checksum of every page the
 *      meta does not list as free (PageCopyCheck: damage fails the backup CORRUPT), in time slices (TimeSlicer: a few ms of
 *      work, then a turn of the event loop; stepping back while writers commit) so that writers go
 *      on. Every 8 MiB the copy is fdatasynced off the event loop, so that its write-back reaches
 *      the disk in small steps, not in one burst their syncs would queue behind. While writers
 *      commit, each step is awaited; without writers, one step at a time runs while the next
 *      chunks are copied.
 *   3. Write that meta into BOTH meta slots of the copy (same txn: allowed in a copy only, where no
 *      checkpoint ever wrote either slot; the second one is a spare against damage of the first).
 *   4. Log tail (when there is one): open the copy as an engine of its own (no sync), apply the
 *      records in LSN order into write transactions, committed and checkpointed into the copy
 *      every few MiB of dirty pages, in time slices; the last commit carries the backup's LSN. Then
 *      write the final meta into the other slot too, so both slots name the backup's LSN.
 *   5. One fdatasync of the copy (off the event loop), fsync the partial directory, rename it to
 *      `dest`, fsync the parent (PartialOutput).
 *
 * Invariants:
 * - Consistency (I1, I2): while `snap` is a registered reader, every checkpoint's release limit is
 *   at most snap.txn, so no page that snapshot's meta reaches (tree pages, overflow runs, catalog,
 *   free-list run) is reused or overwritten during the copy. Pages below its high water that a later
 *   checkpoint rewrites were free in that meta's state: they are free in the copy too (listed in the
 *   copied free list, or unreachable), so their bytes do not matter. Pages past the high water are not
 *   copied. After step 3 the copy is exactly `snap`.
 * - Step 4 replays committed records (I3: a contiguous prefix, each validated by its checksum)
 *   from snap's LSN + 1 to the backup's LSN, exactly as recovery would; the floor of step 1 keeps
 *   their segments from gc. The copy therefore equals the source's state at the backup LSN, entry by
 *   entry in every sub-database, and opens at that LSN with no log.
 * - Damage (I6): a page the meta reaches that fails its checksum fails the backup CORRUPT
 *   (PageCopyCheck) before anything is published; a copy never carries damage a checksum shows.
 * - The live meta pages (0 and 1) are never copied: step 3 writes them from the decoded meta.
 * - Atomic output (I7): nothing appears at `dest` until it is complete and durable; on failure or
 *   abort the partial directory is removed. `dest` must not exist (EXISTS).
 * - Reads go through their own read-only handle; if the source engine closes meanwhile, the copy
 *   stops with CLOSED (another process could then reuse the pages).
 */
import { KeelError, corrupt, invalidArgument, ioError } from "../errors.js";
import type { FileHandle, FileSystem } from "../io/FileSystem.js";
import { loadFreeList } from "../pager/FreeListChain.js";
import { FreeList } from "../pager/FreeList.js";
import { encodeMeta, type Meta } from "../pager/Meta.js";
import { PageType } from "../pager/PageLayout.js";
import { Engine } from "../txn/Engine.js";
import type { Snapshot } from "../txn/Snapshot.js";
import type { WriteTxn } from "../txn/WriteTxn.js";
import { applyLogRecord } from "../db/LogDurability.js";
import type { LogRecord } from "../wal/index.js";
import { PageCopyCheck } from "./PageCopyCheck.js";
import { PartialOutput } from "./PartialOutput.js";
import { callerError, progressCallback } from "./progressCallback.js";
import { TimeSlicer } from "./TimeSlicer.js";

export interface BackupProgress {
  /** Bytes of data.keel copied so far, and the total (high water x page size). */
  bytes: number;
  totalBytes: number;
  /** Entries of the snapshot, and an estimate of those copied (proportional to the bytes). */
  entries: number;
  totalEntries: number;
  /** Log records applied to the copy so far, and how many there are (step 4). */
  records?: number;
  totalRecords?: number;
}

/** The committed log records after the pinned meta's applied LSN, up to the backup's LSN. */
export interface BackupLogTail {
  /** Records snap.lsn + 1 .. toLsn, in order (read lazily: WriteAheadLog.readRecords). */
  records: Iterable<LogRecord>;
  toLsn: number;
  /** The source's txn at toLsn (reported as the backup's txn). */
  toTxn: number;
}

export interface BackupPagesOptions {
  signal?: AbortSignal | undefined;
  onProgress?: ((p: BackupProgress) => void) | undefined;
  /** Bytes per read/write (rounded down to whole pages, at least one page). Default 1 MiB. */
  chunkBytes?: number | undefined;
  /** Bytes copied between two write-back steps of the copy (see step 2). Default 8 MiB. */
  writeBackBytes?: number | undefined;
  /** Work between yields to the event loop, in ms (default 2; 0 = yield after every chunk). */
  sliceMs?: number | undefined;
  /** Share of the event loop the job takes while writers are committing (default 0.1; 1 = no stepping back). */
  share?: number | undefined;
  /**
   * The meta that names `snap`, taken in the same queue task as the pin (`engine.durableMeta`).
   * Without it, `engine.metas` is searched, which works as long as at most one more checkpoint ran
   * before this call.
   */
  meta?: Meta | undefined;
  /** Step 4: records to apply after the copied pages (none: the copy is `snap` itself). */
  log?: BackupLogTail | undefined;
  /** Dirty bytes of the copy's write transaction that trigger a checkpoint of the copy (default 64 KiB of entries, a few hundred leaves: each checkpoint of the copy is one unsliced unit of work). */
  applyCheckpointBytes?: number | undefined;
}

export interface BackupPagesResult {
  dest: string;
  /** The source's txn and LSN the copy equals. */
  txn: number;
  lsn: number;
  entries: number;
  /** Size of the copy's data.keel. */
  bytes: number;
  pages: number;
  /** Log records applied to the copy after its pages (step 4). */
  logRecords: number;
  ms: number;
  compacted: false;
}

export const DEFAULT_BACKUP_CHUNK = 1 << 20;
const DEFAULT_APPLY_CHECKPOINT_BYTES = 64 << 10;
/** The copy is written back every this many bytes (see step 2). */
const WRITE_BACK_STEP = 8 << 20;

/** The meta that names `snap` (txn and applied LSN), or undefined. */
export function metaOfSnapshot(engine: Engine, snap: Snapshot): Meta | undefined {
  const m = engine.metas.find((x) => x !== null && x.txn === snap.txn && x.appliedLsn === snap.lsn);
  return m ?? undefined;
}

export async function backupPages(engine: Engine, snap: Snapshot, fs: FileSystem, dest: string, o: BackupPagesOptions = {}): Promise<BackupPagesResult> {
  const t0 = performance.now();
  if (engine.closed) throw new KeelError("CLOSED", "the database is closed", { path: engine.path });
  const meta = o.meta ?? metaOfSnapshot(engine, snap);
  if (!meta || meta.txn !== snap.txn || meta.appliedLsn !== snap.lsn) {
    throw invalidArgument(
      `a page-by-page backup needs a checkpointed snapshot: txn ${snap.txn} (LSN ${snap.lsn}) is not what a meta page of ${engine.path} names; pin engine.durable with engine.durableMeta in the same task`,
      { argument: "snap", txn: snap.txn, lsn: snap.lsn, durableTxn: engine.durable.txn },
    );
  }
  if (o.chunkBytes !== undefined && (!Number.isSafeInteger(o.chunkBytes) || o.chunkBytes <= 0)) {
    throw invalidArgument("chunkBytes must be a positive integer", { argument: "chunkBytes", value: o.chunkBytes });
  }
  const log = o.log && o.log.toLsn > snap.lsn ? o.log : undefined;
  const slicer = new TimeSlicer({ signal: o.signal, isClosed: () => engine.closed, budgetMs: o.sliceMs, what: "the backup", activity: () => engine.head.txn, share: o.share });
  slicer.check();
  const ps = meta.pageSize;
  const totalPages = meta.highWater;
  const totalBytes = totalPages * ps;
  let totalEntries = 0;
  for (const e of snap.dbs.values()) totalEntries += e.tree.entries;
  const chunkPages = Math.max(1, Math.floor((o.chunkBytes ?? DEFAULT_BACKUP_CHUNK) / ps));
  const totalRecords = log ? log.toLsn - snap.lsn : 0;

  // Step 1: the caller holds `snap` as a registered reader until this settles (one slot per
  // backup: registering it again here made a backup fail READERS_FULL with a slot free).
  const onProgress = progressCallback<BackupProgress>(o.onProgress, "a page backup");
  let out: PartialOutput | null = null;
  let src: FileHandle | null = null;
  let copy: Engine | null = null;
  try {
    out = PartialOutput.create(fs, dest, "a backup");
    try {
      src = fs.open(engine.path, "r");
    } catch (e) {
      throw ioError(e, "open", engine.path);
    }
    const dst = out.handle();
    // Step 2: the pages, in big sequential chunks, in time slices, each page the meta reaches checked.
    // The meta's free list says which pages those are; `snap` pins its segments too.
    let free = new FreeList();
    try {
      if (meta.freelistPage) {
        free = loadFreeList(
          (p, n, txn) => engine.pager.readRun(p, n, PageType.FreeList, txn),
          { page: meta.freelistPage, pages: meta.freelistPages, txn: meta.freelistTxn },
          { file: engine.path, highWater: meta.highWater },
        ).freelist;
      }
    } catch (e) {
      // A damaged free-list segment is a damaged page like any other: the same details.
      if (e instanceof KeelError && e.code === "CORRUPT" && typeof e.details.page === "number") {
        throw corrupt(e.message, { ...e.details, pages: [e.details.page], damagedPages: 1 });
      }
      throw e;
    }
    const check = new PageCopyCheck(free, ps, totalPages, engine.path);
    const buf = Buffer.allocUnsafeSlow(chunkPages * ps);
    const progress = (page: number, records?: number) =>
      onProgress?.({
        bytes: page * ps,
        totalBytes,
        entries: totalBytes ? Math.round((totalEntries * page * ps) / totalBytes) : totalEntries,
        totalEntries,
        ...(log ? { records: records ?? 0, totalRecords } : {}),
      });
    let unsynced = 0;
    const writeBackStep = o.writeBackBytes ?? WRITE_BACK_STEP;
    // At most one write-back of the copy in flight (off the event loop) while the next chunks are
    // copied; its failure is kept and thrown at the next step.
    let writeBack: Promise<void> | null = null;
    let writeBackError: unknown = null;
    const settleWriteBack = async () => {
      if (writeBack) await writeBack;
      if (writeBackError !== null) throw ioError(writeBackError, "fdatasync", out?.path ?? dest);
    };
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
      check.check(buf, page, n);
      try {
        dst.write(buf, 0, len, page * ps);
      } catch (e) {
        throw ioError(e, "write", out.path);
      }
      page += n;
      unsynced += len;
      progress(page);
      if (slicer.budgetMs === 0 || slicer.due()) await slicer.pause();
      if (unsynced >= writeBackStep) {
        // Write the copy back in steps rather than in one burst at the end. While writers commit,
        // each step is awaited, so that their syncs never queue behind more than one step. Without
        // writers the step runs beside the copying of the next chunks: the copy and its write-back
        // overlap instead of adding up.
        unsynced = 0;
        await settleWriteBack();
        writeBack = dst.syncAsync().then(
          () => {
            writeBack = null;
          },
          (e: unknown) => {
            writeBack = null;
            writeBackError = e;
          },
        );
        if (slicer.writersActive) await settleWriteBack();
        slicer.check();
      }
    }
    await settleWriteBack();
    slicer.check();
    const damage = check.result();
    if (damage) throw damage;
    try {
      src.close();
    } catch {
      // nothing to do: read-only handle
    }
    src = null;
    // Step 3: the meta, into both slots.
    try {
      dst.write(encodeMeta(meta, 0), 0, ps, 0);
      dst.write(encodeMeta(meta, 1), 0, ps, ps);
    } catch (e) {
      throw ioError(e, "write", out.path);
    }
    let entries = totalEntries;
    let pages = totalPages;
    let records = 0;
    let txn = snap.txn;
    // Step 4: the log tail, applied to the copy.
    if (log) {
      out.file = null;
      try {
        dst.close();
      } catch (e) {
        throw ioError(e, "close", out.path);
      }
      copy = Engine.open(fs, out.dir, { noSync: true, cacheBytes: 32 << 20 });
      const limit = o.applyCheckpointBytes ?? DEFAULT_APPLY_CHECKPOINT_BYTES;
      const c = copy;
      let w: WriteTxn = c.beginWrite();
      w.logging = false;
      let lsn = snap.lsn;
      try {
        for (const rec of log.records) {
          if (rec.lsn !== lsn + 1) {
            throw corrupt(`the log gave LSN ${rec.lsn} where ${lsn + 1} belongs while backing up ${engine.path}`, { expectedLsn: lsn + 1, foundLsn: rec.lsn, reason: "lsn-gap" });
          }
          applyLogRecord(w, rec);
          lsn = rec.lsn;
          records++;
          if (w.dirtyBytes >= limit) {
            // No reader of the copy: publishing lets its checkpoints reuse the pages just freed.
            c.publish(c.commitWrite(w, lsn));
            c.checkpoint();
            w = c.beginWrite();
            w.logging = false;
          }
          if (lsn >= log.toLsn) break;
          if (slicer.budgetMs === 0 || slicer.due()) {
            progress(totalPages, records);
            await slicer.pause();
          }
        }
      } catch (e) {
        c.abortWrite(w);
        throw e;
      }
      if (lsn !== log.toLsn) {
        throw corrupt(`the log of ${engine.path} ended at LSN ${lsn} while the backup needed up to ${log.toLsn}`, { lastLsn: lsn, toLsn: log.toLsn, reason: "log-short" });
      }
      // The copy ends at the source's txn for the backup's LSN, as every other copy's meta does.
      // It applied the records in at most as many commits as the source made (one per record at
      // most): when fewer, an empty commit at the source's txn closes it. An empty transaction
      // left open by a checkpoint after the last record is not committed (it would add one).
      if (w.modCount === 0 && c.head.lsn === lsn) c.abortWrite(w);
      else c.publish(c.commitWrite(w, lsn));
      if (c.head.txn < log.toTxn) {
        c.advanceTxnTo(log.toTxn);
        c.publish(c.commitWrite(c.beginWrite(), lsn));
      }
      c.checkpoint();
      slicer.check();
      // Both slots name the backup's LSN (the older one would need the log the copy does not have).
      const final = c.durableMeta;
      const other: 0 | 1 = c.newest === 0 ? 1 : 0;
      c.pager.writeMetaPage(other, encodeMeta(final, other));
      entries = 0;
      for (const e of c.head.dbs.values()) entries += e.tree.entries;
      pages = final.highWater;
      txn = final.txn;
      copy = null;
      c.close();
    }
    // Step 5: durable, then visible.
    await out.syncData();
    slicer.check();
    progress(totalPages, records);
    out.publish();
    return {
      dest,
      txn,
      lsn: log ? log.toLsn : snap.lsn,
      entries,
      bytes: pages * ps,
      pages,
      logRecords: records,
      ms: performance.now() - t0,
      compacted: false,
    };
  } catch (e) {
    try {
      copy?.close();
    } catch {
      // the backup error is the one to report
    }
    out?.discard();
    throw callerError(e)[0];
  } finally {
    try {
      src?.close();
    } catch {
      // nothing to do: read-only handle
    }
  }
}
