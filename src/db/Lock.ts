/**
 * Lock: the LOCK file that makes one process the only one with a database open.
 *
 * Invariant: while a Database is open, <dir>/LOCK exists and names this process: its pid, then
 * the time, then its ProcessStamp lines (boot id, start time). A LOCK naming a process that no
 * longer runs (killed, crashed, or left by a power cut: an earlier boot; or a pid since recycled
 * by another process) is taken over; one naming a live process is refused with KeelError LOCKED
 * carrying that pid. Within this process, the set of held locks is the authority: a LOCK naming
 * our own pid that no open Database holds (left by an open that failed halfway, or by an earlier
 * process that had our pid) is taken over too.
 *
 * Limits, stated plainly: liveness is checked on this host (io/ProcessStamp.ts), so a LOCK on a
 * network file system shared between hosts is not safe. Without /proc (not Linux), or for a LOCK
 * written before stamps were, it is kill(pid, 0) alone, and a recycled pid then keeps the lock
 * held until that process ends (the error names the pid so an operator can check it).
 *
 * Taking over a stale LOCK, as numbered steps (takeOver). Only a process holding LOCK.takeover
 * removes a LOCK it did not create, so two processes that both find the same stale LOCK cannot
 * both end up holding the database (the slower one's remove would hit the LOCK the faster one
 * has just created):
 *   1. Create LOCK.takeover (exclusive create) with this process's stamp. If it exists and its
 *      holder is live, wait for it (a few system calls); if its holder is gone, remove it and retry.
 *   2. Read the LOCK again: remove it only if it is still stale (gone already: nothing to do; live:
 *      another process created it meanwhile, and the next exclusive create meets it).
 *   3. Remove LOCK.takeover; the caller tries the exclusive create of the LOCK again.
 * The guard's own takeover (step 1, holder gone) is not guarded: it needs a process to die inside
 * the guard's few system calls and two others to race for it in that instant. Closing it too
 * needs an OS file lock (flock/fcntl), which Node does not offer without a native addon.
 */
import { join, resolve } from "node:path";
import { KeelError, ioError } from "../errors.js";
import type { FileSystem } from "../io/FileSystem.js";
import { parseStamp, stampIsLive, stampLines, type ProcessStamp } from "../io/ProcessStamp.js";

export const LOCK_FILE = "LOCK";
export const TAKEOVER_FILE = "LOCK.takeover";
/** How long step 1 of a takeover waits for a live guard holder before giving up with LOCKED. */
const TAKEOVER_WAIT_MS = 2000;

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Locks this process holds, per storage backend. */
const held = new WeakMap<FileSystem, Set<string>>();

/**
 * A LOCK or LOCK.takeover file: its text and the process it names (a pid on the first line, then
 * stamp lines); undefined when the file does not exist, `holder` undefined when it names no pid.
 */
