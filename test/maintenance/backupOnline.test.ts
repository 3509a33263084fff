/**
 * db.backup() while writers go on (DESIGN.md section 5, I2, I3, I7).
 *
 * - compact: false with the log: the pages of the last durable meta, then the committed log records
 *   after it up to the backup's LSN applied to the copy. With checkpoints pushed out of reach, every
 *   write of the run lands after the last checkpoint, so the log-apply path carries the copy:
 *   puts (inline and overflow values), removes, clears, a sub-database created and one dropped.
 *   The copy equals the source's state at the copy's LSN, entry by entry in every sub-database,
 *   opens alone (no log) at that LSN, and passes verify. With `maxReplayBytes: Infinity` the source
 *   is never checkpointed by it.
 * - compact: false with a log tail above `maxReplayBytes`: the source is checkpointed first (a
 *   concurrent checkpoint: the writer commits while it runs),
 *   and the copy (pages only, no record to apply) still equals the source at its LSN.
 * - compact: true: bottom-up copy of the published snapshot; equals the source at its LSN, fewer
 *   pages than the source, passes verify, and takes writes after reopening.
 * - Abort in the middle of the log-apply phase and in the middle of a compaction: ABORTED, no
 *   destination, no partial directory, the pinning reader and the log floor released.
 * - Power loss at every I/O call of a backup with a log tail: the destination is absent or
 *   complete (equal to the state at its LSN), the source reopens at its own state.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { open, openSync, type Database } from "../../src/index.js";
import { CrashFileSystem, isSimulatedCrash } from "../../src/io/CrashFileSystem.js";
import type { FileSystem } from "../../src/io/FileSystem.js";
import { backupPages, type BackupPagesResult } from "../../src/maintenance/backupPages.js";
import { copySnapshot } from "../../src/maintenance/copyDatabase.js";
import { verify } from "../../src/maintenance/verify.js";
import { describeError, removeStaleLock } from "../helpers/crashCheck.js";
import { canon, cloneState, emptyState, readState, assertSameState as assertSame, type DbState } from "../helpers/dbModel.js";
import { Rng } from "../helpers/rng.js";
import { rejectsKeel } from "../db/dbUtil.js";

const DIR = "/db";
const DEST = "/backups/b1";
/** Checkpoints out of reach: every write after open stays in the log only. */
const NO_CHECKPOINTS = { checkpointLogBytes: 1 << 30, checkpointDirtyBytes: 1 << 30, checkpointMs: 3_600_000 };

function subOf(db: Database, name: string) {
  return name === "" ? db : db.openDB(name, name === "bin" ? { encoding: "binary" } : {});
}

/** One awaited random write (put, overflow put, remove, clear, create, drop); updates the model. */
async function writeOne(db: Database, rng: Rng, model: DbState, tag: string): Promise<void> {
  const names = ["", "users", "bin", "extra"];
  const name = rng.pick(names);
  const key = `k${rng.int(60)}`;
  const m = model.get(name) ?? new Map<string, unknown>();
  model.set(name, m);
  const r = rng.next();
  if (r < 0.15) {
    await subOf(db, name).remove(key);
    m.delete(key);
  } else if (r < 0.17 && name !== "") {
    await subOf(db, name).clear();
    m.clear();
  } else if (r < 0.18 && name === "extra") {
    await db.dropDB("extra");
    model.delete("extra");
  } else {
    const big = rng.int(10) === 0;
    const v = name === "bin" ? Buffer.alloc(big ? 9000 : 40, tag) : big ? { tag, pad: "x".repeat(6000) } : { tag, n: rng.int(1000) };
    await subOf(db, name).put(key, v);
    m.set(key, v);
  }
}

function stateOf(db: Database, model: DbState): DbState {
  const out = cloneState(model);
  for (const [name, m] of [...out]) if (m.size === 0 && !db.listDBs().includes(name) && name !== "") out.delete(name);
  for (const name of db.listDBs()) if (!out.has(name)) out.set(name, new Map());
  return out;
}

