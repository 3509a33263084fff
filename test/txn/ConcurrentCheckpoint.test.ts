/**
 * Concurrent checkpoints (Engine.beginCheckpoint + runConcurrently): the head is frozen, its pages
 * are written in steps, and commits, readers and memory sweeps go on between the steps.
 *
 * Checked on a seeded random workload, for every checkpoint:
 *   - the meta it wrote names exactly the frozen state (a reopen of the file sees the model as of
 *     the freeze, whatever was committed during the run), and the live head reads as the live model
 *     at every pause;
 *   - no page leaks and none is in two places: once the rest is checkpointed, every page below the
 *     high water is exactly one of tree, catalog, overflow, free-list segment or free. Commits
 *     during a run replace frozen nodes that have no page yet; those pages must be freed when the
 *     run adopts them (Engine#adopt), or this accounting fails;
 *   - a synchronous checkpoint in the middle of a run finishes that run first (both metas valid,
 *     states as of their freezes); a run dropped by close() changes nothing on disk that a reopen
 *     reads (the previous checkpoint's state, every page accounted for);
 *   - a failed data sync in a run rejects it with IO and leaves the engine at its last good state;
 *   - a synchronous checkpoint that takes over a run while its thread-pool data sync is still in
 *     flight syncs the data itself before writing the meta (power cuts after that meta write find a
 *     whole state).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { FaultFileSystem } from "../../src/io/FaultFileSystem.js";
import type { FileHandle, FileSystem } from "../../src/io/FileSystem.js";
import { KeelError } from "../../src/errors.js";
import { DATA_FILE, Engine, type CheckpointPacer } from "../../src/txn/Engine.js";
import { Rng } from "../helpers/rng.js";
import type { WriteTxn } from "../../src/txn/WriteTxn.js";
import { DIR, accountPages, apply, assertModel, bytes, cloneModel, commit, key, memFs, openEngine, readSnapshot, type DbModel } from "./engineUtil.js";

/** A pacer that pauses every `every` steps and runs `between` in the pause (writers, readers). */
function pacer(every: number, between: () => void): CheckpointPacer & { pauses: number } {
  let n = 0;
  const p = {
    pauses: 0,
    due: () => ++n % every === 0,
    pause: async () => {
      p.pauses++;
      await new Promise<void>((r) => setImmediate(r));
      between();
    },
  };
  return p;
}

function randomWrites(w: WriteTxn, rng: Rng, model: DbModel): void {
  const db = rng.pick(["", "a", "b"]);
  const ops: Array<[string, Buffer | null]> = [];
  for (let i = 0, n = 1 + rng.int(30); i < n; i++) {
    ops.push([key(rng.int(600)), rng.bool(0.3) ? null : bytes(rng.int(1e6), rng.bool(0.08) ? 1000 + rng.int(4000) : rng.int(120))]);
  }
  apply(w, model, db, ops);
  if (rng.bool(0.03) && w.entry("b")) {
    w.dropDB("b", rng.bool());
    model.delete("b");
  }
}

function randomCommit(e: Engine, rng: Rng, model: DbModel): void {
  commit(e, (w) => randomWrites(w, rng, model));
}

/** The state a fresh open of a copy of the disk reads (the newest meta). */
function onDisk(fs: ReturnType<typeof memFs>): { txn: number; model: DbModel } {
  const o = Engine.open(fs.clone(), DIR);
  try {
    return { txn: o.head.txn, model: readSnapshot(o, o.head, "reopen") };
  } finally {
    o.close();
  }
}

