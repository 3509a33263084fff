/**
 * Upgrades of older data-file formats (DESIGN.md section 5: migrated on open by shipped code, with a
 * backup kept; section 2: a newer version is refused naming both versions; I7).
 *
 * Version 0 is a real earlier layout: that of version 1 with the meta magic stored little-endian.
 * The fixtures are made here, independently of the migration code: a database written by the
 * current code (with snapshots and log), whose valid meta pages are rewritten to the version-0
 * layout (and each snapshot.json given the CRC of its rewritten data file, as a version-0 snapshot
 * had). Both values of the version field that such a meta can hold (0, and 1 as the code of that
 * time wrote) are covered.
 *
 * - detectVersion: 1 for a current database, 0 for either version-0 variant, undefined for no or
 *   unrecognisable data.keel, the newer version for a newer file (which open and migrateOnOpen
 *   refuse with VERSION naming both versions). A read-only open never migrates (VERSION, nothing
 *   written).
 * - runMigrations: the backup `<parent>/<name>.backup-v0-<timestamp>` holds the original bytes of
 *   every file (not LOCK); data.keel changes in its two meta pages only; the database opens with
 *   the current code with every key equal; snapshots still pass their checksum and restore; log
 *   records not yet checkpointed are still replayed; migrating again changes nothing.
 * - The registry is a chain ending at FORMAT_VERSION; a missing step is VERSION.
 * - A version-0 database is an older format, not damage: verify reports "meta-version" (open()
 *   migrates it), restore of its snapshot is VERSION naming both versions.
 * - A version-1 database whose slot 1 holds a misdirected version-1 meta (page number 0) opens after
 *   its migration and on every open after it: such a slot is damage, not a version mismatch.
 * - Power loss at every I/O call of runMigrations, several seeds each: data.keel (and each snapshot
 *   data file) is the original or the migrated one, a backup under its final name is complete, and
 *   the next open (migrating again if needed) holds every key and leaves no partial directory.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KeelError, openSync, restore, verify, type Database } from "../../src/index.js";
import { CrashFileSystem, isSimulatedCrash } from "../../src/io/CrashFileSystem.js";
import { FaultFileSystem } from "../../src/io/FaultFileSystem.js";
import type { FileSystem } from "../../src/io/FileSystem.js";
import { HolderSocket } from "../../src/io/HolderSocket.js";
import { nodeFileSystem } from "../../src/io/NodeFileSystem.js";
import { detectVersion, migrateOnOpen, migrations, planMigrations, runMigrations, type Migration } from "../../src/db/migrations/index.js";
import { v0ToV1 } from "../../src/db/migrations/v0ToV1.js";
import { checkSnapshot, fileCrc32, listSnapshots } from "../../src/maintenance/Snapshots.js";
import { probeMeta } from "../../src/pager/Meta.js";
import { seal } from "../../src/pager/PageCodec.js";
import { FORMAT_VERSION, MAGIC } from "../../src/pager/PageLayout.js";
import { describeError, removeStaleLock } from "../helpers/crashCheck.js";
import { cloneState, emptyState, readState, assertSameState as assertSame, type DbState } from "../helpers/dbModel.js";
import { filesOf, readAll } from "../helpers/memFiles.js";
import { Rng, seedList } from "../helpers/rng.js";
import { rejectsKeel, throwsKeel } from "./dbUtil.js";

const DIR = "/db";
/** Crash seeds per power-cut point (KEEL_MIGRATION_SEEDS raises the count). */
const SEEDS = seedList(2, "KEEL_MIGRATION_SEEDS");
const NOW = Date.UTC(2025, 5, 11, 10, 15, 30, 123);
const STAMP = "20250611T101530.123Z";

/** A closed database's directory may hold a stale LOCK (its removal not yet durable): never backed up. */
const noLock = (rel: string) => rel === "LOCK";

function sameFiles(actual: Map<string, Buffer>, expected: Map<string, Buffer>, what: string): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort(), `${what}: same files`);
  for (const [k, v] of expected) assert.ok(actual.get(k)!.equals(v), `${what}: ${k} has the same bytes`);
}

// ---- the version-0 fixture, written without the migration code ----