async function openState(fs: FileSystem, dir: string, wal = false): Promise<{ state: DbState; lsn: number; txn: number }> {
  const db = openSync(dir, { fs, readOnly: true, wal });
  try {
    return { state: readState(db), lsn: db.engine.durable.lsn, txn: db.engine.durable.txn };
  } finally {
    await db.close();
  }
}

/** A finished page backup: equals `expected` (canon), opens alone at `lsn`, verifies, holds only data.keel. */
async function assertCopy(fs: FileSystem, dest: string, lsn: number, expected: string, what: string): Promise<void> {
  const got = await openState(fs, dest);
  assert.equal(canon(got.state), expected, `${what} equals the source at LSN ${lsn}`);
  assert.equal(got.lsn, lsn, "the copy opens at its LSN, with no log");
  const report = await verify(dest, { fs });
  assert.ok(report.ok, `${what} verifies: ${JSON.stringify(report.problems.slice(0, 3))}`);
  assert.deepEqual(fs.list(dest), ["data.keel"]);
}

/**
 * A single awaited writer: after each write, the LSN it got (no other writer, so the last committed
 * LSN) and the canonical state at that LSN.
 */
function startWriter(db: Database, rng: Rng, model: DbState, states: Map<number, string>) {
  let stop = false;
  let writes = 0;
  const done = (async () => {
    while (!stop) {
      await writeOne(db, rng, model, `w${writes++}`);
      states.set(db.txlogWatermarks().lastCommittedLsn, canon(stateOf(db, model)));
    }
  })();
  return {
    async stop(): Promise<number> {
      stop = true;
      await done;
      return writes;
    },
  };
}

async function filled(fs: FileSystem, opts: object, n: number, seed: number) {
  const db = openSync(DIR, { fs, ...opts });
  const model = emptyState();
  for (const name of ["users", "bin", "extra"]) subOf(db, name);
  const rng = new Rng(seed);
  for (let i = 0; i < n; i++) await writeOne(db, rng, model, `a${i}`);
  return { db, model };
}

test("backup({ compact: false }) with the log: pages of the last checkpoint + the log after it, equal to the source at the copy's LSN", async () => {
  const fs = new CrashFileSystem();
  // A first part checkpointed, the rest only in the log.
  const { db, model } = await filled(fs, NO_CHECKPOINTS, 150, 1);
  await db.checkpoint();
  const rng = new Rng(2);
  for (let i = 0; i < 150; i++) await writeOne(db, rng, model, `b${i}`);
  const checkpoints = db.engine.checkpoints;
  const durableLsn = db.engine.durable.lsn;
  const states = new Map<number, string>([[db.txlogWatermarks().lastCommittedLsn, canon(stateOf(db, model))]]);
  const txnAt = new Map<number, number>([[db.txlogWatermarks().lastCommittedLsn, db.engine.head.txn]]);
  db.on("commit", (c) => txnAt.set(c.lsn, c.txnId));
  const writer = startWriter(db, new Rng(3), model, states);
  const results: BackupPagesResult[] = [];
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setTimeout(r, 2));
    results.push((await db.backup(`${DEST}-${i}`, { compact: false, maxReplayBytes: Infinity })) as BackupPagesResult);
  }
  const writes = await writer.stop();
  assert.ok(writes > 3, `the writer went on during the backups (${writes} writes)`);
  assert.equal(db.engine.checkpoints, checkpoints, "a backup never checkpoints the source");
  assert.equal(db.engine.readers.active, 0, "pinning readers released");
  assert.deepEqual(Object.keys(db.txlogWatermarks().floors).filter((f) => f.startsWith("backup")), [], "log floors released");
  await db.close();
  for (const [i, res] of results.entries()) {
    assert.equal(res.compacted, false);
    assert.ok(res.logRecords >= 100, `backup ${i} applied the log after the checkpoint (${res.logRecords} records)`);
    assert.equal(res.lsn - res.logRecords, durableLsn, `backup ${i} started from the durable meta's LSN`);
    const expected = states.get(res.lsn);
    assert.ok(expected, `backup ${i}: LSN ${res.lsn} is one the writer saw`);
    await assertCopy(fs, `${DEST}-${i}`, res.lsn, expected, `backup ${i}`);
    // Replayed in fewer commits than the source made, the copy still ends at the source's txn.
    assert.equal(res.txn, txnAt.get(res.lsn), `backup ${i}: the reported txn is the source's at its LSN`);
    assert.equal((await openState(fs, `${DEST}-${i}`)).txn, res.txn, `backup ${i}: the copy opens at the reported txn`);
  }
  assert.deepEqual(fs.paths().filter((p) => p.includes(".partial-")), []);
});

