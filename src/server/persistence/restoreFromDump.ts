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
 * - All or nothing: the dump is loaded into `<dir>.restore-partial-<pid>`, closed (checkpointed and
 *   synced), then renamed onto `<dir>` and the parent directory fsynced. A missing, unreadable or
 *   damaged dump (CORRUPT with its line/offset) throws before the rename and the partial directory
 *   is removed, so `<dir>` stays as it was (empty) and the server refuses to start: it never
 *   starts empty in place of the data the operator asked for.
 * - The error names the dump file (details.file) and keeps the loader's details (line, offset,
 *   reason) and code.
 */
import { createReadStream, existsSync, mkdirSync, openSync, closeSync, fsyncSync, readdirSync, renameSync, rmSync, rmdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { KeelError } from "../../errors.js";
import { open } from "../../db/open.js";
import type { OpenOptions } from "../../db/options.js";
import type { Database } from "../../db/Database.js";
import { loadFromFile } from "../../maintenance/dumpFile.js";
import { BINARY_MAGIC } from "../../maintenance/dumpFormat.js";
import { BinaryParser, JsonlParser } from "../../maintenance/loadParsers.js";
import { LoadSource } from "../../maintenance/loadSource.js";
import type { LoadReport } from "../../maintenance/load.js";

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

/** Restore `file` into `dir` if `dir` is empty; see the invariants above. */
export async function restoreFromDump(dir: string, file: string, options: OpenOptions): Promise<RestoreOutcome> {
  if (!isEmptyDir(dir)) {
    if (existsSync(join(dir, "data.keel"))) return { kind: "skipped", reason: "has-database" };
    const entries = statSync(dir).isDirectory() ? readdirSync(dir).slice(0, 10) : [];
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
  const parent = dirname(dir);
  mkdirSync(parent, { recursive: true });
  const tmp = `${dir}.restore-partial-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  let db: Database | null = null;
  try {
    const enc = await headerEncodings(file);
    db = await open(tmp, { ...options, ...enc });
    const report = await loadFromFile(db, file);
    await db.close();
    db = null;
    syncDir(tmp);
    // `dir` is missing or empty: replace it. A crash between these steps leaves it missing or
    // empty, and the next start restores again.
    if (existsSync(dir)) rmdirSync(dir);
    renameSync(tmp, dir);
    syncDir(parent);
    return { kind: "restored", report, ms: performance.now() - t0 };
  } catch (e) {
    if (db) await db.close().catch(() => {});
    rmSync(tmp, { recursive: true, force: true });
    throw named(e, file);
  }
}
