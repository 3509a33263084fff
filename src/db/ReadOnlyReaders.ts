/**
 * ReadOnlyReaders: read-only opens announce themselves, so that a writer opening the directory
 * later does not write over a page their view reaches (I2 across processes).
 *
 * A read-only open takes no LOCK (any number can run side by side), and its view stays at the
 * meta it opened. A writer may open the directory after it; without this file that writer would
 * reuse free pages at once, and the read-only view would meet pages that now hold something else
 * (CORRUPT on its next read of an uncached page).
 *
 * The protocol, as numbered steps:
 *   Read-only open (register, then Registration.setTxn, then Registration.release at close):
 *     1. Create <dir>/READER.<pid>.<n>, claim it (FileSystem.claim, as the LOCK), listen on a
 *        holder socket of its own (io/HolderSocket.ts, as the LOCK's holder), and write this
 *        process's stamp (io/ProcessStamp.ts), the claim and the socket's name, and no txn:
 *        "opening". (Beside the LOCK, not in a directory of their own: a read-only open leaves
 *        nothing behind once closed.)
 *     2. Check the LOCK: a live writer refuses the open (and the file is removed).
 *     3. Read the meta; write "txn T" (the meta's txn: the tree the view reads pages of) before
 *        the stamp in the file.
 *     4. At close, remove the file, then stop listening.
 *   Writer open (ReadOnlyFloorWatch.start, after taking the LOCK, before any checkpoint):
 *     5. List the registrations. A live one pins its txn: the writer's release limit (FreeList,
 *        I2) stays at or below it, so no page that tree reaches is handed out again. One still
 *        opening, or unreadable, pins the newest meta at the writer's open: whichever meta it
 *        reads later is that one or newer. A file whose stamp is not live (its process is gone,
 *        it is from an earlier boot, or its pid now names a process that started later), or one
 *        of this process that no thread claims any more (a worker thread that ended without
 *        close(): its pid alone would pin pages for as long as the process lives), is live all
 *        the same while the socket it names answers (a reader in another pid namespace: another
 *        container sharing the directory, where pids mean other processes), and removed once it
 *        does not.
 *   The log: a registration may also say "log L" (verify(dir) says "log 0": it reads every log
 *   segment after the data file). A writer's gc then keeps every record with LSN >= L, as a floor
 *   named READ_ONLY_LOG_FLOOR, for as long as the registration is live; one without the line
 *   holds no log (a read-only open replays the log at open and reads it no more).
 * Why that is enough: a reader past step 2 created its file before the writer created the LOCK,
 * so the writer's listing in step 5 sees it; a reader starting later meets the LOCK and stops.
 * The set a writer must respect is fixed at its open and only shrinks, so while it is not empty
 * the writer lists again at most every RECHECK_MS (to lift the floor when readers close or die),
 * and once it is empty never again.
 *
 * The socket check costs a connect in a worker thread (tens of milliseconds, synchronous: the
 * writer's checkpoint asks for the floor), so a registration found live only by its socket is
 * asked again at most every ELSEWHERE_RECHECK_MS (SocketVerdicts); one that closes normally
 * removes its file, which the next listing sees at once, so only a reader killed in another
 * namespace holds its floor that much longer.
 *
 * Limits, stated plainly: liveness is judged on this host (pid, then socket): not safe on a file
 * system shared between hosts. Without /proc (not Linux) the pid check is kill(pid, 0) alone, so
 * there a recycled pid pins pages until that process ends. A registration written by an older
 * KeelDB names no socket: a reader in another container reads as gone to a writer here, and its
 * reads may then fail with CORRUPT (as for an unprotected reader, below). A read-only open that cannot create its file
 * (no write permission to the directory) opens unprotected: a writer opening later may then make
 * its reads fail with CORRUPT (never return another value: every page is checked against the txn
 * that wrote it).
 */
