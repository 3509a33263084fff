/**
 * Crash at each named point of the checkpoint sequence (src/txn/Checkpoint.ts, `onPhase`):
 *   checkpoint:before-write, after-write, after-data-sync, before-meta, after-meta, after-meta-sync.
 *
 * Test 1, power loss or kill at a phase: at a random commit of a random workload the hook cuts the
 * power (or, for half the seeds, also throws, as a process killed right there). The unsynced state
 * is resolved under each crash model, and the reopened database must hold exactly the state the
 * phase allows, never anything else:
 *   - the meta page not written yet: the old state (with noMetaSync and no data sync yet in this
 *     commit, also the state before it, whose meta may not have reached the disk);
 *   - meta written, not synced: old or new ("keepAll", a process kill, keeps it: new; "dropAll": old);
 *   - meta synced: the new state (noMetaSync: old or new).
 *
 * Test 2, a commit that fails at a phase (the hook throws once, the disk is fine): the promise
 * rejects, the database keeps serving the old state and takes further commits; a clean reopen
 * gives the last acknowledged state; a later power cut gives the last acknowledged state, the
 * commit in flight, or (only while no commit has replaced its meta slot) the failed commit, whose
 * meta may have reached the disk, and whose pages must then be intact (I1).
 *
 * Replay: KEEL_SEED=<n> node --test dist/test/crash/phases.test.js   (KEEL_CRASH_SEEDS=n for more)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { open, KeelError, type Database, type OpenOptions } from "../../src/index.js";
import { CrashFileSystem, type CrashModel } from "../../src/io/CrashFileSystem.js";
import { describeError, quietExpectedWarnings, removeStaleLock, reopenAndMatch } from "../helpers/crashCheck.js";
import { canon, checkDb, readState, type Candidate, type DbState } from "../helpers/dbModel.js";
import { forEachSeed, Rng, seedList, ticks } from "../helpers/rng.js";
import { applyStep, bulkStep, genStep, keyUniverse, runStep, runStepOk, type Step, type WorkloadOptions } from "../helpers/workload.js";

quietExpectedWarnings();

const PHASES = [
  "checkpoint:before-write",
  "checkpoint:after-write",
  "checkpoint:after-data-sync",
  "checkpoint:before-meta",
  "checkpoint:after-meta",
  "checkpoint:after-meta-sync",
] as const;
type Phase = (typeof PHASES)[number];

const DIR = "/db";
const MODELS: readonly CrashModel[] = ["sectors", "ordered", "keepAll", "dropAll"];
const FILE = "dist/test/crash/phases.test.js";

class KilledAtPhase extends Error {
  constructor(readonly phase: string) {
    super(`killed at ${phase}`);
  }
}

/** Which of the states "older" (one before old), "old" and "new" a crash at `phase` may leave. */
function allowedAt(phase: Phase, model: CrashModel, noMetaSync: boolean): Set<"older" | "old" | "new"> {
  const i = PHASES.indexOf(phase);
  const dataSynced = i >= PHASES.indexOf("checkpoint:after-data-sync");
  const metaWritten = i >= PHASES.indexOf("checkpoint:after-meta");
  const metaSynced = phase === "checkpoint:after-meta-sync" && !noMetaSync;
  const out = new Set<"older" | "old" | "new">();
  if (noMetaSync && !dataSynced && model !== "keepAll") out.add("older");
  if (!metaSynced && (model !== "keepAll" || !metaWritten)) out.add("old");
  if (metaWritten && (model !== "dropAll" || metaSynced)) out.add("new");
  return out;
}

/** A step that surely commits something (so that its checkpoint runs every phase). */
function committingStep(rng: Rng, state: DbState, wo: WorkloadOptions): Step {
  for (;;) {
    const s = genStep(rng, state, wo);
    if (canon(applyStep(state, s)) !== canon(state)) return s;
  }
}

interface Setup {
  rng: Rng;
  fs: CrashFileSystem;
  options: OpenOptions;
  wo: WorkloadOptions;
  universe: Map<string, string[]>;
  cfg: string;
  hook: { fn: ((phase: string) => void) | undefined; seen: Map<string, number> };
}

function setup(seed: number, salt: number): Setup {
  const rng = new Rng(seed * 1000 + salt);
  const pageSize = rng.bool(0.6) ? 1024 : 4096;
  const noMetaSync = rng.bool(0.25);
  const fs = new CrashFileSystem({ sectorSize: rng.bool(0.75) ? 512 : 4096 });
  fs.mkdir(DIR);
  fs.syncDir("/");
  const hook: Setup["hook"] = { fn: undefined, seen: new Map() };
  const options: OpenOptions = {
    wal: false,
    pageSize,
    noMetaSync,
    onPhase: (p) => {
      hook.seen.set(p, (hook.seen.get(p) ?? 0) + 1);
      hook.fn?.(p);
    },
  };
  const wo: WorkloadOptions = { pageSize, keySpace: pageSize === 1024 ? 160 : 300 };
  return { rng, fs, options, wo, universe: keyUniverse(wo), cfg: `pageSize ${pageSize}${noMetaSync ? " noMetaSync" : ""}`, hook };
}

