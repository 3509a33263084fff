/**
 * CrashFileSystem: an in-memory FileSystem that simulates power loss, for the engine's crash tests.
 *
 * What it models:
 * - Every file has two images: the durable one (what the disk holds) and the volatile one (what the OS
 *   page cache holds). Reads and sizes see the volatile image. `sync()`/`syncAsync()` on any handle of
 *   the file copies it to the durable image (fdatasync: data and size).
 * - Every directory has a durable and a current set of entries. Creating, removing or renaming an entry,
 *   and mkdir, change the current set at once and are queued as pending directory operations; the
 *   durable sets change only when `syncDir` commits them.
 * - `crash(seed)` is the power cut: only durable state plus a seeded choice of pending state survives.
 *   For each file, under the default "sectors" model, every sector touched by unsynced writes is dropped
 *   (old durable bytes), kept (new bytes) or torn (a prefix of the sector new, the rest old; within-sector
 *   tearing can be turned off with `tearWithinSector: false`), and an unsynced size change is kept or
 *   dropped. Pending directory operations each survive or not. Then every handle is invalid and the
 *   file system holds only the post-crash state, ready to be reopened.
 *   Other models: "ordered" (each file keeps a prefix of its unsynced writes in issue order, the first
 *   lost one possibly torn; directory operations keep a prefix: a journaling file system), "keepAll"
 *   (a process kill: the page cache survives), "dropAll" (only what was synced survives).
 *
 * Invariants it keeps:
 * - Synced data and committed directory entries always survive a crash, under every seed and model.
 * - For every sector not marked dirty, the durable and volatile images hold the same bytes; bytes past a
 *   file's size are zero in both images (so an extension reads zeros, as on a real file system).
 * - Pending directory operations survive as a dependency-closed subset: an operation survives only if
 *   every earlier pending operation on an entry it changes, and the creation of every directory it
 *   changes, survive. Hence a rename is atomic (old name or new name, never both, never neither), a
 *   file created and then renamed never shows up twice, and nothing is linked into a directory that
 *   vanished. Directory renames are ordered with every other operation (a barrier), which rules out
 *   cycles. `syncDir(d)` commits the pending operations on entries of `d` and the earlier ones they
 *   depend on (as a journaling file system would: the creation of `d`, the other half of a rename).
 * - Determinism: the same sequence of calls and the same seed give the same post-crash state. Each file
 *   draws from its own stream (seed, inode), so its outcome does not depend on other files' traffic.
 *
 * Power cuts mid-operation: `crashAfterCalls(n)` or `cutPower()` freeze the file system; from then on
 * every call throws `SimulatedCrash` (nothing changes) until `crash(seed)` resolves the state. A pending
 * `syncAsync` whose promise has not settled when the power is cut rejects with SimulatedCrash.
 *
 * Simplifications: a directory cannot be opened (EISDIR, even with "r"); a hard link is one more
 * directory entry naming the inode (pending like any other; the file lives while any durable name
 * reaches it); `syncDir` on a file path syncs that file's data.
 */
import { posix } from "node:path";
import { type CallInfo, type CallKind, zeroCounts } from "./CallKind.js";
import { errnoError } from "./errnoError.js";
import type { FileHandle, FileStat, FileSystem, OpenMode } from "./FileSystem.js";
import { PagedBytes } from "./PagedBytes.js";
import { ROOT, DirNode, FileNode, Node, Rng, Volume, crashFile, pickRegime, syncFile } from "./CrashVolume.js";
import type { CrashModel } from "./CrashVolume.js";
import { CrashFileHandle, type HandleHost } from "./CrashFileHandle.js";
import { SimulatedCrash } from "./SimulatedCrash.js";

export { SimulatedCrash, isSimulatedCrash } from "./SimulatedCrash.js";

export type { CallInfo, CallKind } from "./CallKind.js";

export type { CrashModel } from "./CrashVolume.js";

