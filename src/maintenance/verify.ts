/**
 * verify: walks every page of data.keel, every record of the log and every snapshot of a database
 * directory, and reports each problem with its location (DESIGN.md section 5).
 *
 * What is checked (details in verifyDataFile.ts and verifyWal.ts):
 *   1. data.keel: both meta pages; the catalog and every sub-database tree (checksums, key order,
 *      separator bounds, depth, statistics, overflow runs); the free-list run; reachability (each page
 *      below the high-water mark is exactly one of meta, tree, overflow, free-list run, free page);
 *      the older meta's tree, which open falls back to.
 *   2. wal/: segment names, headers, gaps, LSN order, every record's checksum and fields; the torn
 *      tail of the newest segment is a warning (the next open truncates it); and whether the log
 *      still holds every record after the meta's applied LSN.
 *   3. snapshots/current and snapshots/previous: snapshot.json parses, and data.keel matches its
 *      CRC-32 and size.
 *
 * Invariants:
 * - Read-only: no file of the database is written, truncated, created or removed, and the LOCK is
 *   not taken; every file is opened "r". verify(dir) registers like a read-only open (a
 *   READER.<pid>.<n> file beside the LOCK while it runs, pinning both meta slots' trees): a writer
 *   that opens during the walk reuses none of the pages it reads. A live writer of another
 *   process already holding the LOCK is LOCKED (verify a live database with db.verify()).
 * - Damage never throws: it becomes a problem. Only misuse throws (a missing directory or data
 *   file: NOT_FOUND), and an aborted signal (ABORTED).
 * - `ok` is true exactly when no problem has severity "error"; a clean database reports none.
 */
import { join } from "node:path";
import { KeelError, ioError } from "../errors.js";
import type { FileHandle, FileSystem } from "../io/FileSystem.js";
import { nodeFileSystem, pinnedPath } from "../io/NodeFileSystem.js";
import { DATA_FILE, type Engine } from "../txn/Engine.js";
import { SNAPSHOTS_DIR, SNAPSHOT_META, fileCrc32Steps, parseSnapshotMeta, snapshotMetaMismatch } from "./Snapshots.js";
import { verifyDataFile, type DataFileOutcome } from "./verifyDataFile.js";
import {
  Aborted,
  ProblemList,
  Progress,
  emptyStats,
  errorText,
  stoppedKind,
  runAsync,
  type VerifyProgress,
  type VerifyReport,
  type VerifyStats,
  type Work,
} from "./verifyTypes.js";
import { scanWal, type WalScanBound } from "./verifyWal.js";
import { logRecordProblem } from "../db/LogDurability.js";
import { methodOptions } from "../db/options.js";
import { pageLimits } from "../pager/PageLayout.js";
import type { LogRecord } from "../wal/LogRecord.js";
import { bootTag } from "../pager/Meta.js";
import { checkedStat } from "../io/checkedStat.js";
import { Lock } from "../db/Lock.js";
import { Registration } from "../db/ReadOnlyReaders.js";
import { readMetaSlots } from "../pager/MetaSlots.js";

export type { VerifyProblem, VerifyReport, VerifyStats, VerifyProgress, VerifySeverity } from "./verifyTypes.js";

export interface VerifyOptions {
  fs?: FileSystem | undefined;
  signal?: AbortSignal | undefined;
  onProgress?: ((p: VerifyProgress) => void) | undefined;
}

export interface VerifyEngineOptions {
  /** Also read <dir>/wal (default true). */
  wal?: boolean | undefined;
  /** Also check <dir>/snapshots (default true). */
  snapshots?: boolean | undefined;
  onProgress?: ((p: VerifyProgress) => void) | undefined;
  /** Stops the walk (KeelError ABORTED) at its next pause. */
  signal?: AbortSignal | undefined;
}

/** Verify a closed database directory. */
export async function verify(dir: string, options?: VerifyOptions): Promise<VerifyReport> {
  const opts = methodOptions(options, "verify", { fs: "fs", signal: "signal", onProgress: "function" });
  const fs = opts.fs ?? nodeFileSystem;
  if (typeof dir !== "string" || dir.length === 0) throw new KeelError("INVALID_ARGUMENT", "dir must be a non-empty string", { argument: "dir" });
  dir = pinnedPath(fs, dir);
  const st = checkedStat(fs, dir);
  if (!st || !st.isDirectory) throw new KeelError("NOT_FOUND", `no database directory at ${dir}`, { path: dir });
  const path = join(dir, DATA_FILE);
  if (!checkedStat(fs, path)) throw new KeelError("NOT_FOUND", `no database at ${dir} (${DATA_FILE} is missing)`, { path: dir, file: path });
  // Registered as a read-only open is (READER.<pid>.<n>), so that a writer opening meanwhile keeps
  // the pages of both meta slots' trees, which the walk reads for a while (I2 across processes),
  // and every log segment, which it reads after them ("log 0": its gc deletes none meanwhile).
  const registration = Registration.create(fs, dir, { logFloor: 0 });
  let handle: FileHandle | null = null;
  try {
    refuseLiveWriter(fs, dir);
    try {
      handle = fs.open(path, "r");
    } catch (e) {
      throw ioError(e, "open", path);
    }
    if (registration) {
      registration.setTxn(pinnedTxn(handle));
      // A writer that opened before the txn was written pinned only the newest meta; one that
      // opens from now on reads the txn. The first is refused here like one found above.
      refuseLiveWriter(fs, dir);
    }
    const progress = new Progress(opts.onProgress, opts.signal);
    return await runAsync(verifyWork(fs, dir, handle, path, progress, true, true), opts.signal);
  } finally {
    try {
      handle?.close();
    } catch {
      // read-only descriptor
    }
    registration?.release();
  }
}

