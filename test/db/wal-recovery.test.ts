/**
 * Recovery of the write-ahead log at open (DESIGN.md sections 3, I3, I5, I6).
 *
 * - Replay is idempotent: the power is cut at every I/O call of an open that replays the log (in a
 *   second base with a small checkpointDirtyBytes, so that replay checkpoints part way; in a third,
 *   repairing a torn tail first), the unsynced state is resolved under the
 *   "sectors" and "ordered" models, and the next open gives exactly the state an uninterrupted open
 *   gives, at the same LSN, every time (and again after a clean close).
 * - A flipped byte in an earlier log record (in the newest segment with valid records after it, or
 *   in a sealed segment) is CORRUPT at open, naming the segment (details.segment) and the record's
 *   offset (details.offset); no file is changed or deleted.
 * - A missing middle segment is CORRUPT (a gap) naming the segment after the hole.
 * - A torn record at the tail of the newest segment is cut off silently: the database opens at the
 *   last whole record, and the next commit takes the next LSN.
 * - A log that ends before the LSN the data file already holds (its newest segments deleted) is
 *   CORRUPT (reason log-behind-data) and nothing is deleted or changed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, unlinkSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { open, verify, KeelError, NodeFileSystem, type Database, type OpenMode, type OpenOptions } from "../../src/index.js";
import { CrashFileSystem, type CrashModel } from "../../src/io/CrashFileSystem.js";
import { FaultFileSystem, type CallInfo } from "../../src/io/FaultFileSystem.js";
import { errnoError } from "../../src/io/errnoError.js";
import { describeError, removeStaleLock } from "../helpers/crashCheck.js";
import { canon, diffStates, emptyState, readState, type DbState } from "../helpers/dbModel.js";
import { Rng } from "../helpers/rng.js";
import { applyWalOp } from "../helpers/walHistory.js";
import { subHandles, walValue } from "../helpers/walWorkload.js";
import { addTornSegment, appendTornRecord, flipByte, scanSegment, segmentNames, writeAt } from "../helpers/walFiles.js";
import { encodeLogRecord, type LogOp } from "../../src/wal/LogRecord.js";
import { treeBytes } from "../helpers/walUtil.js";
import { overriding } from "../helpers/overriding.js";

const INDEX = fileURLToPath(new URL("../../src/index.js", import.meta.url));

/** A child process opens `dir` (no checkpoint by time), runs `body` with `db`, then kills itself with SIGKILL. */
function writeThenDie(dir: string, body: string): void {
  const script = `import { open } from ${JSON.stringify(INDEX)};
    const db = await open(${JSON.stringify(dir)}, { checkpointMs: 3600000 });
    ${body}
    process.kill(process.pid, "SIGKILL");`;
  const child = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 60000 });
  assert.equal(child.signal, "SIGKILL", child.stderr);
}
const DIR = "/db";

/** Sequential awaited writes over the four sub-databases; returns the model. */
async function writeSome(db: Database, rng: Rng, n: number, model: DbState, bigRate = 0.3): Promise<void> {
  const subs = subHandles(db);
  const names = [...subs.keys()];
  for (let i = 0; i < n; i++) {
    const name = rng.pick(names);
    const key = `k${rng.int(30)}`;
    if (rng.bool(0.15)) {
      await subs.get(name)!.remove(key);
      applyWalOp(model, { db: name, key });
    } else if (rng.bool(0.2)) {
      const ops = Array.from({ length: 1 + rng.int(4) }, (_, j) => ({ db: rng.pick(names), key: `k${rng.int(30)}`, value: walValue(rng, "", `t${i}.${j}`, false) }));
      for (const o of ops) if (o.db === "bin") o.value = Buffer.from(String(o.value));
      for (const o of ops) if (o.db === "js") o.value = { v: String(o.value) } as never;
      await db.transaction((tx) => {
        for (const o of ops) tx.for(subs.get(o.db)!).put(o.key, o.value);
      });
      for (const o of ops) applyWalOp(model, o);
    } else {
      const value = walValue(rng, name, `p${i}`, rng.bool(bigRate));
      await subs.get(name)!.put(key, value);
      applyWalOp(model, { db: name, key, value });
    }
  }
}

