/**
 * keel doctor [dir] [--strict]: a production checklist, read from the machine and the database.
 * Each line is OK or WARN with the reason:
 *
 *   swappiness     /proc/sys/vm/swappiness; WARN above 10
 *   huge pages     /sys/kernel/mm/transparent_hugepage/enabled; WARN when [always]
 *   filesystem     the type of the mount holding <dir> (longest matching mount point in
 *                  /proc/mounts); WARN for tmpfs/ramfs (lost at reboot), network file systems
 *                  (the LOCK checks liveness with kill(pid, 0) on this host only) and read-only mounts
 *   disk space     statfs of <dir> against the database's size; WARN when less than twice the size
 *                  of data.keel is free (compact, copy and snapshot write a full copy), or < 10% free
 *   lock           who holds <dir>/LOCK; while a live process holds it, the checks below need the
 *                  database open and are reported as WARN "not checked"
 *   durability     the meta page's WAL flag; durability, noSync and noMetaSync are per-open options
 *                  that are not stored on disk, which the line says
 *   log backlog    txlogWatermarks: lag, log size against the default retention, segments held by a
 *                  floor, replay time at open, a failed log
 *   free pages     freePages / totalPages; WARN above 25%, with the `keel compact` command to run
 *
 * Exit: 0, or 1 with --strict when a line is WARN. A database that cannot be opened (CORRUPT,
 * VERSION, IO) gets a WARN line and the exit status of that error.
 */
import { readFileSync, readdirSync, realpathSync, statSync, statfsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { KeelError, type Database, type Stats, type TxLogWatermarks } from "../../index.js";
import { liveLockHolder, readLockPid } from "../../db/Lock.js";
import { listRegistrations } from "../../db/ReadOnlyReaders.js";
import { nodeFileSystem } from "../../io/NodeFileSystem.js";
import { META_FLAG_WAL } from "../../pager/Meta.js";
import { action } from "../context.js";
import { DATA_FILE, hasDatabase, notFound, openDatabase, readNewestMeta } from "../database.js";
import { ExitCode, exitCodeFor, type ExitCodeValue } from "../exitCodes.js";
import { describeError, errorDocument, formatBytes } from "../output.js";

export type CheckStatus = "OK" | "WARN";

export interface Check {
  name: string;
  status: CheckStatus;
  message: string;
  details?: Record<string, unknown>;
}

/** Default walRetentionBytes of open() (README, Options). */
const DEFAULT_RETENTION_BYTES = 8 * 1024 ** 3;

/** File systems where the LOCK (kill(pid, 0) on this host) or fsync cannot be trusted. */
const NETWORK_FS = new Set([
  "nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "9p", "afs", "ceph", "glusterfs", "lustre", "gpfs", "ocfs2", "gfs2",
  "davfs", "fuse.sshfs", "fuse.s3fs", "fuse.gcsfuse", "fuse.glusterfs", "fuse.ceph", "fuse.rclone", "fuse.juicefs", "fuse.davfs2",
]);
const MEMORY_FS = new Set(["tmpfs", "ramfs"]);

const ok = (name: string, message: string, details?: Record<string, unknown>): Check => ({ name, status: "OK", message, ...(details ? { details } : {}) });
const warn = (name: string, message: string, details?: Record<string, unknown>): Check => ({ name, status: "WARN", message, ...(details ? { details } : {}) });

export interface DoctorSources {
  readText(path: string): string | undefined;
}

const realSources: DoctorSources = {
  readText(path) {
    try {
      return readFileSync(path, "utf8");
    } catch {
      return undefined;
    }
  },
};

export function checkSwappiness(src: DoctorSources): Check {
  const text = src.readText("/proc/sys/vm/swappiness");
  const n = text === undefined ? NaN : Number.parseInt(text.trim(), 10);
  if (!Number.isFinite(n)) return warn("swappiness", "could not read /proc/sys/vm/swappiness (not Linux?): not checked");
  if (n > 10) return warn("swappiness", `vm.swappiness is ${n} (> 10): the kernel may swap the process and evict the page cache under memory pressure; set it to 1-10 (sysctl -w vm.swappiness=1, and in /etc/sysctl.conf)`, { swappiness: n });
  return ok("swappiness", `vm.swappiness is ${n}`, { swappiness: n });
}

export function checkHugePages(src: DoctorSources): Check {
  const text = src.readText("/sys/kernel/mm/transparent_hugepage/enabled");
  if (text === undefined) return warn("huge pages", "could not read /sys/kernel/mm/transparent_hugepage/enabled (not Linux?): not checked");
  const mode = /\[(\w+)\]/.exec(text)?.[1] ?? text.trim();
  if (mode === "always") return warn("huge pages", "transparent huge pages are [always]: khugepaged and compaction stalls cause latency spikes; set them to madvise or never (echo madvise > /sys/kernel/mm/transparent_hugepage/enabled)", { mode });
  return ok("huge pages", `transparent huge pages are [${mode}]`, { mode });
}

/** Unescape a /proc/mounts field (\040 = space, \011 = tab, \012 = newline, \134 = backslash). */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

export interface MountInfo {
  mountPoint: string;
  fsType: string;
  options: string[];
  device: string;
}

/** The mount holding `path`: the longest matching mount point (the last one listed, when stacked). */
export function findMount(mountsText: string, path: string): MountInfo | undefined {
  let best: MountInfo | undefined;
  for (const line of mountsText.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4) continue;
    const mountPoint = unescapeMount(f[1]!);
    const inside = mountPoint === "/" || path === mountPoint || path.startsWith(mountPoint.endsWith("/") ? mountPoint : mountPoint + "/");
    if (!inside) continue;
    if (!best || mountPoint.length >= best.mountPoint.length) best = { device: unescapeMount(f[0]!), mountPoint, fsType: f[2]!, options: f[3]!.split(",") };
  }
  return best;
}