/**
 * Rewrite the valid metas of a data file to an older layout: version 0 (little-endian magic, with
 * `versionField` 0 or 1), or with `from` = 1, version 1 (big-endian magic, version field 1; the file
 * must have been written with freelistDeltas: false, as version 1 wrote it).
 */
function downgradeDataFile(fs: FileSystem, path: string, versionField: 0 | 1, from: 0 | 1 = 0): void {
  const f = fs.open(path, "rw");
  try {
    const head = Buffer.alloc(Math.min(f.size(), 2 * 65536));
    f.read(head, 0, head.length, 0);
    const p0 = probeMeta(head, 0);
    let ps = p0.ok ? p0.meta.pageSize : 0;
    if (!ps) for (let s = 1024; s <= 65536 && !ps; s *= 2) if (probeMeta(head.subarray(s), 1).ok) ps = s;
    assert.ok(ps, `${path}: a valid meta to downgrade`);
    let n = 0;
    for (const slot of [0, 1] as const) {
      const page = Buffer.from(head.subarray(slot * ps, (slot + 1) * ps));
      if (!probeMeta(page, slot).ok) continue;
      if (from === 0) page.writeUInt32LE(MAGIC, 32);
      page.writeUInt16LE(from === 0 ? versionField : 1, 36);
      seal(page);
      f.write(page, 0, ps, slot * ps);
      n++;
    }
    assert.ok(n > 0);
    f.sync();
  } finally {
    f.close();
  }
}

function downgradeDir(fs: FileSystem, dir: string, versionField: 0 | 1, from: 0 | 1 = 0): void {
  downgradeDataFile(fs, `${dir}/data.keel`, versionField, from);
  for (const name of ["current", "previous"]) {
    const s = `${dir}/snapshots/${name}`;
    if (!fs.stat(`${s}/data.keel`)) continue;
    downgradeDataFile(fs, `${s}/data.keel`, versionField, from);
    const json = JSON.parse(Buffer.from(fs.readFile(`${s}/snapshot.json`)).toString("utf8")) as Record<string, unknown>;
    const { crc, bytes } = fileCrc32(fs, `${s}/data.keel`);
    json.dataCrc32 = crc;
    json.bytes = bytes;
    const text = Buffer.from(JSON.stringify(json, null, 2) + "\n");
    fs.remove(`${s}/snapshot.json`);
    const h = fs.open(`${s}/snapshot.json`, "createExclusive");
    h.write(text, 0, text.length, 0);
    h.sync();
    h.close();
    fs.syncDir(s);
  }
}

interface Fixture {
  fs: CrashFileSystem;
  /** Final content, and the content at each snapshot's LSN. */
  model: DbState;
  snapshots: Map<string, { lsn: number; state: DbState }>;
}

async function writeSome(db: Database, rng: Rng, model: DbState, n: number, tag: string): Promise<void> {
  const subs: Array<[string, Database | ReturnType<Database["openDB"]>]> = [
    ["", db],
    ["users", db.openDB("users")],
    ["bin", db.openDB("bin", { encoding: "binary" })],
  ];
  for (const [name] of subs) if (!model.has(name)) model.set(name, new Map());
  for (let i = 0; i < n; i++) {
    const [name, sub] = rng.pick(subs);
    const key = `k${rng.int(80)}`;
    if (rng.bool(0.15)) {
      await sub.remove(key);
      model.get(name)!.delete(key);
    } else {
      const big = rng.bool(0.08);
      const v = name === "bin" ? Buffer.alloc(big ? 6000 : 30, `${tag}${i}`) : { tag: `${tag}${i}`, pad: big ? "z".repeat(5000) : "" };
      await sub.put(key, v);
      model.get(name)!.set(key, v);
    }
  }
}

/** A version-0 (or with `from` = 1, version-1) database at DIR with snapshots current and previous
 * and a log; `killed`: its last commits are only in the log (the process was killed before a
 * checkpoint). Written with whole free lists only (freelistDeltas: false), as those versions wrote. */
