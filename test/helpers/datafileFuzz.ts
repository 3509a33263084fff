/**
 * datafileFuzz: damage a closed data.keel in one random way and check that the engine reports it
 * (KeelError CORRUPT naming the page) or reads back exactly the right state, never a wrong value,
 * never another kind of exception. Used by test/fuzz/datafile.test.ts, in a worker thread so that a
 * hang is caught by a watchdog (see datafileWorker.ts).
 *
 * The fixture: a database at 1024-byte pages with a few hundred keys over three sub-databases,
 * overflow values, a free list, built by a few commits; then a last commit that changes many keys.
 * "last" is the state of that last commit, "prev" the one before. Damage to the newest meta page
 * (and only that) may make open fall back to the other meta slot: then the state must be exactly
 * "prev" (its pages are intact: the last commit could not overwrite them, I1).
 *
 * Kinds of damage: bit flips, a run of random bytes, truncation, a zeroed page, a page of garbage,
 * another page copied over one (a misdirected write), a page reverted to its content before the last
 * commit (a lost write). "forged" kinds rewrite a page and recompute its checksum (a bug or an
 * attacker, not disk damage): there only the absence of untyped errors and hangs is checked.
 */
import assert from "node:assert/strict";
import { openSync, KeelError, type Database } from "../../src/index.js";
import { CrashFileSystem } from "../../src/io/CrashFileSystem.js";
import { probeMeta } from "../../src/pager/Meta.js";
import { readHeader, seal } from "../../src/pager/PageCodec.js";
import { PageType } from "../../src/pager/PageLayout.js";
import { cloneState, sortedEntries, type DbState } from "./dbModel.js";
import { Rng } from "./rng.js";
import { applyStep, bulkStep, genStep, keyUniverse, runStepOk, type Op, type Step, type WorkloadOptions } from "./workload.js";

export const DIR = "/db";
export const DATA = "/db/data.keel";
export const PAGE = 1024;
const WO: WorkloadOptions = { pageSize: PAGE, keySpace: 220, bigValues: 0.15 };

export interface Fixture {
  fs: CrashFileSystem;
  last: DbState;
  prev: DbState;
  image: Buffer;
  prevImage: Buffer;
  newestSlot: 0 | 1;
  universe: Map<string, string[]>;
}

function fileImage(fs: CrashFileSystem): Buffer {
  return Buffer.from(fs.readFile(DATA));
}

export async function buildFixture(seed: number): Promise<Fixture> {
  const rng = new Rng(seed);
  const fs = new CrashFileSystem();
  fs.mkdir(DIR);
  const db = openSync(DIR, { wal: false, fs, pageSize: PAGE });
  let state: DbState = new Map([["", new Map()]]);
  const steps: Step[] = [bulkStep(rng, WO, 380)];
  for (const st of steps) {
    await runStepOk(db, st);
    state = applyStep(state, st);
  }
  for (let i = 0; i < 12; i++) {
    const st = genStep(rng, state, WO);
    if (st.kind === "group" && st.parts.some((p) => p.kind === "drop" || p.kind === "clear")) continue;
    await runStepOk(db, st);
    state = applyStep(state, st);
  }
  const prev = cloneState(state);
  const prevImage = fileImage(fs);
  // The last commit changes many keys of every sub-database, so that "prev" and "last" differ
  // wherever a read lands.
  const ops: Op[] = [];
  for (const [name, m] of state) {
    const keys = [...m.keys()];
    for (let i = 0; i < keys.length; i += 3) ops.push({ type: "put", db: name, key: keys[i]!, value: name === "bin" ? rng.bytes(rng.int(900)) : rng.text(rng.int(900)) });
    for (let i = 1; i < keys.length; i += 11) ops.push({ type: "remove", db: name, key: keys[i]! });
  }
  ops.push({ type: "put", db: "", key: "only-in-last", value: "new" });
  const lastStep: Step = { kind: "group", parts: [{ kind: "txn", ops, abort: false, async: false }] };
  await runStepOk(db, lastStep);
  const last = applyStep(state, lastStep);
  await db.close();
  const image = fileImage(fs);
  const m0 = probeMeta(image, 0);
  const m1 = probeMeta(image.subarray(PAGE), 1);
  assert.ok(m0.ok && m1.ok, "fixture: both metas valid");
  const newestSlot: 0 | 1 = m0.meta.txn > m1.meta.txn ? 0 : 1;
  const universe = keyUniverse(WO);
  for (const [name, keys] of universe) if (name === "") keys.push("only-in-last");
  return { fs, last, prev, image, prevImage, newestSlot, universe };
}

