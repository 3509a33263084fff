/**
 * compactTo: compaction of a closed database directory into a new one (DESIGN.md section 5, I7).
 *
 * - The destination holds every entry of every sub-database, in fewer pages than a churned source,
 *   with the source's page size, format version and meta flags; the source's files are unchanged.
 * - Log records the source's data file lacks (a process killed before its checkpoint) are replayed
 *   in memory and are in the destination; the source is still not written.
 * - The destination must not exist (EXISTS, nothing touched); a source another process has open is
 *   refused (LOCKED); a missing source is NOT_FOUND.
 * - An AbortSignal cancels it: ABORTED, and neither the destination nor a partial directory remains.
 * - Failing the N-th I/O call, for every N, gives a coded error and leaves nothing behind.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { basename } from "node:path";
import { KeelError, openSync, type Database } from "../../src/index.js";
import { CrashFileSystem } from "../../src/io/CrashFileSystem.js";
import { FaultFileSystem } from "../../src/io/FaultFileSystem.js";
import type { FileSystem } from "../../src/io/FileSystem.js";
import { compactTo } from "../../src/maintenance/compactTo.js";
import { verify } from "../../src/maintenance/verify.js";
import { META_FLAG_WAL, probeMeta } from "../../src/pager/Meta.js";
import { FORMAT_VERSION } from "../../src/pager/PageLayout.js";
import { isRegistration } from "../../src/db/ReadOnlyReaders.js";
import { describeError, removeStaleLock } from "../helpers/crashCheck.js";
import { emptyState, readState, assertSameState as assertSame, type DbState } from "../helpers/dbModel.js";
import { assertUnchanged, filesOf, readAll } from "../helpers/memFiles.js";
import { Rng } from "../helpers/rng.js";
import { rejectsKeel } from "../db/dbUtil.js";

const SRC = "/src";
const DEST = "/out/compacted";

function stateOf(fs: FileSystem, dir: string): DbState {
  const db = openSync(dir, { fs, readOnly: true });
  try {
    return readState(db);
  } finally {
    void db.close();
  }
}

/** Lots of churn: many puts (some large), then most keys removed, in several sub-databases. */
async function churn(db: Database, rng: Rng): Promise<DbState> {
  const model = emptyState();
  const subs: Array<[string, ReturnType<Database["openDB"]> | Database]> = [
    ["", db],
    ["a", db.openDB("a")],
    ["b", db.openDB("b", { encoding: "binary" })],
  ];
  for (const [name] of subs) model.set(name, model.get(name) ?? new Map());
  for (let round = 0; round < 4; round++) {
    await db.transaction((tx) => {
      for (let i = 0; i < 400; i++) {
        const [name, sub] = rng.pick(subs);
        const key = `key-${rng.int(600).toString().padStart(4, "0")}`;
        const v = name === "b" ? Buffer.alloc(rng.bool(0.05) ? 7000 : 50, `${round}.${i}`) : { round, i, pad: rng.bool(0.05) ? "p".repeat(5000) : "" };
        tx.for(sub).put(key, v);
        model.get(name)!.set(key, v);
      }
    });
    await db.checkpoint();
  }
  await db.transaction((tx) => {
    for (const [name, sub] of subs) {
      const m = model.get(name)!;
      for (const k of [...m.keys()]) {
        if (rng.bool(0.8)) {
          tx.for(sub).remove(k);
          m.delete(k);
        }
      }
    }
  });
  return model;
}

