/**
 * backupPages: the non-compacting online backup (DESIGN.md section 5, I2, I7).
 *
 * - The copy opens (with no log) at exactly the pinned snapshot: same entries in every
 *   sub-database, same txn and applied LSN, both meta slots naming it, data.keel = high water pages.
 * - Consistency while writers go on: with one page per chunk (a yield after every page), writers
 *   doing awaited puts, removes, clears and checkpoints (every commit a checkpoint with wal: false)
 *   reuse and rewrite pages below the snapshot's high water during the copy, and the copy still
 *   equals the pinned state; the source ends at the writers' state.
 * - The reader that pins the snapshot is released after success, failure and abort.
 * - Abort removes the partial copy (ABORTED); an existing destination is refused (EXISTS); a
 *   snapshot no meta names (not checkpointed) is refused (INVALID_ARGUMENT); the source closing
 *   mid-copy stops it (CLOSED).
 * - Fault injection: failing the N-th I/O call, for every N, gives a coded error, leaves neither the
 *   destination nor a partial directory, and the source database stays usable.
 * - Power loss at every I/O call of the backup: after the crash the destination is either absent or
 *   complete (opens at the pinned state), and the source reopens at its own state.
 * - On the real file system, the copy opens with the default options (a log restarting after its
 *   applied LSN), takes writes, and reopens.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { closeSync as fsClose, existsSync, mkdtempSync, openSync as fsOpen, readdirSync, readSync as fsRead, rmSync, statSync, writeSync as fsWrite } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KeelError, openSync, type Database } from "../../src/index.js";
import { CrashFileSystem, isSimulatedCrash } from "../../src/io/CrashFileSystem.js";
import { FaultFileSystem } from "../../src/io/FaultFileSystem.js";
import type { FileSystem } from "../../src/io/FileSystem.js";
import { nodeFileSystem } from "../../src/io/NodeFileSystem.js";
import { backupPages, type BackupPagesOptions, type BackupPagesResult } from "../../src/maintenance/backupPages.js";
import { probeMeta, type Meta } from "../../src/pager/Meta.js";
import type { Snapshot } from "../../src/txn/Snapshot.js";
import { describeError, removeStaleLock } from "../helpers/crashCheck.js";
import { cloneState, emptyState, readState, assertSameState as assertSame, type DbState } from "../helpers/dbModel.js";
import { readAll } from "../helpers/memFiles.js";
import { Rng } from "../helpers/rng.js";
import { rejectsKeel } from "../db/dbUtil.js";
import { checkTree } from "../../src/btree/TreeCheck.js";
import { Engine } from "../../src/txn/Engine.js";

const DIR = "/db";
const DEST = "/backups/b1";

/**
 * What Database.backup(dest, { compact: false }) does: checkpoint and pin in one queue task. A task
 * runs inside a group, after the group's earlier commits reached the head but before they are
 * published, so the checkpointed state is the head (= engine.durable), not engine.published.
 */
async function pin(db: Database): Promise<{ snap: Snapshot; meta: Meta }> {
  const engine = db.engine;
  return db.task(() => {
    db.durability.checkpoint(true);
    const snap = engine.head;
    engine.readers.acquire(snap.txn);
    return { snap, meta: engine.durableMeta };
  });
}

async function backup(db: Database, fs: FileSystem, dest: string, o: BackupPagesOptions = {}): Promise<BackupPagesResult> {
  const p = await pin(db);
  try {
    return await backupPages(db.engine, p.snap, fs, dest, { ...o, meta: p.meta });
  } finally {
    db.engine.readers.release(p.snap.txn);
  }
}

function subOf(db: Database, name: string) {
  return name === "" ? db : db.openDB(name, name === "bin" ? { encoding: "binary" } : {});
}

function valueFor(rng: Rng, name: string, tag: string): unknown {
  const big = rng.int(10) === 0;
  if (name === "bin") return Buffer.alloc(big ? 9000 : 40, tag);
  return big ? { tag, pad: "x".repeat(6000) } : { tag, n: rng.int(1000) };
}

