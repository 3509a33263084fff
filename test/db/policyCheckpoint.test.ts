/**
 * Policy checkpoints of the log mode run concurrently (LogDurability): writers keep committing
 * while one writes its pages, on real files. Checked: commits complete while a checkpoint is
 * running (the writer is not held), checkpoints happen and the log is gc'd after them, close
 * finishes a running one, and the result verifies clean (no leaked or doubly used page) and
 * reopens to exactly what was written. Writers that outrun a running checkpoint past twice the
 * policy make the next group finish it (memory and the log stay bounded): that test holds the run
 * still (its driver never steps), so it does not depend on the machine's speed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { open, verify } from "../../src/index.js";
import { Rng } from "../helpers/rng.js";
import { tempDir } from "./dbUtil.js";

async function writers(db: Awaited<ReturnType<typeof open>>, model: Map<string, string>, n: number, perWriter: number, seed: number): Promise<void> {
  await Promise.all(
    Array.from({ length: n }, async (_, w) => {
      const rng = new Rng(seed + w);
      for (let i = 0; i < perWriter; i++) {
        const k = `k${rng.int(20_000)}`;
        if (rng.bool(0.1)) {
          model.delete(k);
          await db.remove(k);
        } else {
          const v = `${w}:${i}:${"x".repeat(rng.int(300))}`;
          model.set(k, v);
          await db.put(k, v);
        }
      }
    }),
  );
}

test("policy checkpoints run while writers commit; the result verifies clean and reopens exactly", async (t) => {
  const dir = tempDir(t);
  const db = await open(dir, { checkpointLogBytes: 128 * 1024 });
  let duringRun = 0;
  let commits = 0;
  db.on("commit", () => {
    commits++;
    if (db.engine.checkpointRunning) duringRun++;
  });
  const model = new Map<string, string>();
  await writers(db, model, 4, 1500, 1);
  const w = db.txlogWatermarks();
  assert.ok(db.engine.checkpoints >= 3, `policy checkpoints ran (${db.engine.checkpoints})`);
  assert.ok(duringRun > 0, `commits completed while a checkpoint was running (${duringRun} of ${commits})`);
  assert.ok(w.lastAppliedLsn > 0, "the data file holds checkpointed commits");
  await db.close();
  const report = await verify(dir);
  assert.deepEqual(report.problems, [], "verify finds nothing");
  const again = await open(dir);
  try {
    const seen = new Map<string, string>();
    for (const { key, value } of again.getRange()) seen.set(String(key), value as string);
    assert.equal(seen.size, model.size);
    for (const [k, v] of model) assert.equal(seen.get(k), v, k);
  } finally {
    await again.close();
  }
});

test("writers that outrun a running policy checkpoint make a group finish it; nothing is lost", async (t) => {
  const dir = tempDir(t);
  const db = await open(dir, { checkpointLogBytes: 8 * 1024, checkpointDirtyBytes: 1 << 30 });
  const engine = db.engine;
  // A checkpoint slower than the writers, whatever this machine's speed: its paced driver never
  // takes a step, so only the 2x rule (or close) can finish the frozen run.
  let started = 0;
  engine.runConcurrently = () => {
    started++;
    return new Promise(() => {});
  };
  let finishes = 0;
  const finish = engine.finishCheckpoint.bind(engine);
  engine.finishCheckpoint = () => {
    if (engine.checkpointRunning) finishes++;
    finish();
  };
  const model = new Map<string, string>();
  await writers(db, model, 8, 300, 7);
  assert.ok(started >= 2, `policy checkpoints were started (${started})`);
  assert.ok(finishes >= 1, "a running checkpoint was finished in one go once writers were twice the policy ahead");
  assert.ok(engine.checkpoints >= finishes);
  await db.close();
  assert.deepEqual((await verify(dir)).problems, []);
  const again = await open(dir);
  try {
    let n = 0;
    for (const { key, value } of again.getRange()) {
      n++;
      assert.equal(value, model.get(String(key)));
    }
    assert.equal(n, model.size);
  } finally {
    await again.close();
  }
});

test("checkpointDirtyBytes counts the tree pages a change copies, not only its key and value: small random puts checkpoint before their copied pages pass it", async (t) => {
  const dir = tempDir(t);
  const limit = 1 << 20;
  const db = await open(dir, { checkpointDirtyBytes: limit, checkpointLogBytes: 1 << 30, checkpointMs: 3_600_000, keyEncoding: "binary", encoding: "binary" });
  // 60,000 keys over about 1,500 leaves, all checkpointed.
  await db.transaction((tx) => {
    for (let i = 0; i < 60_000; i++) tx.put(Buffer.from(`key${String(i).padStart(6, "0")}`), Buffer.alloc(40, 1));
  });
  await db.checkpoint();
  const before = db.engine.checkpoints;
  // 3,000 one-byte updates at random keys: about 3,000 * (9 + 1 + 64) = 222 KB of keys and values,
  // far under the limit, but they copy about 1,300 distinct leaves (over 5 MiB of pages).
  const rng = new Rng(5);
  for (let g = 0; g < 30; g++) {
    await Promise.all(Array.from({ length: 100 }, () => db.put(Buffer.from(`key${String(rng.int(60_000)).padStart(6, "0")}`), Buffer.from([2]))));
  }
  await db.flushed();
  for (let i = 0; i < 100 && db.engine.checkpoints === before; i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(db.engine.checkpoints > before, "a policy checkpoint ran on the copied pages' memory");
  assert.ok(db.engine.dirtyBytes < 4 * limit, `what stays uncheckpointed is bounded (${db.engine.dirtyBytes} bytes estimated)`);
  await db.close();
});
