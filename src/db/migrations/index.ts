/**
 * migrations: upgrades of a database written in an older data-file format, run by open() with code
 * shipped in the package (DESIGN.md section 5: never a download), with a backup kept.
 *
 * runMigrations, in order:
 *   1. Plan the chain of registered migrations from the found version to FORMAT_VERSION (VERSION if
 *      a step is missing). Remove what an interrupted earlier run left (partial backups, converted
 *      copies not yet renamed).
 *   2. Back up: copy every file of the database directory (data.keel, wal/, snapshots/; not the
 *      coordination files LOCK, LOCK.takeover and READER.*, which name processes, not data)
 *      into `<parent>/<name>.backup-v<from>-<timestamp>.partial-<pid>`, fdatasync each file, fsync
 *      each directory, rename it to `<parent>/<name>.backup-v<from>-<timestamp>`, fsync the parent.
 *   3. Apply each migration in order. Each one replaces the files it changes atomically (converted
 *      copy under a temp name, fdatasync, rename, fsync of the directory).
 *
 * Invariants:
 * - Nothing in the database directory changes before the backup is complete and durable (step 2
 *   ends with the fsync of the parent), so a power cut at any point leaves the original database
 *   (and the next open migrates again) or the migrated one, and a backup directory under its final
 *   name is always complete: a crash during the copy leaves only a `.partial-` directory, which the
 *   next run removes.
 * - The caller holds the database's LOCK (open() takes it first), so no other process reads or
 *   writes the directory meanwhile.
 * - A version newer than this code is never migrated: it fails with VERSION naming both versions.
 */
import { basename, dirname, join, normalize, resolve } from "node:path";
import { KeelError, ioError } from "../../errors.js";
import type { FileSystem } from "../../io/FileSystem.js";
import { HOLDER_SOCKET_NAME } from "../../io/HolderSocket.js";
import { copyFileSynced } from "../../io/copyFileSynced.js";
import { versionError } from "../../pager/Meta.js";
import { FORMAT_VERSION } from "../../pager/PageLayout.js";
import { DATA_FILE } from "../../txn/Engine.js";
import { MIGRATING_SUFFIX, v0ToV1 } from "./v0ToV1.js";
import { formatVersionOfFile } from "../../pager/formatVersionOf.js";
import { v1ToV2 } from "./v1ToV2.js";
import { LOCK_FILE, TAKEOVER_FILE } from "../Lock.js";
import { isRegistration } from "../ReadOnlyReaders.js";

export interface Migration {
  /** Format version it reads. */
  from: number;
  /** Format version it writes (from + 1). */
  to: number;
  /** One line for logs and the command-line tool. */
  describe: string;
  /** Rewrite the database in `dir` (its LOCK held) from version `from` to version `to`. */
  migrate(fs: FileSystem, dir: string): void;
}

/** Every migration shipped, in order. The last one's `to` is FORMAT_VERSION. */
export const migrations: Migration[] = [v0ToV1, v1ToV2];

export interface MigrationResult {
  from: number;
  to: number;
  /** The complete copy of the original directory. */
  backupDir: string;
  /** The migrations applied, in order. */
  applied: Array<{ from: number; to: number; describe: string }>;
  ms: number;
}

export interface RunMigrationsOptions {
  /** Clock for the backup's name (tests). */
  now?: (() => number) | undefined;
  /** Test hook: named points of the sequence. */
  onPhase?: ((phase: string) => void) | undefined;
}

/** Top-level files the backup leaves out: they say which processes hold the directory, not what it holds. */
const isCoordinationFile = (name: string): boolean => name === LOCK_FILE || name === TAKEOVER_FILE || HOLDER_SOCKET_NAME.test(name) || isRegistration(name);

// ---- detection ----

/**
 * The format version of the database in `dir`, judged from its valid meta pages without opening it
 * (formatVersionOf.ts): 0 for the little-endian-magic layout, the meta's version field otherwise.
 * undefined when there is no data.keel or no valid meta of any known layout (open then reports
 * CORRUPT as usual). A version newer than FORMAT_VERSION found in either slot wins, so that it is
 * refused, never migrated.
 */
export function detectVersion(fs: FileSystem, dir: string): number | undefined {
  const path = join(dir, DATA_FILE);
  try {
    const st = fs.stat(path);
    if (!st || st.isDirectory) return undefined;
    const f = fs.open(path, "r");
    try {
      return formatVersionOfFile(f);
    } finally {
      f.close();
    }
  } catch (e) {
    throw ioError(e, "read", path);
  }
}

// ---- running ----

/** The chain of migrations from `from` to FORMAT_VERSION, or VERSION naming the missing step. */
export function planMigrations(from: number, file = DATA_FILE, list: readonly Migration[] = migrations): Migration[] {
  if (!Number.isInteger(from) || from < 0) throw new KeelError("INVALID_ARGUMENT", `format version must be a non-negative integer, got ${from}`, { argument: "foundVersion", value: from });
  if (from > FORMAT_VERSION) throw versionError(file, from);
  const chain: Migration[] = [];
  for (let v = from; v < FORMAT_VERSION; ) {
    const m = list.find((x) => x.from === v);
    if (!m || m.to <= m.from) {
      throw new KeelError("VERSION", `${file} has format version ${from}; this KeelDB reads format version ${FORMAT_VERSION} and ships no migration from version ${v}`, {
        file,
        found: from,
        supported: FORMAT_VERSION,
        missingFrom: v,
      });
    }
    chain.push(m);
    v = m.to;
  }
  return chain;
}

