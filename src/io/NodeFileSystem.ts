/**
 * NodeFileSystem: the FileSystem backend on node:fs. The only file in src/ that imports node:fs.
 *
 * Reads and writes are synchronous (KeelDB reads are synchronous, like lmdb-js); `syncAsync`
 * runs fdatasync on libuv's thread pool so that a group commit does not block the event loop.
 */
import * as fs from "node:fs";
import { dirname, resolve } from "node:path";
import type { FileHandle, FileStat, FileSystem, OpenMode } from "./FileSystem.js";
import { ownStamp } from "./ProcessStamp.js";

/**
 * stat, or undefined when nothing is there: ENOENT, and ENOTDIR (a file where a directory of the
 * path should be: `keel stat some-file` looks for some-file/data.keel), which is "no database
 * there" (NOT_FOUND), not an I/O error.
 */
export function statIfAny(path: string): fs.Stats | undefined {
  try {
    return fs.statSync(path, { throwIfNoEntry: false });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOTDIR") return undefined;
    throw e;
  }
}

/**
 * mkdir -p, one level at a time. Not fs.mkdirSync's `recursive`: on Node 20 it loops forever
 * where mkdir answers ENOENT under a parent that exists (e.g. anything under /proc), which hung
 * a server asked to BACKUP there. Here such an answer is thrown.
 */
function mkdirParents(path: string): void {
  const missing: string[] = [];
  for (let p = resolve(path); ; ) {
    if (statIfAny(p)) break;
    missing.push(p);
    const parent = dirname(p);
    if (parent === p) break;
    p = parent;
  }
  for (let i = missing.length - 1; i >= 0; i--) {
    try {
      fs.mkdirSync(missing[i]!);
    } catch (e) {
      // Made meanwhile by someone else: fine, as long as it is a directory (checked below).
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
  }
  if (!fs.statSync(path).isDirectory()) {
    throw Object.assign(new Error(`EEXIST: file already exists, mkdir '${path}'`), { code: "EEXIST", errno: -17, syscall: "mkdir", path });
  }
}

const FLAGS: Record<OpenMode, string> = { r: "r", rw: "r+", create: "a+", createExclusive: "wx+" };

class NodeFileHandle implements FileHandle {
  readonly path: string;
  #fd: number;

  constructor(path: string, fd: number) {
    this.path = path;
    this.#fd = fd;
  }

  read(buffer: Uint8Array, offset: number, length: number, position: number): number {
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.#fd, buffer, offset + done, length - done, position + done);
      if (n === 0) break;
      done += n;
    }
    return done;
  }

  write(buffer: Uint8Array, offset: number, length: number, position: number): void {
    let done = 0;
    while (done < length) {
      done += fs.writeSync(this.#fd, buffer, offset + done, length - done, position + done);
    }
  }

  sync(): void {
    fs.fdatasyncSync(this.#fd);
  }

  syncAsync(): Promise<void> {
    return new Promise((resolve, reject) => fs.fdatasync(this.#fd, (e) => (e ? reject(e) : resolve())));
  }

  size(): number {
    return fs.fstatSync(this.#fd).size;
  }

  truncate(length: number): void {
    fs.ftruncateSync(this.#fd, length);
  }

  close(): void {
    fs.closeSync(this.#fd);
  }
}

export class NodeFileSystem implements FileSystem {
  open(path: string, mode: OpenMode): FileHandle {
    // "a+" would force appends; open "create" as r+ after ensuring the file exists instead.
    if (mode === "create") {
      try {
        return new NodeFileHandle(path, fs.openSync(path, "r+"));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
        try {
          return new NodeFileHandle(path, fs.openSync(path, "wx+"));
        } catch (e2) {
          if ((e2 as NodeJS.ErrnoException).code !== "EEXIST") throw e2;
          return new NodeFileHandle(path, fs.openSync(path, "r+"));
        }
      }
    }
    return new NodeFileHandle(path, fs.openSync(path, FLAGS[mode]));
  }

  stat(path: string): FileStat | undefined {
    const s = statIfAny(path);
    return s ? { size: s.size, isDirectory: s.isDirectory(), mtimeMs: s.mtimeMs } : undefined;
  }

  mkdir(path: string): void {
    mkdirParents(path);
  }

  list(dir: string): string[] {
    return fs.readdirSync(dir).sort();
  }

  rename(from: string, to: string): void {
    fs.renameSync(from, to);
  }

  link(from: string, to: string): void {
    fs.linkSync(from, to);
  }

  remove(path: string): void {
    // unlink, not rmSync: rmSync retries an unlink refused with EPERM (a sticky directory, a
    // file of another user) as a directory and reports ENOTDIR, hiding the errno to act on.
    try {
      fs.unlinkSync(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
  }

  removeDir(path: string): void {
    fs.rmSync(path, { recursive: true, force: true });
  }

  syncDir(path: string): void {
    const fd = fs.openSync(path, "r");
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  readFile(path: string): Uint8Array {
    return fs.readFileSync(path);
  }

  bootId(): string {
    return ownStamp().boot;
  }

  /** The claim is a descriptor opened O_WRONLY|O_APPEND and never written: the mark isClaimed looks for. */
  claim(path: string): FileHandle {
    return new NodeFileHandle(path, fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_APPEND));
  }

  /**
   * Looks through this process's descriptors (/proc/self/fd, shared by all its threads) for one
   * on the same file (device and inode) opened with O_APPEND. Nothing else in KeelDB opens a
   * LOCK with O_APPEND, so a reader of the file never passes for its holder.
   */
  isClaimed(path: string): boolean | undefined {
    let target: fs.Stats;
    try {
      target = fs.statSync(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw e;
    }
    let fds: string[];
    try {
      fds = fs.readdirSync("/proc/self/fd");
    } catch {
      return undefined;
    }
    for (const fd of fds) {
      let s: fs.Stats;
      let info: string;
      try {
        s = fs.statSync(`/proc/self/fd/${fd}`);
        if (s.ino !== target.ino || s.dev !== target.dev) continue;
        info = fs.readFileSync(`/proc/self/fdinfo/${fd}`, "latin1");
      } catch {
        continue; // closed meanwhile, or not a file
      }
      const flags = /^flags:\s*([0-7]+)/m.exec(info)?.[1];
      if (flags !== undefined && (Number.parseInt(flags, 8) & fs.constants.O_APPEND) !== 0) return true;
    }
    return false;
  }
}

/** The process-wide default backend. */
export const nodeFileSystem: FileSystem = new NodeFileSystem();

/**
 * `path` made absolute against the working directory when `fs` is the disk's: a database stays
 * open, and a job runs, across a process.chdir(), and its files must not move with it (the log's
 * next segments went into another directory, the LOCK was left behind at close). Other backends
 * name paths their own way and get it as given.
 */
export function pinnedPath(fs: FileSystem, path: string): string {
  if (!(fs instanceof NodeFileSystem)) return path;
  try {
    return resolve(path);
  } catch {
    // The working directory was removed (uv_cwd ENOENT): a relative path names nothing now, and
    // the first file operation on it reports that as a coded error, as before.
    return path;
  }
}