export function checkFilesystem(src: DoctorSources, dir: string): Check {
  const text = src.readText("/proc/mounts");
  if (text === undefined) return warn("filesystem", "could not read /proc/mounts (not Linux?): the file system type was not checked");
  let real: string;
  try {
    real = realpathSync(dir);
  } catch {
    real = resolve(dir);
  }
  const m = findMount(text, real);
  if (!m) return warn("filesystem", `no mount in /proc/mounts holds ${real}: not checked`);
  const details = { fsType: m.fsType, mountPoint: m.mountPoint, device: m.device };
  const fs = m.fsType;
  if (MEMORY_FS.has(fs)) return warn("filesystem", `${real} is on ${fs} (${m.mountPoint}): its contents are lost at reboot or power loss, so nothing is durable there`, details);
  if (NETWORK_FS.has(fs) || fs.startsWith("nfs") || fs.startsWith("smb")) {
    return warn("filesystem", `${real} is on ${fs}, a network file system (${m.mountPoint}): the LOCK checks the holder with kill(pid, 0) on this host only, so two hosts can open the database at once and destroy it; fsync semantics depend on the server. Use a local disk`, details);
  }
  if (fs.startsWith("fuse")) return warn("filesystem", `${real} is on ${fs} (${m.mountPoint}): a FUSE file system; make sure it is local and honours fsync`, details);
  if (m.options.includes("ro")) return warn("filesystem", `${real} is on a read-only mount (${m.mountPoint}, ${fs}): the database cannot be written`, details);
  return ok("filesystem", `${real} is on ${fs} (${m.mountPoint})`, details);
}

/** Bytes under `path` (files, recursively). */
export function treeBytes(path: string): number {
  const s = statSync(path, { throwIfNoEntry: false });
  if (!s) return 0;
  if (!s.isDirectory()) return s.size;
  let n = 0;
  for (const e of readdirSync(path)) n += treeBytes(join(path, e));
  return n;
}

export function checkDiskSpace(dir: string): Check {
  let free: number;
  let total: number;
  try {
    const s = statfsSync(dir);
    free = Number(s.bavail) * Number(s.bsize);
    total = Number(s.blocks) * Number(s.bsize);
  } catch (e) {
    return warn("disk space", `statfs of ${dir} failed (${(e as NodeJS.ErrnoException).code ?? e}): not checked`);
  }
  const dataBytes = statSync(join(dir, DATA_FILE), { throwIfNoEntry: false })?.size ?? 0;
  const dirBytes = treeBytes(dir);
  const details = { freeBytes: free, totalBytes: total, dataFileBytes: dataBytes, databaseBytes: dirBytes };
  const summary = `${formatBytes(free)} free of ${formatBytes(total)}; the database uses ${formatBytes(dirBytes)} (data.keel ${formatBytes(dataBytes)})`;
  if (total === 0) return warn("disk space", `the file system reports no size (ramfs?): free space not checked; the database uses ${formatBytes(dirBytes)}`, details);
  if (free < 2 * dataBytes) return warn("disk space", `${summary}: less than twice data.keel is free, and compact, copy and snapshot each write a full copy; a full disk stops every write (FULL)`, details);
  if (total > 0 && free / total < 0.1) return warn("disk space", `${summary}: less than 10% of the file system is free`, details);
  return ok("disk space", summary, details);
}