export type Outcome = "intact" | "corrupt-open" | "corrupt-read" | "fell-back" | "forged-ok" | "forged-error";

export const KINDS = ["bits", "bytes", "truncate", "zero-page", "garbage-page", "misdirect", "lost-write", "forged-page", "forged-meta"] as const;
export type Kind = (typeof KINDS)[number];

interface Damage {
  kind: Kind;
  image: Buffer;
  /** Byte ranges [from, to) that differ from the original (truncation: the cut part). */
  ranges: Array<[number, number]>;
  what: string;
}

function pagesOf(img: Buffer): number {
  return Math.floor(img.length / PAGE);
}

function differs(a: Buffer, b: Buffer): boolean {
  return !a.equals(b);
}

export function damage(fx: Fixture, rng: Rng, kind: Kind): Damage | null {
  const src = fx.image;
  const img = Buffer.from(src);
  const size = img.length;
  const nPages = pagesOf(img);
  const page = (p: number) => img.subarray(p * PAGE, (p + 1) * PAGE);
  switch (kind) {
    case "bits": {
      const n = rng.range(1, 8);
      const offs = new Set<number>();
      const inMeta = rng.bool(0.25);
      while (offs.size < n) offs.add((inMeta ? rng.int(2 * PAGE) : rng.int(size)) * 8 + rng.int(8));
      const ranges: Array<[number, number]> = [];
      for (const bit of offs) {
        const off = bit >> 3;
        img[off]! ^= 1 << (bit & 7);
        ranges.push([off, off + 1]);
      }
      return { kind, image: img, ranges, what: `flip bits ${[...offs].map((b) => `${b >> 3}.${b & 7}`).join(",")}` };
    }
    case "bytes": {
      const len = rng.range(1, 32);
      const off = rng.int(size - len);
      const fresh = rng.bytes(len);
      if (!differs(fresh, img.subarray(off, off + len))) return null;
      fresh.copy(img, off);
      return { kind, image: img, ranges: [[off, off + len]], what: `overwrite ${len} bytes at ${off}` };
    }
    case "truncate": {
      const len = rng.bool(0.5) ? rng.int(nPages) * PAGE : rng.int(size);
      return { kind, image: img.subarray(0, len), ranges: [[len, size]], what: `truncate to ${len} of ${size} bytes` };
    }
    case "zero-page":
    case "garbage-page": {
      const p = rng.int(nPages);
      const fresh = kind === "zero-page" ? Buffer.alloc(PAGE) : rng.bytes(PAGE);
      if (!differs(fresh, page(p))) return null;
      fresh.copy(img, p * PAGE);
      return { kind, image: img, ranges: [[p * PAGE, (p + 1) * PAGE]], what: `${kind === "zero-page" ? "zero" : "garbage over"} page ${p}` };
    }
    case "misdirect": {
      const p = rng.int(nPages);
      const q = rng.int(nPages);
      if (p === q || !differs(page(p), page(q))) return null;
      Buffer.from(page(q)).copy(img, p * PAGE);
      return { kind, image: img, ranges: [[p * PAGE, (p + 1) * PAGE]], what: `page ${q} written over page ${p}` };
    }
    case "lost-write": {
      const changed: number[] = [];
      for (let p = 0; p < Math.min(nPages, pagesOf(fx.prevImage)); p++) {
        if (differs(page(p), fx.prevImage.subarray(p * PAGE, (p + 1) * PAGE))) changed.push(p);
      }
      if (changed.length === 0) return null;
      const p = rng.pick(changed);
      fx.prevImage.copy(img, p * PAGE, p * PAGE, (p + 1) * PAGE);
      return { kind, image: img, ranges: [[p * PAGE, (p + 1) * PAGE]], what: `page ${p} reverted to its content before the last commit` };
    }
    case "forged-page":
    case "forged-meta": {
      const p = kind === "forged-meta" ? rng.int(2) : 2 + rng.int(nPages - 2);
      const pg = page(p);
      const n = rng.range(1, 6);
      for (let i = 0; i < n; i++) {
        // Header fields and the first entries are where decoders trust lengths and numbers.
        const off = rng.bool(0.6) ? rng.int(160) : rng.int(PAGE);
        if (off >= 16 && off < 20) continue; // the checksum itself: resealed below
        pg[off] = rng.bool(0.5) ? rng.int(256) : pg[off]! ^ (1 << rng.int(8));
      }
      const h = readHeader(pg);
      if (h.type === PageType.Overflow || h.type === PageType.FreeList) {
        // A run's checksum covers the whole run; reseal only single pages.
        if (h.aux1 !== 1) return null;
      }
      seal(pg);
      if (!differs(pg, src.subarray(p * PAGE, (p + 1) * PAGE))) return null;
      return { kind, image: img, ranges: [[p * PAGE, (p + 1) * PAGE]], what: `${kind === "forged-meta" ? "meta" : ""}page ${p} rewritten and resealed` };
    }
  }
}

