/**
 * CrashVolume: the durable-vs-volatile model behind CrashFileSystem: files as sector-tracked
 * bytes with their unsynced writes kept apart, directories with their not-yet-fsynced entry
 * changes, and the seeded resolution of a power loss (each unsynced sector dropped, kept or torn;
 * each unsynced directory change kept or lost, renames never both or neither).
 *
 * Invariant: synced data and fsynced directory entries always survive crash(); everything else
 * is decided by the seed alone, so a seed replays exactly.
 */
import { PagedBytes } from "./PagedBytes.js";

export type CrashModel = "sectors" | "ordered" | "keepAll" | "dropAll";

export type FileWriteOp = { type: "write"; position: number; data: Uint8Array } | { type: "truncate"; length: number };

export interface FileNode {
  kind: "file";
  ino: number;
  durable: PagedBytes;
  durableSize: number;
  current: PagedBytes;
  currentSize: number;
  /** Sector indices whose volatile bytes may differ from the durable ones. */
  dirty: Set<number>;
  /** Writes and truncations since the last sync, in issue order (for the "ordered" model). */
  log: FileWriteOp[];
  mtimeMs: number;
}

export interface DirNode {
  kind: "dir";
  ino: number;
  current: Map<string, number>;
  durable: Map<string, number>;
  mtimeMs: number;
}

export type Node = FileNode | DirNode;

export interface EntrySet {
  dir: number;
  name: string;
  ino: number | undefined;
}

/** One pending directory operation: entry assignments applied together, with its dependency keys. */
export interface DirOp {
  sets: EntrySet[];
  /** Keys whose earlier writers this operation depends on (existence of the directories it changes). */
  reads: string[];
  /** Keys it changes: its entries, and the existence of a directory it creates. */
  writes: string[];
  barrier: boolean;
}

export const ROOT = 1;
const entryKey = (dir: number, name: string): string => `${dir}/${name}`;
const inoKey = (ino: number): string => `#${ino}`;

/** mulberry32 seeded through a murmur3-style mix of (seed, stream): tiny, fast and reproducible. */
export class Rng {
  #s: number;

  constructor(seed: number, stream: number) {
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 0x1_0000_0000) >>> 0;
    let h = Math.imul(lo ^ 0x9e3779b9, 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13) ^ hi, 0xc2b2ae35);
    h = Math.imul(h ^ (h >>> 16) ^ Math.imul(stream, 0x27d4eb2f), 0x165667b1);
    this.#s = (h ^ (h >>> 15)) >>> 0;
  }

  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/** Per file (and for the directory operations), how a "sectors" crash treats the pending state. */
export type Regime = "keep" | "drop" | "mixed";
export function pickRegime(rng: Rng): Regime {
  // Whole-file outcomes are the common real cases (the OS flushed everything, or nothing); mixed
  // outcomes are the adversarial ones. Both must be reachable in a few seeds.
  const r = rng.next();
  return r < 0.25 ? "keep" : r < 0.5 ? "drop" : "mixed";
}

/** The whole simulated disk: nodes, namespace and pending directory operations. Cloneable. */
export class Volume {
  nodes = new Map<number, Node>();
  pending: DirOp[] = [];
  nextIno = ROOT + 1;
  clock = 1_700_000_000_000;

  constructor() {
    this.nodes.set(ROOT, { kind: "dir", ino: ROOT, current: new Map(), durable: new Map(), mtimeMs: this.clock });
  }

  tick(): number {
    return ++this.clock;
  }

  clone(): Volume {
    const v = new Volume();
    v.nodes.clear();
    for (const [ino, n] of this.nodes) {
      if (n.kind === "dir") v.nodes.set(ino, { ...n, current: new Map(n.current), durable: new Map(n.durable) });
      else v.nodes.set(ino, { ...n, durable: n.durable.clone(), current: n.current.clone(), dirty: new Set(n.dirty), log: [...n.log] });
    }
    v.pending = [...this.pending];
    v.nextIno = this.nextIno;
    v.clock = this.clock;
    return v;
  }

  dir(ino: number): DirNode {
    const n = this.nodes.get(ino);
    if (!n || n.kind !== "dir") throw new Error(`CrashFileSystem internal error: inode ${ino} is not a directory`);
    return n;
  }

  /** Apply an operation to the current namespace and queue it for durability. */
  record(sets: EntrySet[], created: number | undefined, barrier: boolean): void {
    const now = this.tick();
    for (const s of sets) {
      const d = this.dir(s.dir);
      if (s.ino === undefined) d.current.delete(s.name);
      else d.current.set(s.name, s.ino);
      d.mtimeMs = now;
    }
    const writes = sets.map((s) => entryKey(s.dir, s.name));
    if (created !== undefined) writes.push(inoKey(created));
    const reads = [...new Set(sets.map((s) => inoKey(s.dir)))];
    this.pending.push({ sets, reads, writes, barrier });
  }

  applyDurable(op: DirOp): void {
    for (const s of op.sets) {
      const d = this.dir(s.dir);
      if (s.ino === undefined) d.durable.delete(s.name);
      else d.durable.set(s.name, s.ino);
    }
  }