export function checkDurability(flags: number | undefined): Check {
  const perOpen = "durability, noSync and noMetaSync are options of each open(), not stored on disk, so they cannot be checked here: check what your application passes to open() (relaxed/none, noSync and noMetaSync can lose recent commits at a power loss)";
  if (flags === undefined) return warn("durability", "no valid meta page: the log setting could not be read");
  if (flags & META_FLAG_WAL) return ok("durability", `the write-ahead log is on (meta flag of data.keel); ${perOpen}`, { wal: true });
  // Backups, compacted copies and snapshots are written without the log flag (they open with no
  // log), so this line also describes them: say so rather than call them wal: false databases.
  return ok("durability", `the write-ahead log is off (the last writer opened it with wal: false, or this is a backup, compacted copy or snapshot, which carry no log; an open with the default wal: true starts one): every commit is a checkpoint; ${perOpen}`, { wal: false });
}

export function checkLog(w: TxLogWatermarks): Check[] {
  const out: Check[] = [];
  const details = { lag: w.lag, logBytes: w.logBytes, logDiskBytes: w.logDiskBytes, segmentCount: w.segmentCount, replay: w.replay, retentionBytes: DEFAULT_RETENTION_BYTES };
  if (w.failed) out.push(warn("log backlog", `the log has failed (${w.failed.message}): writes are refused until the database is reopened`, details));
  const size = `log ${formatBytes(w.logDiskBytes)} on disk in ${w.segmentCount} segment(s), lag: durable ${w.lag.durable}, applied ${w.lag.applied}`;
  const note = "(walRetentionBytes is an option of each open(); the default 8 GiB is assumed)";
  if (w.logDiskBytes > DEFAULT_RETENTION_BYTES) out.push(warn("log backlog", `${size}: more than the retention of ${formatBytes(DEFAULT_RETENTION_BYTES)} ${note}; see which floor holds it (keel watermarks)`, details));
  if (w.heldByFloor.length) {
    const floors = [...new Set(w.heldByFloor.map((h) => `${h.floor} (lsn ${h.floorLsn})`))];
    out.push(warn("log backlog", `${w.heldByFloor.length} segment(s) retention would delete are kept by floor ${floors.join(", ")}: a consumer or an old snapshot holds the log`, details));
  }
  if (w.replay.ms >= 1000) {
    out.push(warn("log backlog", `open replayed ${w.replay.records} log records in ${Math.round(w.replay.ms)} ms: the last run did not close cleanly and checkpoints ran rarely; lower checkpointLogBytes or checkpointMs to bound recovery time`, details));
  }
  if (!out.length) out.push(ok("log backlog", `${size}; open replayed ${w.replay.records} record(s)`, details));
  return out;
}

export function checkFreePages(dir: string, s: Stats): Check {
  const ratio = s.totalPages > 0 ? s.freePages / s.totalPages : 0;
  const pct = `${(ratio * 100).toFixed(1)}%`;
  const details = { freePages: s.freePages, totalPages: s.totalPages, ratio };
  if (ratio > 0.25) {
    const dest = `${dir.replace(/\/+$/, "")}.compacted`;
    return warn(
      "free pages",
      `${s.freePages} of ${s.totalPages} pages are free (${pct}, ${formatBytes(s.freePages * s.pageSize)}): stop the database and run \`keel compact ${dir} ${dest}\`, then replace ${dir} with ${dest}`,
      details,
    );
  }
  return ok("free pages", `${s.freePages} of ${s.totalPages} pages are free (${pct})`, details);
}

/**
 * Read-only processes registered on the database (db/ReadOnlyReaders.ts). One whose view is older
 * than the newest meta makes any writer keep every page that view reaches: WARN, since the file
 * then grows until it closes.
 */
export function checkReaders(dir: string, newestTxn: number | undefined): Check {
  const regs = listRegistrations(nodeFileSystem, dir);
  const live = regs.filter((r) => r.live);
  const stale = regs.length - live.length;
  const staleNote = stale ? `; ${stale} file(s) left by read-only processes that are gone (the next writer open removes them)` : "";
  if (live.length === 0) return ok("readers", `no read-only process has the database open${staleNote}`, { stale });
  const pids = [...new Set(live.map((r) => r.pid))];
  const txns = live.map((r) => r.txn).filter((t): t is number => t !== undefined);
  const oldest = txns.length ? Math.min(...txns) : undefined;
  const elsewhere = live.filter((r) => r.elsewhere).length;
  const details = { pids, oldestTxn: oldest ?? null, newestTxn: newestTxn ?? null, stale, elsewhere };
  const where = elsewhere ? ` (${elsewhere} of them in another pid namespace: their pids mean nothing here, their sockets answer)` : "";
  const who = `${live.length} read-only open(s) by process ${pids.join(", ")}${where}${oldest !== undefined ? `, the oldest at txn ${oldest}` : ""}`;
  if (oldest !== undefined && newestTxn !== undefined && oldest < newestTxn) {
    return warn("readers", `${who}, behind the newest meta (txn ${newestTxn}): while it stays open a writer keeps every page that view reaches, so the file grows; close it when done${staleNote}`, details);
  }
  return ok("readers", `${who}${staleNote}`, details);
}

