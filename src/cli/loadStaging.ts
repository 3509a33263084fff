/**
 * loadStaging: where `keel load` builds a database it creates, so that a load killed halfway
 * (SIGKILL, OOM, power cut) never leaves a half-loaded database under the final name.
 *
 * Invariants:
 * - The new database is built in `<dir>/.load-partial-<pid>` (inside <dir>, so the final rename
 *   stays on one file system even when <dir> is a mount point), closed (which checkpoints and
 *   syncs it), and only then is its data.keel linked as `<dir>/data.keel` (failing if that name
 *   exists) and <dir> fsynced: the database appears whole or not at all. A failed fsync of <dir>
 *   takes the link back (only if that name is still our file) and fails the load; a staging
 *   directory that cannot be removed after a good fsync is left for the next load to remove. Its log is not moved: everything in it is checkpointed, and an
 *   open starts a new one (as for a backup).
 * - Leftovers of loads whose process is gone are removed by the next load into <dir>; a live
 *   process's staging directory is never touched. While it loads, the staging database's LOCK
 *   socket (io/HolderSocket.ts) answers inside it: that tells a load at work in another pid
 *   namespace (a container sharing the volume, whose pid means another process here, or ours).
 */
import { closeSync, existsSync, fsyncSync, linkSync, openSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { KeelError } from "../errors.js";
import { answersInside } from "../io/HolderSocket.js";
import { isAlive } from "../io/ProcessStamp.js";

export const LOAD_PARTIAL = ".load-partial-";

export function stagingDir(dir: string): string {
  return join(dir, `${LOAD_PARTIAL}${process.pid}`);
}

/** Remove the staging directories of loads into `dir` whose process is gone (or is this one). */
export function removeStaleStaging(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return; // no directory yet: nothing left over
  }
  for (const n of names) {
    if (!n.startsWith(LOAD_PARTIAL)) continue;
    const pid = Number(n.slice(LOAD_PARTIAL.length));
    if (Number.isInteger(pid) && (pid === process.pid || !isAlive(pid)) && !answersInside(join(dir, n))) rmSync(join(dir, n), { recursive: true, force: true });
  }
}

/**
 * Publish the closed database built in `staging` as `<dir>/data.keel`, then drop the staging.
 * A hard link, which fails if the name exists (another load into <dir> that finished first: its
 * database is kept, this one is refused); rename where the file system has no hard links.
 */
export function publishStaged(staging: string, dir: string): void {
  const from = join(staging, "data.keel");
  const to = join(dir, "data.keel");
  const ours = statSync(from).ino;
  try {
    linkSync(from, to);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EEXIST") throw new KeelError("EXISTS", `${dir} got a database while this load ran (another load?); this one is dropped`, { path: dir });
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP") throw e;
    if (existsSync(to)) throw new KeelError("EXISTS", `${dir} got a database while this load ran (another load?); this one is dropped`, { path: dir });
    renameSync(from, to);
  }
  try {
    const fd = openSync(dir, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    // Not known to be durable: the load fails, and a failed load leaves no database. Only our own
    // file is taken back (the same inode): never a database another load put there.
    try {
      if (statSync(to).ino === ours) rmSync(to);
    } catch {
      // gone already, or not ours
    }
    throw e;
  }
  // Published and durable: a staging directory that cannot be removed now is a leftover the next
  // load removes (its process is gone by then), not a failure of this one.
  try {
    rmSync(staging, { recursive: true, force: true });
  } catch {
    // see above
  }
}
