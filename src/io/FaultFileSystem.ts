/**
 * FaultFileSystem: a FileSystem that wraps another one and makes chosen calls fail the way a disk or
 * an OS does (EIO, ENOSPC...), so that fault tests can "fail the N-th I/O call for every N" and check
 * that the engine reports a coded error, leaves no damage and stays usable or closes cleanly.
 *
 * What it models and the invariants it keeps:
 * - Every call of the FileSystem and of the handles it returns is counted, in the one order the engine
 *   issues them: `calls` (all kinds) and per-kind counts. A failed call is still a call and is counted.
 * - A fault rule counts the calls of its kinds from the moment it is armed (on a fresh instance or
 *   after reset(), that is the global count); its n-th matching call fails. Transient: only that call.
 *   Persistent: that call and every later matching call (a dead disk, a full disk).
 * - A failed call has no effect on the wrapped file system, except: a `write` with `partialWrite` first
 *   writes a prefix of its data (a real EIO/ENOSPC can leave one), and a failed `close` still closes
 *   the wrapped handle (Linux releases the descriptor even when close reports an error).
 * - Errors look like node's (`code`, negative `errno`, `syscall`, `path`); `syncAsync` reports its
 *   fault as a rejected promise, never as a synchronous throw, as node's fdatasync callback would.
 * - The `onCall` hook runs before every call (after counting, before any fault), so a test can throw
 *   from it (for example a SimulatedCrash) to stop the engine at a chosen call.
 */
import { CALL_KINDS, type CallInfo, type CallKind, SYSCALL_OF, zeroCounts } from "./CallKind.js";
import { errnoError } from "./errnoError.js";
import type { FileHandle, FileStat, FileSystem, OpenMode } from "./FileSystem.js";

export type { CallInfo, CallKind } from "./CallKind.js";
export { CALL_KINDS } from "./CallKind.js";

export type FaultErrno = "EIO" | "ENOSPC" | "EDQUOT" | "EFBIG" | "EROFS" | "EACCES" | "EPERM";

export interface FaultOptions {
  /** The error code of the injected failure (default "EIO"). */
  errno?: FaultErrno;
  /** Which kinds of call the rule counts and fails (default: every kind). */
  kinds?: readonly CallKind[];
  /** Fail the n-th matching call and every later one (default false: only the n-th). */
  persistent?: boolean;
  /**
   * A failing write first writes a prefix of its data: `true` = the first half (rounded down),
   * a number = that many bytes (clamped to the write's length).
   */
  partialWrite?: boolean | number;
}

/** What the last injected fault hit, for test messages. */
export interface InjectedFault {
  kind: CallKind;
  call: number;
  path: string;
  errno: FaultErrno;
}

interface Fault {
  rule: Rule;
  error: NodeJS.ErrnoException;
}

interface Rule {
  n: number;
  kinds: ReadonlySet<CallKind> | undefined;
  persistent: boolean;
  errno: FaultErrno;
  partialWrite: boolean | number;
  seen: number;
}

export class FaultFileSystem implements FileSystem {
  readonly inner: FileSystem;
  /** Runs before every call; throw from it to stop the caller at that call. */
  onCall: ((info: CallInfo) => void) | undefined;
  #calls = 0;
  #counts = zeroCounts();
  #rules: Rule[] = [];
  #faults = 0;
  #lastFault: InjectedFault | undefined;

  constructor(inner: FileSystem, options: { onCall?: (info: CallInfo) => void } = {}) {
    this.inner = inner;
    this.onCall = options.onCall;
  }

  /** Number of calls counted so far (all kinds, failed ones included). */
  get calls(): number {
    return this.#calls;
  }

  callsOf(kind: CallKind): number {
    return this.#counts[kind];
  }

