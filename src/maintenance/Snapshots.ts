/**
 * Snapshots: consistent copies of the database in <dir>/snapshots/{current,previous}.
 *
 * createSnapshot, in order:
 *   1. Checkpoint (the log is synced first), then rotate the log segment, so the log after the
 *      snapshot starts in a segment of its own.
 *   2. Copy the published snapshot, compacted, into snapshots/incoming (copyDatabase: temp name,
 *      fsync, rename, fsync: I7).
 *   3. Write snapshot.json (LSN, txn, sizes, CRC-32 of data.keel) into it atomically.
 *   4. Rotate: rename previous -> previous.tmp-retired, fsync the snapshots directory, rename
 *      current -> previous, rename incoming -> current, fsync it again, then delete the retired
 *      copy. Where current is missing (a rotation cut off between its two
 *      renames), previous is kept and only incoming -> current runs: at every point at least the
 *      newest acknowledged snapshot is listed.
 *   5. Advance the "snapshot" floor of the log to 1 + the LSN of the oldest kept snapshot, and
 *      let gc delete what no floor needs.
 * A crash at any step leaves at most an `incoming` (or `*.partial-*`) directory that is never
 * listed (no valid snapshot.json) and is removed by the next createSnapshot; an error before step
 * 4's last rename removes `incoming` at once.
 * A snapshot plus the log after it restores any later LSN (restore()).
 */
import { join } from "node:path";
import { KeelError, corrupt, ioError, isKeelError } from "../errors.js";
import type { FileSystem } from "../io/FileSystem.js";
import { crc32 } from "../util/crc32.js";
import { runAsync, type Work } from "./verifyTypes.js";
import { copySnapshot } from "./copyDatabase.js";
import type { Engine } from "../txn/Engine.js";
import { DATA_FILE } from "../txn/Engine.js";
import type { Snapshot } from "../txn/Snapshot.js";
import { readDataFileMetas } from "../txn/dataFileMetas.js";

export const SNAPSHOTS_DIR = "snapshots";
export const SNAPSHOT_META = "snapshot.json";
export const SNAPSHOT_FORMAT = 1;

export interface SnapshotInfo {
  name: "current" | "previous";
  path: string;
  lsn: number;
  txn: number;
  createdAt: number;
  entries: number;
  bytes: number;
  dataCrc32: number;
  pageSize: number;
}

export interface SnapshotMeta {
  format: number;
  lsn: number;
  txn: number;
  createdAt: number;
  entries: number;
  bytes: number;
  dataCrc32: number;
  pageSize: number;
}

/**
 * CRC-32 of a whole file, read in 1 MiB chunks through the FileSystem, as steps: one yield after
 * each chunk, so a caller in a live process (verify, createSnapshot) gives the event loop a turn
 * between them (a snapshot of some GB would otherwise hold it for seconds). I/O errors: IO/FULL.
 */
export function* fileCrc32Steps(fs: FileSystem, path: string): Work<{ crc: number; bytes: number }> {
  try {
    const f = fs.open(path, "r");
    try {
      const size = f.size();
      const buf = Buffer.allocUnsafe(1 << 20);
      let crc = 0;
      for (let pos = 0; pos < size; ) {
        const n = f.read(buf, 0, Math.min(buf.length, size - pos), pos);
        if (n <= 0) break;
        crc = crc32(buf.subarray(0, n), crc);
        pos += n;
        yield;
      }
      return { crc, bytes: size };
    } finally {
      f.close();
    }
  } catch (e) {
    throw ioError(e, "read", path);
  }
}

