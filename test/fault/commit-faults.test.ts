/**
 * Fault injection into the `wal: false` commit path and into open(), with FaultFileSystem.
 *
 * For each commit kind (one put, a group of puts, a transactionSync, a multi-page bulk transaction
 * with overflow values across sub-databases), each errno (EIO on any call; ENOSPC on the calls that
 * can run out of space: writes, syncs, truncate, create, mkdir, rename) and each persistence
 * (transient: that call only; persistent: that call and every later one), fail I/O call k of the
 * commit for k = 1, 2, ... until the commit succeeds with no fault injected. After each failure:
 *   - the promise rejects (or transactionSync throws) with KeelError IO (EIO) or FULL (ENOSPC);
 *   - the database stays open and serves the old state (while a persistent fault is still armed,
 *     each read returns the old value or fails with that same code; once cleared, every read is right);
 *   - with the fault cleared, a further commit succeeds and a reopen gives exactly old + that commit
 *     (the failed commit was rolled back, it must not come back under a later one), and the file
 *     takes more commits and reopens again (the free list is sound);
 *   - or, without a further commit: close, reopen gives the old or the new state, read back fully.
 * Backends: FaultFileSystem over a CrashFileSystem (fast, a clone of one fixture per k), and over
 * the real file system (a copy of a fixture directory per k) for a subset.
 *
 * open() under faults, on a new directory, on an existing database, and on one whose LOCK was left
 * by a dead process: it fails with KeelError IO/FULL (never an untyped error), and once the fault
 * is cleared the directory opens with its state intact. Every violation of a run is listed.
 *
 * "minimal:" tests are the smallest repros of problems these loops found, kept as regression tests.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { open, KeelError, NodeFileSystem, type Database, type FileSystem, type OpenOptions } from "../../src/index.js";
import { CrashFileSystem } from "../../src/io/CrashFileSystem.js";
import { FaultFileSystem, type CallKind, type FaultErrno, type FaultOptions } from "../../src/io/FaultFileSystem.js";
import { describeError, quietExpectedWarnings } from "../helpers/crashCheck.js";
import { canon, checkDb, matchState, readState, sub, type DbState } from "../helpers/dbModel.js";
import { Rng } from "../helpers/rng.js";
import { applyUnits, applyStep, bulkStep, genStep, keyUniverse, runStep, runStepOk, type Op, type Step, type WorkloadOptions } from "../helpers/workload.js";
import { copyDir } from "../helpers/copyDir.js";

quietExpectedWarnings();

const PAGE = 1024;
const WO: WorkloadOptions = { pageSize: PAGE, keySpace: 200, bigValues: 0.15 };
const UNIVERSE = keyUniverse(WO);
const ENOSPC_KINDS: readonly CallKind[] = ["write", "sync", "syncAsync", "truncate", "open", "mkdir", "rename"];
const CODE: Record<string, string> = { EIO: "IO", ENOSPC: "FULL" };

function faultOptions(errno: FaultErrno, persistent: boolean): FaultOptions {
  return errno === "ENOSPC" ? { errno, persistent, kinds: ENOSPC_KINDS } : { errno, persistent };
}

// ---- fixtures --------------------------------------------------------------------------------

interface Fixture {
  state: DbState;
  /** A fresh copy of the fixture: the FileSystem and the directory to open. */
  copy(): { fs: FileSystem; dir: string; done(): void };
}

/** A database with a few hundred keys, overflow values, sub-databases and a free list with pages. */
async function populate(fs: FileSystem, dir: string, seed: number): Promise<DbState> {
  const rng = new Rng(seed);
  const db = await open(dir, { wal: false, fs, pageSize: PAGE });
  let state = readState(db);
  const steps: Step[] = [bulkStep(rng, WO, 260)];
  for (let i = 0; i < 14; i++) steps.push(genStep(rng, applyStep(state, steps[0]!), WO));
  for (const s of steps) {
    await runStepOk(db, s);
    state = applyStep(state, s);
  }
  checkDb(db, state, UNIVERSE, "fixture: ");
  assert.ok(db.getStats().freePages > 0, "the fixture should have free pages");
  await db.close();
  return state;
}