  /** A copy of the per-kind counts. */
  counts(): Record<CallKind, number> {
    return { ...this.#counts };
  }

  /** Number of calls made to fail so far. */
  get faultsInjected(): number {
    return this.#faults;
  }

  get lastFault(): InjectedFault | undefined {
    return this.#lastFault;
  }

  /** Fail the n-th call (1-based, counted from now) among `options.kinds`. Chainable. */
  failAt(n: number, options: FaultOptions = {}): this {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`failAt: n must be an integer >= 1, got ${n}`);
    for (const k of options.kinds ?? []) {
      if (!CALL_KINDS.includes(k)) throw new RangeError(`failAt: unknown call kind ${String(k)}`);
    }
    this.#rules.push({
      n,
      kinds: options.kinds ? new Set(options.kinds) : undefined,
      persistent: options.persistent ?? false,
      errno: options.errno ?? "EIO",
      partialWrite: options.partialWrite ?? false,
      seen: 0,
    });
    return this;
  }

  /** Fail every call of these kinds from now on. */
  failEvery(kind: CallKind | readonly CallKind[], errno: FaultErrno = "EIO", options: Pick<FaultOptions, "partialWrite"> = {}): this {
    const kinds = typeof kind === "string" ? [kind] : kind;
    return this.failAt(1, { ...options, kinds, errno, persistent: true });
  }

  /** Remove every fault rule; counters are kept. */
  clearFaults(): void {
    this.#rules = [];
  }

  /** Remove every fault rule and zero all counters (the hook is kept). */
  reset(): void {
    this.#rules = [];
    this.#calls = 0;
    this.#counts = zeroCounts();
    this.#faults = 0;
    this.#lastFault = undefined;
  }

  /**
   * Count a call, run the hook, then return the rule that makes it fail (if any). Every rule that
   * matches the kind advances, so that rules armed together count independently.
   */
  #enter(kind: CallKind, path: string): Fault | undefined {
    this.#calls++;
    this.#counts[kind]++;
    const call = this.#calls;
    this.onCall?.({ kind, call, kindCall: this.#counts[kind], path });
    let failing: Rule | undefined;
    for (const rule of this.#rules) {
      if (rule.kinds && !rule.kinds.has(kind)) continue;
      rule.seen++;
      if (!failing && (rule.seen === rule.n || (rule.persistent && rule.seen > rule.n))) failing = rule;
    }
    if (!failing) return undefined;
    this.#faults++;
    this.#lastFault = { kind, call, path, errno: failing.errno };
    return { rule: failing, error: errnoError(failing.errno, SYSCALL_OF[kind], path, `injected fault at call ${call}`) };
  }

  #guard(kind: CallKind, path: string): void {
    const fault = this.#enter(kind, path);
    if (fault) throw fault.error;
  }

  open(path: string, mode: OpenMode): FileHandle {
    this.#guard("open", path);
    const inner = this.inner.open(path, mode);
    return new FaultFileHandle(inner, (kind) => this.#enter(kind, inner.path));
  }

  stat(path: string): FileStat | undefined {
    this.#guard("stat", path);
    return this.inner.stat(path);
  }

  mkdir(path: string): void {
    this.#guard("mkdir", path);
    this.inner.mkdir(path);
  }

  list(dir: string): string[] {
    this.#guard("list", dir);
    return this.inner.list(dir);
  }

  rename(from: string, to: string): void {
    this.#guard("rename", from);
    this.inner.rename(from, to);
  }

  link(from: string, to: string): void {
    this.#guard("link", from);
    this.inner.link(from, to);
  }

  remove(path: string): void {
    this.#guard("remove", path);
    this.inner.remove(path);
  }

  removeDir(path: string): void {
    this.#guard("removeDir", path);
    this.inner.removeDir(path);
  }

  syncDir(path: string): void {
    this.#guard("syncDir", path);
    this.inner.syncDir(path);
  }

  readFile(path: string): Uint8Array {
    this.#guard("readFile", path);
    return this.inner.readFile(path);
  }

  bootId(): string {
    return this.inner.bootId();
  }

  claim(path: string): FileHandle {
    this.#guard("open", path);
    const inner = this.inner.claim(path);
    return new FaultFileHandle(inner, (kind) => this.#enter(kind, inner.path));
  }

  isClaimed(path: string): boolean | undefined {
    this.#guard("stat", path);
    return this.inner.isClaimed(path);
  }
}

class FaultFileHandle implements FileHandle {
  readonly path: string;
  #inner: FileHandle;
  #enter: (kind: CallKind) => Fault | undefined;

  constructor(inner: FileHandle, enter: (kind: CallKind) => Fault | undefined) {
    this.#inner = inner;
    this.#enter = enter;
    this.path = inner.path;
  }

  #guard(kind: CallKind): void {
    const fault = this.#enter(kind);
    if (fault) throw fault.error;
  }

  read(buffer: Uint8Array, offset: number, length: number, position: number): number {
    this.#guard("read");
    return this.#inner.read(buffer, offset, length, position);
  }

  write(buffer: Uint8Array, offset: number, length: number, position: number): void {
    const fault = this.#enter("write");
    if (!fault) return this.#inner.write(buffer, offset, length, position);
    const partial = fault.rule.partialWrite;
    const prefix = partial === true ? Math.floor(length / 2) : typeof partial === "number" ? Math.max(0, Math.min(length, Math.floor(partial))) : 0;
    if (prefix > 0) this.#inner.write(buffer, offset, prefix, position);
    throw fault.error;
  }

  sync(): void {
    this.#guard("sync");
    this.#inner.sync();
  }

  syncAsync(): Promise<void> {
    try {
      this.#guard("syncAsync");
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#inner.syncAsync();
  }

  size(): number {
    this.#guard("size");
    return this.#inner.size();
  }

  truncate(length: number): void {
    this.#guard("truncate");
    this.#inner.truncate(length);
  }

  close(): void {
    const fault = this.#enter("close");
    this.#inner.close();
    if (fault) throw fault.error;
  }
}
