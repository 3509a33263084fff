/**
 * copyDatabase: a consistent, compacted copy of one snapshot of an open engine into a new
 * directory, made while writers go on (DESIGN.md section 5).
 *
 * Invariants:
 * - Consistency: every entry comes from one read snapshot, registered as a reader for the whole
 *   copy, so no page it reaches is reused meanwhile (I2); the copy's meta records that snapshot's
 *   txn and LSN.
 * - Compaction: entries are inserted in key order into a fresh file, so pages come out full and
 *   no free page is carried over.
 * - Atomic output (I7): everything is written under `<dest>.partial-<pid>`, fsynced, renamed to
 *   `dest`, and the parent directory fsynced. On failure or abort the partial directory is
 *   removed; `dest` either does not exist or is complete.
 * - Writers are not blocked: the copy yields to the event loop every `batch` entries.
 */
import { dirname, join } from "node:path";
import { KeelError, ioError } from "../errors.js";
import type { FileSystem } from "../io/FileSystem.js";
import { TreeCursor } from "../btree/TreeCursor.js";
import { Engine, DATA_FILE } from "../txn/Engine.js";
import type { Snapshot } from "../txn/Snapshot.js";

export interface CopyOptions {
  signal?: AbortSignal | undefined;
  onProgress?: ((p: { entries: number; totalEntries: number }) => void) | undefined;
  /** Entries between yields to the event loop (and between intermediate checkpoints). */
  batch?: number | undefined;
  /** Meta flags for the copy. */
  flags?: number | undefined;
}

export interface CopyResult {
  dest: string;
  txn: number;
  lsn: number;
  entries: number;
  bytes: number;
  ms: number;
}

const tick = () => new Promise<void>((r) => setImmediate(r));

function aborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new KeelError("ABORTED", "the copy was aborted", { reason: String(signal.reason ?? "") });
}

export async function copySnapshot(src: Engine, snap: Snapshot, fs: FileSystem, dest: string, o: CopyOptions = {}): Promise<CopyResult> {
  const t0 = performance.now();
  if (fs.stat(dest)) throw new KeelError("EXISTS", `${dest} already exists; a copy never overwrites`, { dest });
  const parent = dirname(dest);
  fs.mkdir(parent);
  const tmp = `${dest}.partial-${process.pid}`;
  fs.removeDir(tmp);
  fs.mkdir(tmp);
  src.readers.acquire(snap.txn);
  let out: Engine | null = null;
  try {
    out = Engine.open(fs, tmp, { pageSize: src.limits.pageSize, noSync: true, flags: o.flags ?? src.flags, cacheBytes: 64 * 1024 * 1024 });
    const batch = o.batch ?? 20_000;
    let total = 0;
    for (const e of snap.dbs.values()) total += e.tree.entries;
    let copied = 0;
    let w = out.beginWrite();
    w.logging = false;
    let inBatch = 0;
    for (const e of snap.dbs.values()) {
      w.createDB(e.name, e.keyEncoding, e.valueEncoding);
      const cur = new TreeCursor(src.pager, e.tree);
      for (cur.seekGE(null); cur.valid; cur.next()) {
        const v = cur.value;
        w.put(e.name, cur.key, typeof v === "string" ? v : Buffer.from(src.readValue(v)));
        copied++;
        if (++inBatch >= batch) {
          out.commitWrite(w, 0);
          out.checkpoint();
          inBatch = 0;
          o.onProgress?.({ entries: copied, totalEntries: total });
          await tick();
          aborted(o.signal);
          if (src.closed) throw new KeelError("CLOSED", "the source database was closed during the copy", {});
          w = out.beginWrite();
          w.logging = false;
        }
      }
    }
    aborted(o.signal);
    // The last commit carries the snapshot's txn position as its LSN, so the copy knows where
    // the source's log continues from.
    out.commitWrite(w, snap.lsn || 0);
    out.checkpoint();
    out.sync();
    const bytes = out.pager.highWater * out.limits.pageSize;
    out.close();
    out = null;
    try {
      fs.syncDir(tmp);
      fs.rename(tmp, dest);
      fs.syncDir(parent);
    } catch (e) {
      throw ioError(e, "rename", dest);
    }
    o.onProgress?.({ entries: copied, totalEntries: total });
    return { dest, txn: snap.txn, lsn: snap.lsn, entries: copied, bytes, ms: performance.now() - t0 };
  } catch (e) {
    try {
      out?.close();
    } catch {
      // the copy error is the one to report
    }
    fs.removeDir(tmp);
    throw e;
  } finally {
    src.readers.release(snap.txn);
  }
}

export function dataFileOf(dir: string): string {
  return join(dir, DATA_FILE);
}