/** Run `n` acknowledged steps; returns the acknowledged states (one per commit), oldest first. */
async function warmUp(s: Setup, db: Database, n: number, history: DbState[]): Promise<void> {
  for (let i = 0; i < n; i++) {
    const acked = history[history.length - 1]!;
    const step = i === 0 && history.length === 1 ? bulkStep(s.rng, s.wo, s.rng.range(30, 160)) : genStep(s.rng, acked, s.wo);
    const before = db.engine.durable.txn;
    await runStepOk(db, step);
    if (db.engine.durable.txn !== before) history.push(applyStep(acked, step));
  }
}

async function crashAtPhase(seed: number, phase: Phase, seen: Map<string, number>): Promise<void> {
  const s = setup(seed, PHASES.indexOf(phase));
  const { rng, fs, options } = s;
  const kill = rng.bool();
  let db = await open(DIR, { ...options, fs });
  const history: DbState[] = [readState(db)];
  await warmUp(s, db, rng.range(1, 8), history);

  const old = history[history.length - 1]!;
  const older = history[history.length - 2];
  const step = committingStep(rng, old, s.wo);
  const next = applyStep(old, step);
  let hit = false;
  s.hook.fn = (p) => {
    if (p !== phase || hit) return;
    hit = true;
    fs.cutPower();
    if (kill) throw new KilledAtPhase(p);
  };
  let outcome = "acknowledged";
  const res = await runStep(db, step);
  if (res.error !== undefined) {
    const e = res.error;
    outcome = `rejected (${describeError(e).split("\n")[0]})`;
    if (!fs.frozen) throw new Error(`${s.cfg}: the commit failed before reaching ${phase}: ${describeError(e)}`, { cause: e });
    assert.ok(!res.committed.some(Boolean), `${s.cfg}: part of a group was acknowledged although the power was cut at ${phase}`);
  }
  s.hook.fn = undefined;
  assert.ok(hit, `${s.cfg}: the commit never reached ${phase}`);
  seen.set(phase, (seen.get(phase) ?? 0) + 1);
  if (outcome === "acknowledged") {
    // Only after the last I/O call of the checkpoint (the meta sync, or with noMetaSync the meta
    // write) is a power cut invisible to the commit, which then completes.
    const lastIo = options.noMetaSync ? ["checkpoint:after-meta", "checkpoint:after-meta-sync"] : ["checkpoint:after-meta-sync"];
    assert.ok(lastIo.includes(phase), `${s.cfg}: a commit cut at ${phase} was acknowledged`);
    assert.ok(!kill);
  }
  await ticks(3);

  const crashSeed = rng.int(0x7fffffff);
  for (const model of MODELS) {
    const allowed = allowedAt(phase, model, !!options.noMetaSync);
    const candidates: Candidate[] = [];
    if (allowed.has("old")) candidates.push({ label: "old", state: old });
    if (allowed.has("new")) candidates.push({ label: "new", state: next });
    if (allowed.has("older") && older) candidates.push({ label: "older", state: older });
    const copy = fs.crashedCopy(crashSeed, { model });
    const ctx = `${s.cfg}, ${kill ? "killed" : "power cut"} at ${phase} (commit ${outcome}), crash(${crashSeed}, ${model})`;
    const r = await reopenAndMatch(copy, DIR, { ...options, onPhase: undefined }, candidates, s.universe, ctx);
    await r.db.close();
  }
  db = undefined as unknown as Database; // the crashed instance is abandoned, as a dead process's
}

test("a power cut or kill at each checkpoint phase leaves exactly the state that phase allows", { timeout: 3_600_000 }, async (t) => {
  const seeds = seedList(40, "KEEL_CRASH_SEEDS");
  const seen = new Map<string, number>();
  for (const phase of PHASES) {
    await forEachSeed(`crash at ${phase}`, seeds, (seed) => crashAtPhase(seed, phase, seen), { file: FILE });
  }
  t.diagnostic(`phases hit: ${JSON.stringify(Object.fromEntries(seen))}`);
  for (const phase of PHASES) assert.equal(seen.get(phase), seeds.length, `${phase} was not reached for every seed`);
});

let failedRevived = 0;

