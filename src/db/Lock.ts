/**
 * Lock: the LOCK file that makes one process the only one with a database open.
 *
 * Invariant: while a Database is open, <dir>/LOCK exists and names this process. A LOCK naming
 * a process that no longer exists (killed, crashed) is taken over; one naming a live process is
 * refused with KeelError LOCKED carrying that pid.
 *
 * Limits, stated plainly: liveness is checked with kill(pid, 0) on this host, so a LOCK on a
 * network file system shared between hosts is not safe, and a recycled pid keeps the lock held
 * until that process ends (the error names the pid so an operator can check it).
 */
import { join } from "node:path";
import { KeelError, ioError } from "../errors.js";
import type { FileSystem } from "../io/FileSystem.js";

export const LOCK_FILE = "LOCK";

export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

export function readLockPid(fs: FileSystem, dir: string): number | undefined {
  try {
    const text = Buffer.from(fs.readFile(join(dir, LOCK_FILE))).toString("utf8");
    const pid = Number.parseInt(text.split("\n")[0] ?? "", 10);
    return Number.isFinite(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

export class Lock {
  readonly path: string;
  #fs: FileSystem;
  #held = false;

  private constructor(fs: FileSystem, path: string) {
    this.#fs = fs;
    this.path = path;
  }

  static acquire(fs: FileSystem, dir: string): Lock {
    const path = join(dir, LOCK_FILE);
    const lock = new Lock(fs, path);
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const f = fs.open(path, "createExclusive");
        try {
          const text = Buffer.from(`${process.pid}\n${new Date().toISOString()}\n`);
          f.write(text, 0, text.length, 0);
        } finally {
          f.close();
        }
        lock.#held = true;
        return lock;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw ioError(e, "create", path);
      }
      const pid = readLockPid(fs, dir);
      if (pid !== undefined && (pid === process.pid || isAlive(pid))) {
        throw new KeelError(
          "LOCKED",
          pid === process.pid
            ? `${dir} is already open in this process; share that Database object instead of opening it twice`
            : `${dir} is in use by process ${pid}; stop it, or talk to it (keel serve) instead of opening the files directly`,
          { dir, pid },
        );
      }
      // The holder is gone (or the file is empty because it died while writing it): take over.
      fs.remove(path);
    }
    throw new KeelError("LOCKED", `could not take the lock of ${dir}: another process keeps taking it`, { dir });
  }

  release(): void {
    if (!this.#held) return;
    this.#held = false;
    if (readLockPid(this.#fs, this.path.slice(0, -LOCK_FILE.length - 1)) === process.pid) this.#fs.remove(this.path);
  }
}
