/**
 * Lock: the LOCK file that makes one thread of one process the only one with a database open.
 *
 * Invariant: while a Database is open, <dir>/LOCK exists, names this process (its pid, then the
 * time, the thread, then its ProcessStamp lines: boot id, start time), and the opening thread
 * holds a claim on it (FileSystem.claim: a descriptor every thread of the process can see). A LOCK
 * naming a process that no longer runs (killed, crashed, or left by a power cut: an earlier boot;
 * or a pid since recycled by another process) is taken over; one naming a live process is refused
 * with KeelError LOCKED carrying that pid. A LOCK naming our own pid is ours to refuse or take:
 * held by this thread (the set of held locks) or by another thread (a claim is open on it: worker
 * threads share the pid, so without the claim a worker would take over the main thread's lock
 * and two writers would share the files) is LOCKED; with neither (left by an open that failed
 * halfway, or by an earlier process that had our pid) it is taken over. An empty LOCK modified
 * less than TAKEOVER_WAIT_MS ago (or ahead: a wall clock stepped back) is one being written:
 * waited for until it is older, then stale (an open that finds one kept young by something for
 * twice that long gives up: LOCKED); an older empty one is stale at once (its writer died
 * between create and write, or a power cut lost its text). A creator reads its file back after
 * writing it: one stalled between the two for longer than that (SIGSTOP, a frozen VM) may find its
 * empty file taken over and replaced, and then does not hold it (left: the few system calls of the
 * remover's step 2). release() removes only the LOCK it wrote (its exact text), then ends the claim.
 *
 * A holder in another pid namespace of this host (another container sharing the directory) has a
 * pid that names another process here, or none: its LOCK (and its guard) also names the Unix
 * socket it listens on (io/HolderSocket.ts), and a LOCK whose pid reads as gone is stale only if
 * that socket does not answer either ("elsewhere" otherwise: LOCKED). The socket is listened on
 * before the LOCK is created and closed after it is removed; a takeover removes the dead holder's
 * socket file with its LOCK.
 *
 * Limits, stated plainly: liveness is checked on this host (the pid in io/ProcessStamp.ts, the
 * socket in the kernel), so a LOCK on a network file system shared between hosts is not safe.
 * Where the socket cannot be made (a directory path too long for a socket address, a file
 * system without sockets), or for a LOCK written before sockets were, liveness is the pid's
 * alone, in this process's pid namespace. Without /proc (not Linux), or for
 * a LOCK written before stamps were, it is kill(pid, 0) alone, and a recycled pid then keeps the lock
 * held until that process ends (the error names the pid so an operator can check it); and there,
 * a claim cannot be seen, so two threads of one process are not kept apart. A worker thread that
 * ends without closing its Database: Node closes its descriptors (Worker option
 * trackUnmanagedFds, on by default), which ends the claim, and its LOCK is stale like a dead
 * process's to this process (other processes see a live pid: LOCKED until the process exits or
 * opens and closes it again); with that option off the claim stays open and the lock held until
 * the process exits (refused, never shared).
 *
 * Taking over a stale LOCK, as numbered steps (takeOver). Only a thread holding LOCK.takeover
 * removes a LOCK it did not create, so two that both find the same stale LOCK cannot both end up
 * holding the database (the slower one's remove would hit the LOCK the faster one has just
 * created):
 *   1. Create LOCK.takeover (exclusive create), claim it, write this process's stamp. If it exists
 *      and its holder is live (another process, or a thread of ours with its claim), wait for it
 *      (a few system calls); if its holder is gone, remove it and retry.
 *   2. Read the LOCK again: remove it only if it is the one judged stale (the same text) and still
 *      is (an empty one: still empty and old by its own time). Gone, or another LOCK: nothing to
 *      remove. A LOCK gone here may be created at this very moment by the thread that took it over
 *      before us, so "gone" is never a reason to remove whatever is there a moment later.
 *   3. Remove LOCK.takeover (if it is still the one this thread wrote), then end its claim; the
 *      caller tries the exclusive create again (and judges afresh what it meets).
 * An empty guard, like an empty LOCK, is judged by its own age: young, it is being written.
 * The guard's own takeover (step 1, holder gone) is not guarded: after a process died inside the
 * guard's few system calls, two others racing for its guard can both end up holding one (the
 * slower removing the faster one's new guard). Step 2 checks, right before its remove, that the
 * guard is still its own, which leaves only a window of one system call; closing it needs an OS
 * file lock (flock/fcntl), which Node does not offer without a native addon.
 */