test("backup({ compact: false }) with a log tail above maxReplayBytes: the source checkpoints first, the copy needs no record", async () => {
  const fs = new CrashFileSystem();
  const { db, model } = await filled(fs, NO_CHECKPOINTS, 60, 11);
  await db.checkpoint();
  const rng = new Rng(12);
  for (let i = 0; i < 80; i++) await writeOne(db, rng, model, `c${i}`);
  const tail = db.engine.dirtyBytes;
  assert.ok(tail > 2000, `a log tail of ${tail} dirty bytes`);
  // Below the limit: replayed into the copy, the source untouched.
  const c0 = db.engine.checkpoints;
  const smallExpected = canon(stateOf(db, model));
  const small = (await db.backup(`${DEST}-small`, { compact: false, maxReplayBytes: tail })) as BackupPagesResult;
  assert.equal(db.engine.checkpoints, c0, "a tail at the limit is replayed, not checkpointed");
  assert.ok(small.logRecords > 0);
  // Above it: one checkpoint in the pin task, then pages only.
  const states = new Map<number, string>([[db.txlogWatermarks().lastCommittedLsn, canon(stateOf(db, model))]]);
  let duringCheckpoint = 0;
  db.on("commit", () => {
    if (db.engine.checkpointRunning) duringCheckpoint++;
  });
  const lsnAtCall = db.txlogWatermarks().lastCommittedLsn;
  const writer = startWriter(db, new Rng(13), model, states);
  const res = (await db.backup(DEST, { compact: false, maxReplayBytes: tail - 1 })) as BackupPagesResult;
  await writer.stop();
  assert.equal(db.engine.checkpoints, c0 + 1, "the source was checkpointed once");
  assert.equal(res.logRecords, 0, "nothing left to replay");
  assert.ok(duringCheckpoint > 0, "the writer committed while that checkpoint ran (it does not hold the writer)");
  assert.ok(res.lsn >= lsnAtCall && res.lsn < db.txlogWatermarks().lastCommittedLsn, `the copy is of the state frozen at the call (LSN ${res.lsn})`);
  assert.equal(db.engine.readers.active, 0, "pinning reader released");
  assert.deepEqual(Object.keys(db.txlogWatermarks().floors).filter((f) => f.startsWith("backup")), [], "log floor released");
  await rejectsKeel(db.backup(`${DEST}-bad`, { compact: false, maxReplayBytes: -1 }), "INVALID_ARGUMENT", "negative maxReplayBytes");
  await rejectsKeel(db.backup(`${DEST}-bad`, { compact: false, maxReplayBytes: Number.NaN }), "INVALID_ARGUMENT", "NaN maxReplayBytes");
  await db.close();
  const expected = states.get(res.lsn);
  assert.ok(expected, `LSN ${res.lsn} is one the writer saw`);
  await assertCopy(fs, DEST, res.lsn, expected, DEST);
  await assertCopy(fs, `${DEST}-small`, small.lsn, smallExpected, `${DEST}-small`);
});