/** One awaited random write; updates the model. */
async function writeOne(db: Database, rng: Rng, model: DbState, tag: string): Promise<void> {
  const names = ["", "users", "bin"];
  const name = rng.pick(names);
  const key = `k${rng.int(60)}`;
  const m = model.get(name) ?? new Map<string, unknown>();
  model.set(name, m);
  const r = rng.next();
  if (r < 0.2) {
    await subOf(db, name).remove(key);
    m.delete(key);
  } else if (r < 0.22 && name !== "") {
    await subOf(db, name).clear();
    m.clear();
  } else {
    const v = valueFor(rng, name, tag);
    await subOf(db, name).put(key, v);
    m.set(key, v);
  }
}

async function fill(db: Database, rng: Rng, n: number, tag: string): Promise<DbState> {
  const model = emptyState();
  for (const name of ["users", "bin"]) subOf(db, name);
  for (let i = 0; i < n; i++) await writeOne(db, rng, model, `${tag}${i}`);
  return model;
}

function withSubs(db: Database, model: DbState): DbState {
  // readState lists sub-databases that exist; make the model name them too.
  const out = cloneState(model);
  for (const name of db.listDBs()) if (!out.has(name)) out.set(name, new Map());
  return out;
}

async function openState(fs: FileSystem, dir: string): Promise<{ state: DbState; txn: number; lsn: number }> {
  const db = openSync(dir, { fs, readOnly: true });
  try {
    return { state: readState(db), txn: db.engine.durable.txn, lsn: db.engine.durable.lsn };
  } finally {
    await db.close();
  }
}

function leftovers(fs: CrashFileSystem): string[] {
  return fs.paths().filter((p) => p.includes(".partial-"));
}

for (const wal of [false, true]) {
  test(`backupPages (wal: ${wal}): the copy opens at exactly the pinned snapshot, both metas naming it`, async () => {
    const fs = new CrashFileSystem();
    const db = openSync(DIR, { fs, wal });
    const rng = new Rng(7);
    const model = await fill(db, rng, 300, "a");
    const expected = withSubs(db, model);
    const readers = db.engine.readers.active;
    const res = await backup(db, fs, DEST);
    assert.equal(db.engine.readers.active, readers, "the pinning reader is released");
    assert.equal(res.compacted, false);
    assert.equal(res.txn, db.engine.durable.txn);
    const meta = db.engine.durableMeta;
    assert.equal(res.pages, meta.highWater);
    const bytes = readAll(fs, join(DEST, "data.keel"));
    assert.equal(bytes.length, meta.highWater * meta.pageSize, "data.keel holds exactly the high-water pages");
    for (const slot of [0, 1] as const) {
      const p = probeMeta(bytes.subarray(slot * meta.pageSize), slot);
      assert.ok(p.ok, `slot ${slot} validates`);
      assert.equal(p.meta.txn, meta.txn);
      assert.equal(p.meta.appliedLsn, meta.appliedLsn);
      assert.equal(p.meta.highWater, meta.highWater);
      assert.equal(p.meta.catalogRoot, meta.catalogRoot);
    }
    await db.close();
    const got = await openState(fs, DEST);
    assertSame(got.state, expected, "backup vs source");
    assert.equal(got.txn, res.txn);
    assert.equal(got.lsn, res.lsn);
    assert.deepEqual(leftovers(fs), []);
    assert.deepEqual(
      fs.list("/backups"),
      ["b1"],
      "only the finished backup in its parent",
    );
    assert.deepEqual(fs.list(DEST), ["data.keel"]);
  });
}