async function fixture(versionField: 0 | 1, killed = false, from: 0 | 1 = 0): Promise<Fixture> {
  let fs = new CrashFileSystem();
  const db = openSync(DIR, { fs, freelistDeltas: false, walSegmentMaxBytes: 64 * 1024, checkpointLogBytes: 1 << 30, checkpointDirtyBytes: 1 << 30, checkpointMs: 3_600_000 });
  const rng = new Rng(versionField * 10 + (killed ? 1 : 0) + 1);
  const model = emptyState();
  const snapshots = new Map<string, { lsn: number; state: DbState }>();
  await writeSome(db, rng, model, 120, "a");
  const s1 = await db.createSnapshot();
  const m1 = cloneState(model);
  await writeSome(db, rng, model, 120, "b");
  const s2 = await db.createSnapshot();
  snapshots.set("previous", { lsn: s1.lsn, state: m1 });
  snapshots.set("current", { lsn: s2.lsn, state: cloneState(model) });
  await writeSome(db, rng, model, 80, "c");
  if (killed) {
    assert.ok(db.txlogWatermarks().lastCommittedLsn > db.txlogWatermarks().lastAppliedLsn);
    fs = fs.crashedCopy(1, { model: "keepAll" });
    removeStaleLock(fs, DIR);
    await db.close().catch(() => {});
  } else {
    await db.close();
  }
  downgradeDir(fs, DIR, versionField, from);
  return { fs: fs.snapshotDurable(), model, snapshots };
}

function stateOf(fs: FileSystem, dir: string): DbState {
  const db = openSync(dir, { fs, walSegmentMaxBytes: 64 * 1024 });
  try {
    return readState(db);
  } finally {
    void db.close();
  }
}

/** Snapshots pass their checksum and restore to their LSN. */
async function checkSnapshots(fs: FileSystem, fx: Fixture, what: string): Promise<void> {
  const list = listSnapshots(fs, DIR);
  assert.deepEqual(list.map((s) => s.name), ["current", "previous"], `${what}: both snapshots listed`);
  for (const s of list) {
    checkSnapshot(fs, s);
    const target = `/restored-${s.name}`;
    fs.removeDir(target);
    await restore(s.path, target, { fs, toLsn: fx.snapshots.get(s.name)!.lsn });
    assertSame(stateOf(fs, target), fx.snapshots.get(s.name)!.state, `${what}: restore of ${s.name}`);
    fs.removeDir(target);
  }
}

// ---- detection ----

test("detectVersion: current, both version-0 variants, nothing, garbage, and a newer version (VERSION naming both)", async () => {
  const fs = new CrashFileSystem();
  assert.equal(detectVersion(fs, DIR), undefined, "no directory");
  const db = openSync(DIR, { fs });
  await db.put("a", 1);
  await db.close();
  assert.equal(detectVersion(fs, DIR), FORMAT_VERSION);
  for (const field of [0, 1] as const) {
    const c = fs.clone();
    downgradeDataFile(c, `${DIR}/data.keel`, field);
    assert.equal(detectVersion(c, DIR), 0, `version field ${field}`);
  }
  // Garbage: no valid meta of any layout.
  const g = new CrashFileSystem();
  g.mkdir(DIR);
  const h = g.open(`${DIR}/data.keel`, "createExclusive");
  h.write(Buffer.alloc(8192, 7), 0, 8192, 0);
  h.close();
  assert.equal(detectVersion(g, DIR), undefined);

  // A newer version: valid checksum, big-endian magic, version 2.
  const n = fs.clone();
  const f = n.open(`${DIR}/data.keel`, "rw");
  const page = Buffer.alloc(4096);
  for (const slot of [0, 1] as const) {
    f.read(page, 0, 4096, slot * 4096);
    if (!probeMeta(page, slot).ok) continue;
    page.writeUInt16LE(FORMAT_VERSION + 1, 36);
    seal(page);
    f.write(page, 0, 4096, slot * 4096);
  }
  f.close();
  assert.equal(detectVersion(n, DIR), FORMAT_VERSION + 1);
  const e1 = throwsKeel(() => migrateOnOpen(n, DIR), "VERSION", "migrateOnOpen of a newer file");
  assert.equal(e1.details.found, FORMAT_VERSION + 1);
  assert.equal(e1.details.supported, FORMAT_VERSION);
  assert.match(e1.message, new RegExp(`version ${FORMAT_VERSION + 1}.*version ${FORMAT_VERSION}`));
  const e2 = throwsKeel(() => openSync(DIR, { fs: n }), "VERSION", "open of a newer file");
  assert.equal(e2.details.found, FORMAT_VERSION + 1);
  assert.equal(e2.details.supported, FORMAT_VERSION);
  throwsKeel(() => planMigrations(FORMAT_VERSION + 1), "VERSION", "plan from a newer version");
  assert.ok(!n.paths().some((p) => p.includes(".backup-")), "a newer file is never backed up or touched");
});

