/**
 * database: how `keel` opens a database directory.
 *
 * - The directory must hold a database (data.keel), except where a command creates one
 *   (`keel load`, `keel put --create`): a typo never makes a new empty database. Missing: exit 4.
 * - The log setting is read from the newest valid meta page (its WAL flag) and the database is
 *   opened with that same setting, so that a command never switches a `wal: false` database to
 *   log mode or back.
 * - Commands that only read open with { readOnly: true }: no LOCK is held, nothing is written
 *   (except what log recovery repairs), and a database in use by another process is refused (3).
 * - The database is always closed, also when the command fails; a close error is reported only
 *   when the command itself succeeded. One the command created is then removed (created.ts).
 */
import { closeSync, openSync as fsOpen, readSync } from "node:fs";
import { join } from "node:path";
import { KeelError, open, type Database, type OpenOptions, type SubDatabase } from "../index.js";
import { liveLockHolder } from "../db/Lock.js";
import { nodeFileSystem, statIfAny } from "../io/NodeFileSystem.js";
import { META_FLAG_WAL, probeMeta, type Meta } from "../pager/Meta.js";
import { CliError } from "./CliError.js";
import { CreatedDatabase } from "./created.js";
import { ExitCode } from "./exitCodes.js";
import { trackOpen, undoOnInterrupt } from "./interrupt.js";

export const DATA_FILE = "data.keel";

export function isDirectory(path: string): boolean {
  return statIfAny(path)?.isDirectory() ?? false;
}

export function hasDatabase(dir: string): boolean {
  return statIfAny(join(dir, DATA_FILE))?.isFile() ?? false;
}

export function notFound(dir: string): CliError {
  return new CliError(ExitCode.NOT_FOUND, "NOT_FOUND", `no database at ${dir} (no ${DATA_FILE} there)`, { path: dir });
}

/**
 * For commands that may create the database (put --create, load): a file where its directory goes
 * is "no database there" (exit 4), as for every other command, not an IO error from mkdir.
 */
export function refuseFileAsDirectory(dir: string): void {
  const st = statIfAny(dir);
  if (st && !st.isDirectory()) throw new CliError(ExitCode.NOT_FOUND, "NOT_FOUND", `no database at ${dir} (it is a file, not a directory)`, { path: dir });
}

/**
 * The newest valid meta page of `<dir>/data.keel`, read straight from the file (no lock, no
 * open); undefined when neither slot validates (open then reports the damage).
 */
export function readNewestMeta(dir: string): Meta | undefined {
  const path = join(dir, DATA_FILE);
  const fd = fsOpen(path, "r");
  try {
    const buf = Buffer.alloc(2 * 65536);
    let n = 0;
    while (n < buf.length) {
      const r = readSync(fd, buf, n, buf.length - n, n);
      if (r <= 0) break;
      n += r;
    }
    const data = buf.subarray(0, n);
    const metas: Meta[] = [];
    const first = probeMeta(data, 0);
    const pageSize = first.ok ? first.meta.pageSize : (first.pageSize ?? 0);
    if (first.ok) metas.push(first.meta);
    for (const ps of pageSize ? [pageSize] : [1024, 2048, 4096, 8192, 16384, 32768, 65536]) {
      if (data.length <= ps) continue;
      const second = probeMeta(data.subarray(ps), 1);
      if (second.ok && second.meta.pageSize === ps) {
        metas.push(second.meta);
        break;
      }
    }
    return metas.sort((a, b) => b.txn - a.txn)[0];
  } finally {
    closeSync(fd);
  }
}

/** Whether the database was last written with the write-ahead log on (default: on). */
export function walFlag(dir: string): boolean {
  const m = readNewestMeta(dir);
  return m ? (m.flags & META_FLAG_WAL) !== 0 : true;
}

export interface OpenForCli {
  readOnly: boolean;
  /** Create the database when the directory holds none. */
  create?: boolean;
}

export async function openDatabase(dir: string, o: OpenForCli): Promise<Database> {
  const exists = hasDatabase(dir);
  if (!exists && !o.create) throw notFound(dir);
  const options: OpenOptions = { readOnly: o.readOnly };
  if (exists) options.wal = walFlag(dir);
  return trackOpen(() => open(dir, options));
}

/**
 * For commands that need the write-ahead log (txlog, watermarks, gc, snapshot): a database
 * written with wal: false (or a backup copy, which has no log) is refused as a usage error.
 */
export function requireLog(dir: string, command: string): void {
  if (!hasDatabase(dir)) throw notFound(dir);
  if (!walFlag(dir)) {
    throw new CliError(ExitCode.USAGE, "INVALID_ARGUMENT", `keel ${command} needs the write-ahead log, and ${dir} has none (it was written with wal: false, or is a backup copy)`, { option: "wal", path: dir });
  }
}

/**
 * For commands that read the files without opening the database (verify, salvage): refuse a
 * database a live process has open (LOCKED, exit 3), as an open would, since its files change
 * under the reader.
 */
export function refuseIfLocked(dir: string): void {
  const pid = liveLockHolder(nodeFileSystem, dir);
  if (pid !== undefined) {
    throw new KeelError("LOCKED", `${dir} is in use by process ${pid}`, { dir, pid });
  }
}

/**
 * Open, run `fn`, close. A database `o.create` made is removed again when `fn` fails (created.ts).
 * A close that fails after `fn` succeeded is the command's error, unless `onCloseError` takes it:
 * for a write that was durable before close (put, del), the write stands and the command must
 * not say otherwise.
 */
export async function withDatabase<T>(dir: string, o: OpenForCli, fn: (db: Database) => Promise<T> | T, onCloseError?: (e: unknown) => void): Promise<T> {
  if (o.create) refuseFileAsDirectory(dir);
  const created = o.create && !hasDatabase(dir) ? CreatedDatabase.before(dir) : undefined;
  // Interrupted before it is done, the command leaves no database it created (created.ts).
  const keep = created ? undoOnInterrupt(() => created.remove()) : () => {};
  let db: Database;
  try {
    db = await (created ? created.open(() => openDatabase(dir, o)) : openDatabase(dir, o));
  } catch (e) {
    keep();
    throw e;
  }
  // An exit before close (a reader that went away: stdoutErrors.ts; a signal: interrupt.ts) leaves
  // no LOCK or READER file: openDatabase tracks the database for the exit hook.
  let result: T;
  try {
    result = await fn(db);
  } catch (e) {
    await db.close().catch(() => {});
    created?.remove();
    keep();
    throw e;
  }
  if (!onCloseError) await db.close();
  else await db.close().catch(onCloseError);
  keep();
  return result;
}

/** The sub-database a command names with --db (the default database without it). */
export function subDatabase(db: Database, name: string | undefined, o: { mustExist: boolean }): SubDatabase {
  if (name === undefined || name === "") return db;
  if (o.mustExist && !db.listDBs().includes(name)) {
    throw new CliError(ExitCode.NOT_FOUND, "NOT_FOUND", `no sub-database "${name}" in ${db.path} (keel list shows them)`, { db: name });
  }
  return db.openDB(name);
}