async function crashFixture(seed: number): Promise<Fixture> {
  const base = new CrashFileSystem();
  const state = await populate(base, "/db", seed);
  return { state, copy: () => ({ fs: base.clone(), dir: "/db", done: () => {} }) };
}

const tempDirs: string[] = [];
function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(d);
  return d;
}

async function nodeFixture(seed: number): Promise<Fixture> {
  const root = tempDir("keel-fault-");
  const base = join(root, "base");
  const fs = new NodeFileSystem();
  const state = await populate(fs, base, seed);
  let n = 0;
  return {
    state,
    copy: () => {
      const dir = join(root, `k${n++}`);
      copyDir(base, dir);
      return { fs, dir, done: () => rmSync(dir, { recursive: true, force: true }) };
    },
  };
}

process.on("exit", () => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

// ---- commits under test ------------------------------------------------------------------------

interface CommitKind {
  name: string;
  /** The step to run against the fixture state. */
  step(state: DbState): Step;
}

const put = (db: string, key: string, value: unknown): Op => ({ type: "put", db, key, value });

const COMMITS: CommitKind[] = [
  { name: "one put", step: () => ({ kind: "group", parts: [{ kind: "ops", ops: [put("", "fault-key", "a small value")] }] }) },
  {
    name: "a group of puts and a remove",
    step: (s) => ({
      kind: "group",
      parts: [
        { kind: "ops", ops: [put("", "fault-a", "x".repeat(700)), put("users", "fault-b", "b"), { type: "remove", db: "", key: [...s.get("")!.keys()][3]! }] },
        { kind: "txn", ops: [put("bin", "fault-c", Buffer.alloc(40, 7))], abort: false, async: true },
      ],
    }),
  },
  { name: "transactionSync", step: () => ({ kind: "sync", ops: [put("idx:é✓", "fault-sync", "y".repeat(300)), put("", "fault-sync", "z")], abort: false }) },
  {
    name: "a bulk multi-page transaction",
    step: (s) => {
      const rng = new Rng(4242);
      const ops: Op[] = [];
      for (let i = 0; i < 140; i++) {
        const db = rng.pick(["", "", "users", "bin"]);
        const big = rng.bool(0.2);
        const len = big ? rng.range(700, 3000) : rng.int(80);
        ops.push(put(db, `bulk-${String(i).padStart(3, "0")}`, db === "bin" ? rng.bytes(len) : rng.text(len)));
      }
      for (const k of [...s.get("")!.keys()].slice(0, 30)) ops.push({ type: "remove", db: "", key: k });
      return { kind: "group", parts: [{ kind: "txn", ops, abort: false, async: false }] };
    },
  },
];

// ---- the loop over k -----------------------------------------------------------------------------

type Variant = "continue" | "reopen";

interface Counters {
  failures: number;
  tolerated: number;
  newAfterReopen: number;
  oldAfterReopen: number;
  partial: number;
}

function expectCode(e: unknown, errno: FaultErrno, what: string): void {
  assert.ok(e instanceof KeelError, `${what}: expected a KeelError ${CODE[errno]}, got ${describeError(e)}`);
  assert.equal(e.code, CODE[errno], `${what}: wrong code: ${describeError(e)}`);
}

/** Every read returns the value of `state`, or (while a fault is armed) fails with `code`. */
function readsUnderFault(db: Database, state: DbState, errno: FaultErrno, what: string): void {
  for (const [name, m] of state) {
    for (const key of UNIVERSE.get(name) ?? []) {
      try {
        assert.deepEqual(sub(db, name).get(key), m.get(key), `${what}: get(${key}) in ${JSON.stringify(name)}`);
      } catch (e) {
        if (e instanceof KeelError) expectCode(e, errno, `${what}: get(${key})`);
        else throw e;
      }
    }
  }
}

async function reopenCheck(fs: FileSystem, dir: string, allowed: Array<{ label: string; state: DbState }>, what: string, rng: Rng): Promise<string> {
  let db: Database;
  try {
    db = await open(dir, { wal: false, fs });
  } catch (e) {
    throw new Error(`${what}: reopen without faults failed: ${describeError(e)}`, { cause: e });
  }
  let label: string;
  let state: DbState;
  try {
    label = matchState(readState(db), allowed, `${what}: `);
    state = allowed.find((a) => a.label === label)!.state;
    checkDb(db, state, UNIVERSE, `${what} [${label}]: `);
    // The file takes more commits (reusing its free pages) and reopens to exactly them.
    for (let i = 0; i < 3; i++) {
      const st = genStep(rng, state, WO);
      await runStepOk(db, st);
      state = applyStep(state, st);
    }
  } finally {
    await db.close();
  }
  const again = await open(dir, { wal: false, fs });
  try {
    checkDb(again, state, UNIVERSE, `${what}, second reopen: `);
  } finally {
    await again.close();
  }
  return label;
}

async function faultLoop(fx: Fixture, commit: CommitKind, errno: FaultErrno, persistent: boolean, variant: Variant, c: Counters): Promise<number> {
  const old = fx.state;
  const step = commit.step(old);
  const next = applyStep(old, step);
  assert.notEqual(canon(next), canon(old));
  const rng = new Rng(7);
  for (let k = 1; k < 10_000; k++) {
    const what = `${commit.name}, ${errno} ${persistent ? "persistent" : "transient"} at call ${k}, ${variant}`;
    const { fs: inner, dir, done } = fx.copy();
    try {
      const ffs = new FaultFileSystem(inner);
      // A 16-page cache, so that the commit reads pages from the file as well.
      const db = await open(dir, { wal: false, fs: ffs, cacheSize: 16 * PAGE });
      ffs.reset();
      ffs.failAt(k, faultOptions(errno, persistent));
      const res = await runStep(db, step);
      const err = res.error;
      const ok = err === undefined;
      const injected = ffs.faultsInjected > 0;
      const at = ffs.lastFault ? ` (the fault hit ${ffs.lastFault.kind} ${ffs.lastFault.path})` : "";
      ffs.clearFaults();
      if (ok) {
        // Either k is past the commit's last call (done), or the engine rode over the fault.
        if (injected) c.tolerated++;
        checkDb(db, next, UNIVERSE, `${what}${at}, acknowledged: `);
        await db.close();
        await reopenCheck(inner, dir, [{ label: "new", state: next }], `${what}${at}, acknowledged`, rng);
        if (!injected) return k;
        continue;
      }
      c.failures++;
      assert.ok(injected, `${what}: the commit failed with no fault injected: ${describeError(err)}`);
      expectCode(err, errno, `${what}${at}`);
      // Each transaction of a group stands alone: a fault while one is built fails only that one.
      // If any part was acknowledged, the group's checkpoint succeeded: that is the state now.
      const partial = res.committed.some(Boolean);
      const now = partial ? applyUnits(old, step, res.committed) : old;
      if (partial) c.partial++;
      assert.equal(db.isClosed, false, `${what}: the database closed itself`);
      if (persistent) {
        // Re-arm the dead disk for the reads (counting from now), then clear it again.
        ffs.failAt(1, faultOptions(errno, true));
        readsUnderFault(db, now, errno, `${what}${at}, reads under the fault`);
        ffs.clearFaults();
      }
      checkDb(db, now, UNIVERSE, `${what}${at}, the open database after the failure: `);
      if (variant === "continue") {
        const extra: Step = { kind: "group", parts: [{ kind: "ops", ops: [put("", "after-fault", k)] }] };
        try {
          await runStepOk(db, extra);
        } catch (e) {
          throw new Error(`${what}${at}: the commit after the fault was cleared failed: ${describeError(e)}`, { cause: e });
        }
        const after = applyStep(now, extra);
        checkDb(db, after, UNIVERSE, `${what}${at}, after a further commit: `);
        await db.close();
        // The rolled-back commit must not come back under the one acknowledged after it.
        await reopenCheck(inner, dir, [{ label: "old + the further commit", state: after }], `${what}${at}, further commit, reopen`, rng);
      } else {
        try {
          await db.close();
        } catch (e) {
          throw new Error(`${what}${at}: close after the fault was cleared failed: ${describeError(e)}`, { cause: e });
        }
        // All units rejected: either a fault while building them (then the checkpoint either
        // failed before its meta, or had nothing to write) or one in the checkpoint, which held
        // every unit: the old state or the whole new one.
        const allowed = partial ? [{ label: "old", state: now }] : [{ label: "old", state: old }, { label: "new", state: next }];
        const label = await reopenCheck(inner, dir, allowed, `${what}${at}, close, reopen`, rng);
        if (label === "new") c.newAfterReopen++;
        else c.oldAfterReopen++;
      }
    } finally {
      done();
    }
  }
  throw new Error(`${commit.name}: the commit never succeeded`);
}

const ERRNOS: readonly FaultErrno[] = ["EIO", "ENOSPC"];

test("a commit failing at I/O call k (every k): coded error, old state served, usable, reopens intact (CrashFileSystem)", { timeout: 600_000 }, async (t) => {
  const fx = await crashFixture(11);
  for (const commit of COMMITS) {
    const c: Counters = { failures: 0, tolerated: 0, newAfterReopen: 0, oldAfterReopen: 0, partial: 0 };
    const calls: number[] = [];
    for (const errno of ERRNOS) {
      for (const persistent of [false, true]) {
        for (const variant of ["continue", "reopen"] as const) calls.push(await faultLoop(fx, commit, errno, persistent, variant, c));
      }
    }
    t.diagnostic(`${commit.name}: ${Math.max(...calls) - 1} I/O calls; ${c.failures} failed commits checked; reopen after a failure gave old ${c.oldAfterReopen}x, new ${c.newAfterReopen}x; groups acknowledged in part: ${c.partial}; faults ridden over: ${c.tolerated}`);
    assert.ok(c.failures > 0);
  }
});

test("a commit failing at I/O call k (every k) on the real file system (NodeFileSystem)", { timeout: 600_000 }, async (t) => {
  const fx = await nodeFixture(12);
  for (const commit of [COMMITS[0]!, COMMITS[3]!]) {
    const c: Counters = { failures: 0, tolerated: 0, newAfterReopen: 0, oldAfterReopen: 0, partial: 0 };
    await faultLoop(fx, commit, "EIO", false, "continue", c);
    await faultLoop(fx, commit, "EIO", true, "reopen", c);
    await faultLoop(fx, commit, "ENOSPC", true, "continue", c);
    t.diagnostic(`${commit.name}: ${c.failures} failed commits checked`);
  }
});

// ---- open() under faults -----------------------------------------------------------------------

/** A pid that is surely not running: a child that has already exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", ""]);
  assert.ok(r.pid && r.pid > 0);
  return r.pid;
}

let stuckLocks = 0;

type OpenCase = { name: string; prepare(): Promise<{ fs: FileSystem; dir: string; state: DbState | null; done(): void }> };

/**
 * Fail call k of open() for every k. Violations are collected (not thrown at the first), so one
 * run reports every distinct way open() misbehaves; the caller fails the test if there are any.
 */
async function openLoop(oc: OpenCase, errno: FaultErrno, persistent: boolean, opts: OpenOptions, violations: string[]): Promise<{ calls: number; failures: number }> {
  let failures = 0;
  for (let k = 1; k < 10_000; k++) {
    const what = `open of ${oc.name}, ${errno} ${persistent ? "persistent" : "transient"} at call k=${k}`;
    const { fs: inner, dir, state, done } = await oc.prepare();
    try {
      const ffs = new FaultFileSystem(inner);
      ffs.failAt(k, faultOptions(errno, persistent));
      let db: Database | undefined;
      let err: unknown;
      try {
        db = await open(dir, { ...opts, fs: ffs });
      } catch (e) {
        err = e;
      }
      const injected = ffs.faultsInjected > 0;
      const at = ffs.lastFault ? ` (the fault hit ${ffs.lastFault.kind} ${ffs.lastFault.path})` : "";
      ffs.clearFaults();
      const expected = state ?? new Map([["", new Map()]]);
      if (db) {
        checkDb(db, expected, UNIVERSE, `${what}${at}, opened: `);
        await db.close();
        if (!injected) return { calls: k - 1, failures };
      } else {
        failures++;
        if (!injected) {
          violations.push(`${what}: open failed with no fault injected: ${describeError(err)}`);
          continue;
        }
        if (!(err instanceof KeelError) || err.code !== CODE[errno]) {
          violations.push(`${what}${at}: expected KeelError ${CODE[errno]}, got ${describeError(err).split("\n").slice(0, 4).join(" | ")}`);
        }
      }
      // Once the fault is gone, the directory opens (a failed open leaves no LOCK of ours, no half
      // file) and holds its state.
      let again: Database;
      try {
        again = await open(dir, { ...opts, fs: inner });
      } catch (e) {
        // A persistent fault also fails the cleanup of the failed open, which cannot remove the
        // LOCK it had written (naming this process) from a disk that fails every call. A transient
        // fault leaves the cleanup's calls alone, so it has no such excuse.
        if (!(persistent && e instanceof KeelError && e.code === "LOCKED" && e.details.pid === process.pid)) {
          violations.push(`${what}${at}: open after the fault was cleared failed: ${describeError(e).split("\n")[0]}`);
          continue;
        }
        stuckLocks++;
        inner.remove(`${dir}/LOCK`);
        again = await open(dir, { ...opts, fs: inner });
      }
      try {
        checkDb(again, expected, UNIVERSE, `${what}${at}, reopened: `);
      } finally {
        await again.close();
      }
    } finally {
      done();
    }
  }
  throw new Error(`${oc.name}: open never succeeded`);
}

const openFx = crashFixture(13);

const OPEN_CASES: OpenCase[] = [
  {
    name: "a new directory",
    prepare: async () => {
      const fs = new CrashFileSystem();
      return { fs, dir: "/new/db", state: null, done: () => {} };
    },
  },
  {
    name: "an existing database",
    prepare: async () => {
      const fx = await openFx;
      return { ...fx.copy(), state: fx.state };
    },
  },
  {
    name: "an existing database whose LOCK a dead process left",
    prepare: async () => {
      const fx = await openFx;
      const c = fx.copy();
      const f = c.fs.open(`${c.dir}/LOCK`, "createExclusive");
      const text = Buffer.from(`${deadPid()}\n2024-01-01T00:00:00.000Z\n`);
      f.write(text, 0, text.length, 0);
      f.close();
      return { ...c, state: fx.state };
    },
  },
];

for (const oc of OPEN_CASES) {
  test(`open() of ${oc.name} failing at I/O call k (every k): a coded error, and it opens once the fault is gone`, { timeout: 600_000 }, async (t) => {
    const violations: string[] = [];
    stuckLocks = 0;
    for (const errno of ERRNOS) {
      for (const persistent of [false, true]) {
        const r = await openLoop(oc, errno, persistent, { wal: false, pageSize: PAGE }, violations);
        t.diagnostic(`${errno} ${persistent ? "persistent" : "transient"}: ${r.calls} I/O calls, ${r.failures} failures checked`);
      }
    }
    t.diagnostic(`failed opens under a persistent fault that left their LOCK behind: ${stuckLocks}`);
    if (violations.length) assert.fail(`${violations.length} violation(s):\n${violations.slice(0, 12).join("\n")}`);
  });
}

test("open() on the real file system with a LOCK left by a dead process takes it over", async () => {
  const root = tempDir("keel-fault-lock-");
  const dir = join(root, "db");
  const fs = new NodeFileSystem();
  const db = await open(dir, { wal: false, fs });
  await db.put("k", "v");
  await db.close();
  writeFileSync(join(dir, "LOCK"), `${deadPid()}\n`);
  const again = await open(dir, { wal: false, fs });
  assert.equal(again.get("k"), "v");
  await again.close();
});

// ---- minimal repro of a failed meta sync (see the suite comment) -----------------------------------

for (const oneSync of [false, true]) {
  test(`minimal: after a commit whose meta sync fails (${oneSync ? "one-sync checkpoint: its only sync" : "two-sync checkpoint: the second sync"}), later commits keep the free list sound and the file reopens`, async () => {
    const fs = new FaultFileSystem(new CrashFileSystem());
    let db = await open("/db", { wal: false, fs, pageSize: PAGE });
    if (!oneSync) db.engine.oneSyncMaxPages = 0;
    for (let i = 0; i < 60; i++) await db.put(`k${i}`, "x".repeat(100));
    // Rewrite keys over a few commits, so that freed pages become reusable (ready) in the free list.
    for (let round = 0; round < 4; round++) for (let i = 0; i < 60; i += 7) await db.put(`k${i}`, `r${round}`);
    assert.ok(db.getStats().freePages > 0);
    fs.reset();
    fs.failAt(oneSync ? 1 : 2, { kinds: ["sync"] }); // the sync after the next commit's meta write
    await assert.rejects(db.put("k1", "lost"), (e: unknown) => e instanceof KeelError && e.code === "IO");
    assert.equal(db.get("k1"), "x".repeat(100));
    for (let i = 0; i < 5; i++) await db.put(`after${i}`, i);
    await db.close();
    db = await open("/db", { wal: false, fs, pageSize: PAGE });
    try {
      for (let i = 0; i < 5; i++) assert.equal(db.get(`after${i}`), i);
      assert.equal(db.get("k2"), "x".repeat(100));
    } finally {
      await db.close();
    }
  });
}

// ---- minimal repros for open() under a single fault -------------------------------------------------

async function existingDb(): Promise<CrashFileSystem> {
  const fs = new CrashFileSystem();
  const db = await open("/db", { wal: false, fs, pageSize: PAGE });
  await db.put("k", "v");
  await db.close();
  return fs;
}

async function expectOpenFails(ffs: FaultFileSystem, code: string, what: string): Promise<void> {
  await assert.rejects(open("/db", { wal: false, fs: ffs }), (e: unknown) => {
    assert.ok(e instanceof KeelError, `${what}: open threw a non-KeelError: ${describeError(e)}`);
    assert.equal(e.code, code, `${what}: ${describeError(e)}`);
    return true;
  });
}

test("minimal: an EIO reading the meta pages makes open() fail with KeelError IO", async () => {
  for (const kind of ["read", "size"] as const) {
    const ffs = new FaultFileSystem(await existingDb());
    ffs.failAt(1, { kinds: [kind] });
    await expectOpenFails(ffs, "IO", `EIO on the first ${kind} of data.keel`);
  }
});

test("minimal: open() failing while it writes its LOCK leaves no LOCK behind", async () => {
  for (const kind of ["write", "close"] as const) {
    const inner = await existingDb();
    const ffs = new FaultFileSystem(inner);
    ffs.failAt(1, { kinds: [kind] }); // the first write/close of open() is the LOCK file's
    await expectOpenFails(ffs, "IO", `EIO on the LOCK file's ${kind}`);
    const db = await open("/db", { wal: false, fs: inner }).catch((e: unknown) => {
      throw new Error(`EIO on the LOCK file's ${kind}: the next open failed: ${describeError(e)}`);
    });
    assert.equal(db.get("k"), "v");
    await db.close();
  }
});

test("minimal: open() taking over a dead process's LOCK reports a failed removal as KeelError IO", async () => {
  const inner = await existingDb();
  const f = inner.open("/db/LOCK", "createExclusive");
  const text = Buffer.from(`${deadPid()}\n`);
  f.write(text, 0, text.length, 0);
  f.close();
  const ffs = new FaultFileSystem(inner);
  ffs.failAt(1, { kinds: ["remove"] });
  await expectOpenFails(ffs, "IO", "EIO removing the dead process's LOCK");
});

test("wal: false: a commit rejected because the sync after its meta write failed does not come back after a clean close and reopen", async () => {
  for (const base of ["crash", "node"] as const) {
    const dir = base === "node" ? mkdtempSync(join(tmpdir(), "keel-rejected-")) : "/db";
    const inner: FileSystem = base === "node" ? new NodeFileSystem() : new CrashFileSystem();
    try {
      const fs = new FaultFileSystem(inner);
      const db = await open(dir, { wal: false, fs });
      await db.put("k", "acknowledged");
      // A small group is one checkpoint with one sync after its meta write (FORMAT.md "One sync").
      fs.failAt(1, { kinds: ["sync"], errno: "EIO" });
      await assert.rejects(db.put("k", "rejected"), (e: unknown) => e instanceof KeelError && e.code === "IO");
      fs.clearFaults();
      assert.equal(db.get("k"), "acknowledged", `${base}: the open database serves the old value`);
      await db.close();
      const again = await open(dir, { wal: false, fs: inner });
      assert.equal(again.get("k"), "acknowledged", `${base}: and so does the next open: the rejected commit's meta was overwritten at close`);
      await again.put("k2", "after");
      await again.close();
      const third = await open(dir, { wal: false, fs: inner });
      assert.deepEqual([third.get("k"), third.get("k2")], ["acknowledged", "after"]);
      await third.close();
    } finally {
      if (base === "node") rmSync(dir, { recursive: true, force: true });
    }
  }
});