test("a read-only open never migrates: VERSION, nothing written", async () => {
  const fx = await fixture(0);
  const before = filesOf(fx.fs, DIR, noLock);
  const e = throwsKeel(() => migrateOnOpen(fx.fs, DIR, { readOnly: true }), "VERSION", "read-only");
  assert.equal(e.details.found, 0);
  assert.equal(e.details.migratable, true);
  sameFiles(filesOf(fx.fs, DIR, noLock), before, "read-only");
  assert.deepEqual(fx.fs.list("/"), ["db"]);
});

// ---- the registry ----

test("migrations: a chain from 0 to FORMAT_VERSION; a missing step is VERSION", () => {
  let v = 0;
  for (const m of migrations) {
    assert.equal(m.from, v, "in order, no gap");
    assert.equal(m.to, m.from + 1);
    assert.ok(m.describe.length > 0);
    v = m.to;
  }
  assert.equal(v, FORMAT_VERSION, "the chain ends at the current version");
  assert.deepEqual(planMigrations(0), migrations);
  assert.deepEqual(planMigrations(FORMAT_VERSION), []);
  const gap: Migration[] = [];
  const e = throwsKeel(() => planMigrations(0, "x/data.keel", gap), "VERSION", "missing step");
  assert.equal(e.details.missingFrom, 0);
  throwsKeel(() => planMigrations(-1), "INVALID_ARGUMENT", "negative version");
  const fs = new CrashFileSystem();
  throwsKeel(() => runMigrations(fs, DIR, FORMAT_VERSION), "INVALID_ARGUMENT", "nothing to migrate");
});

// ---- migrating ----

for (const field of [0, 1] as const) {
  test(`runMigrations 0 -> 1 (version field ${field}): backup of the original, metas rewritten, every key equal, snapshots still restore`, async () => {
    const fx = await fixture(field);
    const fs = fx.fs;
    const original = filesOf(fs, DIR, noLock);
    const res = runMigrations(fs, DIR, 0, { now: () => NOW });
    assert.equal(res.from, 0);
    assert.equal(res.to, FORMAT_VERSION);
    assert.equal(res.backupDir, `/db.backup-v0-${STAMP}`);
    assert.deepEqual(res.applied.map((a) => [a.from, a.to]), [
      [0, 1],
      [1, 2],
    ]);
    assert.deepEqual(fs.list("/").sort(), ["db", `db.backup-v0-${STAMP}`]);
    sameFiles(filesOf(fs, res.backupDir), original, "backup");
    // data.keel: the two meta pages change, nothing else.
    const before = original.get("data.keel")!;
    const after = readAll(fs, `${DIR}/data.keel`);
    assert.equal(after.length, before.length);
    const ps = before.readUInt32LE(40);
    assert.ok(after.subarray(2 * ps).equals(before.subarray(2 * ps)), "pages past the metas unchanged");
    assert.equal(after.subarray(32, 36).toString("latin1"), "KEEL", "magic reads KEEL");
    assert.equal(detectVersion(fs, DIR), FORMAT_VERSION);
    // The log is not touched.
    for (const [k, v] of original) if (k.startsWith("wal/")) assert.ok(readAll(fs, `${DIR}/${k}`).equals(v), `${k} unchanged`);
    assertSame(stateOf(fs, DIR), fx.model, "migrated database");
    await checkSnapshots(fs, fx, "migrated");
    // Again: nothing changes.
    const migrated = filesOf(fs, DIR, noLock);
    v0ToV1.migrate(fs, DIR);
    sameFiles(filesOf(fs, DIR, noLock), migrated, "second run");
    assert.equal(migrateOnOpen(fs, DIR), undefined, "a current database is not migrated");
  });
}