import { dirname, join, resolve } from "node:path";
import { threadId } from "node:worker_threads";
import { KeelError, ioError } from "../errors.js";
import type { FileHandle, FileSystem } from "../io/FileSystem.js";
import { HOLDER_SOCKET_NAME, HolderSocket, answers, checkSocket, removeDeadSocket, socketNamed } from "../io/HolderSocket.js";
import { NodeFileSystem } from "../io/NodeFileSystem.js";
import { parseStamp, stampIsLive, stampLines, type ProcessStamp } from "../io/ProcessStamp.js";
import { listRegistrations } from "./ReadOnlyReaders.js";

export const LOCK_FILE = "LOCK";
export const TAKEOVER_FILE = "LOCK.takeover";
/** How long an empty LOCK or a live guard holder is waited for before giving up on it. */
const TAKEOVER_WAIT_MS = 2000;
/** Takeovers one acquire may do before it reports that others keep taking the lock. */
const MAX_TAKEOVERS = 3;

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Locks this thread holds, per storage backend. */
const held = new WeakMap<FileSystem, Set<string>>();

interface HolderFile {
  text: string;
  /** The process the file names (a pid on its first line), undefined when it names none. */
  holder: ProcessStamp | undefined;
  /** The thread id of its "thread" line, when it has one. */
  thread: number | undefined;
  /** What the last check of the socket it names said, when one was made (for the error's words). */
  socketCheck?: "live" | "unknown";
}