interface DoctorResult {
  checks: Check[];
  exit: ExitCodeValue | undefined;
  /** Why the database could not be opened (its exit is `exit`). */
  error?: unknown;
}

async function databaseChecks(dir: string): Promise<DoctorResult> {
  const checks: Check[] = [];
  checks.push(checkFilesystem(realSources, dir));
  checks.push(checkDiskSpace(dir));
  let flags: number | undefined;
  let newestTxn: number | undefined;
  try {
    const meta = readNewestMeta(dir);
    flags = meta?.flags;
    newestTxn = meta?.txn;
  } catch {
    flags = undefined;
  }
  const pid = readLockPid(nodeFileSystem, dir);
  const holder = liveLockHolder(nodeFileSystem, dir);
  checks.push(checkDurability(flags));
  checks.push(checkReaders(dir, newestTxn));
  if (holder !== undefined) {
    const why = `not checked: the database is in use by process ${holder} (run keel doctor while it is stopped)`;
    checks.push(warn("lock", `${dir}/LOCK is held by live process ${holder}`, { pid: holder }));
    if (flags === undefined || flags & META_FLAG_WAL) checks.push(warn("log backlog", why, { pid: holder }));
    checks.push(warn("free pages", why, { pid: holder }));
    return { checks, exit: undefined };
  }
  checks.push(ok("lock", pid === undefined ? "no process holds the database" : `the LOCK names process ${pid}, which is gone: the next open takes it over`));
  const wal = flags === undefined ? true : (flags & META_FLAG_WAL) !== 0;
  let db: Database;
  try {
    // The log's watermarks exist only in a writable open; without the log a read-only one will do.
    db = await openDatabase(dir, { readOnly: !wal });
  } catch (e) {
    const msg = e instanceof KeelError ? `${describeError(e)} [${e.code}]` : String((e as Error)?.message ?? e);
    checks.push(warn("open", `the database could not be opened: ${msg}; run keel verify ${dir}`, e instanceof KeelError ? { code: e.code, ...e.details } : {}));
    const exit = exitCodeFor(e);
    return exit === ExitCode.LOCKED ? { checks, exit: undefined } : { checks, exit, error: e };
  }
  try {
    const stats = db.getStats();
    if (stats.metaFallback) checks.push(warn("meta pages", `the newest meta page (slot ${stats.metaFallback.slot}) is damaged (${stats.metaFallback.reason}); the previous one was used: run keel verify ${dir}`, { ...stats.metaFallback }));
    if (wal) checks.push(...checkLog(db.txlogWatermarks()));
    checks.push(checkFreePages(dir, stats));
  } finally {
    await db.close();
  }
  return { checks, exit: undefined };
}

export function doctorLines(checks: Check[]): string[] {
  const w = checks.reduce((m, c) => Math.max(m, c.name.length), 0);
  return checks.map((c) => `${c.status.padEnd(4)}  ${c.name.padEnd(w)}  ${c.message}`);
}

export function registerDoctor(program: Command): void {
  program
    .command("doctor")
    .description("production checklist of the machine and the database (OK/WARN lines)")
    .argument("[dir]", "database directory (without it: the machine checks only)")
    .option("--strict", "exit 1 when any line is WARN")
    .action(
      action(async (ctx, dir: string | undefined, opts: { strict?: boolean }) => {
        if (dir !== undefined && !hasDatabase(dir)) throw notFound(dir);
        const checks: Check[] = [checkSwappiness(realSources), checkHugePages(realSources)];
        let exit: ExitCodeValue | undefined;
        let error: unknown;
        if (dir !== undefined) {
          const r = await databaseChecks(dir);
          checks.push(...r.checks);
          exit = r.exit;
          error = r.error;
        }
        const warnings = checks.filter((c) => c.status === "WARN").length;
        // An open that failed also ends the document with the error, as every command's --json does.
        const failed = error === undefined ? {} : errorDocument(error);
        await ctx.out.result({ ...(dir !== undefined ? { path: dir } : {}), ok: warnings === 0, warnings, checks, ...failed }, () => [
          ...doctorLines(checks),
          "",
          warnings ? `${warnings} warning(s)` : "all checks OK",
        ]);
        if (exit !== undefined) return exit;
        return opts.strict && warnings ? ExitCode.PROBLEMS : ExitCode.OK;
      }),
    );
}