function readHolderFile(fs: FileSystem, path: string): { text: string; holder: ProcessStamp | undefined } | undefined {
  let text: string;
  try {
    text = Buffer.from(fs.readFile(path)).toString("utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw ioError(e, "read", path);
  }
  const pid = Number.parseInt(text.split("\n")[0] ?? "", 10);
  return { text, holder: Number.isFinite(pid) ? parseStamp(pid, text) : undefined };
}

/**
 * Who holds a file naming `h`: "ours" when it names this process and `heldHere` (an open
 * Database of this process holds it), "live" for another live process, otherwise "stale" (gone,
 * recycled pid, earlier boot, or our pid without an open here: an open of ours that failed).
 */
function holderState(h: ProcessStamp, heldHere: boolean): "ours" | "live" | "stale" {
  if (h.pid === process.pid) return heldHere ? "ours" : "stale";
  return stampIsLive(h) ? "live" : "stale";
}

/** The process a LOCK names; undefined when it is missing or unreadable as a pid. */
export function readLockHolder(fs: FileSystem, dir: string): ProcessStamp | undefined {
  return readHolderFile(fs, join(dir, LOCK_FILE))?.holder;
}

/** The pid a LOCK names; undefined when it is missing or unreadable as a pid. */
export function readLockPid(fs: FileSystem, dir: string): number | undefined {
  return readLockHolder(fs, dir)?.pid;
}

/**
 * The pid of another process that holds the LOCK now (its stamp is live), or undefined: no
 * LOCK, a stale one, or one naming this process (whose own opens the caller checks itself).
 */
export function liveLockHolder(fs: FileSystem, dir: string): number | undefined {
  const h = readLockHolder(fs, dir);
  return h !== undefined && holderState(h, false) === "live" ? h.pid : undefined;
}

export class Lock {
  readonly path: string;
  readonly #fs: FileSystem;
  readonly #key: string;
  #held = false;

  private constructor(fs: FileSystem, path: string, key: string) {
    this.#fs = fs;
    this.path = path;
    this.#key = key;
  }

  static acquire(fs: FileSystem, dir: string): Lock {
    const path = join(dir, LOCK_FILE);
    const key = resolve(dir);
    const mine = held.get(fs) ?? held.set(fs, new Set()).get(fs)!;
    const lock = new Lock(fs, path, key);
    for (let attempt = 0; attempt < 3; attempt++) {
      let created = false;
      try {
        const f = fs.open(path, "createExclusive");
        created = true;
        try {
          const text = Buffer.from(`${process.pid}\n${new Date().toISOString()}\n${stampLines()}`);
          f.write(text, 0, text.length, 0);
        } finally {
          f.close();
        }
        lock.#held = true;
        mine.add(key);
        return lock;
      } catch (e) {
        if (created) {
          // We made the file but could not finish it: leave no LOCK naming nobody (or us).
          try {
            fs.remove(path);
          } catch {
            // the write error is the one to report
          }
          throw ioError(e, "write", path);
        }
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw ioError(e, "create", path);
      }
      const h = readLockHolder(fs, dir);
      const state = h === undefined ? "stale" : holderState(h, mine.has(key));
      if (state !== "stale") {
        const pid = h!.pid;
        throw new KeelError(
          "LOCKED",
          state === "ours"
            ? `${dir} is already open in this process; share that Database object instead of opening it twice`
            : `${dir} is in use by process ${pid}; stop it, or talk to it (keel serve) instead of opening the files directly`,
          { dir, pid },
        );
      }
      // The holder is gone (or its pid now names another process), died while writing the file,
      // or was an open of ours that failed.
      takeOver(fs, dir, mine.has(key));
    }
    throw new KeelError("LOCKED", `could not take the lock of ${dir}: another process keeps taking it`, { dir });
  }

  /**
   * For a read-only open: refuse (LOCKED) if a live process, or an open Database of this one,
   * holds the lock; otherwise go on without creating or removing anything, so that any number
   * of read-only opens can run side by side (a stale LOCK is left for the next writer to take).
   */
  static check(fs: FileSystem, dir: string): void {
    const h = readLockHolder(fs, dir);
    if (h === undefined) return;
    const pid = h.pid;
    const state = holderState(h, held.get(fs)?.has(resolve(dir)) ?? false);
    if (state !== "stale") {
      throw new KeelError(
        "LOCKED",
        state === "ours"
          ? `${dir} is already open for writing in this process; read through that Database object`
          : `${dir} is in use by process ${pid}; stop it, or talk to it (keel serve) instead of opening the files directly`,
        { dir, pid },
      );
    }
  }

  release(): void {
    if (!this.#held) return;
    this.#held = false;
    held.get(this.#fs)?.delete(this.#key);
    const dir = this.path.slice(0, -LOCK_FILE.length - 1);
    try {
      if (readLockPid(this.#fs, dir) === process.pid) this.#fs.remove(this.path);
    } catch (e) {
      throw ioError(e, "remove", this.path);
    }
  }
}

/** Whether a LOCK may be removed by a process that did not create it (see takeOver, step 2). */
function isStale(fs: FileSystem, dir: string, heldHere: boolean): boolean {
  const h = readLockHolder(fs, dir);
  return h === undefined || holderState(h, heldHere) === "stale";
}

/** Remove a stale LOCK under the takeover guard (steps 1-3 of the file comment). */
function takeOver(fs: FileSystem, dir: string, heldHere: boolean): void {
  const lockPath = join(dir, LOCK_FILE);
  const guardPath = join(dir, TAKEOVER_FILE);
  // Step 1.
  const deadline = Date.now() + TAKEOVER_WAIT_MS;
  for (;;) {
    let f;
    try {
      f = fs.open(guardPath, "createExclusive");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw ioError(e, "create", guardPath);
      const guard = readHolderFile(fs, guardPath);
      if (guard === undefined) continue; // removed meanwhile: try again
      const pid = guard.holder?.pid;
      const late = Date.now() >= deadline;
      // An empty guard is one being written: waited for like a live one, but one still empty after
      // the whole wait was left by a process that died between its create and its write.
      const stale = guard.text === "" ? late : guard.holder === undefined || holderState(guard.holder, false) === "stale";
      if (stale) {
        try {
          fs.remove(guardPath);
        } catch (e2) {
          if ((e2 as NodeJS.ErrnoException).code !== "ENOENT") throw ioError(e2, "remove", guardPath);
        }
        continue;
      }
      if (late) {
        throw new KeelError("LOCKED", `could not take over the stale lock of ${dir}: process ${pid} is taking it over; try again`, { dir, pid });
      }
      sleepSync(5);
      continue;
    }
    try {
      const text = Buffer.from(`${process.pid}\n${stampLines()}`);
      f.write(text, 0, text.length, 0);
      f.close();
    } catch (e) {
      try {
        f.close();
      } catch {
        // reported below
      }
      try {
        fs.remove(guardPath);
      } catch {
        // left empty: the next taker removes it after its wait
      }
      throw ioError(e, "write", guardPath);
    }
    break;
  }
  try {
    // Step 2.
    if (isStale(fs, dir, heldHere)) {
      const pause = Number(process.env.KEEL_TEST_LOCK_TAKEOVER_PAUSE_MS ?? 0);
      if (pause > 0) sleepSync(pause); // tests only: widens the window step 1 closes
      try {
        fs.remove(lockPath);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw ioError(e, "remove", lockPath);
      }
    }
  } finally {
    // Step 3.
    try {
      fs.remove(guardPath);
    } catch {
      // a guard naming a process that is gone is taken over by the next one (step 1)
    }
  }
}