test("runMigrations 1 -> 2: backup of the original, version field rewritten, every key equal, snapshots still restore, free-list deltas from then on", async () => {
  const fx = await fixture(1, false, 1);
  const fs = fx.fs;
  assert.equal(detectVersion(fs, DIR), 1);
  const original = filesOf(fs, DIR, noLock);
  const res = runMigrations(fs, DIR, 1, { now: () => NOW });
  assert.deepEqual([res.from, res.to], [1, 2]);
  assert.equal(res.backupDir, `/db.backup-v1-${STAMP}`);
  assert.deepEqual(res.applied.map((a) => [a.from, a.to]), [[1, 2]]);
  sameFiles(filesOf(fs, res.backupDir), original, "backup");
  const before = original.get("data.keel")!;
  const after = readAll(fs, `${DIR}/data.keel`);
  const ps = before.readUInt32LE(40);
  assert.ok(after.subarray(2 * ps).equals(before.subarray(2 * ps)), "pages past the metas unchanged");
  for (const slot of [0, 1]) {
    const m = after.subarray(slot * ps, (slot + 1) * ps);
    if (m.readUInt32BE(32) === MAGIC) assert.equal(m.readUInt16LE(36), 2, `slot ${slot}: version 2`);
  }
  assert.equal(detectVersion(fs, DIR), FORMAT_VERSION);
  assertSame(stateOf(fs, DIR), fx.model, "migrated database");
  await checkSnapshots(fs, fx, "migrated");
  // The migrated database writes delta segments on top of its version-1 base, and reads them back.
  const db = openSync(DIR, { fs, walSegmentMaxBytes: 64 * 1024 });
  const rng = new Rng(77);
  let longest = 0;
  for (let i = 0; i < 6; i++) {
    await writeSome(db, rng, fx.model, 20, `m${i}`);
    await db.checkpoint();
    longest = Math.max(longest, db.engine.freelistChain.segments.length);
  }
  assert.ok(longest > 1, "a delta segment follows the migrated base");
  await db.close();
  assertSame(stateOf(fs, DIR), fx.model, "after more checkpoints");
  const r = await verify(DIR, { fs });
  assert.deepEqual(r.problems, [], "verify: clean");
});

test("runMigrations: commits only in the log (process killed) are replayed after the migration", async () => {
  const fx = await fixture(1, true);
  const res = migrateOnOpen(fx.fs, DIR, { now: () => NOW });
  assert.ok(res);
  assert.equal(res.from, 0);
  const db = openSync(DIR, { fs: fx.fs });
  try {
    assert.ok(db.txlogWatermarks().replay.records > 0, "records replayed");
    assertSame(readState(db), fx.model, "after migration and replay");
  } finally {
    await db.close();
  }
});

/** A version-0 database at `<root>/data` on the real file system (one key, k = { v: 1 }); its path. */
async function versionZeroOnDisk(root: string): Promise<string> {
  const dir = join(root, "data");
  const db = openSync(dir, {});
  await db.put("k", { v: 1 });
  await db.close();
  downgradeDataFile(nodeFileSystem, join(dir, "data.keel"), 0);
  return dir;
}