/** fileCrc32Steps run to the end at once (offline callers: restore, migration). */
export function fileCrc32(fs: FileSystem, path: string): { crc: number; bytes: number } {
  const steps = fileCrc32Steps(fs, path);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

export function writeFileAtomic(fs: FileSystem, path: string, data: Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const dir = join(path, "..");
  try {
    fs.remove(tmp);
    const f = fs.open(tmp, "createExclusive");
    try {
      f.write(data, 0, data.length, 0);
      f.sync();
    } finally {
      f.close();
    }
    fs.rename(tmp, path);
    fs.syncDir(dir);
  } catch (e) {
    try {
      fs.remove(tmp);
    } catch {
      // report the write error
    }
    throw ioError(e, "write", path);
  }
}

const META_NUMBERS = ["lsn", "txn", "createdAt", "entries", "bytes", "dataCrc32", "pageSize"] as const;

/**
 * The fields of a snapshot.json, or why it is not one (a phrase to follow the file's name). Every
 * field is checked, not only those the caller reads: the file is damaged data like any page.
 */
export function parseSnapshotMeta(text: string): SnapshotMeta | string {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    return "is not valid JSON";
  }
  if (m === null || typeof m !== "object" || Array.isArray(m)) return "does not hold a JSON object";
  const r = m as Record<string, unknown>;
  if (r.format !== SNAPSHOT_FORMAT) return `is not a KeelDB snapshot description of format ${SNAPSHOT_FORMAT}`;
  for (const f of META_NUMBERS) {
    const v = r[f];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) return `has no valid "${f}" (a non-negative integer)`;
  }
  return r as unknown as SnapshotMeta;
}

/**
 * How snapshot.json disagrees with its data file's newest meta (the LSN, txn and page size the copy
 * wrote there), or undefined. snapshot.json carries no checksum of its own, and its LSN sets the log
 * floor a restore from it needs: a damaged LSN that passed would let log GC delete records that
 * restore must replay. A data file with no readable meta of this format is left to the CRC check
 * (verify, restore) and to migration (an older format's snapshot).
 */
export function snapshotMetaMismatch(fs: FileSystem, path: string, m: SnapshotMeta): string | undefined {
  const dataPath = join(path, DATA_FILE);
  let metas: ReturnType<typeof readDataFileMetas>;
  try {
    const f = fs.open(dataPath, "r");
    try {
      metas = readDataFileMetas(f, dataPath);
    } finally {
      f.close();
    }
  } catch (e) {
    if (isKeelError(e, "CORRUPT") || isKeelError(e, "VERSION")) return undefined;
    throw ioError(e, "read", dataPath);
  }
  const meta = metas.metas[metas.newest]!;
  // The copy writes txn 1 for a snapshot of an empty database (txn 0): a meta's txn is never 0.
  const want = { lsn: meta.appliedLsn, txn: meta.txn, pageSize: meta.pageSize };
  const got = { lsn: m.lsn, txn: Math.max(1, m.txn), pageSize: m.pageSize };
  for (const f of ["lsn", "txn", "pageSize"] as const) {
    if (want[f] !== got[f]) return `records ${f} ${m[f]}, but its ${DATA_FILE} holds ${f} ${want[f]}`;
  }
  return undefined;
}

/** Read and check one snapshot directory; undefined if it is not a finished snapshot. */
export function readSnapshotInfo(fs: FileSystem, path: string, name: "current" | "previous"): SnapshotInfo | undefined {
  const metaPath = join(path, SNAPSHOT_META);
  let text: string;
  try {
    if (!fs.stat(metaPath) || !fs.stat(join(path, DATA_FILE))) return undefined;
    text = Buffer.from(fs.readFile(metaPath)).toString("utf8");
  } catch (e) {
    throw ioError(e, "read", metaPath);
  }
  const m = parseSnapshotMeta(text);
  if (typeof m === "string") throw corrupt(`${metaPath} ${m}`, { file: metaPath, reason: "snapshot-meta" });
  const differs = snapshotMetaMismatch(fs, path, m);
  if (differs) throw corrupt(`${metaPath} ${differs}`, { file: metaPath, reason: "snapshot-meta" });
  return { name, path, lsn: m.lsn, txn: m.txn, createdAt: m.createdAt, entries: m.entries, bytes: m.bytes, dataCrc32: m.dataCrc32, pageSize: m.pageSize };
}

export function listSnapshots(fs: FileSystem, dbDir: string): SnapshotInfo[] {
  const root = join(dbDir, SNAPSHOTS_DIR);
  const out: SnapshotInfo[] = [];
  for (const name of ["current", "previous"] as const) {
    const info = readSnapshotInfo(fs, join(root, name), name);
    if (info) out.push(info);
  }
  return out;
}

export interface CreateSnapshotHooks {
  onPhase?: ((phase: string) => void) | undefined;
  signal?: AbortSignal | undefined;
}

