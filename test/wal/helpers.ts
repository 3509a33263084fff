/**
 * Test helpers for the wal/ tests: temp directories on the real file system, a FileSystem wrapper
 * that counts and can fail or hold syncs, a seeded PRNG and random records.
 *
 * Invariants kept: every helper is deterministic for a given seed; temp directories live under
 * os.tmpdir() and are removed by `cleanup`.
 */
import * as os from "node:os";
import { join } from "node:path";
import { mkdtempSync, rmSync } from "node:fs";
import type { FileHandle, FileStat, FileSystem, OpenMode } from "../../src/io/FileSystem.js";
import { nodeFileSystem } from "../../src/io/NodeFileSystem.js";
import type { LogOp, LogRecord, NewLogRecord } from "../../src/wal/LogRecord.js";

export function tempDir(prefix = "keel-wal-"): string {
  return mkdtempSync(join(os.tmpdir(), prefix));
}

export function cleanup(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** mulberry32: small, seeded, good enough for tests. */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

export function randomOps(rng: Rng, maxOps = 4, maxBytes = 40): LogOp[] {
  const ops: LogOp[] = [];
  const n = 1 + rng.int(maxOps);
  for (let i = 0; i < n; i++) {
    const t = rng.int(10);
    const db = ["", "users", "idx:émoji✓", "a"][rng.int(4)]!;
    if (t < 6) ops.push({ type: "put", db, key: rng.bytes(1 + rng.int(maxBytes)), value: rng.bytes(rng.int(maxBytes * 2)) });
    else if (t < 8) ops.push({ type: "remove", db, key: rng.bytes(1 + rng.int(maxBytes)) });
    else if (t === 8) ops.push({ type: "createDB", db });
    else ops.push({ type: ["dropDB", "clearDB"][rng.int(2)] as "dropDB" | "clearDB", db });
  }
  return ops;
}

export function randomRecord(rng: Rng, txTime = 1_700_000_000_000): NewLogRecord {
  return { txTime: txTime + rng.int(1000), kind: "txn", ops: randomOps(rng) };
}

/** A comparable form of a record (Uint8Arrays as hex). */
export function plain(r: LogRecord | (NewLogRecord & { lsn?: number })): unknown {
  return {
    lsn: r.lsn,
    txTime: r.txTime,
    kind: r.kind ?? "txn",
    ops: r.ops.map((o) => ({
      type: o.type,
      db: o.db,
      key: o.key ? Buffer.from(o.key).toString("hex") : undefined,
      value: o.value ? Buffer.from(o.value).toString("hex") : undefined,
    })),
  };
}

export interface SyncControl {
  /** Number of sync() + syncAsync() calls on file handles. */
  syncs: number;
  syncAsyncCalls: number;
  syncSyncCalls: number;
  syncDirs: number;
  /** When set, the next sync (either kind) fails with this errno, then it is cleared. */
  failNextSync: string | undefined;
  /** When set, syncAsync waits for this promise before syncing. */
  gate: Promise<void> | undefined;
}

/** Wraps a FileSystem: counts syncs, can fail the next one or hold async syncs at a gate. */
export class CountingFileSystem implements FileSystem {
  readonly inner: FileSystem;
  readonly ctl: SyncControl = { syncs: 0, syncAsyncCalls: 0, syncSyncCalls: 0, syncDirs: 0, failNextSync: undefined, gate: undefined };

  constructor(inner: FileSystem = nodeFileSystem) {
    this.inner = inner;
  }

  #failure(path: string): Error | undefined {
    const code = this.ctl.failNextSync;
    if (code === undefined) return undefined;
    this.ctl.failNextSync = undefined;
    return Object.assign(new Error(`${code}: injected fdatasync failure, ${path}`), { code, syscall: "fdatasync", path });
  }

  open(path: string, mode: OpenMode): FileHandle {
    const h = this.inner.open(path, mode);
    const ctl = this.ctl;
    const self = this;
    return {
      path: h.path,
      read: (b, o, l, p) => h.read(b, o, l, p),
      write: (b, o, l, p) => h.write(b, o, l, p),
      sync() {
        ctl.syncs++;
        ctl.syncSyncCalls++;
        const f = self.#failure(path);
        if (f) throw f;
        h.sync();
      },
      async syncAsync() {
        ctl.syncs++;
        ctl.syncAsyncCalls++;
        if (ctl.gate) await ctl.gate;
        const f = self.#failure(path);
        if (f) throw f;
        await h.syncAsync();
      },
      size: () => h.size(),
      truncate: (n) => h.truncate(n),
      close: () => h.close(),
    };
  }
  stat(path: string): FileStat | undefined {
    return this.inner.stat(path);
  }
  mkdir(path: string): void {
    this.inner.mkdir(path);
  }
  list(dir: string): string[] {
    return this.inner.list(dir);
  }
  rename(from: string, to: string): void {
    this.inner.rename(from, to);
  }
  link(from: string, to: string): void {
    this.inner.link(from, to);
  }
  remove(path: string): void {
    this.inner.remove(path);
  }
  removeDir(path: string): void {
    this.inner.removeDir(path);
  }
  syncDir(path: string): void {
    this.ctl.syncDirs++;
    this.inner.syncDir(path);
  }
  readFile(path: string): Uint8Array {
    return this.inner.readFile(path);
  }
  bootId(): string {
    return this.inner.bootId();
  }
  claim(path: string): FileHandle {
    return this.inner.claim(path);
  }
  isClaimed(path: string): boolean | undefined {
    return this.inner.isClaimed(path);
  }
}

export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

export const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