test("backup() compacting: bottom-up copy equal to the source at its LSN, no free pages, verifies, takes writes", async () => {
  const root = mkdtempSync(join(tmpdir(), "keel-backup-online-"));
  try {
    const src = join(root, "src");
    const db = openSync(src, { pageSize: 1024 }); // small pages: several branch levels
    const model = emptyState();
    const rng = new Rng(5);
    for (const name of ["users", "bin", "extra"]) subOf(db, name);
    // Enough entries for several leaves and branch levels.
    await db.transaction((tx) => {
      for (let i = 0; i < 20000; i++) tx.put(`key-${String(i).padStart(6, "0")}`, { i });
    });
    const m0 = new Map<string, unknown>();
    for (let i = 0; i < 20000; i++) m0.set(`key-${String(i).padStart(6, "0")}`, { i });
    model.set("", m0);
    for (let i = 0; i < 200; i++) await writeOne(db, rng, model, `a${i}`);
    const states = new Map<number, string>([[db.txlogWatermarks().lastCommittedLsn, canon(stateOf(db, model))]]);
    const writer = startWriter(db, new Rng(6), model, states);
    const res = await db.backup(join(root, "copy"));
    await writer.stop();
    await db.close();
    const expected = states.get(res.lsn);
    assert.ok(expected, `LSN ${res.lsn} is one the writer saw`);
    const copy = openSync(join(root, "copy"), {});
    try {
      assert.equal(canon(readState(copy)), expected, "copy equals the source at its LSN");
      const st = copy.getStats();
      assert.equal(st.freePages, 0);
      assert.equal(st.totalPages, 2 + st.branchPages + st.leafPages + st.overflowPages, "every page written is in use");
      assert.ok(st.depth >= 3, `several branch levels (depth ${st.depth})`);
      assert.equal(copy.txlogWatermarks().lastAppliedLsn, res.lsn);
      await copy.put("after", 1);
    } finally {
      await copy.close();
    }
    const report = await verify(join(root, "copy"));
    assert.ok(report.ok, JSON.stringify(report.problems.slice(0, 3)));
    const again = openSync(join(root, "copy"), { readOnly: true });
    try {
      assert.equal(again.get("after"), 1);
    } finally {
      await again.close();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("every online copy holds the commits queued before the call (same turn, not awaited), with and without the log", async () => {
  const root = mkdtempSync(join(tmpdir(), "keel-backup-queued-"));
  try {
    for (const wal of [true, false]) {
      const src = join(root, `src-${wal}`);
      const db = openSync(src, { wal });
      await db.put("base", 0);
      const copies: Array<[string, (dest: string) => Promise<{ lsn: number }>]> = [
        ["backup (compacting)", (d) => db.backup(d)],
        ["backup (pages)", (d) => db.backup(d, { compact: false })],
        ["compact", (d) => db.compact(d)],
      ];
      // A one-record tail: the page backup's copy ends at the source's txn, not one past it.
      await db.checkpoint();
      await db.put("one-record", 1);
      const one = (await db.backup(join(root, `${wal}-one`), { compact: false, maxReplayBytes: Infinity })) as BackupPagesResult;
      assert.equal(one.txn, db.engine.head.txn, `wal ${wal}: the reported txn is the source's`);
      const oneCopy = openSync(join(root, `${wal}-one`), { readOnly: true });
      try {
        assert.equal(oneCopy.engine.durable.txn, one.txn, `wal ${wal}: the copy's meta carries it`);
      } finally {
        await oneCopy.close();
      }
      for (const [what, copy] of copies) {
        const key = `queued-${what}`;
        const put = db.put(key, 1); // queued before the call, in the same turn
        const dest = join(root, `${wal}-${what}`);
        const [res] = await Promise.all([copy(dest), put]);
        const c = openSync(dest, { readOnly: true });
        try {
          assert.equal(c.get(key), 1, `${what} (wal ${wal}): the put queued before the call is in the copy`);
          if (wal) assert.equal(res.lsn, c.getStats().lsn, `${what}: the reported LSN is the copy's`);
        } finally {
          await c.close();
        }
      }
      await db.close();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("abort in the middle of the log-apply phase and of a compaction leaves no destination", async () => {
  const fs = new CrashFileSystem();
  const { db } = await filled(fs, NO_CHECKPOINTS, 50, 7);
  await db.checkpoint();
  const rng = new Rng(8);
  const model = emptyState();
  for (let i = 0; i < 300; i++) await writeOne(db, rng, model, `b${i}`);
  const engine = db.engine;

  // Log-apply phase: abort once records are being applied.
  const ac = new AbortController();
  const pin = await db.task(() => {
    const s = engine.durable;
    engine.readers.acquire(s.txn);
    const d = db.durability as unknown as { wal: { readRecords(a: number, b: number): Iterable<never> } };
    return { snap: s, meta: engine.durableMeta, log: { records: d.wal.readRecords(s.lsn + 1, engine.head.lsn), toLsn: engine.head.lsn, toTxn: engine.head.txn } };
  });
  let sawRecords = 0;
  try {
    await rejectsKeel(
      backupPages(engine, pin.snap, fs, DEST, {
        meta: pin.meta,
        log: pin.log,
        sliceMs: 0,
        onProgress: (p) => {
          sawRecords = Math.max(sawRecords, p.records ?? 0);
          if ((p.records ?? 0) > 0) ac.abort("test");
        },
        signal: ac.signal,
      }),
      "ABORTED",
      "abort while applying the log",
    );
  } finally {
    engine.readers.release(pin.snap.txn);
  }
  assert.ok(sawRecords > 0, "the abort came during the log-apply phase");
  assert.equal(fs.stat(DEST), undefined);
  assert.deepEqual(fs.paths().filter((p) => p.includes(".partial-")), []);

  // Compaction: abort after the first slice of entries.
  await db.transaction((tx) => {
    for (let i = 0; i < 3000; i++) tx.put(`bulk${i}`, i);
  });
  const ac2 = new AbortController();
  const snap = engine.published;
  await rejectsKeel(
    copySnapshot(engine, snap, fs, DEST, { sliceMs: 0, signal: ac2.signal, onProgress: (p) => p.entries > 0 && p.entries < p.totalEntries && ac2.abort("test") }),
    "ABORTED",
    "abort in the middle of a compaction",
  );
  assert.ok(ac2.signal.aborted);
  assert.equal(fs.stat(DEST), undefined);
  assert.deepEqual(fs.paths().filter((p) => p.includes(".partial-")), []);
  assert.equal(engine.readers.active, 0);

  // db.backup with an aborted signal: nothing, and the floor is released.
  const pre = new AbortController();
  pre.abort();
  await rejectsKeel(db.backup(DEST, { compact: false, signal: pre.signal }), "ABORTED", "pre-aborted page backup");
  await rejectsKeel(db.backup(DEST, { signal: pre.signal }), "ABORTED", "pre-aborted compacting backup");
  assert.deepEqual(Object.keys(db.txlogWatermarks().floors).filter((f) => f.startsWith("backup")), []);
  assert.equal(fs.stat(DEST), undefined);
  await db.close();
});

test("power loss at every I/O call of a backup with a log tail: no backup or a complete one", async () => {
  const base = new CrashFileSystem();
  {
    const { db } = await filled(base, NO_CHECKPOINTS, 60, 9);
    await db.close();
  }
  const durable = base.snapshotDurable();
  // Open (recovery checkpoints what it replays), then writes that only the log holds.
  const prepare = async (fs: CrashFileSystem) => {
    const db = openSync(DIR, { fs, ...NO_CHECKPOINTS });
    const model = readState(db);
    const rng = new Rng(10);
    for (let i = 0; i < 40; i++) await writeOne(db, rng, model, `b${i}`);
    assert.ok(db.engine.head.lsn > db.engine.durable.lsn, "a log tail after the checkpoint");
    return { db, expected: stateOf(db, model) };
  };
  let total: number;
  let expected: DbState;
  {
    const fs = durable.clone();
    const p = await prepare(fs);
    expected = p.expected;
    const c0 = fs.calls;
    const res = (await p.db.backup(DEST, { compact: false, maxReplayBytes: Infinity })) as BackupPagesResult;
    assert.ok(res.logRecords > 0);
    total = fs.calls - c0;
    await p.db.close();
  }
  let complete = 0;
  for (let k = 1; k <= total; k++) {
    const fs = durable.clone();
    const { db } = await prepare(fs);
    fs.crashAfterCalls(k);
    try {
      await db.backup(DEST, { compact: false, maxReplayBytes: Infinity });
    } catch (e) {
      assert.ok(isSimulatedCrash(e), `call ${k}: ${describeError(e)}`);
    }
    for (const seed of [1, 2]) {
      const after = fs.crashedCopy(seed);
      removeStaleLock(after, DIR);
      if (after.stat(DEST)) {
        complete++;
        assertSame((await openState(after, DEST)).state, expected, `call ${k} seed ${seed}: backup`);
      }
      assertSame((await openState(after, DIR, true)).state, expected, `call ${k} seed ${seed}: source`);
    }
  }
  assert.ok(complete > 0, "some crashes come after the rename was made durable");
});

test("compacting copy of a source with a damaged leaf: CORRUPT naming the page, no destination (I6)", async () => {
  const { compactTo } = await import("../../src/maintenance/compactTo.js");
  const fs = new CrashFileSystem();
  {
    const db = openSync(DIR, { fs, wal: false });
    await db.transaction((tx) => {
      for (let i = 0; i < 3000; i++) tx.put(`key${String(i).padStart(5, "0")}`, { i, pad: "p".repeat(40) });
    });
    await db.close();
  }
  // The root of the default database is a branch: damage its first child (a leaf), which open does not read.
  const probe = openSync(DIR, { fs, readOnly: true, wal: false });
  const tree = probe.engine.durable.dbs.get("")!.tree;
  const ps = probe.engine.limits.pageSize;
  await probe.close();
  assert.equal(typeof tree.root, "number");
  assert.ok(tree.depth >= 2);
  const f = fs.open(`${DIR}/data.keel`, "rw");
  const page = Buffer.alloc(ps);
  f.read(page, 0, ps, (tree.root as number) * ps);
  const leaf = page.readUInt32LE(32);
  const b = Buffer.alloc(1);
  f.read(b, 0, 1, leaf * ps + 200);
  b[0] = b[0]! ^ 0xff;
  f.write(b, 0, 1, leaf * ps + 200);
  f.close();
  const e = await rejectsKeel(compactTo(DIR, DEST, { fs }), "CORRUPT", "damaged leaf");
  assert.equal(e.details.page, leaf);
  assert.equal(fs.stat(DEST), undefined);
  assert.deepEqual(fs.paths().filter((p) => p.includes(".partial-")), []);
});

test("one reader slot per online copy: with maxReaders 1 every copy runs; with none free each is READERS_FULL and leaves no partial output or descriptor", async (t) => {
  const root = mkdtempSync(join(tmpdir(), "keel-slots-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, "db");
  const db = await open(dir, { maxReaders: 1 });
  await db.transaction((tx) => {
    for (let i = 0; i < 500; i++) tx.put(`k${i}`, { i });
  });
  // Each of these pins one snapshot; registering it a second time made all of them fail here.
  const copies: Array<[string, (dest: string) => Promise<unknown>]> = [
    ["backup", (d) => db.backup(d)],
    ["backup compact: false", (d) => db.backup(d, { compact: false })],
    ["compact", (d) => db.compact(d)],
    ["createSnapshot", () => db.createSnapshot()],
  ];
  for (const [name, run] of copies) {
    const dest = join(root, `ok-${name.replace(/\W/g, "")}`);
    await run(dest);
    if (name !== "createSnapshot") {
      const report = await verify(dest);
      assert.equal(report.ok, true, `${name}: the copy verifies`);
    }
  }
  assert.equal(db.getStats().readers, 0);

  // Hold the one slot with an iterator; every copy is refused before it creates anything.
  const it = db.getRange({})[Symbol.iterator]();
  assert.equal(it.next().done, false);
  const fds = () => (existsSync("/proc/self/fd") ? readdirSync("/proc/self/fd").length : 0);
  const fdsBefore = fds();
  for (const [name, run] of copies) {
    for (let i = 0; i < 5; i++) await rejectsKeel(run(join(root, `full-${i}`)), "READERS_FULL", name);
  }
  assert.equal(fds(), fdsBefore, "no descriptor left open by a refused copy");
  assert.deepEqual(readdirSync(root).filter((n) => n.startsWith("full-") || n.includes(".partial-")), [], "no partial output beside the destinations");
  assert.deepEqual(readdirSync(join(dir, "snapshots")).filter((n) => n !== "current" && n !== "previous"), [], "no incoming snapshot left");
  it.return?.();
  await db.backup(join(root, "after"));
  await db.close();
});

test("a destination written with a trailing slash: every copy lands at that directory, nothing is left inside or beside it; a dump file path ending in / is refused before any work", async (t) => {
  const { compactTo } = await import("../../src/maintenance/compactTo.js");
  const { salvage } = await import("../../src/maintenance/salvage.js");
  const { restore } = await import("../../src/maintenance/restore.js");
  const { dumpToFile } = await import("../../src/maintenance/dumpFile.js");
  const root = mkdtempSync(join(tmpdir(), "keel-slash-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, "db");
  const db = await open(dir);
  await db.transaction((tx) => {
    for (let i = 0; i < 300; i++) tx.put(`k${i}`, { i });
  });
  const snap = await db.createSnapshot();
  await db.put("after", 1);
  const jobs: Array<[string, (dest: string) => Promise<unknown>]> = [
    ["backup", (d) => db.backup(d)],
    ["backup compact: false", (d) => db.backup(d, { compact: false })],
    ["compact", (d) => db.compact(d)],
    ["restore", (d) => restore(join(dir, "snapshots", "current"), d)],
  ];
  for (const [name, run] of jobs) {
    const dotted = join(root, `${name.replace(/\W/g, "")}-dot`);
    await run(dotted + "/.");
    assert.equal((await verify(dotted)).ok, true, `${name} to out/.: the copy verifies`);
    const dest = join(root, name.replace(/\W/g, ""));
    await run(dest + "/");
    assert.deepEqual(readdirSync(dest).filter((n) => n.includes(".partial")), [], `${name}: nothing left inside`);
    const report = await verify(dest);
    assert.equal(report.ok, true, `${name}: the copy verifies`);
  }
  assert.ok(snap.lsn > 0);
  await db.close();
  for (const [name, run] of [
    ["compactTo", (d: string) => compactTo(dir, d)],
    ["salvage", (d: string) => salvage(dir, d)],
  ] as const) {
    const dest = join(root, name);
    await run(dest + "/");
    assert.equal((await verify(dest)).ok, true, `${name}: the copy verifies`);
  }
  assert.deepEqual(readdirSync(root).filter((n) => n.includes(".partial")), [], "nothing left beside the destinations");
  const again = await open(dir);
  await rejectsKeel(dumpToFile(again, join(root, "dump.jsonl") + "/"), "INVALID_ARGUMENT", "dump path ending in /");
  await rejectsKeel(dumpToFile(again, join(root, "dump.jsonl") + "/."), "INVALID_ARGUMENT", "dump path ending in /.");
  assert.equal(existsSync(join(root, "dump.jsonl")), false);
  await again.close();
});

test("onProgress: not a function is INVALID_ARGUMENT; one that throws rejects the copy with its own error and leaves no destination, even at the last call", async (t) => {
  const { compactTo } = await import("../../src/maintenance/compactTo.js");
  const root = mkdtempSync(join(tmpdir(), "keel-progress-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, "db");
  const db = await open(dir);
  await db.transaction((tx) => {
    for (let i = 0; i < 2000; i++) tx.put(`k${i}`, { i });
  });
  class Mine extends Error {}
  const jobs: Array<[string, (dest: string, onProgress: unknown) => Promise<unknown>]> = [
    ["backup", (d, p) => db.backup(d, { onProgress: p as never })],
    ["backup compact: false", (d, p) => db.backup(d, { compact: false, onProgress: p as never })],
    ["compact", (d, p) => db.compact(d, { onProgress: p as never })],
  ];
  for (const [name, run] of jobs) {
    await rejectsKeel(run(join(root, "x"), 5), "INVALID_ARGUMENT", `${name}: onProgress 5`);
    for (const at of ["first", "last"] as const) {
      let calls = 0;
      const dest = join(root, `${name.replace(/\W/g, "")}-${at}`);
      const thrower = (p: { entries: number; totalEntries: number }) => {
        calls++;
        if (at === "first" || p.entries === p.totalEntries) throw new Mine(`${name} ${at}`);
      };
      await assert.rejects(run(dest, thrower), (e: unknown) => e instanceof Mine, `${name}: the callback's own error`);
      assert.ok(calls > 0);
      assert.equal(existsSync(dest), false, `${name}, throw at the ${at} call: no destination`);
    }
  }
  // An async callback that rejects: handled (no unhandled rejection), and the copy fails with it.
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  process.on("unhandledRejection", onUnhandled);
  try {
    for (const [name, run] of jobs) {
      const dest = join(root, `${name.replace(/\W/g, "")}-async`);
      // Not awaited: the copy fails with it at its next report, or completes if none comes.
      const outcome = await run(dest, async () => {
        throw new Mine(`${name} async`);
      }).then(
        () => "done",
        (e: unknown) => (e instanceof Mine ? "failed with it" : e),
      );
      assert.ok(outcome === "done" || outcome === "failed with it", `${name}: ${String(outcome)}`);
      if (outcome !== "done") assert.equal(existsSync(dest), false);
      else rmSync(dest, { recursive: true, force: true });
    }
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off("unhandledRejection", onUnhandled);
  }
  await db.close();
  await assert.rejects(
    compactTo(dir, join(root, "ct"), {
      onProgress: () => {
        throw new Mine("compactTo");
      },
    }),
    (e: unknown) => e instanceof Mine,
  );
  assert.deepEqual(readdirSync(root).filter((n) => n !== "db"), [], "nothing left beside the source");
});

test("a page backup refused READERS_FULL after deciding to checkpoint first leaves no frozen checkpoint behind: policy checkpoints go on", async () => {
  const root = mkdtempSync(join(tmpdir(), "keel-bk-readers-"));
  try {
    const db = await open(join(root, "db"), { maxReaders: 1, checkpointMs: 100 });
    for (let i = 0; i < 200; i++) await db.put(`k${i}`, i);
    await db.checkpoint();
    for (let i = 0; i < 200; i++) await db.put(`k${i}`, i + 1); // a log tail over maxReplayBytes 0
    const it = db.getRange()[Symbol.iterator]();
    it.next(); // holds the only reader slot
    await assert.rejects(db.backup(join(root, "b"), { compact: false, maxReplayBytes: 0 }), (e: unknown) => (e as { code?: string }).code === "READERS_FULL");
    // A checkpointMs checkpoint may be running right now (the puts above can take longer than
    // 100 ms on a loaded machine): the property is that none stays frozen, left to no one.
    const settle = Date.now() + 5000;
    while (db.engine.checkpointRunning && Date.now() < settle) await new Promise((r) => setTimeout(r, 20));
    assert.equal(db.engine.checkpointRunning, false, "no checkpoint frozen and left to no one");
    it.return?.();
    await db.put("after", 1);
    const lsn = db.txlogWatermarks().lastCommittedLsn;
    const until = Date.now() + 5000;
    while (db.txlogWatermarks().lastAppliedLsn < lsn && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    assert.equal(db.txlogWatermarks().lastAppliedLsn, lsn, "a checkpointMs checkpoint ran");
    assert.equal(existsSync(join(root, "b")), false);
    await db.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("a page backup whose checkpoint-first fails at the log sync releases its reader slot", async () => {
  const { FaultFileSystem } = await import("../../src/io/FaultFileSystem.js");
  const fs = new FaultFileSystem(new CrashFileSystem());
  const db = await open("/db", { fs, durability: "relaxed" });
  for (let i = 0; i < 50; i++) await db.put(`k${i}`, i); // unsynced under relaxed: beginCheckpoint syncs the log
  fs.failAt(1, { kinds: ["sync"], errno: "EIO" });
  await assert.rejects(db.backup("/bk", { compact: false, maxReplayBytes: 0 }), (e: unknown) => (e as { code?: string }).code === "IO");
  fs.clearFaults();
  assert.equal(db.getStats().readers, 0, "no reader slot left held");
  await db.close().catch(() => {}); // the log failed: close may report it
});