export interface CrashOptions {
  /** How unsynced state survives (default: the file system's `model`, itself "sectors" by default). */
  model?: CrashModel;
  /** Under "sectors" and "ordered", allow a sector to be torn at any byte (default: constructor's, true). */
  tearWithinSector?: boolean;
}

export interface CrashFileSystemOptions {
  /** The unit of atomic write of the simulated disk (default 512). */
  sectorSize?: number;
  /** Default for crash(): allow tearing inside a sector (default true). */
  tearWithinSector?: boolean;
  /** Default crash model (default "sectors"). */
  model?: CrashModel;
  /** Runs before every call (after counting); call cutPower() in it to cut the power at that call. */
  onCall?: (info: CallInfo) => void;
}

export interface CrashFileSystemStats {
  files: number;
  directories: number;
  /** Directory operations not yet committed by syncDir. */
  pendingDirOps: number;
  /** Sectors, over all files, whose volatile content may differ from the durable one. */
  dirtySectors: number;
  /** Files whose size or content is not durable. */
  unsyncedFiles: number;
}

let bootCounter = 0;

export class CrashFileSystem implements FileSystem {
  /** Runs before every call (after counting); call cutPower() in it to cut the power at that call. */
  onCall: ((info: CallInfo) => void) | undefined;
  readonly sectorSize: number;
  readonly tearWithinSector: boolean;
  readonly model: CrashModel;
  #vol = new Volume();
  #calls = 0;
  #counts = zeroCounts();
  #crashes = 0;
  #boot = `sim-boot-${++bootCounter}`;
  /** Open claims per file (inode): the simulated process's own; a crash ends them all. */
  #claims = new Map<number, number>();
  #generation = 0;
  #frozen = false;
  #armedAt: number | undefined;
  #armedPerform = false;
  #last: { call: number; kind: CallKind; path: string } = { call: 0, kind: "open", path: "" };
  #host: HandleHost;