async function openOrFail(dir: string, o: OpenOptions, ctx: string): Promise<Database> {
  try {
    return await open(dir, o);
  } catch (e) {
    assert.fail(`${ctx}: open failed: ${describeError(e)}`);
  }
}

interface Base {
  label: string;
  fs: CrashFileSystem;
  options: OpenOptions;
  state: DbState;
  lsn: number;
}

/** A crashed disk whose data file lags the log: the next open must replay (and maybe repair). */
async function makeBases(): Promise<Base[]> {
  const bases: Base[] = [];
  {
    const fs = new CrashFileSystem();
    fs.mkdir(DIR);
    fs.syncDir("/");
    const options: OpenOptions = { checkpointLogBytes: 1 << 30, walSegmentMaxBytes: 64 * 1024 };
    const db = await open(DIR, { ...options, fs });
    const model = emptyState();
    await writeSome(db, new Rng(11), 70, model);
    await db.checkpoint();
    await writeSome(db, new Rng(12), 60, model);
    const lsn = db.txlogWatermarks().lastCommittedLsn;
    // Strict: every commit is synced; the data file holds only the checkpoint in the middle.
    const crashed = fs.crashedCopy(1, { model: "dropAll" });
    await db.close();
    assert.ok(segmentNamesOf(crashed).length >= 2, "the replay base should span several segments");
    bases.push({ label: "strict, replay across segments", fs: crashed, options, state: model, lsn });
    // The same disk, replayed with a small dirty-bytes budget: checkpoints in the middle of replay.
    bases.push({ label: "strict, replay with checkpoints mid-replay", fs: crashed.clone(), options: { ...options, checkpointDirtyBytes: 16 * 1024 }, state: model, lsn });
  }
  {
    // Relaxed: unsynced records, cut by a "sectors" crash into a torn tail that recovery must cut.
    const fs = new CrashFileSystem();
    fs.mkdir(DIR);
    fs.syncDir("/");
    const options: OpenOptions = { durability: "relaxed", groupCommit: 1000, groupCommitMs: 60_000, checkpointLogBytes: 1 << 30 };
    const db = await open(DIR, { ...options, fs });
    const model = emptyState();
    await writeSome(db, new Rng(21), 40, model, 0.5);
    await db.sync();
    await writeSome(db, new Rng(22), 40, model, 0.5);
    let found: CrashFileSystem | undefined;
    for (let seed = 1; seed < 200 && !found; seed++) {
      const c = fs.crashedCopy(seed, { model: "sectors" });
      const probe = c.clone();
      removeStaleLock(probe, DIR);
      let truncated = false;
      const pdb = await open(DIR, { ...options, fs: probe, onPhase: (p) => void (p === "wal-recovery:before-truncate" && (truncated = true)) });
      await pdb.close();
      if (truncated) found = c;
    }
    await db.close();
    assert.ok(found, "no crash seed produced a torn tail");
    // The state after recovery is whatever prefix survived: take it from an uninterrupted open.
    const ref = found.clone();
    removeStaleLock(ref, DIR);
    const rdb = await open(DIR, { ...options, fs: ref });
    const state = readState(rdb);
    const lsn = rdb.txlogWatermarks().lastCommittedLsn;
    await rdb.close();
    bases.push({ label: "relaxed, torn tail + replay", fs: found, options, state, lsn });
  }
  return bases;
}

function segmentNamesOf(fs: CrashFileSystem): string[] {
  return fs.list(`${DIR}/wal`).filter((n) => n.endsWith(".wal"));
}