  /** Commit the pending operations on entries of `dir`, with everything they depend on. */
  commitDir(dir: number): void {
    if (this.pending.length === 0) return;
    const needed = new Array<boolean>(this.pending.length).fill(false);
    const keys = new Set<string>();
    let laterNeeded = false;
    let needAll = false;
    for (let i = this.pending.length - 1; i >= 0; i--) {
      const op = this.pending[i]!;
      const need =
        needAll ||
        (op.barrier && laterNeeded) ||
        op.sets.some((s) => s.dir === dir) ||
        op.writes.some((k) => keys.has(k));
      if (!need) continue;
      needed[i] = true;
      laterNeeded = true;
      if (op.barrier) needAll = true;
      for (const k of op.reads) keys.add(k);
      for (const k of op.writes) keys.add(k);
    }
    const rest: DirOp[] = [];
    this.pending.forEach((op, i) => {
      if (needed[i]) this.applyDurable(op);
      else rest.push(op);
    });
    this.pending = rest;
  }

  /** Forget nodes that no namespace (current, durable or pending) can reach any more. */
  collect(): void {
    const seen = new Set<number>([ROOT]);
    const stack = [ROOT];
    for (const op of this.pending) {
      for (const s of op.sets) {
        for (const ino of [s.dir, s.ino]) {
          if (ino !== undefined && !seen.has(ino)) {
            seen.add(ino);
            stack.push(ino);
          }
        }
      }
    }
    while (stack.length > 0) {
      const n = this.nodes.get(stack.pop()!);
      if (!n || n.kind !== "dir") continue;
      for (const map of [n.current, n.durable]) {
        for (const ino of map.values()) {
          if (!seen.has(ino)) {
            seen.add(ino);
            stack.push(ino);
          }
        }
      }
    }
    for (const ino of [...this.nodes.keys()]) if (!seen.has(ino)) this.nodes.delete(ino);
  }
}

/** Make the file's volatile image durable (fdatasync). */
export function syncFile(f: FileNode, sector: number): void {
  if (f.dirty.size > 0) {
    const sectors = [...f.dirty].sort((a, b) => a - b);
    let i = 0;
    while (i < sectors.length) {
      // Copy runs of consecutive sectors at once: appends dirty long runs.
      let j = i;
      while (j + 1 < sectors.length && sectors[j + 1] === sectors[j]! + 1) j++;
      f.durable.copyFrom(f.current, sectors[i]! * sector, (j - i + 1) * sector);
      i = j + 1;
    }
    f.dirty.clear();
  }
  if (f.durableSize > f.currentSize) f.durable.zeroFrom(f.currentSize);
  f.durableSize = f.currentSize;
  f.log = [];
}

export function markDirty(f: FileNode, from: number, to: number, sector: number): void {
  const last = Math.ceil(to / sector);
  for (let s = Math.floor(from / sector); s < last; s++) f.dirty.add(s);
}

/** Resolve one file's unsynced state into its post-crash durable image. */
export function crashFile(f: FileNode, rng: Rng, model: CrashModel, tear: boolean, sector: number): void {
  if (model === "keepAll") {
    syncFile(f, sector);
  } else if (model === "dropAll") {
    // The durable image is the answer.
  } else if (model === "ordered") {
    const regime = pickRegime(rng);
    const k = regime === "keep" ? f.log.length : regime === "drop" ? 0 : rng.int(f.log.length + 1);
    let size = f.durableSize;
    for (let i = 0; i <= k && i < f.log.length; i++) {
      const op = f.log[i]!;
      let length: number;
      if (op.type === "truncate") {
        if (i === k) break; // the first lost operation: a truncation is all or nothing
        if (op.length < size) f.durable.zeroFrom(op.length);
        size = op.length;
        continue;
      }
      length = op.data.length;
      if (i === k) {
        // The first lost write may have reached the disk in part, front first.
        const cut = regime === "drop" ? 0 : rng.int(length);
        length = tear ? cut : Math.max(0, Math.floor((op.position + cut) / sector) * sector - op.position);
      }
      if (length > 0) {
        f.durable.write(op.position, op.data, 0, length);
        size = Math.max(size, op.position + length);
      }
    }
    f.durableSize = size;
  } else {
    const regime = pickRegime(rng);
    let size = f.durableSize;
    if (f.currentSize !== f.durableSize) {
      const keepSize = regime === "keep" || (regime === "mixed" && rng.next() < 0.5);
      if (keepSize) size = f.currentSize;
    }
    if (regime !== "drop") {
      const sectors = [...f.dirty].sort((a, b) => a - b);
      const limit = Math.ceil(size / sector);
      for (const s of sectors) {
        if (s >= limit) break;
        let outcome: "drop" | "keep" | "tear" = "keep";
        if (regime === "mixed") {
          const r = rng.int(tear ? 3 : 2);
          outcome = r === 0 ? "drop" : r === 1 ? "keep" : "tear";
        }
        if (outcome === "keep") f.durable.copyFrom(f.current, s * sector, sector);
        else if (outcome === "tear") f.durable.copyFrom(f.current, s * sector, 1 + rng.int(sector - 1));
      }
    }
    f.durableSize = size;
  }
  f.durable.zeroFrom(f.durableSize);
  f.current = f.durable.clone();
  f.currentSize = f.durableSize;
  f.dirty.clear();
  f.log = [];
}