test("concurrent checkpoints with commits, readers and sweeps between their steps: exact states, no leaked page", async () => {
  const rng = new Rng(4242);
  const fs = memFs();
  // A small cache makes memory sweeps turn clean nodes back into page numbers during the runs.
  const e = openEngine(fs, { cacheBytes: 48 * 1024 });
  const model: DbModel = new Map();
  const held: number[] = [];
  let movedRuns = 0;
  let takeovers = 0;
  for (let r = 0; r < 40; r++) {
    for (let i = 0, n = 1 + rng.int(6); i < n; i++) randomCommit(e, rng, model);
    const frozen = cloneModel(model);
    const run = e.beginCheckpoint()!;
    assert.ok(run, `round ${r}: something to checkpoint`);
    assert.equal(run.head, e.head);
    const takeover = rng.bool(0.15);
    let pauses = 0;
    const p = pacer(1 + rng.int(8), () => {
      pauses++;
      for (let i = 0, n = rng.int(3); i < n; i++) randomCommit(e, rng, model);
      if (rng.bool(0.2)) {
        e.readers.acquire(e.published.txn);
        held.push(e.published.txn);
      }
      if (held.length && rng.bool(0.2)) e.readers.release(held.shift()!);
      assertModel(readSnapshot(e, e.head, "live"), model, `round ${r}: the live head during the run`);
      if (takeover && pauses === 2 && e.checkpointRunning) {
        // db.checkpoint(), close or a snapshot arriving mid-run: the run is finished first.
        e.checkpoint();
        takeovers++;
      }
    });
    const info = await e.runConcurrently(run, p);
    assert.equal(info.txn, run.head.txn);
    assert.equal(e.checkpointRunning, false);
    if (e.head !== run.head) movedRuns++;
    // The newest meta is this run's, or (after a takeover) the one after it, of the head then.
    const seen = onDisk(fs);
    if (seen.txn === run.head.txn) assertModel(seen.model, frozen, `round ${r}: the meta names the frozen state`);
    else assert.ok(takeover && seen.txn > run.head.txn, `round ${r}: newest meta txn ${seen.txn}, run froze ${run.head.txn}`);
    e.checkpoint(); // the commits made during the run
    assertModel(onDisk(fs).model, model, `round ${r}: after the next checkpoint`);
    accountPages(e, `round ${r}`);
  }
  assert.ok(movedRuns >= 30, `commits ran during most runs (${movedRuns})`);
  assert.ok(takeovers >= 2, `synchronous checkpoints took over runs (${takeovers})`);
  for (const t of held) e.readers.release(t);
  e.checkpoint();
  e.close();
  const e2 = openEngine(fs);
  assertModel(readSnapshot(e2, e2.head, "reopen"), model, "reopened");
  accountPages(e2, "reopened");
  e2.close();
});

test("a write transaction open while a concurrent checkpoint is adopted frees the pages that checkpoint gave to the nodes and values it had replaced (an async transaction leaked them)", async () => {
  const rng = new Rng(777);
  const fs = memFs();
  const e = openEngine(fs, { cacheBytes: 48 * 1024 });
  const model: DbModel = new Map();
  let spanned = 0;
  for (let r = 0; r < 30; r++) {
    for (let i = 0, n = 1 + rng.int(6); i < n; i++) randomCommit(e, rng, model);
    const run = e.beginCheckpoint()!;
    let open: WriteTxn | null = null;
    const p = pacer(1 + rng.int(4), () => {
      if (open) return;
      if (rng.bool(0.6)) {
        // Copies frozen nodes (no page yet) and stays open until after the run adopted them.
        open = e.beginWrite();
        for (let i = 0, n = 1 + rng.int(4); i < n; i++) randomWrites(open, rng, model);
      } else randomCommit(e, rng, model);
    });
    await e.runConcurrently(run, p);
    const w = open as WriteTxn | null;
    if (w) {
      randomWrites(w, rng, model);
      e.commitWrite(w, 0);
      spanned++;
    }
    e.checkpoint();
    assertModel(onDisk(fs).model, model, `round ${r}: after the next checkpoint`);
    accountPages(e, `round ${r}`);
  }
  assert.ok(spanned >= 10, `transactions spanned an adoption in ${spanned} rounds`);
  e.close();
  const e2 = openEngine(fs);
  assertModel(readSnapshot(e2, e2.head, "reopen"), model, "reopened");
  accountPages(e2, "reopened");
  e2.close();
});

test("a run dropped by close() leaves the disk at the previous checkpoint, every page accounted for", async () => {
  const rng = new Rng(99);
  const fs = memFs();
  const e = openEngine(fs);
  const model: DbModel = new Map();
  for (let i = 0; i < 20; i++) randomCommit(e, rng, model);
  e.checkpoint();
  const before = cloneModel(model);
  for (let i = 0; i < 20; i++) randomCommit(e, rng, model);
  const run = e.beginCheckpoint()!;
  const p = pacer(3, () => {
    if (!e.closed) e.close();
  });
  await assert.rejects(e.runConcurrently(run, p), (err: unknown) => err instanceof KeelError && err.code === "CLOSED");
  assert.ok(p.pauses >= 1);
  const e2 = openEngine(fs);
  assertModel(readSnapshot(e2, e2.head, "reopen"), before, "the state of the last finished checkpoint");
  accountPages(e2, "after the dropped run");
  e2.close();
});