test("replay is idempotent: a power cut at any I/O call of the recovering open, then open again, gives the same state", async () => {
  const bases = await makeBases();
  for (const base of bases) {
    // How many calls an uninterrupted recovering open makes (the first open after the crash).
    const count = base.fs.clone();
    removeStaleLock(count, DIR);
    count.resetCounters();
    const cdb = await openOrFail(DIR, { ...base.options, fs: count }, base.label);
    const calls = count.calls;
    assert.equal(canon(readState(cdb)), canon(base.state), `${base.label}: an uninterrupted recovering open gives the expected state`);
    assert.ok(cdb.txlogWatermarks().replay.records > 0, `${base.label}: the base must need replay`);
    await cdb.close();

    let cuts = 0;
    for (let n = 1; n <= calls; n++) {
      for (const model of ["sectors", "ordered"] as CrashModel[]) {
        const ctx = `${base.label}: power cut at call ${n}/${calls} of the recovering open, ${model} crash`;
        const fs = base.fs.clone();
        removeStaleLock(fs, DIR);
        fs.resetCounters();
        fs.crashAfterCalls(n, { performCall: n % 2 === 0 });
        let interrupted: Database | undefined;
        try {
          interrupted = await open(DIR, { ...base.options, fs });
        } catch {
          // The power went out inside open: expected.
        }
        if (interrupted) {
          // The cut fell after open's last call: the open finished.
          await interrupted.close().catch(() => {});
        } else cuts++;
        const after = fs.frozen || interrupted === undefined ? fs.crashedCopy(n * 31 + 7, { model }) : fs;
        for (let again = 0; again < 2; again++) {
          removeStaleLock(after, DIR);
          const db = await openOrFail(DIR, { ...base.options, fs: after }, `${ctx} (reopen ${again + 1})`);
          try {
            const state = readState(db);
            if (canon(state) !== canon(base.state)) assert.fail(`${ctx} (reopen ${again + 1}): the state differs:\n  ${diffStates(state, base.state).join("\n  ")}`);
            assert.equal(db.txlogWatermarks().lastCommittedLsn, base.lsn, `${ctx} (reopen ${again + 1}): the recovered LSN differs`);
          } finally {
            await db.close();
          }
        }
      }
    }
    assert.ok(cuts > 10, `${base.label}: only ${cuts} cuts fell inside open`);
    console.log(`${base.label}: ${calls} I/O calls in the recovering open, ${cuts} (cut, crash model) cases inside it, each reopened twice`);
  }
});

// ---- damage on the real file system ----------------------------------------------------------

async function realDb(options: OpenOptions, n: number, seed: number): Promise<{ dir: string; root: string; model: DbState; lsn: number }> {
  const root = mkdtempSync(join(tmpdir(), "keel-wal-recovery-"));
  const dir = join(root, "db");
  const db = await open(dir, options);
  const model = emptyState();
  await writeSome(db, new Rng(seed), n, model, 0.5);
  const lsn = db.txlogWatermarks().lastCommittedLsn;
  await db.close();
  return { dir, root, model, lsn };
}

async function expectCorrupt(dir: string, ctx: string): Promise<KeelError> {
  try {
    const db = await open(dir);
    await db.close();
  } catch (e) {
    if (e instanceof KeelError && e.code === "CORRUPT") return e;
    assert.fail(`${ctx}: open failed with something other than KeelError CORRUPT: ${describeError(e)}`);
  }
  assert.fail(`${ctx}: open succeeded on a damaged log`);
}

function sameTree(before: Map<string, Buffer>, after: Map<string, Buffer>, ctx: string): void {
  assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort(), `${ctx}: files were created or deleted`);
  for (const [p, b] of before) assert.ok(after.get(p)!.equals(b), `${ctx}: ${p} was changed`);
}