function overlaps(ranges: Array<[number, number]>, from: number, to: number): boolean {
  return ranges.some(([a, b]) => a < to && from < b);
}

function writeImage(fs: CrashFileSystem, img: Buffer): void {
  const f = fs.open(DATA, "rw");
  try {
    f.truncate(img.length);
    if (img.length > 0) f.write(img, 0, img.length, 0);
    f.sync();
  } finally {
    f.close();
  }
}

class TrialFailure extends Error {}

function isCorrupt(e: unknown, what: string): e is KeelError {
  if (!(e instanceof KeelError)) throw new TrialFailure(`${what}: threw a non-KeelError: ${e instanceof Error ? e.stack : String(e)}`);
  if (e.code !== "CORRUPT") throw new TrialFailure(`${what}: threw KeelError ${e.code} (not CORRUPT): ${e.message}`);
  if (typeof e.details.page !== "number") throw new TrialFailure(`${what}: CORRUPT without details.page: ${e.message} ${JSON.stringify(e.details)}`);
  return true;
}

/** Read `expected` back: each value right or CORRUPT. Returns whether any read reported CORRUPT. */
function readBack(db: Database, expected: DbState, universe: Map<string, string[]>, what: string): boolean {
  let corrupt = false;
  const names = new Set([...expected.keys(), ...universe.keys()]);
  for (const name of names) {
    const m = expected.get(name) ?? new Map<string, unknown>();
    const sub = name === "" ? db : db.openDB(name);
    const want = sortedEntries(m);
    for (const reverse of [false, true]) {
      const list = reverse ? want.slice().reverse() : want;
      let i = 0;
      try {
        for (const e of sub.getRange({ reverse })) {
          if (i >= list.length) throw new TrialFailure(`${what}: ${reverse ? "reverse " : ""}range of ${JSON.stringify(name)} returned an extra entry ${String(e.key)}`);
          assert.deepEqual(e, list[i], `${what}: ${reverse ? "reverse " : ""}range of ${JSON.stringify(name)}, entry ${i}`);
          i++;
        }
        if (i !== list.length) throw new TrialFailure(`${what}: ${reverse ? "reverse " : ""}range of ${JSON.stringify(name)} ended after ${i} of ${list.length} entries`);
      } catch (e) {
        if (e instanceof TrialFailure || e instanceof assert.AssertionError) throw e;
        if (isCorrupt(e, `${what}: range of ${JSON.stringify(name)}`)) corrupt = true;
      }
    }
    for (const key of new Set([...(universe.get(name) ?? []), ...m.keys()])) {
      try {
        assert.deepEqual(sub.get(key), m.get(key), `${what}: get(${key}) in ${JSON.stringify(name)}`);
      } catch (e) {
        if (e instanceof assert.AssertionError) throw e;
        if (isCorrupt(e, `${what}: get(${key}) in ${JSON.stringify(name)}`)) corrupt = true;
      }
    }
  }
  return corrupt;
}

