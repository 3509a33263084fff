/**
 * Snapshots, point-in-time restore and log retention (DESIGN.md section 5, I3, I7).
 *
 * - createSnapshot makes snapshots/current (and, from the second one, snapshots/previous), each with
 *   a snapshot.json (format, LSN, txn, entries, bytes, CRC-32 of its data file) and listed newest
 *   first; the log after a snapshot starts in a segment of its own.
 * - A snapshot opens (read-only) as a database equal to the source at its LSN.
 * - restore(snapshot, target, { toLsn }) for several LSNs between the snapshot and the head equals
 *   the source's history at that LSN (a model is kept per LSN), from current and from previous;
 *   bad arguments are refused and leave nothing behind; an I/O failure leaves no partial directory.
 * - GC never deletes a segment a floor needs: a seeded random walk of writes, checkpoints,
 *   snapshots, consumer floors and gcTxlogSegments(keepFromLsn) with retention 0, checking after
 *   every step that every floor's LSN is still readable and every listed snapshot still restores.
 * - A snapshot's floor holds from the moment its LSN is fixed: writers, checkpoints and gc running
 *   while the snapshot is being copied must not delete the log it needs.
 * - Retention is enforced automatically (no gcTxlogSegments call): with small segments and small
 *   walRetentionBytes the segment count stays bounded while a lot is written, and walRetentionMs
 *   lets old segments go by age.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { open, KeelError, type Database } from "../../src/index.js";
import { CrashFileSystem } from "../../src/io/CrashFileSystem.js";
import { isSimulatedCrash } from "../../src/io/SimulatedCrash.js";
import { FaultFileSystem } from "../../src/io/FaultFileSystem.js";
import { restore } from "../../src/maintenance/restore.js";
import { checkSnapshot } from "../../src/maintenance/Snapshots.js";
import { verify } from "../../src/maintenance/verify.js";
import { describeError, removeStaleLock } from "../helpers/crashCheck.js";
import { cloneState, emptyState, readState, assertSameState as assertSame, type DbState } from "../helpers/dbModel.js";
import { forEachSeed, Rng, seedList } from "../helpers/rng.js";
import { applyWalOp } from "../helpers/walHistory.js";
import { subHandles, walValue } from "../helpers/walWorkload.js";
import { databaseOutput, powerCutSweep } from "../helpers/powerCutSweep.js";

function tmp(): string {
  return mkdtempSync(join(tmpdir(), "keel-snapshots-"));
}

/** One awaited random commit; updates the model. */
async function commitOne(db: Database, rng: Rng, model: DbState, tag: string, bigRate = 0.2): Promise<void> {
  const subs = subHandles(db);
  const names = [...subs.keys()];
  const r = rng.next();
  const name = rng.pick(names);
  const key = `k${rng.int(25)}`;
  if (r < 0.15) {
    const existed = model.get(name)?.has(key) ?? false;
    await subs.get(name)!.remove(key);
    if (existed) applyWalOp(model, { db: name, key });
  } else if (r < 0.35) {
    const ops = Array.from({ length: 1 + rng.int(4) }, (_, j) => {
      const db = rng.pick(names);
      return { db, key: `k${rng.int(25)}`, value: walValue(rng, db, `${tag}.${j}`, rng.bool(bigRate)) };
    });
    await db.transaction((tx) => {
      for (const o of ops) tx.for(subs.get(o.db)!).put(o.key, o.value);
    });
    for (const o of ops) applyWalOp(model, o);
  } else if (r < 0.38 && name !== "" && model.has(name)) {
    await subs.get(name)!.clear();
    model.set(name, new Map());
  } else {
    const value = walValue(rng, name, tag, rng.bool(bigRate));
    await subs.get(name)!.put(key, value);
    applyWalOp(model, { db: name, key, value });
  }
}

async function stateOf(dir: string, o: { readOnly?: boolean } = {}): Promise<{ state: DbState; lsn: number }> {
  const db = await open(dir, o);
  try {
    return { state: readState(db), lsn: db.getStats().lsn };
  } finally {
    await db.close();
  }
}

async function expectCode(p: Promise<unknown>, code: string, what: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof KeelError && e.code === code, `${what}: expected ${code}, got ${describeError(e)}`);
    return;
  }
  assert.fail(`${what}: expected ${code}`);
}

