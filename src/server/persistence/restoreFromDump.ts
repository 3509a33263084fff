/**
 * restoreFromDump: `restore_from` — load a keel dump (JSON Lines or binary, docs/DUMP-FORMAT.md)
 * into an EMPTY data directory before the server serves anything.
 *
 * Invariants:
 * - Only a missing or empty data directory is restored into; a directory holding a database
 *   (data.keel) is left alone (the caller logs that restore_from was ignored). Existing data is
 *   never overwritten. A directory that holds other things but no database (a fresh volume with
 *   lost+found, a wrong path) is refused (EXISTS): starting there would serve an empty database
 *   in place of the dump the operator asked for.
 * - All or nothing, on the data directory's own file system (so an empty mount point works: a
 *   Docker volume, a tmpfs): the dump is loaded into `<dir>/.restore-partial-<pid>`, closed
 *   (checkpointed and synced), then its entries are renamed into `<dir>`: everything but data.keel
 *   first, directory fsync, data.keel last, directory fsync. data.keel is what makes `<dir>` "a
 *   database", so it appears only once everything it needs is in place. A missing, unreadable or
 *   damaged dump (CORRUPT with its line/offset) throws before any move; the partial directory and
 *   anything moved are removed (and `<dir>` itself if this call created it), so `<dir>` stays as it
 *   was and the server refuses to start: it never starts empty in place of the data asked for.
 * - A restore listens on a holder socket (io/HolderSocket.ts) inside its partial directory from
 *   its creation to its removal: a pid names another process (or none) in another pid namespace,
 *   so a server starting in another container over the same volume (a rolling deploy) tells a
 *   running restore from a leftover by that socket, not by the pid in the name.
 * - Leftovers of an interrupted restore (removeRestoreLeftovers, run by startServer before the
 *   database is opened, restore_from set or not): a `.restore-partial-<pid>` inside `<dir>` in
 *   which no socket answers and whose process is gone (or is this process: pids repeat in
 *   containers) means the move did not finish
 *   if there is no data.keel beside it: every entry of `<dir>` came from that restore and is
 *   removed, so `<dir>` is empty again (and restored again, if restore_from is set); with data.keel
 *   beside it only the partial directory is removed. `<dir>.restore-partial-<pid>` siblings (the
 *   layout of earlier versions) of such processes are removed.
 * - The error names the dump file (details.file) and keeps the loader's details (line, offset,
 *   reason) and code.
 */
