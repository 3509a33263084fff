/**
 * db.checkpoint(), close() and createSnapshot() with the log write their checkpoint in slices
 * (LogDurability.checkpointConcurrently), on real files. What would fail if they ran it in one
 * call, as they once did: another callback of the event loop sees the checkpoint running (a
 * single call never lets one run), and an explicit checkpoint that meets a policy checkpoint waits
 * for it instead of finishing it in one call. Also checked: the checkpoint covers every commit
 * made before the call, a commit after the freeze is left to the log, and reopening replays
 * nothing after close, and a db.checkpoint() whose run close() finished meanwhile still resolves.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { open, verify, type Database } from "../../src/index.js";
import { tempDir } from "./dbUtil.js";

/** Policy checkpoints off: only the calls under test checkpoint. */
const NO_POLICY = { checkpointLogBytes: 2 ** 40, checkpointDirtyBytes: 2 ** 40, checkpointMs: 2 ** 30 };

async function load(db: Database, n: number, tag: string): Promise<void> {
  for (let b = 0; b < n; b += 5000) {
    const ops = [];
    for (let i = b; i < Math.min(n, b + 5000); i++) ops.push({ type: "put" as const, key: `${tag}${(i * 7919) % n}`, value: `${tag}:${i}:${"v".repeat(80)}` });
    await db.batch(ops);
  }
}

/** Counts the turns of the event loop (setImmediate) that find a checkpoint running, until stopped. */
function watchTurns(db: Database): { stop: () => number } {
  let seen = 0;
  let on = true;
  const spin = () => {
    if (db.engine.checkpointRunning) seen++;
    if (on) setImmediate(spin);
  };
  setImmediate(spin);
  return {
    stop: () => {
      on = false;
      return seen;
    },
  };
}

test("db.checkpoint() runs in slices: the event loop turns meanwhile, and it covers every commit before the call", async (t) => {
  const dir = tempDir(t);
  const db = await open(dir, NO_POLICY);
  await load(db, 60_000, "a");
  const before = db.txlogWatermarks().lastCommittedLsn;
  let committedWhileRunning = 0;
  db.on("commit", () => {
    if (db.engine.checkpointRunning) committedWhileRunning++;
  });
  const turns = watchTurns(db);
  const done = db.checkpoint();
  // Queued behind the freeze: committed while the pages are written, left to the log.
  const during = db.put("during", "yes");
  await Promise.all([done, during]);
  const seen = turns.stop();
  assert.ok(seen > 0, `event-loop turns saw the checkpoint running (${seen})`);
  assert.ok(committedWhileRunning >= 1, "a commit went through while the checkpoint was running");
  const w = db.txlogWatermarks();
  assert.ok(w.lastAppliedLsn >= before, `applied ${w.lastAppliedLsn} covers every commit before the call (${before})`);
  assert.ok(w.lastAppliedLsn < w.lastCommittedLsn, "the commit after the freeze is not in this checkpoint");
  assert.equal(db.engine.checkpointRunning, false);
  await db.close();
  assert.deepEqual((await verify(dir)).problems, []);
  const again = await open(dir);
  try {
    assert.equal(again.get("during"), "yes");
    assert.equal(again.get("a0"), `a:0:${"v".repeat(80)}`);
    assert.equal(again.getStats().entries, 60_001);
  } finally {
    await again.close();
  }
});

test("close() writes its checkpoint in slices and leaves nothing to replay", async (t) => {
  const dir = tempDir(t);
  const db = await open(dir, NO_POLICY);
  await load(db, 60_000, "c");
  const turns = watchTurns(db);
  await db.close();
  const seen = turns.stop();
  assert.ok(seen > 0, `event-loop turns saw the closing checkpoint running (${seen})`);
  const again = await open(dir);
  try {
    assert.equal(again.txlogWatermarks().replay.records, 0, "close checkpointed every commit");
    assert.equal(again.getStats().entries, 60_000);
  } finally {
    await again.close();
  }
});