test("createSnapshot: current and previous with snapshot.json, listed newest first; the log restarts in a new segment", async () => {
  const root = tmp();
  const dir = join(root, "db");
  try {
    const db = await open(dir, { walSegmentMaxBytes: 64 * 1024 });
    const rng = new Rng(1);
    const model = emptyState();
    for (let i = 0; i < 30; i++) await commitOne(db, rng, model, `a${i}`);
    const s1 = await db.createSnapshot();
    const head1 = db.txlogWatermarks().lastCommittedLsn;
    assert.equal(s1.name, "current");
    assert.equal(s1.lsn, head1);
    assert.equal(s1.path, join(dir, "snapshots", "current"));
    assert.equal(db.txlogWatermarks().activeSegment, `${String(head1 + 1).padStart(20, "0")}.wal`, "the log after the snapshot starts in its own segment");
    const meta = JSON.parse(readFileSync(join(dir, "snapshots", "current", "snapshot.json"), "utf8")) as Record<string, unknown>;
    assert.equal(meta.format, 1);
    assert.equal(meta.lsn, s1.lsn);
    assert.equal(meta.txn, s1.txn);
    assert.equal(meta.dataCrc32, s1.dataCrc32);
    assert.equal(meta.bytes, readFileSync(join(dir, "snapshots", "current", "data.keel")).length);
    assert.equal(meta.entries, [...model.values()].reduce((n, m) => n + m.size, 0));
    assert.deepEqual(db.listSnapshots().map((s) => s.name), ["current"]);
    assert.deepEqual(db.listSnapshots()[0], s1);

    for (let i = 0; i < 10; i++) await commitOne(db, rng, model, `b${i}`);
    const s2 = await db.createSnapshot();
    let list = db.listSnapshots();
    assert.deepEqual(list.map((s) => [s.name, s.lsn]), [["current", s2.lsn], ["previous", s1.lsn]]);
    assert.ok(s2.lsn > s1.lsn);
    assert.equal(list[1]!.dataCrc32, s1.dataCrc32, "the old current became previous unchanged");
    for (let i = 0; i < 10; i++) await commitOne(db, rng, model, `c${i}`);
    const s3 = await db.createSnapshot();
    list = db.listSnapshots();
    assert.deepEqual(list.map((s) => [s.name, s.lsn]), [["current", s3.lsn], ["previous", s2.lsn]]);
    for (const s of list) checkSnapshot(db.fs, s);
    assert.deepEqual(readdirSync(join(dir, "snapshots")).sort(), ["current", "previous"], "no leftovers");
    // A snapshot with nothing new since the last one is still a valid snapshot at the same LSN.
    const s4 = await db.createSnapshot();
    assert.equal(s4.lsn, s3.lsn);
    assert.equal(db.txlogWatermarks().floors.snapshot, s3.lsn + 1, "the snapshot floor is 1 + the LSN of the oldest kept snapshot");
    await db.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("a damaged snapshot.json (not JSON, null, an array, a field missing or of the wrong type, an LSN, txn or page size its data file does not hold) is CORRUPT from listSnapshots and restore, and a verify problem", async () => {
  const root = tmp();
  const dir = join(root, "db");
  try {
    const db = await open(dir);
    await db.put("k", "v");
    await db.createSnapshot();
    await db.close();
    const metaPath = join(dir, "snapshots", "current", "snapshot.json");
    const good = JSON.parse(readFileSync(metaPath, "utf8")) as Record<string, unknown>;
    const damaged: Array<[string, string]> = [
      ["not JSON", "{bad"],
      ["null", "null"],
      ["a number", "7"],
      ["an array", "[1, 2]"],
      ["another format", JSON.stringify({ ...good, format: 2 })],
      ["lsn as text", JSON.stringify({ ...good, lsn: String(good.lsn) })],
      ["no pageSize", JSON.stringify({ ...good, pageSize: undefined })],
      ["negative entries", JSON.stringify({ ...good, entries: -1 })],
      ["fractional txn", JSON.stringify({ ...good, txn: 1.5 })],
      // Well-formed but not what the data file holds: snapshot.json has no checksum of its own,
      // and a raised LSN would raise the log floor a restore from this snapshot needs.
      ["lsn raised", JSON.stringify({ ...good, lsn: (good.lsn as number) + 8 })],
      ["lsn lowered", JSON.stringify({ ...good, lsn: (good.lsn as number) - 1 })],
      ["txn changed", JSON.stringify({ ...good, txn: (good.txn as number) + 2 })],
      ["pageSize changed", JSON.stringify({ ...good, pageSize: 8192 })],
    ];
    let n = 0;
    for (const [what, text] of damaged) {
      writeFileSync(metaPath, text);
      const db2 = await open(dir, { readOnly: true });
      try {
        assert.throws(() => db2.listSnapshots(), (e: unknown) => e instanceof KeelError && e.code === "CORRUPT" && e.details.reason === "snapshot-meta", `listSnapshots, ${what}`);
      } finally {
        await db2.close();
      }
      await expectCode(restore(join(dir, "snapshots", "current"), join(root, `out${n++}`), { walDir: join(dir, "wal") }), "CORRUPT", `restore, ${what}`);
      const report = await verify(dir);
      assert.ok(report.problems.some((p) => p.kind === "snapshot-meta" && p.file === metaPath), `verify, ${what}: ${JSON.stringify(report.problems)}`);
    }
    writeFileSync(metaPath, JSON.stringify(good));
    assert.equal((await verify(dir)).ok, true, "the file put back verifies");
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("a snapshot opens as a database equal to the source at its LSN; restore to several LSNs equals the history there", async () => {
  const root = tmp();
  const dir = join(root, "db");
  try {
    const db = await open(dir, { walSegmentMaxBytes: 64 * 1024, checkpointLogBytes: 32 * 1024, walRetentionBytes: 0 });
    const rng = new Rng(2);
    const model = emptyState();
    const byLsn = new Map<number, DbState>();
    const note = (): void => void byLsn.set(db.txlogWatermarks().lastCommittedLsn, cloneState(model));
    note();
    for (let i = 0; i < 40; i++) {
      await commitOne(db, rng, model, `a${i}`);
      note();
    }
    const first = await db.createSnapshot();
    for (let i = 0; i < 40; i++) {
      await commitOne(db, rng, model, `b${i}`, 0.4);
      note();
    }
    await db.dropDB("users");
    model.delete("users");
    note();
    const second = await db.createSnapshot();
    // The first snapshot moved to snapshots/previous: take paths from the listing.
    const [cur, prev] = db.listSnapshots();
    assert.ok(cur && prev);
    assert.deepEqual([cur.lsn, prev.lsn, cur.name, prev.name], [second.lsn, first.lsn, "current", "previous"]);
    for (let i = 0; i < 60; i++) {
      await commitOne(db, rng, model, `c${i}`, 0.4);
      note();
    }
    const head = db.txlogWatermarks().lastCommittedLsn;
    assert.ok(db.txlogWatermarks().segmentCount >= 3, "the log after the snapshots spans several segments");

    // The snapshots open on their own (read-only: opening must not change them).
    for (const s of [prev, cur]) {
      const got = await stateOf(s.path, { readOnly: true });
      assertSame(got.state, byLsn.get(s.lsn)!, `snapshot at LSN ${s.lsn} opened as a database`);
      assert.equal(got.lsn, s.lsn);
      checkSnapshot(db.fs, s);
    }
    // Point-in-time restore from each snapshot, to LSNs from the snapshot's to the head.
    let n = 0;
    for (const s of [prev, cur]) {
      const points = [s.lsn, s.lsn + 1, Math.floor((s.lsn + head) / 2), head - 1, head];
      for (const at of points) {
        const target = join(root, `r${n++}`);
        const res = await restore(s.path, target, { toLsn: at });
        assert.equal(res.lsn, at);
        assert.equal(res.snapshotLsn, s.lsn);
        assert.equal(res.records, at - s.lsn);
        const got = await stateOf(target);
        assertSame(got.state, byLsn.get(at)!, `restore of snapshot ${s.name} (LSN ${s.lsn}) to LSN ${at}`);
        assert.equal(got.lsn, at);
        // The restored database goes on from there.
        const rdb = await open(target);
        assert.equal(rdb.txlogWatermarks().lastCommittedLsn, at);
        await rdb.put("after-restore", 1);
        assert.equal(rdb.txlogWatermarks().lastCommittedLsn, at + 1);
        await rdb.close();
      }
      const target = join(root, `r${n++}`);
      await restore(s.path, target);
      assertSame((await stateOf(target)).state, model, `restore of snapshot ${s.lsn} to the head`);
    }
    // Refused arguments leave nothing behind.
    await expectCode(restore(cur.path, join(root, "bad1"), { toLsn: cur.lsn - 1 }), "INVALID_ARGUMENT", "toLsn before the snapshot");
    await expectCode(restore(cur.path, join(root, "bad2"), { toLsn: head + 5 }), "NOT_FOUND", "toLsn past the end of the log");
    // Not an integer: said so (not "before the snapshot", which it is not), with the value.
    const frac = await restore(cur.path, join(root, "bad4"), { toLsn: cur.lsn + 0.5 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(frac instanceof KeelError && frac.code === "INVALID_ARGUMENT", describeError(frac));
    assert.deepEqual(frac.details, { argument: "toLsn", value: cur.lsn + 0.5 });
    await expectCode(restore(cur.path, join(root, "r0")), "EXISTS", "an existing target");
    await expectCode(restore(join(root, "nowhere"), join(root, "bad3")), "NOT_FOUND", "not a snapshot");
    assert.deepEqual(
      readdirSync(root).filter((e) => e.startsWith("bad")),
      [],
      "no partial restore directories",
    );
    await db.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("restore that fails on an I/O error removes its partial directory", async () => {
  const fs = new CrashFileSystem();
  fs.mkdir("/x");
  const db = await open("/x/db", { fs });
  for (let i = 0; i < 20; i++) await db.put(`k${i}`, "v".repeat(100 + i));
  const s = await db.createSnapshot();
  for (let i = 0; i < 20; i++) await db.put(`k${i}`, i);
  await db.close();
  let failures = 0;
  let succeeded = false;
  for (let n = 1; n < 400; n += 3) {
    const ffs = new FaultFileSystem(fs);
    ffs.failAt(n, { kinds: ["write", "sync", "rename", "open"] });
    let failed = false;
    try {
      await restore(s.path, "/x/target", { fs: ffs });
    } catch {
      failed = true;
    }
    const left = fs.list("/x").filter((e) => e !== "db");
    if (failed) {
      failures++;
      assert.deepEqual(left, [], `fault at call ${n}: the failed restore left ${left.join(", ")}`);
    } else {
      succeeded = true;
      assert.deepEqual(left, ["target"]);
      const rdb = await open("/x/target", { fs });
      assert.equal(rdb.get("k19"), 19);
      await rdb.close();
      fs.removeDir("/x/target");
      break;
    }
  }
  assert.ok(failures > 5 && succeeded, `faults injected: ${failures}, a restore got through: ${succeeded}`);
});

test("restore: bad arguments are INVALID_ARGUMENT; a walDir named but missing or empty is NOT_FOUND; an abort is ABORTED; none leaves anything", async () => {
  const fs = new CrashFileSystem();
  fs.mkdir("/x");
  const db = await open("/x/db", { fs });
  await db.put("before", 1);
  const s = await db.createSnapshot();
  for (let i = 0; i < 3000; i++) await db.put(`after${i % 10}`, i);
  await db.close();
  const left = () => fs.list("/x").filter((e) => e !== "db");
  const cases: Array<[string, () => Promise<unknown>, string]> = [
    ["no snapshot dir", () => restore(undefined as unknown as string, "/x/t", { fs }), "INVALID_ARGUMENT"],
    ["empty target", () => restore(s.path, "", { fs }), "INVALID_ARGUMENT"],
    ["null options", () => restore(s.path, "/x/t", null as unknown as undefined), "INVALID_ARGUMENT"],
    ["empty walDir", () => restore(s.path, "/x/t", { fs, walDir: "" }), "INVALID_ARGUMENT"],
    // A typo in the log's path used to restore the snapshot alone and report success.
    ["missing walDir", () => restore(s.path, "/x/t", { fs, walDir: "/x/db/wall" }), "NOT_FOUND"],
    ["empty walDir directory", () => (fs.mkdir("/x/empty"), restore(s.path, "/x/t", { fs, walDir: "/x/empty" })), "NOT_FOUND"],
    ["aborted before", () => restore(s.path, "/x/t", { fs, signal: AbortSignal.abort() }), "ABORTED"],
    [
      "aborted while replaying",
      () => {
        const ac = new AbortController();
        setImmediate(() => ac.abort());
        return restore(s.path, "/x/t", { fs, signal: ac.signal });
      },
      "ABORTED",
    ],
  ];
  for (const [what, run, code] of cases) {
    await expectCode(run(), code, what);
    fs.removeDir("/x/empty");
    assert.deepEqual(left(), [], `${what}: left ${left().join(", ")}`);
  }
  const r = await restore(s.path, "/x/t", { fs, walDir: "/x/db/wal" });
  assert.equal(r.records, 3000);
});

test("restore of a log of a few big records still hears an abort (a timer, as a SIGINT handler is) while it replays", async (t) => {
  const root = mkdtempSync(join(tmpdir(), "keel-restore-abort-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const db = await open(join(root, "db"));
  const s = await db.createSnapshot();
  for (let r = 0; r < 30; r++) {
    await db.transaction((tx) => {
      for (let i = 0; i < 4000; i++) tx.put(`r${r}-${i}`, "v".repeat(40));
    });
  }
  await db.close();
  const ac = new AbortController();
  let aborted = 0;
  const timer = setTimeout(() => {
    aborted = performance.now();
    ac.abort();
  }, 30);
  const t0 = performance.now();
  try {
    await expectCode(restore(s.path, join(root, "t"), { signal: ac.signal }), "ABORTED", "aborted by a timer during the replay");
  } finally {
    clearTimeout(timer);
  }
  assert.ok(aborted > t0, "the timer ran while the restore was working");
  assert.deepEqual(readdirSync(root), ["db"], "no target, no partial directory");
});

test("a wal: false session between two log sessions: no replay onto an older state crosses it (restore and openTxLog are NOT_FOUND there), the rest works", async () => {
  const fs = new CrashFileSystem();
  fs.mkdir("/x");
  let db = await open("/x/db", { fs });
  await db.put("a", 1);
  await db.put("keep", 1);
  const before = await db.createSnapshot();
  await db.put("logged", 1);
  const lastLogged = db.txlogWatermarks().lastCommittedLsn;
  await db.close();
  db = await open("/x/db", { fs, wal: false });
  await db.remove("a");
  await db.put("b", 2);
  await db.close();
  // A copy of the disk as a crash would leave it right after the mark is appended, before the
  // checkpoint that follows it.
  let crashed: CrashFileSystem | undefined;
  db = await open("/x/db", { fs, onPhase: (p) => void (p === "checkpoint:before-write" && (crashed ??= fs.clone())) });
  const mark = lastLogged + 1;
  await db.put("c", 3);
  const after = await db.createSnapshot();
  await db.put("d", 4);
  const end = db.txlogWatermarks().lastCommittedLsn;
  // Reading across the point where the log lacks changes is refused; reading after it is not.
  const e = (() => {
    try {
      [...db.openTxLog(before.lsn + 1)];
    } catch (err) {
      return err;
    }
  })();
  assert.ok(e instanceof KeelError && e.code === "NOT_FOUND" && e.details.reason === "unlogged" && e.details.lsn === mark, describeError(e));
  assert.deepEqual(
    [...db.openTxLog(mark + 1)].map((r) => r.ops.map((o) => o.key)),
    [["c"], ["d"]],
  );
  const older = db.listSnapshots().find((x) => x.lsn === before.lsn)!.path; // rotated to previous
  await db.close();
  // The crash before the mark's checkpoint: the next open replays the mark and adds no second one.
  assert.ok(crashed);
  removeStaleLock(crashed, "/x/db");
  const again = await open("/x/db", { fs: crashed });
  assert.deepEqual([again.get("a"), again.get("b")], [undefined, 2]);
  await again.put("e", 5);
  assert.deepEqual([...again.openTxLog(mark + 1)].map((r) => r.ops.map((o) => o.key)), [["e"]], "a second mark, or a lost record");
  await again.close();
  // Restore: up to the last logged LSN from the older snapshot; not past the mark; from the
  // snapshot taken after it, to the end.
  const r1 = await restore(older, "/x/r1", { fs, toLsn: lastLogged });
  assert.equal(r1.lsn, lastLogged);
  await expectCode(restore(older, "/x/r2", { fs }), "NOT_FOUND", "restore across the wal: false session");
  assert.deepEqual(fs.list("/x").sort(), ["db", "r1"], "the refused restore left nothing");
  const r3 = await restore(after.path, "/x/r3", { fs });
  assert.equal(r3.lsn, end);
  const rdb = await open("/x/r3", { fs });
  assert.deepEqual([rdb.get("a"), rdb.get("b"), rdb.get("c"), rdb.get("d")], [undefined, 2, 3, 4]);
  await rdb.close();
  // A second session right after a mark was checkpointed (a snapshot at the mark, no write in
  // between) gets a mark of its own.
  db = await open("/x/db", { fs, wal: false });
  await db.put("e", 5);
  await db.close();
  db = await open("/x/db", { fs });
  const atMark = await db.createSnapshot(); // at the second session's mark: nothing after it yet
  await db.close();
  db = await open("/x/db", { fs, wal: false });
  await db.remove("b");
  await db.close();
  db = await open("/x/db", { fs });
  await db.put("f", 6);
  const cur = db.listSnapshots().find((x) => x.lsn === atMark.lsn)!.path;
  await db.close();
  await expectCode(restore(cur, "/x/r4", { fs }), "NOT_FOUND", "restore across a second wal: false session");
});

test("createSnapshot failing at I/O call k (every k, every kind): KeelError IO, the current snapshot kept, the next one (after a reopen if the log failed) succeeds", async () => {
  const base = new CrashFileSystem();
  base.mkdir("/x");
  let db = await open("/x/db", { fs: base });
  for (let i = 0; i < 30; i++) await db.put(`k${i}`, "v".repeat(50 + i));
  const first = await db.createSnapshot();
  for (let i = 0; i < 30; i++) await db.put(`k${i}`, i);
  await db.close();
  let failures = 0;
  for (let k = 1; ; k++) {
    const fs = base.clone();
    const ffs = new FaultFileSystem(fs);
    db = await open("/x/db", { fs: ffs });
    ffs.reset();
    ffs.failAt(k);
    let info;
    try {
      info = await db.createSnapshot();
    } catch (e) {
      assert.ok(e instanceof KeelError && e.code === "IO", `fault at call ${k} (${ffs.lastFault?.kind} ${ffs.lastFault?.path}): ${describeError(e)}`);
    }
    const injected = ffs.faultsInjected > 0;
    ffs.clearFaults();
    if (!injected) {
      assert.ok(info, `call ${k}: no fault, yet createSnapshot failed`);
      await db.close();
      break;
    }
    if (!info) {
      failures++;
      // The snapshot that was current before is still listed (as current, or as previous if
      // the rotation stopped between its two renames), intact.
      const kept = db.listSnapshots().find((s) => s.lsn === first.lsn);
      assert.ok(kept, `fault at call ${k} (${ffs.lastFault?.kind} ${ffs.lastFault?.path}): the acknowledged snapshot is no longer listed: ${JSON.stringify(db.listSnapshots())}`);
      checkSnapshot(fs, kept);
    }
    // A fault in the log (sealing the segment) leaves it failed until a reopen (no fsync retry).
    let next = await db.createSnapshot().catch((e: unknown) => {
      assert.ok(e instanceof KeelError && e.code === "IO" && db.txlogWatermarks().failed, `fault at call ${k}: the retry failed: ${describeError(e)}`);
      return null;
    });
    if (!next) {
      await db.close().catch(() => {});
      db = await open("/x/db", { fs });
      next = await db.createSnapshot();
    }
    checkSnapshot(fs, next);
    // Rotated as always: the new one is current, and the one before it (the first, or one that
    // was published before its failing call returned) is previous.
    const listed = db.listSnapshots();
    assert.deepEqual(
      listed.map((s) => s.name),
      ["current", "previous"],
      `fault at call ${k}: after the next snapshot: ${JSON.stringify(listed)}`,
    );
    assert.ok(listed[1]!.lsn >= first.lsn && listed[1]!.lsn <= next.lsn);
    await db.close();
    const snap = await open(next.path, { fs, readOnly: true });
    assert.equal(snap.get("k29"), 29, `fault at call ${k}: the snapshot after it lacks the last commit`);
    await snap.close();
  }
  assert.ok(failures > 20, `only ${failures} faults failed the snapshot`);
});

// ---- floors and retention -----------------------------------------------------------------------

/** Every floor's LSN (up to the durable end) can still be read; returns the floors checked. */
function checkFloors(db: Database, extraKeep: number | undefined, ctx: string): void {
  const w = db.txlogWatermarks();
  const floors: Record<string, number> = { ...w.floors };
  if (extraKeep !== undefined) floors.keepFromLsn = extraKeep;
  for (const [name, lsn] of Object.entries(floors)) {
    const from = Math.max(1, Math.min(lsn, w.lastDurableLsn));
    if (lsn > w.lastDurableLsn) continue;
    try {
      const first = db.openTxLog(from, from)[Symbol.iterator]().next();
      assert.ok(!first.done && first.value.lsn === from, `${ctx}: floor ${name}=${lsn}: LSN ${from} not readable`);
    } catch (e) {
      assert.fail(`${ctx}: floor ${name}=${lsn} is not honoured: reading LSN ${from} fails: ${describeError(e)} (oldest kept LSN ${w.oldestLsn})`);
    }
  }
}

test("gc never deletes a segment a floor needs (seeded random walk over writes, checkpoints, snapshots, consumer floors, keepFromLsn)", async () => {
  const seeds = seedList(6, "KEEL_SNAPSHOT_SEEDS");
  await forEachSeed(
    "snapshot floors",
    seeds,
    async (seed) => {
      const rng = new Rng(seed);
      const fs = new CrashFileSystem();
      fs.mkdir("/w");
      const db = await open("/w/db", { fs, walSegmentMaxBytes: 64 * 1024, checkpointLogBytes: rng.pick([16 * 1024, 64 * 1024]), walRetentionBytes: 0 });
      const model = emptyState();
      const consumers = new Map<string, number>();
      let deleted = 0;
      try {
        for (let step = 0; step < 60; step++) {
          const ctx = `seed ${seed} step ${step}`;
          const r = rng.int(10);
          const head = db.txlogWatermarks().lastCommittedLsn;
          let keep: number | undefined;
          if (r < 4) {
            for (let i = 0, n = 3 + rng.int(12); i < n; i++) await commitOne(db, rng, model, `s${step}.${i}`, 0.6);
          } else if (r === 4) {
            await db.checkpoint();
          } else if (r === 5) {
            await db.createSnapshot();
          } else if (r === 6) {
            const name = `c${rng.int(3)}`;
            if (consumers.has(name) && rng.bool(0.5)) {
              consumers.delete(name);
              db.setTxLogFloor(name, undefined);
            } else {
              // A floor protects what is still there; it cannot bring back what gc already deleted.
              const at = Math.max(db.txlogWatermarks().oldestLsn ?? 1, head - rng.int(40));
              consumers.set(name, at);
              db.setTxLogFloor(name, at);
            }
          } else {
            keep = rng.bool(0.3) ? undefined : Math.max(db.txlogWatermarks().oldestLsn ?? 1, head - rng.int(60));
            const res = await db.gcTxlogSegments(keep);
            deleted += res.deleted.length;
          }
          checkFloors(db, keep, ctx);
          for (const [name, at] of consumers) assert.equal(db.txlogWatermarks().floors[`consumer:${name}`], at, `${ctx}: consumer floor ${name}`);
        }
        // Every listed snapshot still restores to the head with the log that is left.
        for (const s of db.listSnapshots()) {
          const target = `/w/restore-${s.name}`;
          try {
            await restore(s.path, target, { fs });
          } catch (e) {
            assert.fail(`seed ${seed}: listed snapshot ${s.name} (LSN ${s.lsn}) no longer restores: ${describeError(e)}`);
          }
          const rdb = await open(target, { fs });
          assertSame(readState(rdb), model, `seed ${seed}: snapshot ${s.name} restored to the head`);
          await rdb.close();
        }
        assert.ok(deleted > 0 || db.txlogWatermarks().heldByFloor.length > 0, `seed ${seed}: gc never had anything to do`);
      } finally {
        await db.close();
      }
    },
    { file: "dist/test/maintenance/snapshots.test.js" },
  );
});

test("the snapshot's floor holds while it is being copied: concurrent writes, checkpoints and gc keep the log it needs", async () => {
  const fs = new CrashFileSystem();
  fs.mkdir("/s");
  const db = await open("/s/db", { fs, walSegmentMaxBytes: 64 * 1024, checkpointLogBytes: 16 * 1024, walRetentionBytes: 0 });
  // Enough entries that the copy yields to the event loop (it does every 20,000 entries).
  await db.transaction((tx) => {
    for (let i = 0; i < 25_000; i++) tx.put(`fill${String(i).padStart(6, "0")}`, i);
  });
  const big = "w".repeat(4000);
  for (let round = 0; round < 3; round++) {
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop && i < 400; i++) await db.put(`big${i % 20}`, `${round}.${i}${big}`);
    })();
    const info = await db.createSnapshot();
    stop = true;
    await writer;
    const w = db.txlogWatermarks();
    assert.ok(
      w.oldestLsn !== undefined && w.oldestLsn <= info.lsn + 1,
      `round ${round}: the snapshot at LSN ${info.lsn} needs the log from LSN ${info.lsn + 1}, but the oldest record kept is ${w.oldestLsn} (gc deleted it while the snapshot was being made)`,
    );
    const target = `/s/restore-${round}`;
    try {
      await restore(info.path, target, { fs });
    } catch (e) {
      assert.fail(`round ${round}: the snapshot just made does not restore: ${describeError(e)}`);
    }
    fs.removeDir(target);
  }
  await db.close();
});

test("the snapshot floor holds at open too: the checkpoint that ends a replay keeps the log the snapshots need", async () => {
  const fs = new CrashFileSystem();
  fs.mkdir("/o");
  const options = { walSegmentMaxBytes: 64 * 1024, walRetentionBytes: 0, checkpointLogBytes: 1 << 30 };
  const db = await open("/o/db", { fs, ...options });
  for (let i = 0; i < 20; i++) await db.put(`k${i}`, i);
  const snap = await db.createSnapshot();
  const big = "o".repeat(3000);
  for (let i = 0; i < 120; i++) await db.put(`big${i % 10}`, `${i}${big}`);
  await db.checkpoint();
  await db.put("x", 1);
  await db.checkpoint(); // the checkpoint floor is now past several sealed segments
  assert.ok((db.txlogWatermarks().oldestLsn ?? Infinity) <= snap.lsn + 1, "while open, the snapshot floor keeps the log");
  for (let i = 0; i < 5; i++) await db.put(`tail${i}`, i); // not checkpointed: the next open replays them
  const crashed = fs.crashedCopy(1, { model: "dropAll" });
  await db.close();
  removeStaleLock(crashed, "/o/db");
  const db2 = await open("/o/db", { fs: crashed, ...options });
  try {
    assert.ok(db2.txlogWatermarks().replay.records > 0, "the open replayed (and checkpointed)");
    const w = db2.txlogWatermarks();
    assert.ok(
      (w.oldestLsn ?? Infinity) <= snap.lsn + 1,
      `after the recovering open the oldest kept record is LSN ${w.oldestLsn}; the snapshot at LSN ${snap.lsn} needs LSN ${snap.lsn + 1} on (floors ${JSON.stringify(w.floors)})`,
    );
    try {
      await restore(db2.listSnapshots()[0]!.path, "/o/restored", { fs: crashed });
    } catch (e) {
      assert.fail(`the snapshot no longer restores after a recovering open: ${describeError(e)}`);
    }
  } finally {
    await db2.close();
  }
});

test("retention is enforced automatically: segment count stays bounded while writing a lot, with no gc call", async () => {
  const fs = new CrashFileSystem();
  fs.mkdir("/r");
  const segMax = 64 * 1024;
  const retention = 128 * 1024;
  const db = await open("/r/db", { fs, walSegmentMaxBytes: segMax, walRetentionBytes: retention, checkpointLogBytes: 32 * 1024 });
  const value = "r".repeat(2000);
  let maxSegments = 0;
  let maxBytes = 0;
  const total = 3000; // ~6 MB of log, ~95 segments without retention
  for (let i = 0; i < total; i++) {
    await db.put(`k${i % 50}`, `${i}${value}`);
    const w = db.txlogWatermarks();
    maxSegments = Math.max(maxSegments, w.segmentCount);
    maxBytes = Math.max(maxBytes, w.logBytes);
  }
  const written = db.txlogWatermarks().lastCommittedLsn * 2000;
  // Kept: retention's bytes, what the checkpoint floor (the older meta) needs, the active segment.
  const bound = Math.ceil((retention + 2 * 32 * 1024) / segMax) + 3;
  assert.ok(maxSegments <= bound, `the log grew to ${maxSegments} segments (${maxBytes} bytes) while ${written} bytes were written; bound ${bound}`);
  assert.ok(maxBytes <= (bound + 1) * segMax);
  await db.close();

  // Control: the default retention (8 GiB) keeps everything, so the bound above is retention's doing.
  const fs2 = new CrashFileSystem();
  fs2.mkdir("/r");
  const db2 = await open("/r/db", { fs: fs2, walSegmentMaxBytes: segMax, checkpointLogBytes: 32 * 1024 });
  for (let i = 0; i < 600; i++) await db2.put(`k${i % 50}`, `${i}${value}`);
  assert.ok(db2.txlogWatermarks().segmentCount > bound, "without a small retention the log keeps its segments");
  await db2.close();
});

test("retention by age: walRetentionMs lets old segments go at the next checkpoint", async () => {
  const fs = new CrashFileSystem();
  fs.mkdir("/a");
  const db = await open("/a/db", { fs, walSegmentMaxBytes: 64 * 1024, walRetentionMs: 20, checkpointLogBytes: 1 << 30 });
  const value = "a".repeat(3000);
  for (let i = 0; i < 100; i++) await db.put(`k${i % 10}`, `${i}${value}`);
  const before = db.txlogWatermarks().segmentCount;
  assert.ok(before >= 4);
  await new Promise((r) => setTimeout(r, 40));
  await db.checkpoint();
  await db.put("x", 1);
  await db.checkpoint(); // the older meta now covers everything but the last record
  const after = db.txlogWatermarks().segmentCount;
  assert.ok(after < before, `segments older than walRetentionMs were kept: ${before} -> ${after}`);
  await db.close();
});

test("a power cut at any call of a snapshot rotation (current and previous exist) leaves no half snapshot under a listed name: verify finds no error, the acknowledged current is listed", async () => {
  const DIR = "/d/db";
  const fs0 = new CrashFileSystem();
  const db0 = await open(DIR, { fs: fs0 });
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 20; i++) await db0.put(`k${round}-${i}`, `v${round}-${i}`);
    if (round < 2) await db0.createSnapshot();
  }
  const acknowledged = db0.listSnapshots()[0]!.lsn;
  await db0.close();
  const base = fs0.snapshotDurable();
  let finished = false;
  for (let k = 1; !finished && k < 500; k++) {
    const fs = base.clone();
    removeStaleLock(fs, DIR);
    const db = await open(DIR, { fs });
    fs.resetCounters();
    fs.crashAfterCalls(k, { performCall: true });
    let done = 0;
    try {
      done = (await db.createSnapshot()).lsn;
      finished = true;
    } catch (e) {
      assert.ok(isSimulatedCrash(e), `call ${k}: ${describeError(e)}`);
    }
    // The old code deleted previous file by file: an "ordered" cut could leave it half there.
    for (const [model, seeds] of [["ordered", [1, 2, 3, 4, 5, 6]], ["sectors", [1, 2]]] as const) {
      for (const seed of seeds) {
        const after = fs.crashedCopy(seed, { model });
        removeStaleLock(after, DIR);
        const rep = await verify(DIR, { fs: after });
        const errors = rep.problems.filter((p) => p.severity === "error");
        assert.deepEqual(errors, [], `cut at call ${k}, ${model} seed ${seed}`);
        const re = await open(DIR, { fs: after });
        const listed = re.listSnapshots();
        assert.ok(listed.length >= 1 && listed[0]!.lsn >= acknowledged, `cut at call ${k}: ${JSON.stringify(listed.map((s) => [s.name, s.lsn]))}`);
        if (finished) assert.equal(listed[0]!.lsn, done);
        await re.close();
      }
    }
    if (!finished) await db.close().catch(() => {});
  }
  assert.ok(finished, "the rotation finished within 500 calls");
});

test("close() while createSnapshot checks its copy's CRC: the snapshot stops CLOSED and nothing is rotated after the LOCK is released", async () => {
  const root = tmp();
  const dir = join(root, "db");
  try {
    let phase = "";
    const db = await open(dir, { encoding: "binary", onPhase: (p) => void (phase = p) });
    const big = Buffer.alloc(64 * 1024, 5);
    await db.transaction((tx) => {
      for (let i = 0; i < 200; i++) tx.put(`k${i}`, big); // a copy of about 13 MiB: many CRC steps
    });
    const first = await db.createSnapshot();
    phase = "";
    const snap = db.createSnapshot();
    // Close as soon as the copy is done: the CRC of 13 MiB takes 13 turns.
    while (phase !== "snapshot:after-copy") await new Promise((r) => setImmediate(r));
    const closing = db.close();
    await expectCode(snap, "CLOSED", "createSnapshot across close()");
    await closing;
    assert.deepEqual(readdirSync(join(dir, "snapshots")).sort(), ["current"], "no incoming left, no rotation");
    const db2 = await open(dir, { readOnly: true });
    try {
      assert.deepEqual(db2.listSnapshots().map((s) => s.lsn), [first.lsn]);
    } finally {
      await db2.close();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("restore: a power cut at every I/O call leaves no target or the complete one, and a restore that resolved survives it (I7)", async () => {
  const fs0 = new CrashFileSystem();
  const db0 = await open("/db", { fs: fs0 });
  for (let i = 0; i < 30; i++) await db0.put(`a${i}`, { i, pad: "p".repeat(40) });
  const snap = await db0.createSnapshot();
  for (let i = 0; i < 20; i++) await db0.put(`b${i}`, i); // log after the snapshot: replayed by restore
  const expected = readState(db0);
  await db0.close();
  const base = fs0.snapshotDurable();
  removeStaleLock(base, "/db");
  await powerCutSweep(
    base,
    async (fs, resolved) => {
      await restore(snap.path, "/restored", { fs });
      resolved();
    },
    databaseOutput("/restored", expected, "restore"),
    [1, 2],
  );
});