import { createReadStream, existsSync, mkdirSync, openSync, closeSync, fsyncSync, readdirSync, renameSync, rmSync, rmdirSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { KeelError } from "../../errors.js";
import { open } from "../../db/open.js";
import type { OpenOptions } from "../../db/options.js";
import type { Database } from "../../db/Database.js";
import { loadFromFile } from "../../maintenance/dumpFile.js";
import { BINARY_MAGIC } from "../../maintenance/dumpFormat.js";
import { BinaryParser, JsonlParser } from "../../maintenance/loadParsers.js";
import { LoadSource } from "../../maintenance/loadSource.js";
import type { LoadReport } from "../../maintenance/load.js";
import { isAlive } from "../../io/ProcessStamp.js";
import { HOLDER_SOCKET_NAME, HolderSocket, answersInside } from "../../io/HolderSocket.js";

export type RestoreOutcome = { kind: "restored"; report: LoadReport; ms: number } | { kind: "skipped"; reason: "has-database" };

/** True when `dir` does not exist or holds no entry at all. */
export function isEmptyDir(dir: string): boolean {
  if (!existsSync(dir)) return true;
  if (!statSync(dir).isDirectory()) return false;
  return readdirSync(dir).length === 0;
}

function syncDir(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function named(e: unknown, file: string): KeelError {
  if (e instanceof KeelError) {
    if (e.details.file === file) return e;
    return new KeelError(e.code, `restore_from ${file}: ${e.message}`, { ...e.details, file }, { cause: e });
  }
  const errno = (e as NodeJS.ErrnoException)?.code;
  return new KeelError("IO", `restore_from ${file}: ${(e as Error)?.message ?? String(e)}`, { file, errno }, { cause: e });
}

/** The encodings of the dump's default database (from its header), so the target is opened with them. */
async function headerEncodings(file: string): Promise<Pick<OpenOptions, "keyEncoding" | "encoding">> {
  const stream = createReadStream(file);
  try {
    const src = new LoadSource(stream, undefined);
    const first = await src.peek(BINARY_MAGIC.length);
    const limits = { maxKeySize: 65536, maxValueSize: 2 ** 31 - 1 };
    const parser = first.equals(BINARY_MAGIC) ? new BinaryParser(src, limits) : new JsonlParser(src, limits);
    const header = await parser.header();
    const d = header.dbs.find((x) => x.name === "");
    return d ? { keyEncoding: d.keyEncoding, encoding: d.encoding } : {};
  } finally {
    stream.destroy();
  }
}

const PARTIAL = ".restore-partial-";

/** Whether the process `pid` is gone, or is this one (it has not started a restore yet). */
function deadOrSelf(pid: number): boolean {
  return pid === process.pid || !isAlive(pid);
}

/** The pid of a `<prefix><pid>` name, or null. */
function pidOf(name: string, prefix: string): number | null {
  if (!name.startsWith(prefix)) return null;
  const rest = name.slice(prefix.length);
  return /^[0-9]{1,10}$/.test(rest) ? Number(rest) : null;
}

/** Remove what an interrupted restore left in and beside `dir`; see the invariants above. */
export function removeRestoreLeftovers(dir: string): void {
  const parent = dirname(dir);
  const sibling = `${basename(dir)}${PARTIAL}`;
  let besides: string[] = [];
  try {
    besides = readdirSync(parent);
  } catch {
    // A parent we may not list (or none): no sibling of ours can be there to remove.
  }
  for (const n of besides) {
    const pid = pidOf(n, sibling);
    if (pid !== null && deadOrSelf(pid)) rmSync(join(parent, n), { recursive: true, force: true });
  }
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return;
  const names = readdirSync(dir);
  const stale = names.filter((n) => {
    const pid = pidOf(n, PARTIAL);
    return pid !== null && !answersInside(join(dir, n)) && deadOrSelf(pid);
  });
  if (stale.length === 0) return;
  // Without data.keel the move was cut short: all of <dir> is that restore's (it began empty).
  const remove = names.includes("data.keel") ? stale : names;
  for (const n of remove) rmSync(join(dir, n), { recursive: true, force: true });
  syncDir(dir);
}

/** Restore `file` into `dir` if `dir` is empty; see the invariants above. */
export async function restoreFromDump(dir: string, file: string, options: OpenOptions, signal?: AbortSignal): Promise<RestoreOutcome> {
  removeRestoreLeftovers(dir);
  if (!isEmptyDir(dir)) {
    if (existsSync(join(dir, "data.keel"))) return { kind: "skipped", reason: "has-database" };
    // Only partial directories left after the leftovers went: restores at work (another
    // container's, or one of this process started twice), not a foreign directory's content.
    const names = statSync(dir).isDirectory() ? readdirSync(dir) : [];
    if (names.length > 0 && names.every((n) => pidOf(n, PARTIAL) !== null)) {
      throw new KeelError("LOCKED", `restore_from ${file}: another restore is at work in ${dir} (${names.join(", ")}); start again once it has finished`, { file, dir, path: join(dir, names[0]!) });
    }
    const entries = names.slice(0, 10);
    throw new KeelError(
      "EXISTS",
      `restore_from ${file}: the data directory ${dir} is neither empty nor a KeelDB database (it holds ${entries.length ? entries.join(", ") : "a file"}); refusing to start without the dump's data: point dir at an empty directory, or unset restore_from`,
      { file, dir, entries, key: "dir" },
    );
  }
  const t0 = performance.now();
  let st;
  try {
    st = statSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new KeelError("NOT_FOUND", `restore_from ${file}: the dump file does not exist; refusing to start with an empty database`, { file, path: file });
    throw named(e, file);
  }
  if (!st.isFile()) throw new KeelError("INVALID_ARGUMENT", `restore_from ${file}: not a regular file`, { file, key: "restore_from" });
  const created = !existsSync(dir);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `${PARTIAL}${process.pid}`);
  try {
    mkdirSync(tmp);
  } catch (e) {
    // A restore under this pid number is at work here (another container's, whose socket answered
    // in removeRestoreLeftovers): its directory, and <dir>, are not ours to remove.
    if ((e as NodeJS.ErrnoException).code === "EEXIST") {
      throw new KeelError("LOCKED", `restore_from ${file}: another restore is at work in ${dir} (${tmp}); start again once it has finished`, { file, dir, path: tmp });
    }
    if (created) rmSync(dir, { recursive: true, force: true });
    throw named(e, file);
  }
  const working = HolderSocket.listen(tmp);
  const moved: string[] = [];
  let db: Database | null = null;
  let report: LoadReport;
  try {
    const enc = await headerEncodings(file);
    db = await open(tmp, { ...options, ...enc });
    report = await loadFromFile(db, file, { signal });
    await db.close();
    db = null;
    syncDir(tmp);
    for (const n of readdirSync(tmp)) {
      if (n === "data.keel" || HOLDER_SOCKET_NAME.test(n)) continue;
      renameSync(join(tmp, n), join(dir, n));
      moved.push(n);
    }
    syncDir(dir);
    renameSync(join(tmp, "data.keel"), join(dir, "data.keel"));
    moved.push("data.keel");
    syncDir(dir);
  } catch (e) {
    if (db) await db.close().catch(() => {});
    working?.close();
    rmSync(tmp, { recursive: true, force: true });
    // Until data.keel is in place, what was moved is not a database: take it back out.
    if (!moved.includes("data.keel")) for (const n of moved) rmSync(join(dir, n), { recursive: true, force: true });
    if (created) rmSync(dir, { recursive: true, force: true });
    throw named(e, file);
  }
  // The database is complete; an empty partial directory left by a failure here is removed at the next start.
  working?.close();
  try {
    rmdirSync(tmp);
    syncDir(dir);
  } catch {
    // see above
  }
  return { kind: "restored", report, ms: performance.now() - t0 };
}