for (const wal of [false, true]) {
  test(`backupPages (wal: ${wal}): writers rewriting free pages during the copy do not change it`, async () => {
    const fs = new CrashFileSystem();
    const db = openSync(DIR, { fs, wal, checkpointLogBytes: 1 });
    const rng = new Rng(11);
    const model = await fill(db, rng, 400, "a");
    const expected = withSubs(db, model);
    const p = await pin(db);
    const meta = p.meta;
    const before = readAll(fs, db.engine.path).subarray(0, meta.highWater * meta.pageSize);
    let progressCalls = 0;
    let lastProgress = 0;
    let stop = false;
    const writers = (async () => {
      const wrng = new Rng(12);
      let i = 0;
      while (!stop) {
        await writeOne(db, wrng, model, `w${i++}`);
        if (i % 10 === 0) await db.checkpoint();
      }
      return i;
    })();
    let res: BackupPagesResult;
    try {
      res = await backupPages(db.engine, p.snap, fs, DEST, {
        meta,
        chunkBytes: 1, // one page per chunk: a yield to the writers after every page
        sliceMs: 0,
        onProgress: (pr) => {
          progressCalls++;
          assert.ok(pr.bytes >= lastProgress && pr.bytes <= pr.totalBytes);
          lastProgress = pr.bytes;
        },
      });
    } finally {
      stop = true;
      db.engine.readers.release(p.snap.txn);
    }
    const writes = await writers;
    assert.ok(writes > 20, `writers made progress during the backup (${writes} writes)`);
    assert.ok(progressCalls >= meta.highWater - 2, "progress after every chunk");
    assert.equal(lastProgress, meta.highWater * meta.pageSize);
    // The writers really rewrote pages below the snapshot's high water (free pages of the snapshot).
    const after = readAll(fs, db.engine.path);
    let changed = 0;
    for (let pg = 2; pg < meta.highWater; pg++) {
      const a = before.subarray(pg * meta.pageSize, (pg + 1) * meta.pageSize);
      const b = after.subarray(pg * meta.pageSize, (pg + 1) * meta.pageSize);
      if (!a.equals(b)) changed++;
    }
    assert.ok(changed > 0, "some pages below the snapshot's high water were rewritten during the copy");
    assert.equal(res.txn, p.snap.txn);
    const finalState = withSubs(db, model);
    assertSame(readState(db), finalState, "source after the writers");
    await db.close();
    assertSame((await openState(fs, DEST)).state, expected, "backup vs the pinned state");
    assertSame((await openState(fs, DIR)).state, finalState, "source reopened");
  });
}

for (const wal of [false, true]) {
  test(`backupPages (wal: ${wal}): pinned in the middle of a group, the copy holds the commits queued before it`, async () => {
    const fs = new CrashFileSystem();
    const db = openSync(DIR, { fs, wal });
    await fill(db, new Rng(31), 50, "a");
    // One group: two puts, the pinning task, one more put.
    const before = [db.put("x1", 1), db.put("x2", 2)];
    const pinned = pin(db);
    const after = db.put("x3", 3);
    const p = await pinned;
    await Promise.all([...before, after]);
    try {
      await backupPages(db.engine, p.snap, fs, DEST, { meta: p.meta });
    } finally {
      db.engine.readers.release(p.snap.txn);
    }
    await db.close();
    const copy = openSync(DEST, { fs, readOnly: true });
    try {
      assert.equal(copy.get("x1"), 1);
      assert.equal(copy.get("x2"), 2);
      assert.equal(copy.get("x3"), undefined);
    } finally {
      await copy.close();
    }
  });
}