/**
 * LOCKED when another live process has the database open for writing: its checkpoints would
 * change the files under the walk (db.verify() checks an open database). This process's own open
 * is the caller's business (a test reading what a crash would leave, say): not refused.
 */
function refuseLiveWriter(fs: FileSystem, dir: string): void {
  try {
    Lock.check(fs, dir);
  } catch (e) {
    // Ours: no `socket` (a holder in another pid namespace may have our pid number: it is seen by its socket).
    if (!(e instanceof KeelError && e.code === "LOCKED" && e.details.pid === process.pid && e.details.socket === undefined)) throw e;
  }
}

/** The older txn of the two meta slots (0 when they cannot be read: pins every page). */
function pinnedTxn(handle: FileHandle): number {
  try {
    const { metas } = readMetaSlots(handle);
    const t = Math.min(metas[0]?.txn ?? Infinity, metas[1]?.txn ?? Infinity);
    return Number.isFinite(t) ? t : 0;
  } catch {
    return 0;
  }
}

/**
 * Verify the files of an open engine: the data file as its newest durable meta names it, and (by
 * default) its log and snapshots. Uncheckpointed commits are in the log, not in data.keel, and are
 * checked there. The walk gives the event loop a turn every few ms of work, so the caller must
 * keep what it reads in place meanwhile (db/onlineVerify.ts): every tree of both meta slots pinned
 * (a registered reader, I2), the log kept from gc, and the log read only up to `bound`.
 */
export async function verifyEngine(engine: Engine, opts: VerifyEngineOptions = {}, bound?: WalScanBound): Promise<VerifyReport> {
  const stillOpen = () => {
    if (engine.closed) throw new KeelError("CLOSED", "the database was closed during verify", { path: engine.path });
  };
  stillOpen();
  const progress = new Progress(opts.onProgress, opts.signal);
  const work = verifyWork(engine.fs, engine.dir, engine.pager.file, engine.path, progress, opts.wal ?? true, opts.snapshots ?? true, bound);
  return runAsync(work, opts.signal, stillOpen);
}

function* verifyWork(
  fs: FileSystem,
  dir: string,
  handle: FileHandle,
  path: string,
  progress: Progress,
  wal: boolean,
  snapshots: boolean,
  bound?: WalScanBound,
): Work<VerifyReport> {
  const out = new ProblemList();
  const stats: VerifyStats = emptyStats();
  let data: DataFileOutcome = { meta: null, slot: -1, older: null, pageSize: 0 };
  try {
    data = yield* verifyDataFile(handle, path, out, stats, progress, bootTag(fs.bootId()));
  } catch (e) {
    if (e instanceof Aborted) throw e;
    out.add({ severity: "error", kind: stoppedKind(e, "io"), file: path, message: `the check of ${path} stopped: ${errorText(e)}` });
  }
  if (wal) {
    const walDir = join(dir, "wal");
    try {
      // A record that passed its checksum but that replay would refuse (CORRUPT at open) is damage too.
      const maxKeySize = data.pageSize ? pageLimits(data.pageSize).maxKeySize : undefined;
      const onRecord = (rec: LogRecord, segment: string, offset: number) => {
        const why = logRecordProblem(rec, maxKeySize);
        if (why !== undefined) out.add({ severity: "error", kind: "wal-op", file: join(walDir, segment), segment, offset, message: `${why} (segment ${segment}, offset ${offset})` });
      };
      const res = yield* scanWal(fs, walDir, out, { onRecord }, progress, bound);
      stats.logRecords = res.records;
      stats.logSegments = res.segments;
      checkLogAgainstData(res, data, walDir, out, bound?.appliedLsn);
    } catch (e) {
      if (e instanceof Aborted) throw e;
      out.add({ severity: "error", kind: stoppedKind(e, "wal-io"), file: walDir, message: `the check of ${walDir} stopped: ${errorText(e)}` });
    }
  }
  if (snapshots) {
    try {
      yield* checkSnapshots(fs, dir, out);
    } catch (e) {
      if (e instanceof Aborted) throw e;
      out.add({ severity: "error", kind: stoppedKind(e, "snapshot-io"), file: join(dir, SNAPSHOTS_DIR), message: `the check of the snapshots stopped: ${errorText(e)}` });
    }
  }
  progress.done = Math.max(progress.done, progress.total);
  progress.report();
  const problems = out.finish();
  return { ok: !problems.some((p) => p.severity === "error"), problems, stats };
}