/** Steps 2-4 above; the caller did step 1 and holds `snap` as a registered reader. */
export async function createSnapshot(engine: Engine, fs: FileSystem, dbDir: string, snap: Snapshot, hooks: CreateSnapshotHooks): Promise<SnapshotInfo> {
  const root = join(dbDir, SNAPSHOTS_DIR);
  try {
    fs.mkdir(root);
    // Leftovers of a snapshot interrupted by a crash are never listed; clear them.
    for (const name of fs.list(root)) {
      if (name === "incoming" || name.includes(".partial-") || name.includes(".tmp-")) fs.removeDir(join(root, name));
    }
  } catch (e) {
    throw ioError(e, "prepare", root);
  }
  const incoming = join(root, "incoming");
  hooks.onPhase?.("snapshot:before-copy");
  const res = await copySnapshot(engine, snap, fs, incoming, { signal: hooks.signal });
  hooks.onPhase?.("snapshot:after-copy");
  const current = join(root, "current");
  const previous = join(root, "previous");
  const retired = join(root, "previous.tmp-retired");
  let meta: SnapshotMeta;
  try {
    // In steps (a turn per MiB); a close() meanwhile must not find the snapshot rotated after the
    // LOCK is released, so the copy stops as it does when the source closes mid-copy.
    const stillOpen = (): void => {
      if (engine.closed) throw new KeelError("CLOSED", `the database at ${dbDir} was closed during createSnapshot`, { path: dbDir });
    };
    const { crc, bytes } = await runAsync(fileCrc32Steps(fs, join(incoming, DATA_FILE)), hooks.signal, stillOpen);
    stillOpen();
    meta = {
      format: SNAPSHOT_FORMAT,
      lsn: snap.lsn,
      txn: snap.txn,
      createdAt: Date.now(),
      entries: res.entries,
      bytes,
      dataCrc32: crc,
      pageSize: engine.limits.pageSize,
    };
    writeFileAtomic(fs, join(incoming, SNAPSHOT_META), Buffer.from(JSON.stringify(meta, null, 2) + "\n"));
    hooks.onPhase?.("snapshot:before-rotate");
    try {
      // With no current (a rotation cut off between its two renames), previous is the newest
      // snapshot there is: it stays until incoming has taken current's place.
      if (fs.stat(current)) {
        // previous leaves by one rename, not by deleting its files one by one: a crash mid-delete
        // would leave a half snapshot under a listed name. The retired copy is deleted below, or
        // (after a crash) by the next createSnapshot, as a `.tmp-` leftover.
        if (fs.stat(previous)) fs.rename(previous, retired);
        fs.syncDir(root);
        fs.rename(current, previous);
        hooks.onPhase?.("snapshot:after-rename-previous");
      }
      fs.rename(incoming, current);
      fs.syncDir(root);
    } catch (e) {
      throw ioError(e, "rename", current);
    }
  } catch (e) {
    // A failure before incoming became current leaves a whole copy of the database there: remove
    // it now rather than at the next createSnapshot (a full disk is the likely cause). After that
    // rename the new current stays: it is complete, and listed like any other.
    try {
      fs.removeDir(incoming);
    } catch {
      // report the snapshot's error
    }
    throw e;
  }
  try {
    if (fs.stat(retired)) fs.removeDir(retired);
  } catch {
    // The snapshot is done; the next createSnapshot removes the leftover.
  }
  hooks.onPhase?.("snapshot:after-rotate");
  // From the description just written, not read back: a read error now would report a
  // published snapshot as failed.
  return { name: "current", path: current, lsn: meta.lsn, txn: meta.txn, createdAt: meta.createdAt, entries: meta.entries, bytes: meta.bytes, dataCrc32: meta.dataCrc32, pageSize: meta.pageSize };
}

/** Check a snapshot's data file against the CRC its snapshot.json recorded. */
export function checkSnapshot(fs: FileSystem, info: SnapshotInfo): void {
  const { crc, bytes } = fileCrc32(fs, join(info.path, DATA_FILE));
  if (crc !== info.dataCrc32 || bytes !== info.bytes) {
    throw new KeelError("CORRUPT", `snapshot ${info.path} fails its checksum (recorded ${info.dataCrc32}/${info.bytes} bytes, found ${crc}/${bytes} bytes)`, {
      file: join(info.path, DATA_FILE),
      reason: "snapshot-checksum",
    });
  }
}