test("backupPages: abort removes the partial copy; EXISTS; INVALID_ARGUMENT for an unpinned snapshot; CLOSED", async () => {
  const fs = new CrashFileSystem();
  const db = openSync(DIR, { fs, checkpointLogBytes: 1 << 30, checkpointDirtyBytes: 1 << 30, checkpointMs: 3_600_000 });
  await fill(db, new Rng(3), 200, "a");
  const readers = db.engine.readers.active;

  const ac = new AbortController();
  await rejectsKeel(backup(db, fs, DEST, { chunkBytes: 4096, sliceMs: 0, onProgress: () => ac.abort("test"), signal: ac.signal }), "ABORTED", "abort");
  assert.equal(fs.stat(DEST), undefined);
  assert.deepEqual(leftovers(fs), []);
  assert.equal(db.engine.readers.active, readers);

  const pre = new AbortController();
  pre.abort();
  await rejectsKeel(backup(db, fs, DEST, { signal: pre.signal }), "ABORTED", "aborted before the start");
  assert.deepEqual(leftovers(fs), []);

  fs.mkdir(DEST);
  await rejectsKeel(backup(db, fs, DEST), "EXISTS", "existing destination");
  fs.removeDir(DEST);

  // A commit that no checkpoint wrote yet: no meta names it.
  await db.put("uncheckpointed", 1);
  const head = db.engine.published;
  assert.notEqual(head.txn, db.engine.durable.txn);
  const e = await rejectsKeel(backupPages(db.engine, head, fs, DEST), "INVALID_ARGUMENT", "snapshot not checkpointed");
  assert.equal(e.details.argument, "snap");
  assert.equal(fs.stat(DEST), undefined);

  // The source closes during the copy.
  const p = await pin(db);
  const run = backupPages(db.engine, p.snap, fs, DEST, { meta: p.meta, chunkBytes: 4096, sliceMs: 0 });
  await new Promise((r) => setImmediate(r));
  db.engine.readers.release(p.snap.txn);
  await db.close();
  await rejectsKeel(run, "CLOSED", "source closed");
  assert.equal(fs.stat(DEST), undefined);
  assert.deepEqual(leftovers(fs), []);
});

test("backupPages: failing the N-th I/O call, for every N, gives a coded error and leaves nothing", async () => {
  const base = new CrashFileSystem();
  {
    const db = openSync(DIR, { fs: base, wal: false });
    await fill(db, new Rng(5), 120, "a");
    await db.close();
  }
  const reference = (await openState(base, DIR)).state;
  let succeeded = false;
  for (let n = 1; n < 500 && !succeeded; n++) {
    const inner = base.clone();
    const ffs = new FaultFileSystem(inner);
    const db = openSync(DIR, { fs: ffs, wal: false });
    try {
      const p = await pin(db);
      ffs.reset();
      ffs.failAt(n, { errno: n % 2 ? "EIO" : "ENOSPC" });
      try {
        // Write-back steps every two chunks: a failed step that ran beside the copying must fail the backup too.
        await backupPages(db.engine, p.snap, ffs, DEST, { meta: p.meta, chunkBytes: 8192, writeBackBytes: 16384 });
        if (ffs.faultsInjected === 0) succeeded = true;
        else {
          // Only the close of the read-only source handle may fail without failing the backup.
          const f = ffs.lastFault!;
          assert.ok(f.kind === "close" && f.path === db.engine.path, `call ${n}: a fault was injected (${f.kind} ${f.path}) but the backup succeeded`);
          inner.removeDir(DEST);
        }
      } catch (e) {
        assert.ok(e instanceof KeelError && (e.code === "IO" || e.code === "FULL"), `call ${n}: ${describeError(e)}`);
        assert.equal(inner.stat(DEST), undefined, `call ${n}: no destination after a failure`);
        assert.deepEqual(leftovers(inner), [], `call ${n}: no partial directory`);
      } finally {
        db.engine.readers.release(p.snap.txn);
      }
      ffs.clearFaults();
      assert.equal(db.engine.readers.active, 0, `call ${n}: reader released`);
      await db.put(`after${n}`, n); // the source stays usable
      assert.equal(db.get(`after${n}`), n);
    } finally {
      await db.close();
    }
    if (succeeded) assertSame((await openState(inner, DEST)).state, reference, "the backup that succeeded");
  }
  assert.ok(succeeded, "the backup succeeds once N passes its last call");
});

