/**
 * restore: rebuild a database at any LSN from a snapshot plus the log after it.
 *
 * Order: check the snapshot's CRC; copy its data file and the log segments it needs into
 * `<target>.partial-<pid>-<n>` (partialPath) (the source is only read: recovery and torn-tail repair act on the
 * copy); replay records (snapshot LSN, toLsn]; checkpoint; drop the copied log (its later records
 * must not be replayed by the next open); fsync; rename to `target`; fsync the parent (I7).
 * The target must not exist. A failure removes the partial directory.
 */
import { join, resolve } from "node:path";
import { KeelError, invalidArgument, ioError } from "../errors.js";
import type { FileSystem } from "../io/FileSystem.js";
import { copyFileSynced } from "../io/copyFileSynced.js";
import { nodeFileSystem, pinnedPath } from "../io/NodeFileSystem.js";
import { Engine, DATA_FILE } from "../txn/Engine.js";
import { WriteAheadLog, parseSegmentName } from "../wal/index.js";
import { applyLogRecord } from "../db/LogDurability.js";
import { UNLOGGED_KIND, unloggedGap } from "../db/unloggedChanges.js";
import { checkSnapshot, readSnapshotInfo } from "./Snapshots.js";
import { destPath, partialPath, publishOutput } from "./partialPath.js";
import { TimeSlicer } from "./TimeSlicer.js";
import { methodOptions, pathArgument } from "../db/options.js";
import { checkedStat } from "../io/checkedStat.js";

export interface RestoreOptions {
  /** Restore up to and including this LSN (default: everything in the log). */
  toLsn?: number | undefined;
  /**
   * The log to replay (default: the wal/ of the database the snapshot belongs to, if it has
   * one). Given explicitly, it must exist and hold log segments (NOT_FOUND otherwise).
   */
  walDir?: string | undefined;
  /** Aborts the restore (ABORTED) and removes its partial directory. */
  signal?: AbortSignal | undefined;
  fs?: FileSystem | undefined;
}

export interface RestoreResult {
  target: string;
  snapshotLsn: number;
  lsn: number;
  records: number;
}

/** The log segment files in `walDir`, in LSN order; none if it does not exist. */
function listSegments(fs: FileSystem, walDir: string): string[] {
  try {
    if (!fs.stat(walDir)) return [];
    return fs
      .list(walDir)
      .filter((n) => parseSegmentName(n) !== undefined)
      .sort();
  } catch (e) {
    throw ioError(e, "list", walDir);
  }
}

/** Copy one file, synced, with every error coded. */
function copyFile(fs: FileSystem, from: string, to: string): void {
  try {
    copyFileSynced(fs, from, to);
  } catch (e) {
    throw ioError(e, "copy", `${from} -> ${to}`);
  }
}

/** Work between two turns of the event loop (the abort signal is checked at each). */
const YIELD_MS = 20;