async function failAtPhase(seed: number, phase: Phase): Promise<void> {
  const s = setup(seed, 100 + PHASES.indexOf(phase));
  const { rng, fs, options } = s;
  const db = await open(DIR, { ...options, fs });
  const history: DbState[] = [readState(db)];
  // Enough commits that the free list has pages ready for reuse when the failure happens.
  await warmUp(s, db, rng.range(4, 10), history);
  const old = history[history.length - 1]!;
  const step = committingStep(rng, old, s.wo);
  const failed = applyStep(old, step);
  let hit = false;
  s.hook.fn = (p) => {
    if (p !== phase || hit) return;
    hit = true;
    throw new KilledAtPhase(p);
  };
  const res = await runStep(db, step);
  const err = res.error;
  assert.ok(!res.committed.some(Boolean), `${s.cfg}: part of a group failing at ${phase} was acknowledged`);
  s.hook.fn = undefined;
  assert.ok(hit, `${s.cfg}: the commit never reached ${phase}`);
  assert.ok(err instanceof KeelError, `${s.cfg}: a commit failing at ${phase} must reject with a KeelError, got ${describeError(err)}`);
  assert.equal(db.isClosed, false);
  checkDb(db, old, s.universe, `${s.cfg}, after a failure at ${phase}, the open database: `);

  // The failed commit's meta may be on disk (written at after-meta, synced at after-meta-sync) until
  // a later commit overwrites that slot: until then a crash may bring it back, and its tree must be
  // intact. It cannot come back once a commit was acknowledged after it.
  const metaMayBeOnDisk = PHASES.indexOf(phase) >= PHASES.indexOf("checkpoint:after-meta");
  let failedStillPossible = metaMayBeOnDisk;
  let ackedSinceFailure = 0;
  const more = rng.range(1, 6);
  const crashAt = rng.int(more + 1); // == more: no crash, a clean close instead
  const verifyCrash = async (where: string, acked: DbState, inflight: DbState[]): Promise<void> => {
    await ticks(3);
    const crashSeed = rng.int(0x7fffffff);
    for (const model of MODELS) {
      const cands: Candidate[] = [{ label: "last acknowledged", state: acked }];
      for (const st of inflight) cands.push({ label: "in-flight commit", state: st });
      if (failedStillPossible) cands.push({ label: "the failed commit", state: failed });
      if (options.noMetaSync && history.length >= 2 && model !== "keepAll") cands.push({ label: "one before the last acknowledged", state: history[history.length - 2]! });
      const ctx = `${s.cfg}, failure at ${phase}, then power cut ${where}, crash(${crashSeed}, ${model})`;
      const r = await reopenAndMatch(fs.crashedCopy(crashSeed, { model }), DIR, { ...options, onPhase: undefined }, cands, s.universe, ctx);
      if (r.label === "the failed commit") failedRevived++;
      await r.db.close();
    }
  };
  for (let i = 0; i < more; i++) {
    const acked = history[history.length - 1]!;
    const st = genStep(rng, acked, s.wo);
    if (i === crashAt) fs.crashAfterCalls(1 + rng.int(12), { performCall: rng.bool() });
    const before = db.engine.durable.txn;
    const r = await runStep(db, st);
    if (r.error !== undefined) {
      if (!fs.frozen) throw new Error(`${s.cfg}: step ${i} after a failure at ${phase} failed: ${describeError(r.error)}`, { cause: r.error });
      return verifyCrash(`during step ${i}`, acked, [applyStep(acked, st)]);
    }
    if (db.engine.durable.txn !== before) {
      history.push(applyStep(acked, st));
      // The first commit after the failure writes its meta into the failed one's slot. With
      // noMetaSync that meta is only synced by the data sync of the commit after it, and until
      // then the disk may still hold the failed commit's meta in that slot.
      ackedSinceFailure++;
      if (ackedSinceFailure >= (options.noMetaSync ? 2 : 1)) failedStillPossible = false;
    }
    if (fs.frozen) return verifyCrash(`after step ${i} was acknowledged`, history[history.length - 1]!, []);
    if (i === crashAt) fs.resetCounters(); // the step made fewer calls than the cut was armed for: disarm
  }
  const last = history[history.length - 1]!;
  checkDb(db, last, s.universe, `${s.cfg}, failure at ${phase}, later commits: `);
  await db.close();
  // With noMetaSync, close() syncs, so nothing acknowledged is lost by a clean close either. If no
  // commit was acknowledged since the failure, the failed commit's meta (if it was written) is
  // still in its slot and newer than the other: its outcome was unknown, and it may show up now.
  removeStaleLock(fs, DIR);
  const cands: Candidate[] = [{ label: "last acknowledged", state: last }];
  if (metaMayBeOnDisk && ackedSinceFailure === 0) cands.push({ label: "the failed commit", state: failed });
  const r = await reopenAndMatch(fs, DIR, { ...options, onPhase: undefined }, cands, s.universe, `${s.cfg}, failure at ${phase}, ${ackedSinceFailure} commit(s) since, clean reopen`);
  if (r.label === "the failed commit") failedRevived++;
  await r.db.close();
}

test("a commit that fails at each checkpoint phase is rolled back; the database goes on and reopens intact", { timeout: 3_600_000 }, async (t) => {
  const seeds = seedList(25, "KEEL_CRASH_SEEDS");
  for (const phase of PHASES) {
    await forEachSeed(`failure at ${phase}`, seeds, (seed) => failAtPhase(seed, phase), { file: FILE });
  }
  t.diagnostic(`crashes that brought back a rejected commit (allowed only before its meta slot is reused): ${failedRevived}`);
});