import { join, resolve } from "node:path";
import type { FileHandle, FileSystem } from "../io/FileSystem.js";
import { HolderSocket, checkSocket, removeDeadSocket, socketNamed } from "../io/HolderSocket.js";
import { NodeFileSystem } from "../io/NodeFileSystem.js";
import { parseStamp, stampIsLive, stampLines } from "../io/ProcessStamp.js";

export const READER_PREFIX = "READER.";
/** The name of the log floor a writer keeps for registrations that ask for the log (txlogWatermarks().floors). */
export const READ_ONLY_LOG_FLOOR = "read-only-process";

/** Whether a file name in a database directory is a read-only open's registration. */
export function isRegistration(name: string): boolean {
  return name.startsWith(READER_PREFIX);
}
/** How often a writer pinned by read-only processes looks again whether they are gone. */
export const RECHECK_MS = 1000;
/** How often a registration found live only by its socket (another pid namespace) is asked again. */
export const ELSEWHERE_RECHECK_MS = 30_000;

let seq = 0;

/** A read-only open's file in the database directory (steps 1, 3 and 4). */
export class Registration {
  readonly path: string;
  readonly #fs: FileSystem;
  /** This thread's claim on the file (FileSystem.claim): how the other threads of this process tell it is still open. */
  #claim: FileHandle | null;
  /** How a writer in another pid namespace tells this open is alive (undefined where none could be made). */
  #socket: HolderSocket | undefined;
  /** The text after the txn line: the stamp, CLAIMED_LINE when the claim was made, the socket's name. */
  readonly #tail: string;
  #removed = false;

  private constructor(fs: FileSystem, path: string, claim: FileHandle | null, socket: HolderSocket | undefined, tail: string) {
    this.#fs = fs;
    this.path = path;
    this.#claim = claim;
    this.#socket = socket;
    this.#tail = tail;
  }

  /**
   * Step 1. null when the file cannot be made (see the limits above). `logFloor`: the lowest LSN
   * of the log this registration reads while it lives (a writer's gc keeps it).
   */
  static create(fs: FileSystem, dir: string, o: { logFloor?: number } = {}): Registration | null {
    try {
      for (let attempt = 0; attempt < 1000; attempt++) {
        const path = join(dir, `${READER_PREFIX}${process.pid}.${++seq}`);
        let f;
        try {
          f = fs.open(path, "createExclusive");
        } catch (e) {
          // A file of an earlier process with our (recycled) pid: take the next number.
          if ((e as NodeJS.ErrnoException).code !== "EEXIST") return null;
          continue;
        }
        // Claimed before its text is written, and the text says so: a writer in another thread of
        // this process takes a file that says "claimed" but has no claim open for a dead thread's.
        let claim: FileHandle | null = null;
        try {
          claim = fs.claim(path);
        } catch {
          // no CLAIMED_LINE: judged by its pid alone, held as long as this process lives
        }
        // Listening before the text names it (HolderSocket, invariant 1). Only on real files: the
        // simulated file systems' paths are not the host's.
        const socket = fs instanceof NodeFileSystem ? HolderSocket.listen(resolve(dir)) : undefined;
        const tail = (o.logFloor !== undefined ? `log ${o.logFloor}\n` : "") + stampLines() + (claim ? `${CLAIMED_LINE}\n` : "") + (socket ? `sock ${socket.name}\n` : "");
        try {
          const text = Buffer.from(tail);
          f.write(text, 0, text.length, 0);
        } catch {
          // an empty file is judged by its pid alone: still protected
        }
        try {
          f.close();
        } catch {
          // the file exists either way: it is registered
        }
        return new Registration(fs, path, claim, socket, tail);
      }
    } catch {
      // read-only file system, no permission: unprotected (documented above)
    }
    return null;
  }

  /** Step 3. */
  setTxn(txn: number): void {
    try {
      const f = this.#fs.open(this.path, "rw");
      try {
        const text = Buffer.from(`txn ${txn}\n${this.#tail}`);
        f.write(text, 0, text.length, 0);
      } finally {
        f.close();
      }
    } catch {
      // the empty file still pins the newest meta of a writer's open: protected all the same
    }
  }

