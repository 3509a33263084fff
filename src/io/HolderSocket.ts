/**
 * HolderSocket: a sign of life of a LOCK's holder that the kernel gives, seen from any pid
 * namespace of the host. A pid (io/ProcessStamp.ts) names a process only in the namespace that
 * numbered it: a holder in another container that shares the directory reads as gone (or as some
 * other process) here, and would be taken over while it writes.
 *
 * The holder listens on a Unix socket in the database directory, LOCK.<12 hex digits>.sock (a name
 * of its own, so it never has to remove anyone else's), and its LOCK names that socket.
 * Invariants:
 *   1. A holder listens before its LOCK (or takeover guard) names the socket, and stops only
 *      after its LOCK is removed: whoever reads the name while the LOCK stands finds it listening.
 *   2. connect() succeeds exactly while the listening process lives: the kernel queues the
 *      connection even while that process's event loop is blocked (a long transaction, SIGSTOP);
 *      once the process is gone (SIGKILL included: the file stays) it is refused.
 *   3. answers() is true unless a connect was refused or found no file: anything it cannot tell
 *      (a timeout, a full backlog, no permission, no worker thread) counts as live, so a doubt
 *      ends in LOCKED, never in two writers.
 * A directory path too long for a socket address (107 bytes) is reached through a descriptor on the
 * directory (/proc/self/fd/<fd>/<name>, Linux). Where no socket can be made (such a path without
 * /proc, a file system without sockets), the LOCK names none and liveness is the pid's alone, as
 * before sockets were.
 *
 * Like ProcessStamp, this file asks the operating system about processes, not the FileSystem: the
 * socket is a kernel object, and a simulated crash must not change the answers.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, closeSync, constants as fsConstants, existsSync, fstatSync, openSync, readdirSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { Worker } from "node:worker_threads";

/** A holder socket's file name. */
export const HOLDER_SOCKET_NAME = /^LOCK\.[0-9a-f]{12}\.sock$/;

/** sun_path holds 108 bytes on Linux, the terminating NUL included. */
const MAX_SOCKET_PATH_BYTES = 107;

/** How long answers() waits for a connect before it counts the holder as live. */
const PROBE_TIMEOUT_MS = 5000;

const PROC_FD = existsSync("/proc/self/fd");

/**
 * A socket address for `dir`/`name`: the path itself when it fits; else (Linux) the same file
 * reached through a descriptor on `dir`, /proc/self/fd/<fd>/<name>, which fits whatever the
 * directory's path (sides that reach one directory by paths of different lengths still meet);
 * undefined without /proc. `done()` closes that descriptor: call it only once the socket no longer
 * uses the address (libuv unlinks a listening socket's file by its address at close).
 */
function socketAddress(dir: string, name: string): { address: string; done: () => void } | undefined {
  const path = join(dir, name);
  if (Buffer.byteLength(path) <= MAX_SOCKET_PATH_BYTES) return { address: path, done: () => {} };
  if (!PROC_FD) return undefined;
  let fd: number;
  try {
    fd = openSync(dir, "r");
  } catch {
    return undefined;
  }
  return {
    address: `/proc/self/fd/${fd}/${name}`,
    done: () => {
      try {
        closeSync(fd);
      } catch {
        // closed either way
      }
    },
  };
}

export class HolderSocket {
  readonly name: string;
  #server: Server | null;
  readonly #done: () => void;

  private constructor(name: string, server: Server, done: () => void) {
    this.name = name;
    this.#server = server;
    this.#done = done;
  }

  /**
   * Listen on a new LOCK.<hex>.sock in `dir` (an absolute path); undefined where no socket can be
   * made there. The server is unref'd: it never keeps a process alive.
   */
  static listen(dir: string): HolderSocket | undefined {
    const name = `LOCK.${randomBytes(6).toString("hex")}.sock`;
    const path = join(dir, name);
    const at = socketAddress(dir, name);
    if (at === undefined) return undefined;
    const server = createServer((c) => c.destroy());
    // A failed bind is reported on the next tick; `listening` says now whether it succeeded.
    server.on("error", () => {});
    try {
      // exclusive: in a node:cluster worker a plain listen is handed to the primary process
      // (asynchronously, and the socket would then live as long as the primary does).
      server.listen({ path: at.address, exclusive: true });
    } catch {
      at.done();
      return undefined;
    }
    if (!server.listening) {
      server.close();
      at.done();
      return undefined;
    }
    server.unref();
    openToAllUsers(path);
    return new HolderSocket(name, server, at.done);
  }

  /** Stop listening and remove the file (libuv unlinks a bound socket's path on close). */
  close(): void {
    const server = this.#server;
    if (server === null) return;
    this.#server = null;
    server.close();
    this.#done();
  }
}