test("db.checkpoint() waits for a running policy checkpoint instead of finishing it in one call", async (t) => {
  const dir = tempDir(t);
  const db = await open(dir, { checkpointLogBytes: 256 * 1024, checkpointDirtyBytes: 2 ** 40, checkpointMs: 2 ** 30 });
  const engine = db.engine;
  // Hold the policy checkpoint's driver at its start until released: it is running, not stepping.
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const drive = engine.runConcurrently.bind(engine);
  let policyRuns = 0;
  engine.runConcurrently = (run, pacer) => {
    policyRuns++;
    engine.runConcurrently = drive; // only the first run is held
    return gate.then(() => drive(run, pacer));
  };
  let oneCallFinishes = 0;
  const finish = engine.finishCheckpoint.bind(engine);
  engine.finishCheckpoint = () => {
    if (engine.checkpointRunning) oneCallFinishes++;
    finish();
  };
  // Small steps: stop well before writers are twice the policy ahead (that finishes a run in one go).
  for (let i = 0; policyRuns === 0; i++) {
    assert.ok(i < 1000, "the policy started a checkpoint");
    await load(db, 100, `p${i}-`);
  }
  assert.ok(engine.checkpointRunning, "the policy checkpoint is running, held at its start");
  assert.equal(oneCallFinishes, 0);
  const before = db.txlogWatermarks().lastCommittedLsn;
  let settled = false;
  const done = db.checkpoint().then(() => (settled = true));
  // Many turns of the event loop: the explicit checkpoint must still be waiting.
  for (let i = 0; i < 50; i++) await new Promise<void>((r) => setImmediate(r));
  assert.equal(settled, false, "db.checkpoint() waits while the policy checkpoint is held");
  assert.equal(oneCallFinishes, 0, "it did not finish the policy checkpoint in one call");
  release();
  await done;
  assert.equal(oneCallFinishes, 0, "neither checkpoint was finished in one call");
  assert.ok(db.txlogWatermarks().lastAppliedLsn >= before, "the explicit checkpoint covers every commit before the call");
  await db.close();
  assert.deepEqual((await verify(dir)).problems, []);
});

test("db.checkpoint() that close() finishes in one call meanwhile resolves (its pacer's CLOSED is not an error)", async (t) => {
  const dir = tempDir(t);
  const db = await open(dir, NO_POLICY);
  await load(db, 20_000, "z");
  const engine = db.engine;
  // Hold the driver in its first pause until close() has finished the run and closed the engine.
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let paused!: () => void;
  const inPause = new Promise<void>((r) => (paused = r));
  const drive = engine.runConcurrently.bind(engine);
  engine.runConcurrently = (run, pacer) =>
    drive(run, {
      due: () => true,
      pause: async () => {
        paused();
        await gate;
        return pacer.pause();
      },
    });
  const done = db.checkpoint();
  await inPause;
  await db.close();
  assert.ok(engine.closed);
  release();
  await done; // resolves: the run was completed by close's checkpoint
  const again = await open(dir);
  try {
    assert.equal(again.txlogWatermarks().replay.records, 0);
    assert.equal(again.getStats().entries, 20_000);
  } finally {
    await again.close();
  }
});

test("db.checkpoint() called before close(), while a policy checkpoint runs, resolves: close checkpointed everything meanwhile", async (t) => {
  const dir = tempDir(t);
  for (let round = 0; round < 5; round++) {
    const db = await open(dir, { checkpointLogBytes: 4096 });
    const big = "x".repeat(2000);
    await Promise.all(Array.from({ length: 200 }, (_, i) => db.put(`k${round}-${i}`, big))); // queues a policy checkpoint
    const ck = db.checkpoint(); // waits for that policy checkpoint (step 1), then meets a closed database
    const closing = db.close();
    await ck;
    await closing;
  }
  const reopened = await open(dir);
  assert.equal(reopened.txlogWatermarks().lag.applied, 0, "nothing left to replay");
  await reopened.close();
});