  constructor(options: CrashFileSystemOptions = {}) {
    const sectorSize = options.sectorSize ?? 512;
    if (!Number.isInteger(sectorSize) || sectorSize < 2) throw new RangeError(`sectorSize must be an integer >= 2, got ${sectorSize}`);
    this.sectorSize = sectorSize;
    this.tearWithinSector = options.tearWithinSector ?? true;
    this.model = options.model ?? "sectors";
    this.onCall = options.onCall;
    const self = this;
    this.#host = {
      call: (kind, path, fn) => this.#call(kind, path, fn),
      get generation() {
        return self.#generation;
      },
      get frozen() {
        return self.#frozen;
      },
      sectorSize,
      tick: () => this.#vol.tick(),
      lastCall: () => this.#last,
    };
  }

  // --- counters and power control ------------------------------------------------------------------

  /** Number of calls so far (FileSystem and handle methods, failed ones included). */
  get calls(): number {
    return this.#calls;
  }

  callsOf(kind: CallKind): number {
    return this.#counts[kind];
  }

  counts(): Record<CallKind, number> {
    return { ...this.#counts };
  }

  /** Number of crash() calls so far. */
  get crashes(): number {
    return this.#crashes;
  }

  /** True once the power is cut (by crashAfterCalls or cutPower) and until crash(). */
  get frozen(): boolean {
    return this.#frozen;
  }

  /**
   * Cut the power at the n-th call from now (1 = the next call): that call and every later one throw
   * SimulatedCrash. With `performCall`, the n-th call takes effect in the volatile state before it
   * throws (power lost while the call was returning); its effect is still subject to crash().
   */
  crashAfterCalls(n: number, options: { performCall?: boolean } = {}): void {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`crashAfterCalls: n must be an integer >= 1, got ${n}`);
    this.#armedAt = this.#calls + n;
    this.#armedPerform = options.performCall ?? false;
  }

  /** Cut the power now: every call from now on throws SimulatedCrash, until crash(). */
  cutPower(): void {
    this.#frozen = true;
    this.#armedAt = undefined;
  }

  /** Zero the call counters and disarm crashAfterCalls (the state and the hook are kept). */
  resetCounters(): void {
    this.#calls = 0;
    this.#counts = zeroCounts();
    this.#armedAt = undefined;
  }

  stats(): CrashFileSystemStats {
    let files = 0;
    let directories = 0;
    let dirtySectors = 0;
    let unsyncedFiles = 0;
    for (const n of this.#vol.nodes.values()) {
      if (n.kind === "dir") directories++;
      else {
        files++;
        dirtySectors += n.dirty.size;
        if (n.dirty.size > 0 || n.durableSize !== n.currentSize) unsyncedFiles++;
      }
    }
    return { files, directories, pendingDirOps: this.#vol.pending.length, dirtySectors, unsyncedFiles };
  }

  /**
   * Power loss. Resolves all unsynced state by `seed` (see the file comment), invalidates every open
   * handle, clears a power cut, and leaves only the post-crash state. Not counted as a call.
   */
  crash(seed: number, options: CrashOptions = {}): void {
    const model = options.model ?? this.model;
    const tear = options.tearWithinSector ?? this.tearWithinSector;
    const vol = this.#vol;

    // 1. Directory operations: a dependency-closed subset survives (see the invariants).
    const rng = new Rng(seed, 0);
    const ops = vol.pending;
    let keep: (i: number) => boolean;
    if (model === "keepAll") keep = () => true;
    else if (model === "dropAll") keep = () => false;
    else if (model === "ordered") {
      const regime = pickRegime(rng);
      const cut = regime === "keep" ? ops.length : regime === "drop" ? 0 : rng.int(ops.length + 1);
      keep = (i) => i < cut;
    } else {
      const regime = pickRegime(rng);
      keep = () => regime === "keep" || (regime === "mixed" && rng.next() < 0.5);
    }
    const poisoned = new Set<string>();
    let anyDropped = false;
    let barrierDropped = false;
    ops.forEach((op, i) => {
      const blocked =
        barrierDropped ||
        (op.barrier && anyDropped) ||
        op.reads.some((k) => poisoned.has(k)) ||
        op.writes.some((k) => poisoned.has(k));
      if (!blocked && keep(i)) {
        vol.applyDurable(op);
        return;
      }
      anyDropped = true;
      if (op.barrier) barrierDropped = true;
      for (const k of op.writes) poisoned.add(k);
    });
    vol.pending = [];

    // 2. Keep what the durable namespace reaches; every directory's current entries become durable.
    const reached = new Set<number>([ROOT]);
    const stack = [ROOT];
    while (stack.length > 0) {
      const d = vol.nodes.get(stack.pop()!);
      if (!d || d.kind !== "dir") continue;
      for (const ino of d.durable.values()) {
        if (!reached.has(ino)) {
          reached.add(ino);
          stack.push(ino);
        }
      }
    }
    const survivors = new Map<number, Node>();
    for (const ino of [...reached].sort((a, b) => a - b)) {
      const n = vol.nodes.get(ino);
      if (!n) continue;
      if (n.kind === "dir") n.current = new Map(n.durable);
      // 3. File contents, each from its own stream.
      else crashFile(n, new Rng(seed, ino), model, tear, this.sectorSize);
      survivors.set(ino, n);
    }
    vol.nodes = survivors;

    this.#generation++;
    this.#claims.clear();
    this.#crashes++;
    this.#boot = `sim-boot-${++bootCounter}`;
    this.#frozen = false;
    this.#armedAt = undefined;
  }

  /** A deep copy of the file system's state (not its handles, counters, hook or power state). */
  clone(): CrashFileSystem {
    const c = new CrashFileSystem({ sectorSize: this.sectorSize, tearWithinSector: this.tearWithinSector, model: this.model });
    c.#vol = this.#vol.clone();
    c.#boot = this.#boot;
    return c;
  }

  /** A new id at each crash(): the simulated machine rebooted, and its page cache is gone. */
  bootId(): string {
    return this.#boot;
  }

  /** A claim is a read-write handle that counts on its inode until closed (or until a crash). */
  claim(path: string): FileHandle {
    const h = this.open(path, "rw");
    const ino = this.#inoAt(path);
    if (ino === undefined) return h; // unreachable: open found the file
    const generation = this.#generation;
    this.#claims.set(ino, (this.#claims.get(ino) ?? 0) + 1);
    let open = true;
    return {
      path: h.path,
      read: (b, o, l, p) => h.read(b, o, l, p),
      write: (b, o, l, p) => h.write(b, o, l, p),
      sync: () => h.sync(),
      syncAsync: () => h.syncAsync(),
      size: () => h.size(),
      truncate: (n) => h.truncate(n),
      close: () => {
        if (open && generation === this.#generation) {
          const n = (this.#claims.get(ino) ?? 1) - 1;
          if (n > 0) this.#claims.set(ino, n);
          else this.#claims.delete(ino);
        }
        open = false;
        h.close();
      },
    };
  }

  isClaimed(path: string): boolean | undefined {
    return this.#call("stat", path, () => {
      const ino = this.#inoAt(path);
      return ino !== undefined && (this.#claims.get(ino) ?? 0) > 0;
    });
  }

  #inoAt(path: string): number | undefined {
    const n = this.#lookup(this.#norm(path), "stat");
    return n?.kind === "file" ? n.ino : undefined;
  }

  /** A copy that has crashed with this seed: the usual way to try many seeds from one run. */
  crashedCopy(seed: number, options: CrashOptions = {}): CrashFileSystem {
    const c = this.clone();
    c.crash(seed, options);
    return c;
  }

  /** A copy holding only what is durable now (what any crash keeps at least). */
  snapshotDurable(): CrashFileSystem {
    return this.crashedCopy(0, { model: "dropAll" });
  }

  /** Paths of every file and directory in the current namespace, sorted (for tests and debugging). */
  paths(): string[] {
    const out: string[] = [];
    const walk = (dir: DirNode, prefix: string): void => {
      for (const [name, ino] of dir.current) {
        const p = `${prefix}/${name}`;
        out.push(p);
        const n = this.#vol.nodes.get(ino);
        if (n?.kind === "dir") walk(n, p);
      }
    };
    walk(this.#vol.dir(ROOT), "");
    return out.sort();
  }

  // --- call plumbing --------------------------------------------------------------------------------

  #call<T>(kind: CallKind, path: string, fn: () => T): T {
    this.#calls++;
    this.#counts[kind]++;
    const call = this.#calls;
    this.#last = { call, kind, path };
    this.onCall?.({ kind, call, kindCall: this.#counts[kind], path });
    if (this.#frozen) throw new SimulatedCrash(call, kind, path);
    let performThenCrash = false;
    if (this.#armedAt !== undefined && call >= this.#armedAt) {
      this.#frozen = true;
      this.#armedAt = undefined;
      if (!this.#armedPerform) throw new SimulatedCrash(call, kind, path);
      performThenCrash = true;
    }
    const result = fn();
    if (performThenCrash) throw new SimulatedCrash(call, kind, path);
    return result;
  }

  #norm(path: string): string {
    return posix.resolve("/", path);
  }

  /** The node at a normalised path, or undefined; ENOTDIR if a parent component is a file. */
  #lookup(p: string, syscall: string): Node | undefined {
    let node: Node = this.#vol.dir(ROOT);
    for (const part of p.split("/")) {
      if (part === "") continue;
      if (node.kind !== "dir") throw errnoError("ENOTDIR", syscall, p);
      const ino = node.current.get(part);
      if (ino === undefined) return undefined;
      node = this.#vol.nodes.get(ino)!;
    }
    return node;
  }

  /** The existing parent directory of a normalised path, and the last component. */
  #parent(p: string, syscall: string): { dir: DirNode; name: string } {
    const name = posix.basename(p);
    if (name === "") throw errnoError("EINVAL", syscall, p, "the root has no parent");
    const parent = this.#lookup(posix.dirname(p), syscall);
    if (!parent) throw errnoError("ENOENT", syscall, p);
    if (parent.kind !== "dir") throw errnoError("ENOTDIR", syscall, p);
    return { dir: parent, name };
  }

  #unlink(dir: DirNode, name: string): void {
    this.#vol.record([{ dir: dir.ino, name, ino: undefined }], undefined, false);
  }

  /** The entry at normalised path `p` (its parent directory, name and inode); ENOENT naming `path` if there is none. */
  #entry(p: string, syscall: string, path: string): { src: { dir: DirNode; name: string }; ino: number } {
    const src = this.#parent(p, syscall);
    const ino = src.dir.current.get(src.name);
    if (ino === undefined) throw errnoError("ENOENT", syscall, path);
    return { src, ino };
  }

    #removeTree(dir: DirNode, name: string): void {
    const ino = dir.current.get(name);
    if (ino === undefined) return;
    const node = this.#vol.nodes.get(ino)!;
    if (node.kind === "dir") for (const child of [...node.current.keys()].sort()) this.#removeTree(node, child);
    this.#unlink(dir, name);
  }

  // --- FileSystem -----------------------------------------------------------------------------------

  open(path: string, mode: OpenMode): FileHandle {
    return this.#call("open", path, () => {
      const p = this.#norm(path);
      const existing = this.#lookup(p, "open");
      if (existing) {
        if (mode === "createExclusive") throw errnoError("EEXIST", "open", path);
        if (existing.kind === "dir") throw errnoError("EISDIR", "open", path);
        return new CrashFileHandle(this.#host, path, existing, mode !== "r");
      }
      if (mode === "r" || mode === "rw") throw errnoError("ENOENT", "open", path);
      const { dir, name } = this.#parent(p, "open");
      const ino = this.#vol.nextIno++;
      const now = this.#vol.tick();
      const f: FileNode = {
        kind: "file",
        ino,
        durable: new PagedBytes(),
        durableSize: 0,
        current: new PagedBytes(),
        currentSize: 0,
        dirty: new Set(),
        log: [],
        mtimeMs: now,
      };
      this.#vol.nodes.set(ino, f);
      this.#vol.record([{ dir: dir.ino, name, ino }], undefined, false);
      return new CrashFileHandle(this.#host, path, f, true);
    });
  }

  stat(path: string): FileStat | undefined {
    return this.#call("stat", path, () => {
      const n = this.#lookup(this.#norm(path), "stat");
      if (!n) return undefined;
      return { size: n.kind === "file" ? n.currentSize : 0, isDirectory: n.kind === "dir", mtimeMs: n.mtimeMs };
    });
  }

  mkdir(path: string): void {
    this.#call("mkdir", path, () => {
      const p = this.#norm(path);
      let dir = this.#vol.dir(ROOT);
      const parts = p.split("/").filter((s) => s !== "");
      parts.forEach((part, i) => {
        const ino = dir.current.get(part);
        if (ino !== undefined) {
          const n = this.#vol.nodes.get(ino)!;
          if (n.kind !== "dir") throw errnoError(i === parts.length - 1 ? "EEXIST" : "ENOTDIR", "mkdir", path);
          dir = n;
          return;
        }
        const created: DirNode = { kind: "dir", ino: this.#vol.nextIno++, current: new Map(), durable: new Map(), mtimeMs: this.#vol.tick() };
        this.#vol.nodes.set(created.ino, created);
        this.#vol.record([{ dir: dir.ino, name: part, ino: created.ino }], created.ino, false);
        dir = created;
      });
    });
  }

  list(dir: string): string[] {
    return this.#call("list", dir, () => {
      const n = this.#lookup(this.#norm(dir), "scandir");
      if (!n) throw errnoError("ENOENT", "scandir", dir);
      if (n.kind !== "dir") throw errnoError("ENOTDIR", "scandir", dir);
      return [...n.current.keys()].sort();
    });
  }

  rename(from: string, to: string): void {
    this.#call("rename", from, () => {
      const pf = this.#norm(from);
      const pt = this.#norm(to);
      const { src, ino } = this.#entry(pf, "rename", from);
      if (pf === pt) return;
      const node = this.#vol.nodes.get(ino)!;
      if (node.kind === "dir" && pt.startsWith(`${pf}/`)) throw errnoError("EINVAL", "rename", from, `cannot move a directory into itself (${to})`);
      const dst = this.#parent(pt, "rename");
      const targetIno = dst.dir.current.get(dst.name);
      if (targetIno !== undefined) {
        const target = this.#vol.nodes.get(targetIno)!;
        if (node.kind === "file" && target.kind === "dir") throw errnoError("EISDIR", "rename", to);
        if (node.kind === "dir" && target.kind === "file") throw errnoError("ENOTDIR", "rename", to);
        if (target.kind === "dir" && target.current.size > 0) throw errnoError("ENOTEMPTY", "rename", to);
      }
      this.#vol.record(
        [
          { dir: src.dir.ino, name: src.name, ino: undefined },
          { dir: dst.dir.ino, name: dst.name, ino },
        ],
        undefined,
        node.kind === "dir",
      );
    });
  }

  link(from: string, to: string): void {
    this.#call("link", from, () => {
      const { ino } = this.#entry(this.#norm(from), "link", from);
      if (this.#vol.nodes.get(ino)!.kind === "dir") throw errnoError("EPERM", "link", from, "a directory cannot be hard-linked");
      const dst = this.#parent(this.#norm(to), "link");
      if (dst.dir.current.has(dst.name)) throw errnoError("EEXIST", "link", to);
      this.#vol.record([{ dir: dst.dir.ino, name: dst.name, ino }], undefined, false);
    });
  }

  remove(path: string): void {
    this.#call("remove", path, () => {
      const p = this.#norm(path);
      let n: Node | undefined;
      try {
        n = this.#lookup(p, "unlink");
      } catch {
        return; // like rmSync with force: a path through a file is simply missing
      }
      if (!n) return;
      if (n.kind === "dir") throw errnoError("EISDIR", "unlink", path, "use removeDir");
      const { dir, name } = this.#parent(p, "unlink");
      this.#unlink(dir, name);
    });
  }

  removeDir(path: string): void {
    this.#call("removeDir", path, () => {
      const p = this.#norm(path);
      let n: Node | undefined;
      try {
        n = this.#lookup(p, "rmdir");
      } catch {
        return;
      }
      if (!n) return;
      if (p === "/") {
        const root = this.#vol.dir(ROOT);
        for (const child of [...root.current.keys()].sort()) this.#removeTree(root, child);
        return;
      }
      const { dir, name } = this.#parent(p, "rmdir");
      this.#removeTree(dir, name);
    });
  }

  syncDir(path: string): void {
    this.#call("syncDir", path, () => {
      const n = this.#lookup(this.#norm(path), "fsync");
      if (!n) throw errnoError("ENOENT", "open", path);
      if (n.kind === "file") return syncFile(n, this.sectorSize);
      this.#vol.commitDir(n.ino);
      this.#vol.collect();
    });
  }

  readFile(path: string): Uint8Array {
    return this.#call("readFile", path, () => {
      const n = this.#lookup(this.#norm(path), "open");
      if (!n) throw errnoError("ENOENT", "open", path);
      if (n.kind === "dir") throw errnoError("EISDIR", "read", path);
      const out = new Uint8Array(n.currentSize);
      n.current.read(0, out, 0, n.currentSize);
      return out;
    });
  }
}