test("runMigrations on the real file system: the backup is a sibling directory", async () => {
  const root = mkdtempSync(join(tmpdir(), "keel-migrate-"));
  try {
    const dir = await versionZeroOnDisk(root);
    const original = readFileSync(join(dir, "data.keel"));
    assert.equal(detectVersion(nodeFileSystem, dir), 0);
    const res = migrateOnOpen(nodeFileSystem, dir);
    assert.ok(res);
    assert.equal(res.backupDir.startsWith(join(root, "data.backup-v0-")), true, res.backupDir);
    assert.ok(readFileSync(join(res.backupDir, "data.keel")).equals(original));
    assert.deepEqual(readdirSync(root).filter((n) => n.includes(".partial-")), []);
    const again = openSync(dir, {});
    try {
      assert.deepEqual(again.get("k"), { v: 1 });
    } finally {
      await again.close();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("open() on the real file system migrates with its LOCK and holder socket in the directory (and a socket below it): the backup leaves them out", async (t) => {
  const root = mkdtempSync(join(tmpdir(), "keel-migrate-"));
  try {
    const dir = await versionZeroOnDisk(root);
    // A killed keel load's staging directory, its database's socket still there (here: still listening).
    const staging = join(dir, ".load-partial-999999");
    mkdirSync(staging);
    const leftover = HolderSocket.listen(staging)!;
    t.after(() => leftover.close());
    const migrated = openSync(dir, {});
    try {
      assert.deepEqual(migrated.get("k"), { v: 1 });
      assert.ok(readdirSync(dir).some((n) => /^LOCK\.[0-9a-f]{12}\.sock$/.test(n)), "the holder socket was there during the migration");
      const backup = readdirSync(root).find((n) => n.startsWith("data.backup-v0-"));
      assert.ok(backup, "backup kept");
      assert.deepEqual(readdirSync(join(root, backup)).filter((n) => n.startsWith("LOCK")), [], "no LOCK, no socket in the backup");
      assert.deepEqual(readdirSync(join(root, backup, ".load-partial-999999")), [], "nor below the top level");
    } finally {
      await migrated.close();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("runMigrations with a relative directory: the backup is its sibling, on the same FileSystem", async () => {
  const fs = new CrashFileSystem();
  const db = openSync("rel", { fs });
  await db.put("k", 1);
  await db.close();
  downgradeDataFile(fs, "/rel/data.keel", 0);
  const res = runMigrations(fs, "rel/", 0, { now: () => NOW });
  assert.equal(res.backupDir, `rel.backup-v0-${STAMP}`);
  assert.ok(fs.stat(`/rel.backup-v0-${STAMP}/data.keel`));
  assert.equal(detectVersion(fs, "rel"), FORMAT_VERSION);
  throwsKeel(() => runMigrations(fs, "/", 0), "INVALID_ARGUMENT", "root directory");
});

test("open() migrates a version-0 database", async () => {
  const fx = await fixture(0);
  const db: Database = openSync(DIR, { fs: fx.fs });
  try {
    assertSame(readState(db), fx.model, "opened");
  } finally {
    await db.close();
  }
  assert.ok(fx.fs.list("/").some((n) => n.startsWith("db.backup-v0-")), "backup kept");
  await rejectsKeel(Promise.resolve().then(() => openSync(DIR, { fs: fx.fs, pageSize: 1024 })), "VERSION", "page size still checked");
});

test("open() migrates a version-1 database whose slot 1 holds a misdirected version-1 meta (page number 0): it opens, then and on every later open", async () => {
  const fs = new CrashFileSystem();
  const db = openSync(DIR, { fs, wal: false, freelistDeltas: false });
  await db.put("a", 1);
  await db.put("b", 2);
  await db.close();
  const path = `${DIR}/data.keel`;
  const f = fs.open(path, "rw");
  try {
    const ps = readAll(fs, path).readUInt32LE(40);
    const slots = [0, 1].map((s) => {
      const b = Buffer.alloc(ps);
      f.read(b, 0, ps, s * ps);
      return b;
    });
    const txnOf = (b: Buffer) => b.readUInt32LE(8) + b.readUInt32LE(12) * 2 ** 32;
    // Slot 0 <- the newest meta; slot 1 <- a copy of it that names page 0: a misdirected write.
    const newest = Buffer.from(txnOf(slots[0]!) >= txnOf(slots[1]!) ? slots[0]! : slots[1]!);
    newest.writeUInt32LE(0, 4);
    seal(newest);
    f.write(newest, 0, ps, 0);
    f.write(newest, 0, ps, ps);
    f.sync();
  } finally {
    f.close();
  }
  downgradeDataFile(fs, path, 1, 1); // slot 0 to version 1 (slot 1 is no valid meta of its page)
  const head = readAll(fs, path);
  const ps = head.readUInt32LE(40);
  const misdirected = Buffer.from(head.subarray(0, ps)); // version 1 wrote the misdirected copy too
  const h = fs.open(path, "rw");
  h.write(misdirected, 0, ps, ps);
  h.sync();
  h.close();
  const p1 = probeMeta(misdirected, 1);
  assert.equal(!p1.ok && p1.reason, "page-number", "damage, not a version mismatch");
  assert.equal(detectVersion(fs, DIR), 1);
  for (const round of ["first open (migrates)", "second open"]) {
    const again = openSync(DIR, { fs, wal: false });
    try {
      assert.deepEqual([...again.getRange()].map((e) => [e.key, e.value]), [["a", 1], ["b", 2]], round);
    } finally {
      await again.close();
    }
  }
  assert.equal(detectVersion(fs, DIR), FORMAT_VERSION);
  assert.equal(fs.list("/").filter((n) => n.startsWith("db.backup-v1-")).length, 1, "migrated once");
});

test("a version-0 database is an older format, not damage: verify says meta-version (open() migrates it), restore of its snapshot says VERSION", async () => {
  for (const versionField of [0, 1] as const) {
    const fx = await fixture(versionField);
    const fs = fx.fs;
    assert.equal(detectVersion(fs, DIR), 0);
    const r = await verify(DIR, { fs });
    assert.deepEqual(r.problems.map((p) => p.kind), ["meta-version"], `version field ${versionField}: ${JSON.stringify(r.problems)}`);
    assert.match(r.problems[0]!.message, /format version 0; .*\(open\(\) migrates it\)/);
    const snap = listSnapshots(fs, DIR).find((s) => s.name === "current")!;
    const e = await restore(snap.path, "/restored", { fs }).then(
      () => null,
      (err: unknown) => err,
    );
    assert.ok(e instanceof KeelError && e.code === "VERSION", `restore: ${describeError(e)}`);
    assert.deepEqual([e.details.found, e.details.supported], [0, FORMAT_VERSION]);
    assert.equal(fs.stat("/restored"), undefined, "nothing restored");
  }
});

// ---- faults ----

/** The files after the first step only (0 -> 1): what a run stopped between its two steps leaves. */
function afterFirstStep(fs: CrashFileSystem): Map<string, Buffer> {
  const c = fs.clone();
  v0ToV1.migrate(c, DIR);
  return filesOf(c, DIR, noLock);
}

test("runMigrations: failing the N-th I/O call, for every N, is a coded error; the next open finishes the job", async () => {
  const fx = await fixture(0);
  const original = filesOf(fx.fs, DIR, noLock);
  const ref = fx.fs.clone();
  runMigrations(ref, DIR, 0, { now: () => NOW });
  const migrated = readAll(ref, `${DIR}/data.keel`);
  const between = afterFirstStep(fx.fs as CrashFileSystem).get("data.keel")!;
  let succeeded = false;
  for (let n = 1; n < 1000 && !succeeded; n++) {
    const inner = fx.fs.clone();
    const ffs = new FaultFileSystem(inner);
    ffs.failAt(n, { errno: n % 2 ? "EIO" : "ENOSPC" });
    try {
      runMigrations(ffs, DIR, 0, { now: () => NOW });
      if (ffs.faultsInjected === 0) succeeded = true;
      else {
        const f = ffs.lastFault!;
        assert.ok(f.kind === "remove" || f.kind === "removeDir", `call ${n}: a fault (${f.kind} ${f.path}) went unreported`);
      }
    } catch (e) {
      assert.ok(e instanceof KeelError && (e.code === "IO" || e.code === "FULL"), `call ${n}: ${describeError(e)}`);
    }
    const data = readAll(inner, `${DIR}/data.keel`);
    const isMigrated = data.equals(migrated);
    assert.ok(isMigrated || data.equals(original.get("data.keel")!) || data.equals(between), `call ${n}: data.keel is the original, the one after step 0 -> 1, or the migrated one`);
    for (const name of inner.list("/")) {
      if (name.startsWith("db.backup-") && !name.includes(".partial-")) sameFiles(filesOf(inner, `/${name}`), original, `call ${n}: backup`);
    }
    assert.equal(migrateOnOpen(inner, DIR, { now: () => NOW + 1 }) !== undefined, !isMigrated, `call ${n}: migrates again exactly when needed`);
    if (n % 4 === 0 || succeeded) {
      assertSame(stateOf(inner, DIR), fx.model, `call ${n}: reopened`);
      for (const s of listSnapshots(inner, DIR)) checkSnapshot(inner, s);
    }
    assert.deepEqual(inner.paths().filter((p) => p.includes(".partial-") || p.endsWith(".migrating")), [], `call ${n}: no leftovers`);
  }
  assert.ok(succeeded);
});

// ---- power loss ----

test("runMigrations: power loss at every I/O call leaves the original or the migrated database, and never a half backup", async () => {
  const fx = await fixture(0);
  const base = fx.fs;
  const original = filesOf(base, DIR, noLock);
  const ref = base.clone();
  ref.resetCounters();
  runMigrations(ref, DIR, 0, { now: () => NOW });
  const total = ref.calls;
  const migrated = filesOf(ref, DIR, noLock);
  const between = afterFirstStep(base);
  const dataFiles = ["data.keel", "snapshots/current/data.keel", "snapshots/previous/data.keel"];
  for (const k of dataFiles) assert.ok(!migrated.get(k)!.equals(original.get(k)!), `${k} is changed by the migration`);
  const known = (k: string, b: Buffer) => b.equals(original.get(k)!) || b.equals(between.get(k)!) || b.equals(migrated.get(k)!);
  let outcomes = { original: 0, migrated: 0, backups: 0 };
  for (let k = 1; k <= total; k++) {
    const fs = base.clone();
    fs.crashAfterCalls(k);
    try {
      runMigrations(fs, DIR, 0, { now: () => NOW });
      assert.fail(`call ${k}: the power cut did not stop the migration`);
    } catch (e) {
      assert.ok(isSimulatedCrash(e), `call ${k}: ${describeError(e)}`);
    }
    for (const seed of SEEDS) {
      const what = `call ${k}/${total} seed ${seed}`;
      const a = seed === SEEDS.at(-1) ? (fs.crash(seed), fs) : fs.crashedCopy(seed);
      const data = readAll(a, `${DIR}/data.keel`);
      const isOriginal = data.equals(original.get("data.keel")!);
      assert.ok(known("data.keel", data), `${what}: data.keel is the original, the one after step 0 -> 1, or the migrated one`);
      outcomes[isOriginal ? "original" : "migrated"]++;
      for (const f of dataFiles.slice(1)) assert.ok(known(f, readAll(a, `${DIR}/${f}`)), `${what}: ${f}`);
      for (const name of a.list("/")) {
        if (!name.startsWith("db.backup-") || name.includes(".partial-")) continue;
        sameFiles(filesOf(a, `/${name}`), original, `${what}: backup ${name}`);
        outcomes.backups++;
      }
      // The next open migrates again if needed, then everything is there.
      let r;
      try {
        r = migrateOnOpen(a, DIR, { now: () => NOW + 1 });
      } catch (e) {
        assert.fail(`${what}: migrating again failed: ${describeError(e)}`);
      }
      assert.equal(r !== undefined, !data.equals(migrated.get("data.keel")!), `${what}: migrates again exactly when data.keel is not the migrated one`);
      assertSame(stateOf(a, DIR), fx.model, `${what}: reopened`);
      for (const s of listSnapshots(a, DIR)) checkSnapshot(a, s);
      assert.deepEqual(a.paths().filter((p) => p.includes(".partial-") || p.endsWith(".migrating")), [], `${what}: no leftovers`);
      assert.ok(a.list("/").some((n) => n.startsWith("db.backup-v0-") && !n.includes(".partial-")), `${what}: a backup exists`);
    }
  }
  assert.ok(outcomes.original > 0 && outcomes.migrated > 0 && outcomes.backups > 0, JSON.stringify(outcomes));
  // Restore still works from a crashed-then-finished migration (the last crash point).
  const last = base.clone();
  last.crashAfterCalls(total);
  try {
    runMigrations(last, DIR, 0, { now: () => NOW });
  } catch {
    // expected
  }
  const done = last.crashedCopy(7);
  migrateOnOpen(done, DIR, { now: () => NOW + 1 });
  await checkSnapshots(done, fx, "after the last crash point");
});