  /** Step 4 (also when the open fails). The claim and the socket end after the remove: until then the file is held. */
  release(): void {
    if (this.#removed) return;
    this.#removed = true;
    try {
      this.#fs.remove(this.path);
    } catch {
      // a writer removes it once this process is gone (or, in this process, once the claim ends)
    }
    try {
      this.#claim?.close();
    } catch {
      // the descriptor is released either way
    }
    this.#claim = null;
    this.#socket?.close();
    this.#socket = undefined;
  }
}

/** In a registration's text: its creator claimed it before writing the text (see Registration.create). */
const CLAIMED_LINE = "claimed";
const CLAIMED_RE = new RegExp(`^${CLAIMED_LINE}$`, "m");

/**
 * A registration of this process whose text says it was claimed: a worker thread that ended
 * without close() leaves one, which its pid (alive: ours) would keep pinning pages for as long as
 * the process lives. Node closes a terminated worker's descriptors (trackUnmanagedFds, as for the
 * LOCK), so such a file with no claim open is a dead thread's. One without the line (its claim
 * failed, or an older KeelDB wrote it) is judged by its pid alone; where claims cannot be seen
 * (undefined) it is held too.
 */
function ownThreadLive(fs: FileSystem, path: string): boolean {
  try {
    return fs.isClaimed(path) !== false;
  } catch {
    return true;
  }
}

/** One registration as a listing reads it; `txn` is undefined while that open is still at step 1. */
export interface RegistrationInfo {
  name: string;
  pid: number;
  txn: number | undefined;
  /** The lowest LSN of the log it reads ("log L"), undefined when it reads none. */
  logFloor: number | undefined;
  /** Its stamp is live (io/ProcessStamp.ts), or its socket answers; a file that is neither was left by a process that is gone. */
  live: boolean;
  /** Live only by its socket: a process this one cannot see by its pid (another pid namespace). */
  elsewhere: boolean;
  /** The holder socket it names, if any. */
  socket: string | undefined;
}

/**
 * When each registration was last found live by its socket alone ("<file name> <socket name>" ->
 * performance.now(); with the socket, so that a new file of the same name, as every container's
 * first reader has, is asked for itself).
 * A writer keeps one across listings, so that such a registration is asked again only every
 * ELSEWHERE_RECHECK_MS, not at every listing (each ask blocks the thread for tens of ms).
 */
export type SocketVerdicts = Map<string, number>;

/**
 * The registrations in `dir`, read without changing anything (keel doctor lists them too). One
 * whose pid says gone is asked through the socket it names (real files only; not with
 * `askSockets: false`, which judges by the stamp alone); `verdicts` caches the answers that said
 * live (see SocketVerdicts).
 */
export function listRegistrations(fs: FileSystem, dir: string, verdicts?: SocketVerdicts, askSockets = true): RegistrationInfo[] {
  let names: string[];
  try {
    names = fs.list(dir).filter(isRegistration);
  } catch {
    names = [];
  }
  return names.map((name) => {
    const pid = Number.parseInt(name.slice(READER_PREFIX.length).split(".")[0] ?? "", 10);
    let text = "";
    try {
      text = Buffer.from(fs.readFile(join(dir, name))).toString("utf8");
    } catch {
      // removed meanwhile, or unreadable: judged by its pid alone
    }
    const m = /^txn (\d+)$/m.exec(text);
    const log = /^log (\d+)$/m.exec(text);
    let live = stampIsLive(parseStamp(pid, text));
    if (live && pid === process.pid && CLAIMED_RE.test(text)) live = ownThreadLive(fs, join(dir, name));
    const socket = socketNamed(text);
    const elsewhere = askSockets && !live && socket !== undefined && fs instanceof NodeFileSystem && socketAnswers(dir, name, socket, verdicts);
    return { name, pid, txn: m ? Number(m[1]) : undefined, logFloor: log ? Number(log[1]) : undefined, live: live || elsewhere, elsewhere, socket };
  });
}

/** Whether the socket a registration names answers ("unknown" counts as yes: a doubt pins pages, it never frees them). */
function socketAnswers(dir: string, name: string, socket: string, verdicts: SocketVerdicts | undefined): boolean {
  const key = `${name} ${socket}`;
  const at = verdicts?.get(key);
  if (at !== undefined && performance.now() - at < ELSEWHERE_RECHECK_MS) return true;
  const live = checkSocket(resolve(dir), socket) !== "gone";
  if (live) verdicts?.set(key, performance.now());
  else verdicts?.delete(key);
  return live;
}

/**
 * Step 5: the lowest txn a live read-only process may read pages of (Infinity: none), the lowest
 * LSN of the log one reads (Infinity: none), and the pids pinning them; stale files are removed.
 * `newestTxn` is what an opening or unreadable registration pins.
 */
export function readOnlyFloor(fs: FileSystem, dir: string, newestTxn: number, verdicts?: SocketVerdicts): { floor: number; logFloor: number; pids: number[] } {
  let floor = Infinity;
  let logFloor = Infinity;
  const pids = new Set<number>();
  const listed = listRegistrations(fs, dir, verdicts);
  if (verdicts) for (const key of [...verdicts.keys()]) if (!listed.some((r) => key === `${r.name} ${r.socket}`)) verdicts.delete(key);
  for (const r of listed) {
    if (!r.live) {
      try {
        fs.remove(join(dir, r.name));
      } catch {
        // the next listing tries again
      }
      // Its socket file too (found gone): nothing else removes it but a writer's sweep.
      if (r.socket !== undefined && fs instanceof NodeFileSystem) removeDeadSocket(resolve(dir), r.socket);
      continue;
    }
    floor = Math.min(floor, r.txn ?? newestTxn, newestTxn);
    if (r.logFloor !== undefined) logFloor = Math.min(logFloor, r.logFloor);
    pids.add(r.pid);
  }
  return { floor, logFloor, pids: [...pids] };
}

/** A writer's view of the read-only processes it must respect (step 5, then the re-listings). */
export class ReadOnlyFloorWatch {
  readonly #fs: FileSystem;
  readonly #dir: string;
  readonly #newestTxn: number;
  readonly #verdicts: SocketVerdicts = new Map();
  #floor: number;
  #logFloor: number;
  #checkedAt: number;