test("backupPages: power loss at every I/O call leaves no backup or a complete one", async () => {
  const base = new CrashFileSystem();
  let expected: DbState;
  {
    const db = openSync(DIR, { fs: base });
    const model = await fill(db, new Rng(9), 150, "a");
    expected = withSubs(db, model);
    await db.close();
  }
  const durable = base.snapshotDurable();
  // Count the calls of one backup.
  let total: number;
  {
    const fs = durable.clone();
    const db = openSync(DIR, { fs });
    const p = await pin(db);
    const c0 = fs.calls;
    await backupPages(db.engine, p.snap, fs, DEST, { meta: p.meta, chunkBytes: 16384 });
    total = fs.calls - c0;
    db.engine.readers.release(p.snap.txn);
    await db.close();
  }
  assert.ok(total > 5);
  let complete = 0;
  for (let k = 1; k <= total; k++) {
    const fs = durable.clone();
    const db = openSync(DIR, { fs });
    const p = await pin(db);
    fs.crashAfterCalls(k);
    try {
      await backupPages(db.engine, p.snap, fs, DEST, { meta: p.meta, chunkBytes: 16384 });
    } catch (e) {
      assert.ok(isSimulatedCrash(e), `call ${k}: ${describeError(e)}`);
    }
    for (const seed of [1, 2, 3]) {
      const after = fs.crashedCopy(seed);
      removeStaleLock(after, DIR);
      if (after.stat(DEST)) {
        complete++;
        assertSame((await openState(after, DEST)).state, expected, `call ${k} seed ${seed}: backup`);
      }
      assertSame((await openState(after, DIR)).state, expected, `call ${k} seed ${seed}: source`);
    }
  }
  assert.ok(complete > 0, "some crashes come after the rename was made durable");
});