/** The log must still hold every record after the meta's applied LSN, and must not end before it. */
function checkLogAgainstData(
  res: { segments: number; firstLsn: number | undefined; lastLsn: number | undefined; errors: number },
  data: DataFileOutcome,
  walDir: string,
  out: ProblemList,
  appliedAtBound: number | undefined,
): void {
  const meta = data.meta;
  if (!meta || res.segments === 0 || res.firstLsn === undefined) return;
  // Online, the scan stops at its bound while checkpoints go on: a meta read later may be ahead.
  const applied = appliedAtBound === undefined ? meta.appliedLsn : Math.min(meta.appliedLsn, appliedAtBound);
  if (res.firstLsn > applied + 1) {
    out.add({
      severity: "error",
      kind: "wal-missing",
      file: walDir,
      segment: undefined,
      message: `the log starts at LSN ${res.firstLsn}, but the data file includes only up to LSN ${applied}: records ${applied + 1}..${res.firstLsn - 1} are missing`,
    });
  }
  if (res.errors === 0) {
    const last = res.lastLsn ?? res.firstLsn - 1;
    if (last < applied) {
      out.add({
        severity: "error",
        kind: "log-behind-data",
        file: walDir,
        message: `the log ends at LSN ${last}, before the LSN the data file includes (${applied}): the log lost records that were checkpointed`,
      });
    }
  }
  const older = data.older;
  if (older && older.txn > 0 && older.appliedLsn > 0 && res.firstLsn > older.appliedLsn + 1 && res.firstLsn <= applied + 1) {
    out.add({
      severity: "warning",
      kind: "wal-fallback",
      file: walDir,
      message: `the log starts at LSN ${res.firstLsn}; a fallback to the older meta (applied LSN ${older.appliedLsn}) would need records from LSN ${older.appliedLsn + 1}`,
    });
  }
}

function* checkSnapshots(fs: FileSystem, dir: string, out: ProblemList): Work<void> {
  const root = join(dir, SNAPSHOTS_DIR);
  const st = fs.stat(root);
  if (!st || !st.isDirectory) return;
  for (const name of ["current", "previous"]) {
    const sdir = join(root, name);
    if (!fs.stat(sdir)) continue;
    const metaPath = join(sdir, SNAPSHOT_META);
    const dataPath = join(sdir, DATA_FILE);
    const hasMeta = !!fs.stat(metaPath);
    const dataSt = fs.stat(dataPath);
    if (!hasMeta || !dataSt) {
      out.add({ severity: "error", kind: "snapshot-incomplete", file: hasMeta ? dataPath : metaPath, message: `snapshot ${sdir} has no ${hasMeta ? DATA_FILE : SNAPSHOT_META}` });
      continue;
    }
    let text: string;
    try {
      text = Buffer.from(fs.readFile(metaPath)).toString("utf8");
    } catch (e) {
      out.add({ severity: "error", kind: "snapshot-io", file: metaPath, message: `cannot read ${metaPath}: ${errorText(e)}` });
      continue;
    }
    const m = parseSnapshotMeta(text);
    if (typeof m === "string") {
      out.add({ severity: "error", kind: "snapshot-meta", file: metaPath, message: `${metaPath} ${m}` });
      continue;
    }
    let crc: number;
    let bytes: number;
    try {
      ({ crc, bytes } = yield* fileCrc32Steps(fs, dataPath));
    } catch (e) {
      out.add({ severity: "error", kind: "snapshot-io", file: dataPath, message: `cannot read ${dataPath}: ${errorText(e)}` });
      continue;
    }
    if (crc !== m.dataCrc32 || bytes !== m.bytes) {
      out.add({
        severity: "error",
        kind: "snapshot-checksum",
        file: dataPath,
        message: `snapshot ${name} fails its checksum: ${SNAPSHOT_META} records CRC-32 ${m.dataCrc32} over ${m.bytes} bytes, ${DATA_FILE} has CRC-32 ${crc} over ${bytes} bytes`,
      });
    } else {
      let differs: string | undefined;
      try {
        differs = snapshotMetaMismatch(fs, sdir, m);
      } catch (e) {
        out.add({ severity: "error", kind: "snapshot-io", file: dataPath, message: `cannot read ${dataPath}: ${errorText(e)}` });
        continue;
      }
      if (differs) out.add({ severity: "error", kind: "snapshot-meta", file: metaPath, message: `${metaPath} ${differs}` });
    }
    yield;
  }
}