test("compactTo: every entry, fewer pages, same page size, version and flags; the source is not written", async () => {
  for (const wal of [false, true]) {
    const fs = new CrashFileSystem();
    const db = openSync(SRC, { fs, wal, pageSize: 8192 });
    const model = await churn(db, new Rng(wal ? 2 : 1));
    await db.close();
    const expected = stateOf(fs, SRC);
    assertSame(expected, model, "source vs model");
    const before = filesOf(fs, SRC);
    const progress: number[] = [];
    const res = await compactTo(SRC, DEST, { fs, onProgress: (p) => progress.push(p.entries) });
    assertUnchanged(before, filesOf(fs, SRC), `wal ${wal}: source`);
    assertSame(stateOf(fs, DEST), expected, `wal ${wal}: destination`);
    assert.equal(progress.at(-1), res.entries, "progress reported up to the last entry");
    assert.equal(res.pageSize, 8192);
    assert.equal(res.version, FORMAT_VERSION);
    assert.equal(res.flags, wal ? META_FLAG_WAL : 0);
    const srcBytes = readAll(fs, `${SRC}/data.keel`).length;
    const destData = readAll(fs, `${DEST}/data.keel`);
    assert.equal(res.srcBytes, srcBytes);
    assert.ok(destData.length < srcBytes / 2, `wal ${wal}: compacted ${destData.length} < half of ${srcBytes}`);
    const m0 = probeMeta(destData, 0);
    const m1 = probeMeta(destData.subarray(8192), 1);
    const newest = [m0, m1].filter((p) => p.ok).map((p) => (p.ok ? p.meta : null)!).sort((x, y) => y.txn - x.txn)[0]!;
    assert.equal(newest.pageSize, 8192);
    assert.equal(newest.version, FORMAT_VERSION);
    assert.equal(newest.flags, wal ? META_FLAG_WAL : 0);
    assert.deepEqual(fs.list("/out"), ["compacted"], "no partial directory left");
    // A compacted copy has no free page and names no free-list run: verify finds it clean.
    assert.equal(newest.freelistPage, 0);
    const report = await verify(DEST, { fs });
    assert.deepEqual(report.problems, [], `wal ${wal}: verify of the compacted copy`);
    const copy = openSync(DEST, { fs, wal });
    try {
      assert.equal(copy.getStats().pageSize, 8192);
      await copy.put("new", 1);
    } finally {
      await copy.close();
    }
  }
});

test("compactTo: log records the data file lacks are replayed in memory and copied; the source is not written", async () => {
  const fs = new CrashFileSystem();
  const db = openSync(SRC, { fs, checkpointLogBytes: 1 << 30, checkpointDirtyBytes: 1 << 30, checkpointMs: 3_600_000 });
  const model = await churn(db, new Rng(3));
  await db.put("last", "one");
  model.get("")!.set("last", "one");
  const durableLsn = db.engine.durable.lsn;
  assert.ok(db.txlogWatermarks().lastCommittedLsn > durableLsn, "commits the data file lacks");
  // The process is killed: its page cache survives, nothing is checkpointed.
  const killed = fs.crashedCopy(1, { model: "keepAll" });
  removeStaleLock(killed, SRC);
  const before = filesOf(killed, SRC);
  const res = await compactTo(SRC, DEST, { fs: killed });
  assert.ok(res.replayedRecords > 0, "records replayed");
  assert.equal(res.lsn, db.txlogWatermarks().lastCommittedLsn);
  assertUnchanged(before, filesOf(killed, SRC), "source");
  assertSame(stateOf(killed, DEST), model, "destination");
  await db.close();
});

test("compactTo: EXISTS, LOCKED, NOT_FOUND, and an abort leaves nothing", async () => {
  const fs = new CrashFileSystem();
  const db = openSync(SRC, { fs, wal: false });
  await churn(db, new Rng(4));
  await rejectsKeel(compactTo(SRC, DEST, { fs }), "LOCKED", "source open");
  await db.close();
  assert.equal(fs.stat(DEST), undefined);

  fs.mkdir(DEST);
  const before = filesOf(fs, SRC);
  await rejectsKeel(compactTo(SRC, DEST, { fs }), "EXISTS", "existing destination");
  assertUnchanged(before, filesOf(fs, SRC), "source after EXISTS");
  assert.deepEqual(fs.list(DEST), [], "the existing destination is untouched");
  fs.removeDir(DEST);

  await rejectsKeel(compactTo("/nothing-here", DEST, { fs }), "NOT_FOUND", "missing source");

  const ac = new AbortController();
  await rejectsKeel(
    compactTo(SRC, DEST, { fs, signal: ac.signal, onProgress: (p) => (p.entries >= 20 ? ac.abort() : undefined) }),
    "ABORTED",
    "abort",
  );
  assert.equal(fs.stat(DEST), undefined);
  assert.deepEqual(fs.list("/out"), [], "no partial directory");
  const pre = new AbortController();
  pre.abort();
  await rejectsKeel(compactTo(SRC, DEST, { fs, signal: pre.signal }), "ABORTED", "aborted before the start");
  assert.equal(fs.stat(DEST), undefined);
  // The source still opens read-write afterwards (the read-only open released its lock).
  const again = openSync(SRC, { fs, wal: false });
  await again.close();
});

