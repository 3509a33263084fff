/**
 * partialPath: the temporary name a job writes its output under before it renames it to `dest`,
 * and the last check before that rename.
 *
 * Invariants:
 * - `<dest>.partial-<pid>-<n>`, n counting this process's jobs: two concurrent jobs toward one
 *   destination (two BACKUPs of the same path) never write into, or clear as stale, each other's
 *   output. Cleanup elsewhere matches ".partial-" in a name.
 * - A finished output is renamed only onto a name that does not exist (refuseExisting, checked
 *   synchronously right before the rename): rename(2) would silently replace a file or an empty
 *   directory, and the job that lost the race must fail with EXISTS, not overwrite the winner.
 */
import { KeelError, ioError } from "../errors.js";
import type { FileSystem } from "../io/FileSystem.js";

let jobs = 0;

/**
 * A trailing "/" is not part of the name: `out/` gives `out.partial-...`, beside `out`, not
 * `out/.partial-...`, which would create `out` itself and make the final rename fail EXISTS after
 * all the work, leaving an empty `out` that blocks the retry.
 */
export function partialPath(dest: string): string {
  const name = dest.length > 1 ? dest.replace(/\/+$/, "") : dest;
  return `${name || dest}.partial-${process.pid}-${++jobs}`;
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