/** open(2) flag: a descriptor that names a file without opening it (Linux; not in fs.constants). */
const O_PATH = 0o10000000;

/**
 * Let any user who may open the database ask the socket at `path` (a connect needs write
 * permission on it; a permission error reads as "cannot tell" and would keep a dead holder's LOCK
 * held against other users). Never by path: in a directory others may write to, the file can be
 * swapped for a symbolic link between the bind and a chmod, which would then open any file of
 * ours (root's) to everyone. The socket is pinned by a descriptor that does not follow links, and
 * changed through /proc/self/fd only if that descriptor is a socket. Without /proc: left as bound.
 */
export function openToAllUsers(path: string): void {
  if (!PROC_FD) return;
  let fd: number;
  try {
    fd = openSync(path, O_PATH | fsConstants.O_NOFOLLOW);
  } catch {
    return;
  }
  try {
    if (fstatSync(fd).isSocket()) chmodSync(`/proc/self/fd/${fd}`, 0o666);
  } catch {
    // the owner (and root) can still ask
  } finally {
    closeSync(fd);
  }
}

/** The holder socket a LOCK or guard file names (its `sock` line); undefined when it names none. */
export function socketNamed(text: string): string | undefined {
  const name = /^sock (.*)$/m.exec(text)?.[1];
  return name !== undefined && HOLDER_SOCKET_NAME.test(name) ? name : undefined;
}

// Runs in a worker thread: connects once and reports 1 (connected), 2 (refused or no such file:
// nobody listens) or 3 (anything else: cannot tell). Dynamic imports: the same text runs as a
// script or as a module (an application started with --input-type=module passes that on).
const PROBE = `
Promise.all([import("node:worker_threads"), import("node:net")]).then(([{ workerData }, { connect }]) => {
  const cell = new Int32Array(workerData.cell);
  const s = connect(workerData.path);
  const done = (v) => { Atomics.store(cell, 0, v); Atomics.notify(cell, 0); s.destroy(); };
  s.on("connect", () => done(1));
  s.on("error", (e) => done(e.code === "ECONNREFUSED" || e.code === "ENOENT" ? 2 : 3));
});
`;

/**
 * Whether a process listens on the holder socket `name` in `dir` (invariant 3: true unless
 * nobody does for sure). Synchronous, as Lock is: a worker thread connects while this one waits
 * (tens of milliseconds; only a LOCK whose pid reads as gone is asked).
 */
export function answers(dir: string, name: string): boolean {
  return checkSocket(dir, name) !== "gone";
}

/**
 * What a connect to the holder socket `name` in `dir` says: "live" (connected), "gone" (refused, or
 * no such file) or "unknown" (anything else: a full backlog, a timeout, no permission, no worker
 * thread, an address this process cannot reach). answers() counts "unknown" as live.
 */
export function checkSocket(dir: string, name: string): "live" | "gone" | "unknown" {
  const path = join(dir, name);
  if (!existsSync(path)) return "gone";
  const at = socketAddress(dir, name);
  if (at === undefined) return "unknown";
  try {
    return probe(at.address);
  } finally {
    at.done();
  }
}

function probe(address: string): "live" | "gone" | "unknown" {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  let worker: Worker;
  try {
    // stdout/stderr true: not piped to this process's, whose first use would turn a pipe on fd 1
    // or 2 non-blocking under the application's feet (its fs.writeSync(1) then fails EAGAIN).
    // execArgv []: none of the application's flags (loaders, --input-type) applies to the probe.
    worker = new Worker(PROBE, { eval: true, workerData: { path: address, cell: cell.buffer }, stdout: true, stderr: true, execArgv: [] });
  } catch {
    return "unknown";
  }
  worker.on("error", () => {}); // a worker that cannot start leaves the cell 0: unknown
  try {
    Atomics.wait(cell, 0, 0, PROBE_TIMEOUT_MS);
    const v = Atomics.load(cell, 0);
    return v === 1 ? "live" : v === 2 ? "gone" : "unknown";
  } finally {
    worker.unref();
    void worker.terminate().catch(() => {});
  }
}

/**
 * Whether a process (in any pid namespace of this host) listens on a holder socket inside `dir`:
 * how a working directory named after a pid (`.restore-partial-<pid>`, `.load-partial-<pid>`) is
 * told from a leftover when that pid may be another namespace's.
 */
export function answersInside(dir: string): boolean {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => HOLDER_SOCKET_NAME.test(n));
  } catch {
    return false;
  }
  return names.some((n) => answers(dir, n));
}

/** Remove the socket file of a holder found gone (best effort: a leftover file is harmless). */
export function removeDeadSocket(dir: string, name: string): void {
  try {
    rmSync(join(dir, name), { force: true });
  } catch {
    // left: the next takeover of a LOCK naming it tries again; nothing reads it otherwise
  }
}