/** Any exception must be a KeelError (forged pages: the checksum no longer protects the values). */
function readAnything(db: Database, what: string): boolean {
  let failed = false;
  const names = ["", ...(() => {
    try {
      return db.listDBs();
    } catch (e) {
      if (!(e instanceof KeelError)) throw new TrialFailure(`${what}: listDBs threw ${String(e)}`);
      return [];
    }
  })()];
  for (const name of names) {
    for (const reverse of [false, true]) {
      try {
        let n = 0;
        for (const e of (name === "" ? db : db.openDB(name)).getRange({ reverse })) {
          if (++n > 100_000) throw new TrialFailure(`${what}: range of ${JSON.stringify(name)} does not end`);
          (name === "" ? db : db.openDB(name)).get(e.key as string);
        }
      } catch (e) {
        if (e instanceof TrialFailure) throw e;
        if (!(e instanceof KeelError)) throw new TrialFailure(`${what}: threw a non-KeelError: ${e instanceof Error ? e.stack : String(e)}`);
        failed = true;
      }
    }
  }
  return failed;
}

export async function runTrial(fx: Fixture, trial: number): Promise<{ outcome: Outcome; kind: Kind }> {
  const rng = new Rng(trial * 7919 + 17);
  let d: Damage | null = null;
  let kind: Kind = "bits";
  for (let attempt = 0; !d; attempt++) {
    kind = rng.pick(KINDS);
    d = damage(fx, rng, kind);
    if (attempt > 50) throw new Error("no damage could be made");
  }
  const what = `trial ${trial} (${d.what})`;
  const fs = fx.fs.clone();
  writeImage(fs, d.image);
  const forged = kind === "forged-page" || kind === "forged-meta";
  const newestHit = overlaps(d.ranges, fx.newestSlot * PAGE, (fx.newestSlot + 1) * PAGE);
  const expected = newestHit ? fx.prev : fx.last;
  let db: Database;
  try {
    db = openSync(DIR, { wal: false, fs });
  } catch (e) {
    if (forged) {
      if (!(e instanceof KeelError)) throw new TrialFailure(`${what}: open threw a non-KeelError: ${e instanceof Error ? e.stack : String(e)}`);
      return { outcome: "forged-error", kind };
    }
    isCorrupt(e, `${what}: open`);
    return { outcome: "corrupt-open", kind };
  }
  try {
    if (forged) return { outcome: readAnything(db, what) ? "forged-error" : "forged-ok", kind };
    const corrupt = readBack(db, expected, fx.universe, newestHit ? `${what} [newest meta damaged: expecting the previous commit]` : what);
    // A write on the damaged file: it succeeds (and reads back) or reports CORRUPT.
    try {
      db.transactionSync((tx) => tx.put("fuzz-write", "w"));
      assert.equal(db.get("fuzz-write"), "w", `${what}: a write after the damage does not read back`);
    } catch (e) {
      if (e instanceof assert.AssertionError) throw e;
      isCorrupt(e, `${what}: a write`);
    }
    return { outcome: corrupt ? "corrupt-read" : newestHit ? "fell-back" : "intact", kind };
  } finally {
    await db.close().catch(() => {});
  }
}

/**
 * A forged (resealed) branch page whose first child is the page itself, with its own txn: every
 * check a parent's reference gets (page number, type, txn, checksum) passes, and a descent that
 * trusts the tree's shape loops forever. Reads must end (CORRUPT) instead of hanging (I6).
 */
export async function runCycleTrial(fx: Fixture): Promise<string> {
  const img = Buffer.from(fx.image);
  // The root of the default database (a branch: the fixture's tree has several levels).
  const probe = openSync(DIR, { wal: false, fs: fx.fs.clone() });
  const tree = probe.engine.head.dbs.get("")!.tree;
  await probe.close();
  const target = typeof tree.root === "number" ? tree.root : -1;
  assert.ok(target >= 2 && tree.depth >= 2, `the fixture's default tree has no branch root (depth ${tree.depth})`);
  assert.equal(readHeader(img.subarray(target * PAGE, (target + 1) * PAGE)).type, PageType.Branch);
  const pg = img.subarray(target * PAGE, (target + 1) * PAGE);
  const h = readHeader(pg);
  pg.writeUInt32LE(target, 32);
  pg.writeUInt32LE(h.txn % 0x100000000, 36);
  seal(pg);
  const fs = fx.fs.clone();
  writeImage(fs, img);
  let db: Database;
  try {
    db = openSync(DIR, { wal: false, fs });
  } catch (e) {
    if (e instanceof KeelError) return `open: KeelError ${e.code}`;
    throw e;
  }
  try {
    const failed = readAnything(db, `branch page ${target} made its own first child`);
    return failed ? "reads: KeelError" : "reads: no error";
  } finally {
    await db.close().catch(() => {});
  }
}
