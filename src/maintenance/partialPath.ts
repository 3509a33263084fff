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
 * - A finished output is renamed only onto a name that does not exist (refuseExisting, checked
 *   synchronously right before the rename): rename(2) would silently replace a file or an empty
 *   directory, and the job that lost the race must fail with EXISTS, not overwrite the winner.
 * - publishRenamed: an output whose rename is not known durable (the parent's fsync failed) is
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
  if (exists) throw new KeelError("EXISTS", `${dest} already exists; ${what} never overwrites`, { dest });
}

/**
 * Rename the finished output `from` (a file or a directory, already synced) to `dest`, then fsync
 * the parent. EXISTS if `dest` appeared meanwhile; IO/FULL if the rename or the fsync fails, and
 * then `dest` is removed again (best effort): a failed job leaves no output behind. Only its own:
 * a file renamed onto ours by a concurrent job that passed the same EXISTS check (rename replaces
 * a file) is left alone, told apart by size and modification time. A directory cannot be
 * replaced once it holds files.
 */
export function publishRenamed(fs: FileSystem, from: string, dest: string, what: string, kind: "file" | "dir"): void {
  refuseExisting(fs, dest, what);
  let renamed = false;
  const ours = kind === "file" ? statQuietly(fs, from) : undefined;
  try {
    fs.rename(from, dest);
    renamed = true;
    fs.syncDir(dirname(dest));
  } catch (e) {
    if (renamed) {
      try {
        if (kind === "dir") fs.removeDir(dest);
        else {
          const now = statQuietly(fs, dest);
          if (ours && now && now.size === ours.size && now.mtimeMs === ours.mtimeMs) fs.remove(dest);
        }
      } catch {
        // report the first error
      }
    }
    throw ioError(e, renamed ? "fsync" : "rename", renamed ? dirname(dest) : dest);
  }
}

function statQuietly(fs: FileSystem, path: string): FileStat | undefined {
  try {
    return fs.stat(path);
  } catch {
    return undefined;
  }
}