test("a run whose data sync fails rejects with IO; the engine stays at its last good state and checkpoints later", async () => {
  const rng = new Rng(5);
  const base = memFs();
  let failSync = false;
  const fault = new FaultFileSystem(base, {
    onCall: (c) => {
      if (failSync && c.kind === "syncAsync" && c.path.endsWith(DATA_FILE)) throw Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO", errno: -5, syscall: "fdatasync" });
    },
  });
  const e = Engine.open(fault, DIR, { pageSize: 1024 });
  const model: DbModel = new Map();
  for (let i = 0; i < 10; i++) randomCommit(e, rng, model);
  e.checkpoint();
  const durable = e.durable;
  const atCheckpoint = cloneModel(model);
  for (let i = 0; i < 10; i++) randomCommit(e, rng, model);
  failSync = true;
  const run = e.beginCheckpoint()!;
  await assert.rejects(e.runConcurrently(run, pacer(4, () => randomCommit(e, rng, model))), (err: unknown) => err instanceof KeelError && err.code === "IO");
  failSync = false;
  assert.equal(e.durable, durable, "nothing was adopted");
  assert.equal(e.checkpointRunning, false);
  assertModel(onDisk(base).model, atCheckpoint, "the disk still names the last checkpoint");
  e.checkpoint();
  assertModel(onDisk(base).model, model, "a later checkpoint writes everything");
  accountPages(e, "after the failed run");
  e.close();
});

/**
 * A file system whose syncAsync, like a thread-pool fdatasync still in flight, has not synced
 * anything yet when it is called: the inner sync runs a few turns later.
 */
function slowAsyncSync(inner: FileSystem): FileSystem {
  const wrap = (h: FileHandle): FileHandle => ({
    path: h.path,
    read: (b, o, l, p) => h.read(b, o, l, p),
    write: (b, o, l, p) => h.write(b, o, l, p),
    sync: () => h.sync(),
    syncAsync: () =>
      new Promise<void>((resolve, reject) =>
        setTimeout(() => {
          try {
            h.sync();
            resolve();
          } catch (e) {
            reject(e);
          }
        }, 5),
      ),
    size: () => h.size(),
    truncate: (n) => h.truncate(n),
    close: () => h.close(),
  });
  return {
    open: (p, m) => wrap(inner.open(p, m)),
    stat: (p) => inner.stat(p),
    mkdir: (p) => inner.mkdir(p),
    list: (d) => inner.list(d),
    rename: (a, b) => inner.rename(a, b),
    link: (a, b) => inner.link(a, b),
    bootId: () => inner.bootId(),
    claim: (p) => inner.claim(p),
    isClaimed: (p) => inner.isClaimed(p),
    remove: (p) => inner.remove(p),
    removeDir: (p) => inner.removeDir(p),
    syncDir: (p) => inner.syncDir(p),
    readFile: (p) => inner.readFile(p),
  };
}

test("a synchronous checkpoint taking over a run that waits for its data sync syncs the data before the meta (I1)", async () => {
  const rng = new Rng(31);
  const disk = memFs();
  // Power cuts right after the takeover's meta write: the meta may be kept while unsynced pages are not.
  const cuts: ReturnType<typeof memFs>[] = [];
  let takingOver = false;
  const e = Engine.open(slowAsyncSync(disk), DIR, {
    pageSize: 1024,
    onPhase: (p) => {
      if (takingOver && p === "checkpoint:after-meta") for (let seed = 1; seed <= 24; seed++) cuts.push(disk.crashedCopy(seed));
    },
  });
  const model: DbModel = new Map();
  for (let i = 0; i < 30; i++) randomCommit(e, rng, model);
  e.checkpoint();
  const before = cloneModel(model);
  for (let i = 0; i < 30; i++) randomCommit(e, rng, model);
  const frozen = cloneModel(model);
  const run = e.beginCheckpoint()!;
  const driven = e.runConcurrently(run, { due: () => false, pause: async () => {} });
  while (run.last?.value !== "data-sync") await new Promise<void>((r) => setImmediate(r));
  takingOver = true;
  e.finishCheckpoint(); // db.checkpoint() or close() arriving while the thread-pool sync is in flight
  takingOver = false;
  assert.equal((await driven).txn, run.head.txn);
  assert.equal(cuts.length, 24);
  for (const [i, cut] of cuts.entries()) {
    const o = Engine.open(cut, DIR);
    try {
      assertModel(readSnapshot(o, o.head, `cut ${i}`), o.head.txn === run.head.txn ? frozen : before, `cut ${i}: a whole state`);
      if (o.head.txn === run.head.txn) accountPages(o, `cut ${i}`);
    } finally {
      o.close();
    }
  }
  assert.ok(
    cuts.some((c) => onDisk(c).txn === run.head.txn),
    "some cuts kept the new meta (so its pages were checked)",
  );
  e.close();
});