/** A LOCK or LOCK.takeover file: undefined when it does not exist. */
function readHolderFile(fs: FileSystem, path: string): HolderFile | undefined {
  let text: string;
  try {
    text = Buffer.from(fs.readFile(path)).toString("utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw ioError(e, "read", path);
  }
  const pid = Number.parseInt(text.split("\n")[0] ?? "", 10);
  const thread = /^thread (\d+)$/m.exec(text)?.[1];
  return { text, holder: Number.isFinite(pid) ? parseStamp(pid, text) : undefined, thread: thread === undefined ? undefined : Number(thread) };
}

/**
 * Who holds the LOCK (or guard) file `f` at `path`:
 *   "ours"    this thread (`heldHere`);
 *   "thread"  another thread of this process (a claim is open on the file);
 *   "live"    another live process;
 *   "elsewhere" a process whose pid reads as gone here (or as ours, unclaimed) but whose holder
 *             socket answers: one in another pid namespace (io/HolderSocket.ts);
 *   "writing" empty, unclaimed here, and modified less than TAKEOVER_WAIT_MS from now (either
 *             way: a wall clock stepped back): its creator is about to write it (callers that
 *             do not wait pass `late` and take it for stale);
 *   "stale"   gone, a recycled pid, an earlier boot, garbage, or our pid with no claim open here
 *             (an open of ours that failed, or an earlier process that had our pid).
 */
type HolderState = "ours" | "thread" | "live" | "elsewhere" | "writing" | "stale";

/** Whether the holder socket the file names (if any) answers: its holder lives somewhere. */
function socketAnswers(fs: FileSystem, path: string, f: HolderFile): boolean {
  const name = socketNamed(f.text);
  if (name === undefined || !(fs instanceof NodeFileSystem)) return false;
  const check = checkSocket(dirname(path), name);
  if (check === "gone") return false;
  f.socketCheck = check;
  return true;
}

/** A LOCK or guard this thread created: its text, its claim, and the socket it names. */
interface Created {
  text: string;
  claim: FileHandle;
  socket: HolderSocket | undefined;
}

/**
 * createClaimed for a LOCK or guard that names a holder socket (HolderSocket, invariant 1): the
 * socket listens before the file names it, and is closed again at once if the create fails, so
 * that a process killed while it waits for a lock leaves none behind. `textBefore` is the file's
 * text up to its `sock` line. Only on the real file system; elsewhere the file names no socket.
 */
function createNamingSocket(fs: FileSystem, dir: string, path: string, textBefore: string): Created | undefined {
  const socket = fs instanceof NodeFileSystem ? HolderSocket.listen(resolve(dir)) : undefined;
  const text = socket === undefined ? textBefore : `${textBefore}sock ${socket.name}\n`;
  let claim: FileHandle | undefined;
  try {
    claim = createClaimed(fs, path, text);
  } finally {
    if (claim === undefined) socket?.close();
  }
  return claim === undefined ? undefined : { text, claim, socket };
}

/** Socket files a new holder looks at, at most (each costs a probe when it is not gone). */
const SWEEP_MAX = 16;
/** A socket file younger than this is never swept: it may be bound and not yet listening. */
const SWEEP_MIN_AGE_MS = 10_000;

/**
 * Remove holder sockets nobody listens on, other than `own` (a process killed in the few system
 * calls between its listen and its create, or between its remove and its close, left one that no
 * LOCK or READER file names). Those of read-only opens whose pid is live here are not asked. One
 * that answers belongs to a live process: kept. So is a young one, whatever it answers: bind() creates the file a moment before listen() makes it answer, and removing it then
 * would leave its holder naming a socket nobody can reach (judged gone: a second writer).
 */
function sweepDeadSockets(fs: FileSystem, dir: string, own: string | undefined): void {
  if (!(fs instanceof NodeFileSystem)) return;
  let names: string[];
  try {
    names = fs.list(dir).filter((n) => HOLDER_SOCKET_NAME.test(n) && n !== own);
  } catch {
    return;
  }
  // The sockets of read-only opens live by their pid here need no asking (tens of ms each).
  const readers = new Set(listRegistrations(fs, dir, undefined, false).flatMap((r) => (r.live && r.socket !== undefined ? [r.socket] : [])));
  let probed = 0;
  for (const name of names) {
    if (probed >= SWEEP_MAX) break;
    if (readers.has(name)) continue;
    let old = false;
    try {
      const st = fs.stat(join(dir, name));
      // Both ways: a wall clock stepped back puts an old file's time in the future.
      old = st !== undefined && Math.abs(Date.now() - st.mtimeMs) >= SWEEP_MIN_AGE_MS;
    } catch {
      // gone meanwhile, or unreadable: not ours to judge
    }
    if (!old) continue;
    probed++;
    if (!answers(dir, name)) removeDeadSocket(dir, name);
  }
}

/** Remove the socket file of a LOCK or guard judged stale (its holder is gone). */
function removeSocketOf(fs: FileSystem, dir: string, text: string): void {
  const name = socketNamed(text);
  if (name !== undefined && fs instanceof NodeFileSystem) removeDeadSocket(dir, name);
}

function holderState(fs: FileSystem, path: string, f: HolderFile, heldHere: boolean, late: boolean): HolderState {
  const h = f.holder;
  if (h === undefined || h.pid === process.pid) {
    if (h !== undefined && heldHere) return "ours";
    if (fs.isClaimed(path) === true) return "thread";
    if (h !== undefined || f.text !== "" || late) return socketAnswers(fs, path, f) ? "elsewhere" : "stale";
    // Empty: its creator writes it microseconds after the create, so only a young one can still
    // be written; an old one was left by a death between the two (or a power cut before its text
    // reached the disk).
    // Both ways: a wall clock stepped back puts the time of an old one in the future.
    const st = fs.stat(path);
    return st !== undefined && Math.abs(Date.now() - st.mtimeMs) < TAKEOVER_WAIT_MS ? "writing" : "stale";
  }
  if (stampIsLive(h)) return "live";
  return socketAnswers(fs, path, f) ? "elsewhere" : "stale";
}

function lockedError(dir: string, state: HolderState, f: HolderFile, readOnly: boolean): KeelError {
  const pid = f.holder?.pid ?? process.pid;
  if (state === "ours") {
    return new KeelError(
      "LOCKED",
      readOnly
        ? `${dir} is already open for writing in this process; read through that Database object`
        : `${dir} is already open in this process; share that Database object instead of opening it twice`,
      { dir, pid },
    );
  }
  if (state === "thread") {
    return new KeelError(
      "LOCKED",
      `${dir} is open in another thread of this process${f.thread === undefined ? "" : ` (thread ${f.thread})`}; a Database cannot be shared between threads: use it from that thread, or close it there first`,
      { dir, pid, threadId: f.thread },
    );
  }
  if (state === "elsewhere") {
    const socket = socketNamed(f.text);
    if (f.socketCheck === "unknown") {
      return new KeelError(
        "LOCKED",
        `${dir} is locked by a process that calls itself ${pid}, which does not run here, and its socket ${socket} could not be checked (no answer within 5 s, no permission, or no worker thread allowed): it is taken to be alive elsewhere; if you know that no process holds the database, remove ${join(dir, LOCK_FILE)}`,
        { dir, pid, socket, socketCheck: "unknown" },
      );
    }
    return new KeelError(
      "LOCKED",
      `${dir} is in use by a process that calls itself ${pid} but that this process cannot see by its pid (it runs in another pid namespace: another container sharing the directory?); its socket ${socket} answers; stop it, or talk to it (keel serve) instead of opening the files directly`,
      { dir, pid, socket },
    );
  }
  return new KeelError("LOCKED", `${dir} is in use by process ${pid}; stop it, or talk to it (keel serve) instead of opening the files directly`, { dir, pid });
}

/** A LOCK (or guard) that an exclusive create finds but reading cannot (a dangling symlink). */
function unreadableError(path: string): KeelError {
  return new KeelError("IO", `${path} exists but cannot be read (a dangling symbolic link?); remove it if no process holds the database`, { path, op: "read" });
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
 * The pid of a live holder of the LOCK other than this thread (another process, or another
 * thread of this one), or undefined: no LOCK, or a stale one.
 */
export function liveLockHolder(fs: FileSystem, dir: string): number | undefined {
  const path = join(dir, LOCK_FILE);
  const f = readHolderFile(fs, path);
  if (f === undefined) return undefined;
  const state = holderState(fs, path, f, false, true);
  return state === "live" || state === "elsewhere" || state === "thread" ? (f.holder?.pid ?? process.pid) : undefined;
}

/**
 * Create `path` exclusively as this thread's: claim it before writing its text, so that no
 * other thread of this process ever sees it unclaimed. undefined when it exists already. On a
 * failure after the create, the file is removed (then the claim ended) and the error thrown; one
 * removed (or replaced) by someone else before the claim, or before the text is read back,
 * counts as existing (undefined).
 */
function createClaimed(fs: FileSystem, path: string, text: string): FileHandle | undefined {
  let f: FileHandle;
  try {
    f = fs.open(path, "createExclusive");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return undefined;
    throw ioError(e, "create", path);
  }
  let claim: FileHandle | undefined;
  let closed = false;
  let op = "claim";
  try {
    claim = fs.claim(path);
    op = "write";
    const bytes = Buffer.from(text);
    f.write(bytes, 0, bytes.length, 0);
    testPause("KEEL_TEST_LOCK_WRITE_PAUSE_MS"); // tests only: a written LOCK must be claimed already
    closed = true;
    op = "close";
    f.close();
  } catch (e) {
    if (!closed) {
      try {
        f.close();
      } catch {
        // the first error is the one to report
      }
    }
    // Removed between our create and our claim (a guard taken over by a process that judged the
    // guard of a dead holder stale just before we replaced it): as if it had existed; whatever is
    // at the path now is not ours to remove.
    if (op === "claim" && (e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    try {
      fs.remove(path);
    } catch {
      // left behind: empty or ours without a claim, so the next opener takes it over
    }
    closeQuietly(claim);
    throw ioError(e, op, path);
  }
  // Still ours? A creator stalled between its create and its write (SIGSTOP, a frozen VM, a long
  // pause) for longer than TAKEOVER_WAIT_MS has had its empty file judged stale, removed and
  // replaced: it wrote into a file no longer there, and must not go on as the holder. Whatever is
  // at the path now is not ours to remove.
  let ours = false;
  try {
    ours = readHolderFile(fs, path)?.text === text;
  } finally {
    if (!ours) closeQuietly(claim);
  }
  return ours ? claim : undefined;
}

function closeQuietly(h: FileHandle | undefined): void {
  try {
    h?.close();
  } catch {
    // the descriptor is released either way
  }
}

export class Lock {
  readonly path: string;
  readonly #fs: FileSystem;
  readonly #key: string;
  readonly #text: string;
  #claim: FileHandle | undefined;
  #socket: HolderSocket | undefined;

  private constructor(fs: FileSystem, path: string, key: string, text: string, claim: FileHandle, socket: HolderSocket | undefined) {
    this.#fs = fs;
    this.path = path;
    this.#key = key;
    this.#text = text;
    this.#claim = claim;
    this.#socket = socket;
  }

  /** The holder socket this LOCK names (io/HolderSocket.ts); undefined where none could be made. */
  get socketName(): string | undefined {
    return this.#socket?.name;
  }

  static acquire(fs: FileSystem, dir: string): Lock {
    const path = join(dir, LOCK_FILE);
    const key = resolve(dir);
    const mine = held.get(fs) ?? held.set(fs, new Set()).get(fs)!;
    // Every wait ends, timed by a monotonic clock (a wall clock stepped back during one made it
    // last as long as the step, the thread blocked meanwhile): an empty LOCK ages out of
    // "writing" within TAKEOVER_WAIT_MS of wall time (a step of less than that delays it by the
    // step), so one still young after twice that is kept young by something else and is refused,
    // as is a LOCK that stays unreadable though it exists (a dangling symbolic link).
    const giveUp = performance.now() + 2 * TAKEOVER_WAIT_MS;
    let takeovers = 0;
    for (let turn = 0; ; turn++) {
      let f = readHolderFile(fs, path);
      if (f === undefined) {
        // Absent: create it. Only now is a socket listened on, so a waiter holds none (killed
        // while it waits, it leaves nothing behind).
        const c = createNamingSocket(fs, key, path, `${process.pid}\n${new Date().toISOString()}\nthread ${threadId}\n${stampLines()}`);
        if (c !== undefined) {
          mine.add(key);
          sweepDeadSockets(fs, key, c.socket?.name);
          return new Lock(fs, path, key, c.text, c.claim, c.socket);
        }
        f = readHolderFile(fs, path);
      }
      const late = performance.now() >= giveUp;
      if (f === undefined) {
        // Removed meanwhile: create again (at once the first time).
        if (late) throw unreadableError(path);
        if (turn > 0) sleepSync(1);
        continue;
      }
      // An empty one by its own age: young, it is being written.
      const state = holderState(fs, path, f, mine.has(key), false);
      if (state !== "stale" && state !== "writing") throw lockedError(dir, state, f, false);
      if (state === "stale" && takeovers >= MAX_TAKEOVERS) throw new KeelError("LOCKED", `could not take the lock of ${dir}: another process keeps taking it`, { dir });
      // The holder is gone (or its pid now names another process), died while writing the file,
      // or was an open of ours that failed: take it over. A takeover that removed nothing met
      // another LOCK in its place (judged afresh next turn).
      if (state === "stale" && takeOver(fs, dir, f.text, mine.has(key))) takeovers++;
      else if (late) throw new KeelError("LOCKED", `could not take the lock of ${dir}: its LOCK keeps changing, or stays empty and recently modified (something keeps rewriting it)`, { dir });
      else sleepSync(5);
      testPause("KEEL_TEST_LOCK_RETRY_PAUSE_MS"); // tests only: widens the window before the create
    }
  }

  /**
   * For a read-only open: refuse (LOCKED) if a live process, another thread of this one, or an
   * open Database of this thread holds the lock; otherwise go on without creating or removing
   * anything, so that any number of read-only opens can run side by side (a stale LOCK is left for
   * the next writer to take).
   */
  static check(fs: FileSystem, dir: string): void {
    const path = join(dir, LOCK_FILE);
    const f = readHolderFile(fs, path);
    if (f === undefined) return;
    const state = holderState(fs, path, f, held.get(fs)?.has(resolve(dir)) ?? false, true);
    if (state !== "stale") throw lockedError(dir, state, f, true);
  }

  release(): void {
    const claim = this.#claim;
    if (claim === undefined) return;
    this.#claim = undefined;
    held.get(this.#fs)?.delete(this.#key);
    try {
      // Only the LOCK this thread wrote: another thread of this process may have taken over one
      // that something else put in its place, and it names the same pid.
      if (readHolderFile(this.#fs, this.path)?.text === this.#text) this.#fs.remove(this.path);
    } catch (e) {
      throw ioError(e, "remove", this.path);
    } finally {
      // After the remove: until then, other threads (and other pid namespaces) must see it held.
      this.#socket?.close();
      this.#socket = undefined;
      closeQuietly(claim);
    }
  }
}

/**
 * Whether the LOCK now in `dir` is the one judged stale (its text `judged`) and is still stale, so
 * that a thread that did not create it may remove it (see takeOver, step 2). An empty one is judged
 * by its own age: the caller's patience says nothing of an empty LOCK created since.
 */
function stillStale(fs: FileSystem, dir: string, judged: string, heldHere: boolean): boolean {
  const path = join(dir, LOCK_FILE);
  const f = readHolderFile(fs, path);
  return f !== undefined && f.text === judged && holderState(fs, path, f, heldHere, false) === "stale";
}

function testPause(variable: string): void {
  const pause = Number(process.env[variable] ?? 0);
  if (pause > 0) sleepSync(pause);
}

/**
 * Remove the stale LOCK whose text is `judged`, under the takeover guard (steps 1-3 of the file
 * comment). Whether it removed it: false when that LOCK was gone or replaced, or is an empty one
 * still young.
 */
function takeOver(fs: FileSystem, dir: string, judged: string, heldHere: boolean): boolean {
  const lockPath = join(dir, LOCK_FILE);
  const guardPath = join(dir, TAKEOVER_FILE);
  // Step 1.
  const deadline = performance.now() + TAKEOVER_WAIT_MS;
  let created: Created | undefined;
  while (created === undefined) {
    let guard = readHolderFile(fs, guardPath);
    if (guard === undefined) {
      // Absent: create it (listening only now, as for the LOCK).
      created = createNamingSocket(fs, dir, guardPath, `${process.pid}\nthread ${threadId}\n${stampLines()}`);
      if (created !== undefined) break;
      guard = readHolderFile(fs, guardPath);
    }
    const guardLate = performance.now() >= deadline;
    if (guard === undefined) {
      // Removed meanwhile: try again.
      if (guardLate) throw unreadableError(guardPath);
      sleepSync(1);
      continue;
    }
    // An empty guard is one being written, judged by its own age (never by how long this thread
    // has waited: a guard another process has just created is empty for a moment too): a young
    // one is waited for like a live one; an old one was left by a death between create and write.
    const state = holderState(fs, guardPath, guard, false, false);
    if (state === "stale") {
      try {
        fs.remove(guardPath);
      } catch (e2) {
        if ((e2 as NodeJS.ErrnoException).code !== "ENOENT") throw ioError(e2, "remove", guardPath);
      }
      removeSocketOf(fs, dir, guard.text);
      continue;
    }
    if (guardLate) {
      const pid = guard.holder?.pid;
      throw new KeelError("LOCKED", `could not take over the stale lock of ${dir}: ${pid === undefined ? "another process" : `process ${pid}`} is taking it over; try again`, { dir, pid });
    }
    sleepSync(5);
  }
  const ours = created;
  try {
    // Step 2.
    if (!stillStale(fs, dir, judged, heldHere)) return false;
    testPause("KEEL_TEST_LOCK_TAKEOVER_PAUSE_MS"); // tests only: widens the window step 1 closes
    // Still the guard's holder, right before the remove: a thread that judged a dead holder's
    // guard stale just before we replaced it may have removed ours instead (the guard's own
    // takeover is not guarded) and be in step 2 beside us; then leave the LOCK to be judged afresh.
    if (readHolderFile(fs, guardPath)?.text !== ours.text) return false;
    try {
      fs.remove(lockPath);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw ioError(e, "remove", lockPath);
    }
    removeSocketOf(fs, dir, judged);
    return true;
  } finally {
    // Step 3. Only the guard this thread wrote (whatever took its place is someone else's).
    try {
      if (readHolderFile(fs, guardPath)?.text === ours.text) fs.remove(guardPath);
    } catch {
      // a guard naming a process that is gone is taken over by the next one (step 1)
    }
    ours.socket?.close();
    closeQuietly(ours.claim);
  }
}