test("compactTo: failing the N-th I/O call, for every N, gives a coded error and leaves nothing", async () => {
  const base = new CrashFileSystem();
  {
    const db = openSync(SRC, { fs: base, wal: false });
    await churn(db, new Rng(5));
    await db.close();
  }
  const expected = stateOf(base, SRC);
  const source = filesOf(base, SRC);
  let succeeded = false;
  for (let n = 1; n < 2000 && !succeeded; n++) {
    const inner = base.clone();
    const ffs = new FaultFileSystem(inner);
    ffs.failAt(n, { errno: n % 3 ? "EIO" : "ENOSPC" });
    try {
      await compactTo(SRC, DEST, { fs: ffs });
      if (ffs.faultsInjected === 0) succeeded = true;
      else {
        // A failure that does not fail compaction: closing the read-only source, cleanups, and
        // the source's read-only registration (ReadOnlyReaders.ts: an open that cannot register
        // goes on unprotected rather than refuse to read).
        const f = ffs.lastFault!;
        const registration = isRegistration(basename(f.path));
        assert.ok(f.kind === "close" || f.kind === "remove" || f.kind === "removeDir" || registration, `call ${n}: a fault (${f.kind} ${f.path}) went unreported`);
      }
      if (inner.stat(DEST)) assertSame(stateOf(inner, DEST), expected, `call ${n}: destination`);
    } catch (e) {
      assert.ok(e instanceof KeelError, `call ${n}: ${describeError(e)}`);
      assert.ok(["IO", "FULL", "CORRUPT"].includes(e.code) || (e.code === "LOCKED" && ffs.lastFault?.path.endsWith("LOCK")), `call ${n}: ${describeError(e)}`);
      assert.equal(inner.stat(DEST), undefined, `call ${n}: no destination after a failure`);
      assert.ok(!inner.paths().some((p) => p.includes(".partial-")), `call ${n}: no partial directory`);
    }
    // A fault while the read-only open releases its LOCK check can leave LOCK behind (Lock.release
    // reads it first): a stale lock of this process, not a change of the database.
    const after = filesOf(inner, SRC);
    after.delete("LOCK");
    assertUnchanged(source, after, `call ${n}: source`);
  }
  assert.ok(succeeded, "compaction succeeds once N passes its last call");
});

test("db.compact: an open database copied without free pages while a writer goes on; flags kept, verify clean, EXISTS, abort leaves nothing", async () => {
  for (const wal of [false, true]) {
    const fs = new CrashFileSystem();
    const db = openSync(SRC, { fs, wal, pageSize: 8192 });
    const model = await churn(db, new Rng(wal ? 6 : 5));
    const expected = readState(db);
    // A write queued with the compaction: the copy is one published state, with or without it.
    const during = db.put("during", 1);
    const res = await db.compact(DEST);
    await during;
    assertSame(expected, model, "source vs model");
    assert.equal(res.dest, DEST);
    const copy = openSync(DEST, { fs, readOnly: true });
    try {
      const got = readState(copy);
      const d = got.get("")?.get("during");
      assert.ok(d === undefined || d === 1, `wal ${wal}: the concurrent write, whole or absent`);
      got.get("")?.delete("during");
      assertSame(got, expected, `wal ${wal}: copy`);
      assert.equal(copy.getStats().pageSize, 8192);
      assert.equal(copy.getStats().freePages, 0);
    } finally {
      await copy.close();
    }
    const destData = readAll(fs, `${DEST}/data.keel`);
    const meta = [probeMeta(destData, 0), probeMeta(destData.subarray(8192), 1)].flatMap((p) => (p.ok ? [p.meta] : [])).sort((x, y) => y.txn - x.txn)[0]!;
    assert.equal(meta.flags, wal ? META_FLAG_WAL : 0, "the source's flags are kept");
    assert.deepEqual((await verify(DEST, { fs })).problems, [], `wal ${wal}: verify of the copy`);

    await rejectsKeel(db.compact(DEST), "EXISTS", "existing destination");
    const ac = new AbortController();
    ac.abort();
    await rejectsKeel(db.compact("/out/aborted", { signal: ac.signal }), "ABORTED", "abort");
    assert.equal(fs.stat("/out/aborted"), undefined);
    assert.deepEqual(fs.list("/out"), ["compacted"], "no partial directory left");
    await db.close();
    await rejectsKeel(db.compact("/out/closed"), "CLOSED", "after close");
  }
});