function stamp(ms: number): string {
  // 2025-06-11T10:15:30.123Z -> 20250611T101530.123Z (sortable, no colons)
  return new Date(ms).toISOString().replace(/[-:]/g, "");
}

/** Copy the tree under `from` into the existing directory `to`; every file and directory made durable. */
function copyTree(fs: FileSystem, from: string, to: string, top: boolean, buf: Buffer): number {
  let bytes = 0;
  for (const name of fs.list(from)) {
    // Holder sockets at any depth: a killed load's or restore's working directory keeps its own
    // (copying a socket is ENXIO, which would stop the migration and with it every open).
    if ((top && isCoordinationFile(name)) || HOLDER_SOCKET_NAME.test(name) || name.endsWith(MIGRATING_SUFFIX)) continue;
    const src = join(from, name);
    const st = fs.stat(src);
    if (!st) continue;
    const dst = join(to, name);
    if (st.isDirectory) {
      fs.mkdir(dst);
      bytes += copyTree(fs, src, dst, false, buf);
    } else {
      bytes += copyFileSynced(fs, src, dst, { buf, sparse: true });
    }
  }
  fs.syncDir(to);
  return bytes;
}

/**
 * Back up `dir`, then migrate it from `foundVersion` to FORMAT_VERSION (see the steps at the top).
 * The caller holds the LOCK and nothing else has the database open.
 */
export function runMigrations(fs: FileSystem, dir: string, foundVersion: number, opts: RunMigrationsOptions = {}): MigrationResult {
  const t0 = performance.now();
  // The directory as given (relative paths stay relative: the FileSystem resolves them), made
  // absolute only when its last component names no directory ("." or "..").
  let abs = normalize(dir).replace(/(.)[\\/]+$/, "$1");
  if (basename(abs) === "." || basename(abs) === ".." || basename(abs) === "") abs = resolve(dir);
  const dataPath = join(abs, DATA_FILE);
  // Step 1.
  const chain = planMigrations(foundVersion, dataPath);
  if (!chain.length) {
    throw new KeelError("INVALID_ARGUMENT", `${dataPath} already has format version ${foundVersion}: nothing to migrate`, { argument: "foundVersion", value: foundVersion });
  }
  const parent = dirname(abs);
  const name = basename(abs);
  if (!name) throw new KeelError("INVALID_ARGUMENT", `cannot migrate a database at ${dir}: its backup would have to go inside it`, { argument: "dir", value: dir });
  const prefix = `${name}.backup-v`;
  let backupDir: string;
  try {
    for (const entry of fs.list(parent)) {
      if (entry.startsWith(prefix) && entry.includes(".partial-")) fs.removeDir(join(parent, entry));
    }
    // Step 2.
    const base = `${prefix}${foundVersion}-${stamp((opts.now ?? Date.now)())}`;
    backupDir = join(parent, base);
    for (let i = 2; fs.stat(backupDir); i++) backupDir = join(parent, `${base}-${i}`);
    const tmp = `${backupDir}.partial-${process.pid}`;
    fs.mkdir(tmp);
    try {
      opts.onPhase?.("migrate:before-backup");
      copyTree(fs, abs, tmp, true, Buffer.allocUnsafe(1 << 20));
      fs.rename(tmp, backupDir);
      fs.syncDir(parent);
    } catch (e) {
      try {
        fs.removeDir(tmp);
      } catch {
        // report the copy error
      }
      throw e;
    }
    opts.onPhase?.("migrate:after-backup");
  } catch (e) {
    throw ioError(e, "backup", join(parent, `${prefix}${foundVersion}-*`));
  }
  // Step 3.
  const applied: MigrationResult["applied"] = [];
  for (const m of chain) {
    opts.onPhase?.(`migrate:before-${m.from}-${m.to}`);
    m.migrate(fs, abs);
    applied.push({ from: m.from, to: m.to, describe: m.describe });
  }
  opts.onPhase?.("migrate:done");
  return { from: foundVersion, to: FORMAT_VERSION, backupDir, applied, ms: performance.now() - t0 };
}

/**
 * What open() calls once it holds the LOCK and before it opens data.keel: undefined when the
 * database is new or current; VERSION for a newer format, or for an older one under readOnly (a
 * read-only open never writes, so it cannot migrate); otherwise the migration's result.
 */
export function migrateOnOpen(fs: FileSystem, dir: string, opts: { readOnly?: boolean | undefined } & RunMigrationsOptions = {}): MigrationResult | undefined {
  if (opts.readOnly) return void refuseOtherVersion(fs, dir);
  const found = detectVersion(fs, dir);
  if (found === undefined || found === FORMAT_VERSION) return undefined;
  if (found > FORMAT_VERSION) throw versionError(join(dir, DATA_FILE), found);
  return runMigrations(fs, dir, found, opts);
}

/**
 * For what reads a database without writing it (a read-only open, salvage): VERSION for any format
 * but this one; an older one has `details.migratable` (a writable open migrates it).
 */
export function refuseOtherVersion(fs: FileSystem, dir: string): void {
  const found = detectVersion(fs, dir);
  if (found === undefined || found === FORMAT_VERSION) return;
  const file = join(dir, DATA_FILE);
  if (found > FORMAT_VERSION) throw versionError(file, found);
  throw new KeelError(
    "VERSION",
    `${file} has format version ${found}; this KeelDB reads format version ${FORMAT_VERSION}. Open it once without readOnly to migrate it (the original is backed up first)`,
    { file, found, supported: FORMAT_VERSION, migratable: true },
  );
}