export async function restore(snapshotDir: string, target: string, options?: RestoreOptions): Promise<RestoreResult> {
  pathArgument(snapshotDir, "snapshotDir", "restore");
  pathArgument(target, "targetDir", "restore");
  const o = methodOptions(options, "restore", { toLsn: "any", walDir: "any", signal: "signal", fs: "fs" });
  const fs = o.fs ?? nodeFileSystem;
  const givenWalDir = o.walDir === undefined ? undefined : pinnedPath(fs, pathArgument(o.walDir, "walDir", "restore"));
  snapshotDir = pinnedPath(fs, snapshotDir);
  const targetDir = destPath(pinnedPath(fs, target)); // `out/.` and `out/` name `out`
  if (o.toLsn !== undefined && (!Number.isSafeInteger(o.toLsn) || o.toLsn < 0)) {
    throw invalidArgument(`toLsn must be a non-negative integer, not ${String(o.toLsn)}`, { argument: "toLsn", value: o.toLsn });
  }
  const info = readSnapshotInfo(fs, snapshotDir, "current");
  if (!info) throw new KeelError("NOT_FOUND", `${snapshotDir} is not a finished KeelDB snapshot (no snapshot.json)`, { path: snapshotDir });
  if (o.toLsn !== undefined && o.toLsn < info.lsn) {
    throw invalidArgument(`toLsn ${o.toLsn} is before the snapshot's LSN ${info.lsn}`, { argument: "toLsn", value: o.toLsn, snapshotLsn: info.lsn });
  }
  if (checkedStat(fs, targetDir)) throw new KeelError("EXISTS", `${targetDir} already exists; restore never overwrites`, { target: targetDir });
  checkSnapshot(fs, info);
  const walDir = givenWalDir ?? resolve(snapshotDir, "..", "..", "wal");
  // A log named explicitly that is missing or empty is a mistake (a typo), not "no log": going on
  // would drop every commit after the snapshot without a word.
  if (givenWalDir !== undefined && !listSegments(fs, walDir).length) {
    throw new KeelError("NOT_FOUND", `${walDir} holds no log segments`, { walDir });
  }
  // A turn of the event loop every YIELD_MS of work, so that a SIGINT handler can run and set the
  // signal (by record count alone, a log of a few big records never gave it one); check() is ABORTED.
  const slicer = new TimeSlicer({ signal: o.signal, budgetMs: YIELD_MS, what: "the restore" });
  slicer.check();
  const tmp = partialPath(targetDir);
  try {
    fs.removeDir(tmp);
    fs.mkdir(join(tmp, "wal"));
    copyFile(fs, join(snapshotDir, DATA_FILE), join(tmp, DATA_FILE));
    // Only the segments that can hold records after the snapshot.
    const names = listSegments(fs, walDir);
    const firsts = names.map((n) => parseSegmentName(n)!);
    for (let i = 0; i < names.length; i++) {
      const nextFirst = firsts[i + 1];
      if (nextFirst !== undefined && nextFirst <= info.lsn + 1) continue;
      await slicer.maybePause();
      slicer.check();
      copyFile(fs, join(walDir, names[i]!), join(tmp, "wal", names[i]!));
    }
    fs.syncDir(join(tmp, "wal"));
    const engine = Engine.open(fs, tmp, {});
    let records = 0;
    let lsn = engine.head.lsn;
    try {
      const wal = WriteAheadLog.open(fs, tmp, { startLsn: engine.head.lsn + 1, durability: "none" });
      try {
        const last = wal.lastCommittedLsn;
        const to = Math.min(o.toLsn ?? last, last);
        if (o.toLsn !== undefined && o.toLsn > last) {
          throw new KeelError("NOT_FOUND", `the log ends at LSN ${last}; cannot restore to ${o.toLsn}`, { lastLsn: last, toLsn: o.toLsn });
        }
        if (to > engine.head.lsn) {
          for (const rec of wal.readRecords(engine.head.lsn + 1, to)) {
            if (records % 1024 === 0) await slicer.pause();
            else await slicer.maybePause();
            // The snapshot lacks what a wal: false session changed before this mark.
            if (rec.kind === UNLOGGED_KIND) throw unloggedGap(rec.lsn, "restore");
            const w = engine.beginWrite();
            w.logging = false;
            applyLogRecord(w, rec);
            engine.commitWrite(w, rec.lsn);
            records++;
            lsn = rec.lsn;
          }
        }
      } finally {
        wal.closeSync();
      }
      engine.checkpoint();
    } finally {
      engine.close();
    }
    fs.removeDir(join(tmp, "wal"));
    fs.syncDir(tmp);
    publishOutput(fs, tmp, targetDir, "restore", "dir");
    return { target: targetDir, snapshotLsn: info.lsn, lsn, records };
  } catch (e) {
    try {
      fs.removeDir(tmp);
    } catch {
      // report the restore's error
    }
    throw e instanceof KeelError ? e : ioError(e, "restore", targetDir);
  }
}