test("a flipped byte in an earlier record of the newest segment is CORRUPT with its segment and offset; nothing changes", async () => {
  const { dir, root } = await realDb({}, 30, 31);
  try {
    const names = segmentNames(dir);
    const seg = scanSegment(dir, names[names.length - 1]!);
    assert.ok(seg.records.length >= 20);
    const victim = seg.records[Math.floor(seg.records.length / 2)]!;
    flipByte(seg.path, victim.offset + 48);
    const before = treeBytes(dir);
    const e = await expectCorrupt(dir, "flipped byte in the newest segment");
    assert.equal(e.details.segment, seg.name, `details.segment: ${describeError(e)}`);
    assert.equal(e.details.offset, victim.offset, `details.offset: ${describeError(e)}`);
    sameTree(before, treeBytes(dir), "after the failed open");
    // A second open says the same (nothing was repaired away).
    const again = await expectCorrupt(dir, "second open");
    assert.equal(again.details.offset, victim.offset);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("a flipped byte in a sealed segment is CORRUPT with its segment and offset; nothing changes", async () => {
  const { dir, root } = await realDb({ walSegmentMaxBytes: 64 * 1024 }, 120, 32);
  try {
    const names = segmentNames(dir);
    assert.ok(names.length >= 3, `expected several segments, got ${names.join(", ")}`);
    for (const [which, name] of [["first", names[0]!], ["middle", names[1]!]] as const) {
      const seg = scanSegment(dir, name);
      const victim = seg.records[seg.records.length - 1]!; // even the last record of a sealed segment
      flipByte(seg.path, victim.offset + 20);
      const before = treeBytes(dir);
      const e = await expectCorrupt(dir, `flipped byte in the ${which} (sealed) segment`);
      assert.equal(e.details.segment, name, `details.segment: ${describeError(e)}`);
      assert.equal(e.details.offset, victim.offset, `details.offset: ${describeError(e)}`);
      sameTree(before, treeBytes(dir), `after the failed open (${which} segment)`);
      flipByte(seg.path, victim.offset + 20); // undo
    }
    const db = await open(dir);
    await db.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("a deleted middle segment is CORRUPT (a gap) naming the segment after it; nothing changes", async () => {
  const { dir, root } = await realDb({ walSegmentMaxBytes: 64 * 1024 }, 120, 33);
  try {
    const names = segmentNames(dir);
    assert.ok(names.length >= 3);
    unlinkSync(join(dir, "wal", names[1]!));
    const before = treeBytes(dir);
    const e = await expectCorrupt(dir, "middle segment deleted");
    assert.equal(e.details.segment, names[2], `details.segment: ${describeError(e)}`);
    assert.equal(e.details.offset, 0);
    sameTree(before, treeBytes(dir), "after the failed open");
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("a torn record at the tail of the newest segment is cut off silently and the database opens", async () => {
  const made = await realDb({}, 25, 34);
  const { dir, root, model } = made;
  let lsn = made.lsn;
  try {
    for (const fraction of [0.1, 0.5, 0.95]) {
      const torn = appendTornRecord(dir, fraction);
      const db = await open(dir);
      try {
        assert.equal(canon(readState(db)), canon(model), `fraction ${fraction}: the state after cutting the torn tail`);
        const w = db.txlogWatermarks();
        assert.equal(w.lastCommittedLsn, lsn, `fraction ${fraction}: the torn record is not a commit`);
        assert.equal(w.lastDurableLsn, lsn);
        await db.put("after-torn", fraction);
        assert.equal(db.txlogWatermarks().lastCommittedLsn, lsn + 1, "the next commit takes the torn record's LSN");
        const recs = [...db.openTxLog(lsn + 1)];
        assert.equal(recs.length, 1);
        assert.deepEqual(
          recs[0]!.ops.map((o) => [o.type, o.key, o.value]),
          [["put", "after-torn", fraction]],
        );
        await db.remove("after-torn");
        lsn += 2;
      } finally {
        await db.close();
      }
      const scan = scanSegment(dir, torn.segment);
      assert.equal(scan.records[scan.records.length - 1]!.lsn, lsn, "the segment ends with the new commits, the torn bytes are gone");
      const db2 = await open(dir);
      assert.equal(canon(readState(db2)), canon(model));
      assert.equal(db2.txlogWatermarks().lastCommittedLsn, lsn);
      await db2.close();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("a read-only open replays the log but repairs nothing: a torn tail and a torn newest segment stay on disk (a writer may have opened meanwhile)", async () => {
  const root = mkdtempSync(join(tmpdir(), "keel-wal-ro-recovery-"));
  const dir = join(root, "db");
  try {
    // A writer acknowledges five strict commits the data file does not have yet, then dies.
    writeThenDie(dir, `await db.put("base", 0); await db.checkpoint();
      for (let i = 1; i <= 5; i++) await db.put("acked" + i, i);`);
    const wal = join(dir, "wal");
    const readAll = async (what: string): Promise<void> => {
      const before = treeBytes(wal);
      const db = await open(dir, { readOnly: true });
      try {
        for (let i = 1; i <= 5; i++) assert.equal(db.get(`acked${i}`), i, `${what}: the acknowledged commit ${i} is replayed`);
        assert.equal(db.get("torn-key"), undefined, `${what}: the torn record is not a commit`);
      } finally {
        await db.close();
      }
      sameTree(before, treeBytes(wal), `${what}: the read-only open`);
    };
    // One kind of damage at a time: a writer repairs a torn tail before it ever rolls.
    const tornSeg = addTornSegment(dir);
    await readAll("torn newest segment");
    unlinkSync(join(wal, tornSeg));
    const torn = appendTornRecord(dir, 0.5);
    await readAll("torn tail");
    // The writer's open repairs it, and keeps every acknowledged commit.
    const db = await open(dir);
    try {
      for (let i = 1; i <= 5; i++) assert.equal(db.get(`acked${i}`), i);
    } finally {
      await db.close();
    }
    assert.equal(scanSegment(dir, torn.segment).end, torn.offset, "the writer's open cut the torn tail");
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("a read-only open syncs the newest segment before replaying it: what it read survives a power cut that follows", async () => {
  const disk = new CrashFileSystem();
  const db = await open(DIR, { fs: disk, durability: "none", checkpointMs: 3_600_000 });
  await db.put("base", 0);
  await db.checkpoint();
  for (let i = 1; i <= 5; i++) await db.put(`u${i}`, i); // durability none: in the page cache only
  // The writer dies (no power loss: its unsynced writes are still in the cache).
  const after = disk.clone();
  removeStaleLock(after, DIR);
  const ro = await open(DIR, { fs: after, readOnly: true });
  try {
    for (let i = 1; i <= 5; i++) assert.equal(ro.get(`u${i}`), i, "replayed from the log");
  } finally {
    await ro.close();
  }
  // A copy or dump built on that view must not be ahead of the disk after a power cut.
  const cut = after.snapshotDurable();
  const w = await open(DIR, { fs: cut });
  try {
    for (let i = 1; i <= 5; i++) assert.equal(w.get(`u${i}`), i, `u${i}: read by the read-only open, then lost to a power cut`);
  } finally {
    await w.close();
  }
});

test("a log that ends before the data file's applied LSN is CORRUPT (log-behind-data); nothing is deleted", async () => {
  const { dir, root, lsn: applied } = await realDb({ walSegmentMaxBytes: 64 * 1024 }, 120, 35);
  try {
    const names = segmentNames(dir);
    assert.ok(names.length >= 2);
    const lastSeg = names[names.length - 1]!;
    unlinkSync(join(dir, "wal", lastSeg));
    const before = treeBytes(dir);
    const e = await expectCorrupt(dir, "newest segment deleted after a checkpoint");
    assert.equal(e.details.reason, "log-behind-data", describeError(e));
    assert.equal(e.details.appliedLsn, applied, describeError(e));
    assert.ok((e.details.lastLogLsn as number) < applied, describeError(e));
    sameTree(before, treeBytes(dir), "after the failed open");
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("a committed value larger than this open's maxValueSize (an open option, not kept in the file) replays: open, read-only open, restore and salvage keep it", async () => {
  const { restore, salvage } = await import("../../src/index.js");
  const fs = new CrashFileSystem();
  const big = Buffer.alloc(2 << 20, 7);
  const db = await open("/db", { fs, checkpointMs: 3_600_000, keyEncoding: "binary", encoding: "binary" });
  const snap = await db.createSnapshot();
  await db.put(Buffer.from("big"), big); // acknowledged under the default maxValueSize (256 MiB)
  await db.put(Buffer.from("later"), Buffer.from("acknowledged"));
  fs.crash(1, { model: "dropAll" }); // a power cut: only what was synced is left
  const small = { fs, maxValueSize: 1 << 20 };
  const check = async (path: string, opts: OpenOptions, what: string) => {
    const d = await open(path, { ...small, ...opts });
    try {
      assert.ok(Buffer.from(d.get(Buffer.from("big")) as Uint8Array).equals(big), `${what}: the big value replayed`);
      assert.equal(Buffer.from(d.get(Buffer.from("later")) as Uint8Array).toString(), "acknowledged", `${what}: and the record after it`);
    } finally {
      await d.close();
    }
  };
  await check("/db", { readOnly: true }, "read-only open");
  await check("/db", {}, "open");
  await restore(snap.path, "/restored", { fs });
  await check("/restored", {}, "restore");
  const report = await salvage("/db", "/salvaged", { fs });
  assert.equal(report.lostLogFrom, undefined, `salvage applied every record: ${report.notes.join("; ")}`);
  await check("/salvaged", {}, "salvage");
});

test("a record that passes its checksum but cannot be applied (createDB settings naming no encoding, a key over the page size's limit) is CORRUPT naming its LSN, at open and in verify; nothing changes", async () => {
  const { verify } = await import("../../src/index.js");
  const forged: Array<{ label: string; op: LogOp; reason: string }> = [
    { label: "createDB settings null", op: { type: "createDB", db: "x", value: Buffer.from("null") }, reason: "createDB" },
    { label: "createDB of an unknown keyEncoding", op: { type: "createDB", db: "x", value: Buffer.from('{"keyEncoding":"bogus","valueEncoding":"msgpack"}') }, reason: "createDB" },
    { label: "createDB of an unknown valueEncoding", op: { type: "createDB", db: "x", value: Buffer.from('{"valueEncoding":7}') }, reason: "createDB" },
    { label: "put of a 5000-byte key", op: { type: "put", db: "", key: Buffer.alloc(5000, 0x61), value: Buffer.from([0xc0]) }, reason: "log-op" },
  ];
  for (const { label, op, reason } of forged) {
    const { dir, root, lsn } = await realDb({}, 20, 41);
    try {
      const names = segmentNames(dir);
      const seg = scanSegment(dir, names[names.length - 1]!);
      writeAt(seg.path, encodeLogRecord({ lsn: lsn + 1, txTime: Date.now(), kind: "txn", ops: [op] }), seg.end);
      const before = treeBytes(dir);
      for (const readOnly of [false, true]) {
        let caught: unknown;
        try {
          const db = await open(dir, { readOnly });
          await db.close();
        } catch (e) {
          caught = e;
        }
        assert.ok(caught instanceof KeelError && caught.code === "CORRUPT", `${label} (readOnly ${readOnly}): ${describeError(caught)}`);
        assert.equal(caught.details.reason, reason, label);
        assert.equal(caught.details.lsn, lsn + 1, label);
      }
      sameTree(before, treeBytes(dir), `${label}: after the failed opens`);
      const report = await verify(dir);
      assert.equal(report.ok, false, `${label}: verify finds it`);
      assert.ok(report.problems.some((p) => p.kind === "wal-op" && p.segment === seg.name && p.offset === seg.end), `${label}: ${JSON.stringify(report.problems)}`);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }
});

/** A disk that is full for the calls `when` picks: they fail ENOSPC, as node reports it. */
function fullFor(fs: FaultFileSystem, when: (c: CallInfo) => boolean): void {
  fs.onCall = (c) => {
    if (when(c)) throw errnoError("ENOSPC", c.kind === "sync" ? "fdatasync" : c.kind, c.path);
  };
}

test("an open that replays the log on a full disk opens (its checkpoint is an optimisation: a warning, the commits stay in the log), serves and deletes; the log itself failing still fails the open", async () => {
  const disk = new CrashFileSystem();
  const db = await open(DIR, { fs: disk, checkpointMs: 3_600_000 });
  for (let i = 0; i < 50; i++) await db.put(`k${i}`, `v${i}`);
  // A crash (no close): the 50 commits are only in the log.
  const left = disk.clone();
  await db.close();
  removeStaleLock(left, DIR);
  const full = new FaultFileSystem(left);
  // data.keel can take no more bytes; the log's preallocated chunk still can.
  fullFor(full, (c) => c.kind === "write" && c.path.endsWith("/data.keel"));
  const warnings: string[] = [];
  const onWarning = (w: Error & { code?: string }) => void warnings.push(String(w.code));
  process.on("warning", onWarning);
  try {
    const again = await open(DIR, { fs: full, checkpointMs: 3_600_000 });
    await new Promise((r) => setImmediate(r));
    assert.ok(warnings.includes("KEEL_CHECKPOINT"), `a warning says the checkpoint failed: ${warnings.join(", ")}`);
    assert.equal(again.get("k49"), "v49");
    assert.equal(await again.remove("k0"), true, "a write (to free space) works: it goes to the log");
    await assert.rejects(again.checkpoint(), (e: unknown) => e instanceof KeelError && e.code === "FULL");
    assert.equal(again.get("k0"), undefined);
    await again.close().catch(() => {}); // its checkpoint fails too: the commits stay in the log
    full.onCall = undefined;
    removeStaleLock(left, DIR);
    const freed = await open(DIR, { fs: left });
    assert.equal(freed.get("k0"), undefined);
    assert.equal(freed.get("k1"), "v1");
    assert.equal(freed.get("k49"), "v49");
    await freed.close();
  } finally {
    process.off("warning", onWarning);
  }
  // The log failing (its sync) is not an optimisation: that open fails, coded.
  const dead = disk.clone();
  const db2 = await open(DIR, { fs: dead, checkpointMs: 3_600_000 });
  await db2.put("x", 1);
  const left2 = dead.clone();
  await db2.close();
  removeStaleLock(left2, DIR);
  const bad = new FaultFileSystem(left2);
  fullFor(bad, (c) => c.kind === "sync" && c.path.includes("/wal/"));
  await assert.rejects(open(DIR, { fs: bad }), (e: unknown) => e instanceof KeelError && (e.code === "FULL" || e.code === "IO"));
});

test("a sub-database name that begins with U+FEFF replays into that sub-database, not the one without it (a UTF-8 decoder strips a leading BOM by default)", async () => {
  const disk = new CrashFileSystem();
  const db = await open(DIR, { fs: disk, checkpointMs: 3_600_000 });
  const plain = db.openDB("users", { encoding: "json" });
  await plain.put("bob", { ok: true });
  await db.checkpoint();
  const bom = db.openDB("\uFEFFusers", { encoding: "binary" });
  await bom.put("alice", Buffer.from("secret-bom"));
  const records = [...db.openTxLog(1)].flatMap((r) => r.ops.map((op) => op.db));
  assert.ok(records.includes("\uFEFFusers"), `openTxLog names the sub-database as it is: ${JSON.stringify(records)}`);
  const left = disk.clone(); // a crash: the BOM sub-database's creation and put are only in the log
  await db.close();
  removeStaleLock(left, DIR);
  const again = await open(DIR, { fs: left });
  assert.deepEqual(again.listDBs().sort(), ["users", "\uFEFFusers"].sort());
  assert.deepEqual(again.openDB("\uFEFFusers", { encoding: "binary" }).get("alice"), Buffer.from("secret-bom"));
  const users = again.openDB("users", { encoding: "json" });
  assert.equal(users.get("alice"), undefined);
  assert.deepEqual(users.getRange().asArray, [{ key: "bob", value: { ok: true } }]);
  await again.close();
});

test("a wal: false session, then opens with the log whose checkpoints meet a full disk: one unlogged mark, not one per open (a second one made openTxLog refuse records that were all logged)", async () => {
  const disk = new CrashFileSystem();
  const fs = new FaultFileSystem(disk);
  let full = false;
  fullFor(fs, (c) => full && c.kind === "write" && c.path.endsWith("/data.keel"));
  const quiet = () => {};
  process.on("warning", quiet);
  try {
    let db = await open(DIR, { fs });
    for (let i = 0; i < 5; i++) await db.put(`base${i}`, i);
    await db.close();
    db = await open(DIR, { fs, wal: false });
    await db.put("unlogged", 1);
    await db.close();
    full = true;
    db = await open(DIR, { fs }); // appends the mark; its checkpoint fails: the open goes on
    const mark = db.txlogWatermarks().lastCommittedLsn;
    assert.throws(() => [...db.openTxLog(mark, mark)], (e: unknown) => e instanceof KeelError && e.details.reason === "unlogged" && e.details.lsn === mark);
    for (let i = 0; i < 3; i++) await db.put(`logged${i}`, i);
    await db.close().catch(() => {}); // FULL: the commits stay in the log
    for (const freed of [false, true]) {
      full = !freed;
      db = await open(DIR, { fs });
      assert.equal(db.txlogWatermarks().lastCommittedLsn, mark + 3, `no second mark (disk ${freed ? "freed" : "full"})`);
      assert.deepEqual([...db.openTxLog(mark + 1)].map((r) => r.lsn), [mark + 1, mark + 2, mark + 3]);
      assert.equal(db.get("unlogged"), 1);
      assert.equal(db.get("logged2"), 2);
      await db.close().catch(() => {});
    }
  } finally {
    process.off("warning", quiet);
  }
});

test("a read-only open that reads the end of the log while a writer appends there is no CORRUPT: its view ends where it first read zeros", async () => {
  const root = mkdtempSync(join(tmpdir(), "keel-wal-ro-append-"));
  const dir = join(root, "db");
  try {
    // More than one read chunk (1 MiB) of log records, none checkpointed; the writer dies.
    writeThenDie(dir, `for (let i = 0; i < 1500; i++) db.putSync("k" + i, "x".repeat(1000));`);
    const [first] = segmentNames(dir);
    const scan = scanSegment(dir, first!);
    const cut = scan.records.find((r) => r.offset > 512 * 1024)!;
    assert.ok(scan.end > (1 << 20) + 4096, "the log runs past the first read chunk");
    // The reader's first read over `cut` finds zeros from there on (the writer had not appended
    // them yet); every later read finds the records (appended meanwhile).
    const inner = new NodeFileSystem();
    let staleRead = false;
    const fs = overriding(inner, {
      open: (path: string, mode: OpenMode) => {
        const h = inner.open(path, mode);
        if (!path.endsWith(first!)) return h;
        return overriding(h, {
          read: (buf: Uint8Array, off: number, len: number, pos: number) => {
            const got = h.read(buf, off, len, pos);
            if (!staleRead && pos <= cut.offset && cut.offset < pos + got) {
              staleRead = true;
              buf.fill(0, off + (cut.offset - pos), off + got);
            }
            return got;
          },
        });
      },
    });
    const db = await open(dir, { readOnly: true, fs });
    try {
      assert.equal(staleRead, true, "sanity: the read over the cut saw zeros");
      const lastSeen = cut.lsn - 2; // LSN 1 is the catalog's first record: k<i> is LSN i + 2
      assert.equal(db.get(`k${lastSeen - 1}`), "x".repeat(1000), "the records before the cut");
      assert.equal(db.get(`k${lastSeen}`), undefined, "the view ends at the cut");
    } finally {
      await db.close();
    }
    // keel verify of the stopped database while a writer opens and appends: the same.
    staleRead = false;
    const report = await verify(dir, { fs });
    assert.equal(staleRead, true);
    assert.deepEqual(report.problems, [], "no wal-damaged");
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
