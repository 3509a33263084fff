/**
 * partialPath: the temporary name a job writes its output under before it renames it to `dest`,
 * and the last check before that rename.
 *
 * Invariants:
 * - `<dest>.partial-<pid>-<n>`, n unique in the process: this thread's job count, prefixed by the
 *   thread id in a worker thread (`<thread>.<count>`: worker threads share the pid, and each has
 *   its own counter). Two concurrent jobs toward one destination (two BACKUPs of the same path,
 *   two threads dumping to one file) never write into, or clear as stale, each other's output.
 *   Cleanup elsewhere matches ".partial-" in a name.
 * - A finished output is published only under a name that does not exist: checked right before
 *   (refuseExisting), and then a file is linked, not renamed (link(2) fails EEXIST where
 *   rename(2) would silently replace), a directory renamed (refused onto a non-empty one). The
 *   job that lost the race fails with EXISTS; it never overwrites the winner.
 * - publishOutput: an output whose publication is not known durable (the parent's fsync failed) is
 *   removed again, so a failed job leaves nothing under `dest` and its retry is not EXISTS.
 */
import { dirname, normalize } from "node:path";
import { threadId } from "node:worker_threads";
import { KeelError, ioError } from "../errors.js";
import type { FileStat, FileSystem } from "../io/FileSystem.js";

let jobs = 0;

/**
 * The destination as a name: `out/`, `out/.` and `out//` are `out`. The jobs use this form for
 * the partial name, the parent they create and the rename: with `out/` kept as written the
 * partial output went to `out/.partial-...`, which created `out` itself, so the final rename
 * failed EXISTS after all the work and left an empty `out` that blocked the retry.
 */
export function destPath(dest: string): string {
  const n = normalize(dest);
  return n.length > 1 ? n.replace(/\/+$/, "") : n;
}

export function partialPath(dest: string): string {
  return `${destPath(dest)}.partial-${process.pid}-${threadId === 0 ? "" : `${threadId}.`}${++jobs}`;
}

/** EXISTS if `dest` exists (IO/FULL if it cannot be told). `what` names the job in the message ("a backup never overwrites"). */
export function refuseExisting(fs: FileSystem, dest: string, what: string): void {
  let exists: boolean;
  try {
    exists = fs.stat(dest) !== undefined;
  } catch (e) {
    throw ioError(e, "stat", dest);
  }
  if (exists) throw existsError(dest, what);
}

/**
 * Publish the finished output `from` (a file or a directory, already synced) as `dest`, then fsync
 * the parent. EXISTS if `dest` exists or appears meanwhile; IO/FULL if the publish or the fsync
 * fails, and then `dest` is removed again (best effort): a failed job leaves no output behind.
 *
 * A file is published by link(2), which fails EEXIST instead of replacing: two jobs that both
 * passed the EXISTS check (two worker threads, two processes dumping to one path) cannot both
 * report success with one's file silently replaced by the other's. The partial name is unlinked
 * after the fsync (a crash may leave it as a second name of the published file). On a file
 * system without hard links (FAT, some network mounts: EPERM, ENOTSUP) it falls back to
 * rename, which replaces a file that appeared after the check: there the last of two racing
 * jobs wins, and a failed fsync removes `dest` only if it still looks like ours (size, mtime).
 * A directory is renamed: rename(2) refuses a non-empty target (ENOTEMPTY, EEXIST), which is
 * reported as EXISTS.
 */
export function publishOutput(fs: FileSystem, from: string, dest: string, what: string, kind: "file" | "dir"): void {
  refuseExisting(fs, dest, what);
  if (kind === "file" && publishLinked(fs, from, dest, what)) return;
  let renamed = false;
  const ours = kind === "file" ? statQuietly(fs, from) : undefined;
  try {
    fs.rename(from, dest);
    renamed = true;
    fs.syncDir(dirname(dest));
  } catch (e) {
    if (!renamed && kind === "dir" && DIR_EXISTS.has(errnoOf(e))) throw existsError(dest, what);
    if (renamed) {
      try {
        if (kind === "dir") fs.removeDir(dest);
        else removeIfOurs(fs, dest, ours);
      } catch {
        // report the first error
      }
    }
    throw ioError(e, renamed ? "fsync" : "rename", renamed ? dirname(dest) : dest);
  }
}

/** errno of link(2) on a file system that has no hard links (then rename is the fallback). */
const NO_HARD_LINKS = new Set(["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS"]);
/** errno of rename(2) onto a directory that is there and not empty. */
const DIR_EXISTS = new Set(["ENOTEMPTY", "EEXIST"]);

/** The file through link(2); false when the file system has no hard links (nothing was done). */
function publishLinked(fs: FileSystem, from: string, dest: string, what: string): boolean {
  try {
    fs.link(from, dest);
  } catch (e) {
    const errno = errnoOf(e);
    if (errno === "EEXIST") throw existsError(dest, what);
    if (NO_HARD_LINKS.has(errno)) return false;
    throw ioError(e, "link", dest);
  }
  try {
    fs.syncDir(dirname(dest));
  } catch (e) {
    try {
      removeIfOurs(fs, dest, statQuietly(fs, from));
    } catch {
      // report the fsync's error
    }
    throw ioError(e, "fsync", dirname(dest));
  }
  try {
    fs.remove(from);
  } catch {
    // published and durable; the partial name is only a second name of it
  }
  return true;
}

function existsError(dest: string, what: string): KeelError {
  return new KeelError("EXISTS", `${dest} already exists; ${what} never overwrites`, { dest });
}

function errnoOf(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === "string" ? code : "";
}

/** Remove `dest` unless a concurrent job replaced it (told apart by size and modification time). */
function removeIfOurs(fs: FileSystem, dest: string, ours: FileStat | undefined): void {
  const now = statQuietly(fs, dest);
  if (ours && now && now.size === ours.size && now.mtimeMs === ours.mtimeMs) fs.remove(dest);
}

function statQuietly(fs: FileSystem, path: string): FileStat | undefined {
  try {
    return fs.stat(path);
  } catch {
    return undefined;
  }
}