  private constructor(fs: FileSystem, dir: string, newestTxn: number) {
    this.#fs = fs;
    this.#dir = dir;
    this.#newestTxn = newestTxn;
    const f = readOnlyFloor(fs, dir, newestTxn, this.#verdicts);
    this.#floor = f.floor;
    this.#logFloor = f.logFloor;
    this.#checkedAt = performance.now();
  }

  /** null when no read-only process has the directory open: nothing to watch, ever. */
  static start(fs: FileSystem, dir: string, newestTxn: number): ReadOnlyFloorWatch | null {
    const w = new ReadOnlyFloorWatch(fs, dir, newestTxn);
    return w.#floor === Infinity ? null : w;
  }

  /** The floor now: cached, listed again at most every RECHECK_MS until it lifts for good. */
  floor(): number {
    this.#recheck();
    return this.#floor;
  }

  /** The lowest LSN of the log a live registration reads, undefined when none does (cached likewise). */
  logFloor(): number | undefined {
    this.#recheck();
    return this.#logFloor === Infinity ? undefined : this.#logFloor;
  }

  #recheck(): void {
    // A monotonic clock: after a step back of the wall clock, a check by Date.now() waited until the
    // clock caught up, holding a closed reader's floor (and every page freed since) meanwhile.
    // The log floor only goes with a page floor (every live registration pins a txn).
    if (this.#floor !== Infinity && performance.now() - this.#checkedAt >= RECHECK_MS) {
      const f = readOnlyFloor(this.#fs, this.#dir, this.#newestTxn, this.#verdicts);
      this.#floor = f.floor;
      this.#logFloor = f.logFloor;
      this.#checkedAt = performance.now();
    }
  }
}