test("backupPages on the real file system: the copy opens with the default options, takes writes and reopens", async () => {
  const root = mkdtempSync(join(tmpdir(), "keel-backup-"));
  try {
    const src = join(root, "src");
    const dest = join(root, "out", "copy");
    const fs = nodeFileSystem;
    const db = openSync(src, {});
    const model = await fill(db, new Rng(21), 300, "a");
    const expected = withSubs(db, model);
    const res = await backup(db, fs, dest);
    await db.put("later", 1); // not in the copy
    await db.close();
    assert.equal(statSync(join(dest, "data.keel")).size, res.bytes);
    const copy = openSync(dest, {});
    try {
      assertSame(readState(copy), expected, "copy");
      assert.equal(copy.txlogWatermarks().lastAppliedLsn, res.lsn);
      await copy.put("written-to-copy", 2);
    } finally {
      await copy.close();
    }
    const again = openSync(dest, {});
    try {
      assert.equal(again.get("written-to-copy"), 2);
      assert.equal(again.get("later"), undefined);
    } finally {
      await again.close();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("backupPages checks the checksum of every page the meta reaches: damage fails CORRUPT and leaves nothing; a damaged free page does not", async (t) => {
  const root = mkdtempSync(join(tmpdir(), "keel-backup-damage-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const src = join(root, "src");
  const PS = 4096;
  const db0 = openSync(src, { wal: false });
  const users = db0.openDB("users");
  for (let i = 0; i < 400; i++) await users.put(`u${String(i).padStart(4, "0")}`, { i, pad: "p".repeat(200) });
  await users.put("big", Buffer.alloc(5 * PS, 7)); // an overflow run of several pages
  for (let i = 0; i < 400; i += 3) await users.remove(`u${String(i).padStart(4, "0")}`); // free pages
  await db0.close();

  // Where the pages are, as the newest meta names them.
  const e = Engine.open(nodeFileSystem, src, { readOnly: true });
  const leaves: number[] = [];
  const runs: Array<{ page: number; count: number }> = [];
  for (const [, entry] of e.durable.dbs) {
    checkTree(e.pager, { ...entry.tree }, {
      name: "x",
      onPages: (page, count, kind) => {
        if (kind === "overflow") runs.push({ page, count });
        else if (kind === "leaf") leaves.push(page);
      },
    });
  }
  const free = [...e.freelist.allPages()].map(([p]) => p);
  const freelistPage = e.durableMeta.freelistPage;
  e.close();
  const run = runs.find((r) => r.count > 1);
  assert.ok(run && leaves.length > 2 && free.length > 0, "the layout has a multi-page run, leaves and free pages");
  const file = join(src, "data.keel");
  const flip = (offset: number) => {
    const fd = fsOpen(file, "r+");
    try {
      const b = Buffer.alloc(1);
      fsRead(fd, b, 0, 1, offset);
      b[0] = b[0]! ^ 0x5a;
      fsWrite(fd, b, 0, 1, offset);
    } finally {
      fsClose(fd);
    }
  };
  const attempt = async (dest: string) => {
    const db = openSync(src, { wal: false });
    try {
      return await db.backup(join(root, dest), { compact: false });
    } finally {
      await db.close();
    }
  };
  const leftovers = () => readdirSync(root).filter((n) => n.includes(".partial-"));

  // A free page's bytes do not matter: the copy is made and opens.
  flip(free[0]! * PS + 100);
  const ok = await attempt("b-free");
  assert.equal("pages" in ok, true, "a page copy");
  const copy = openSync(join(root, "b-free"), { readOnly: true });
  assert.equal((copy.openDB("users").get("big") as Buffer | undefined)?.length, 5 * PS);
  await copy.close();

  // The last page of an overflow run: the run's checksum covers it.
  flip((run.page + run.count - 1) * PS + 2000);
  const e1 = await rejectsKeel(attempt("b-run"), "CORRUPT");
  assert.equal(e1.details.reason, "checksum");
  assert.deepEqual(e1.details.pages, [run.page]);
  assert.ok(!existsSync(join(root, "b-run")) && leftovers().length === 0, "nothing left behind");
  flip((run.page + run.count - 1) * PS + 2000); // repair

  // Two leaves: both named, in page order.
  const [a, b] = [leaves[0]!, leaves[leaves.length - 1]!].sort((x, y) => x - y);
  flip(a! * PS + 700);
  flip(b! * PS + 700);
  const e2 = await rejectsKeel(attempt("b-leaf"), "CORRUPT");
  assert.deepEqual(e2.details.pages, [a, b]);
  assert.equal(e2.details.damagedPages, 2);
  assert.ok(!existsSync(join(root, "b-leaf")) && leftovers().length === 0, "nothing left behind");
  flip(a! * PS + 700);
  flip(b! * PS + 700); // repair

  // A misdirected write: a whole valid page (checksum and all) at another page's place.
  const original = Buffer.alloc(PS);
  const fd = fsOpen(file, "r+");
  try {
    const other = Buffer.alloc(PS);
    fsRead(fd, original, 0, PS, a! * PS);
    fsRead(fd, other, 0, PS, b! * PS);
    fsWrite(fd, other, 0, PS, a! * PS);
  } finally {
    fsClose(fd);
  }
  const e3 = await rejectsKeel(attempt("b-misdirected"), "CORRUPT");
  assert.deepEqual(e3.details.pages, [a]);
  const fd2 = fsOpen(file, "r+");
  fsWrite(fd2, original, 0, PS, a! * PS);
  fsClose(fd2);

  // A free-list segment damaged after the open read it (an open of a file already damaged there
  // fails itself): the same details.
  assert.ok(freelistPage > 0);
  const live = openSync(src, { wal: false });
  flip(freelistPage * PS + 100);
  const e4 = await rejectsKeel(live.backup(join(root, "b-freelist"), { compact: false }), "CORRUPT");
  await live.close();
  assert.deepEqual(e4.details.pages, [freelistPage]);
  assert.ok(!existsSync(join(root, "b-freelist")) && leftovers().length === 0, "nothing left behind");
});
