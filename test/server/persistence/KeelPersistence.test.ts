/**
 * KeelPersistence on a real database (no mocks): SAVE, BGSAVE (one at a time, concurrent writes),
 * BACKUP, save rules firing, BGREWRITEAOF (checkpoint + log gc), the automatic rewrite rule, and
 * the INFO persistence fields. Every copy is opened as a database and compared with the data at
 * its LSN.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { open, type Database } from "../../../src/index.js";
import { KeelError } from "../../../src/errors.js";
import { KeelPersistence, type PersistenceEvent } from "../../../src/server/persistence/KeelPersistence.js";
import { resolveConfig } from "../../../src/server/config/resolveConfig.js";
import type { ServerConfig } from "../../../src/server/ServerContext.js";

const silent = pino({ level: "silent" });

function tmp(t: { after: (fn: () => void) => void }): string {
  const d = mkdtempSync(join(tmpdir(), "keel-persist-"));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function config(dir: string, toml = ""): ServerConfig {
  return resolveConfig(`save_rules = []\nauto_aof_rewrite_percentage = 0\n${toml}`, null, { dir }, "/").server;
}

/** Every entry of a database directory opened read-only. */
async function contents(dir: string): Promise<Map<string, unknown>> {
  const db = await open(dir, { readOnly: true });
  try {
    const m = new Map<string, unknown>();
    for (const { key, value } of db.getRange()) m.set(String(key), value);
    return m;
  } finally {
    await db.close();
  }
}

async function lsnOf(dir: string): Promise<number> {
  const db = await open(dir, { readOnly: true });
  try {
    return db.getStats().lsn;
  } finally {
    await db.close();
  }
}

test("SAVE writes snapshots/current equal to the data; LASTSAVE and the change counter move", async (t) => {
  const root = tmp(t);
  const db = await open(join(root, "db"));
  t.after(() => db.close());
  const events: PersistenceEvent[] = [];
  const p = new KeelPersistence(db, config(join(root, "db")), silent, { observe: (e) => events.push(e) });
  const model = new Map<string, unknown>();
  for (let i = 0; i < 200; i++) {
    await db.put(`k${i}`, `v${i}`);
    model.set(`k${i}`, `v${i}`);
  }
  p.noteChanges(200);
  const before = p.lastSave();
  assert.equal(p.info().find(([k]) => k === "rdb_changes_since_last_save")?.[1], 200);
  await new Promise((r) => setTimeout(r, 1100));
  await p.save();
  assert.ok(p.lastSave() > before, "LASTSAVE moved");
  const info = Object.fromEntries(p.info());
  assert.equal(info.rdb_changes_since_last_save, 0);
  assert.equal(info.rdb_last_bgsave_status, "ok");
  assert.equal(info.rdb_saves, 1);
  assert.equal(info.aof_enabled, 1);
  assert.equal(info.keel_last_save_lsn, db.txlogWatermarks().lastCommittedLsn);
  const snap = join(root, "db", "snapshots", "current");
  assert.deepEqual(await contents(snap), model);
  assert.equal(await lsnOf(snap), info.keel_last_save_lsn);
  assert.deepEqual(events.map((e) => [e.job, e.ok]), [["save", true]]);
});

test("BGSAVE does not block, runs one at a time, and its copy is the prefix at its LSN while writes go on", async (t) => {
  const root = tmp(t);
  const dir = join(root, "db");
  const db = await open(dir);
  t.after(() => db.close());
  const p = new KeelPersistence(db, config(dir), silent);
  for (let i = 0; i < 2000; i++) db.put(`a${String(i).padStart(5, "0")}`, i);
  await db.flushed();
  assert.equal(p.bgsave(), true);
  assert.equal(p.bgsave(), false, "a second BGSAVE while one runs answers false");
  assert.equal(Object.fromEntries(p.info()).rdb_bgsave_in_progress, 1);
  // Sequential writes during the copy: each one its own commit, in LSN order.
  const lsnOfKey = new Map<number, number>();
  const onCommit = (r: { lsn: number }) => lsnOfKey.set(lsnOfKey.size, r.lsn);
  db.on("commit", onCommit);
  for (let i = 0; i < 50; i++) await db.put(`b${String(i).padStart(5, "0")}`, i);
  db.off("commit", onCommit);
  await p.drain();
  const info = Object.fromEntries(p.info());
  assert.equal(info.rdb_bgsave_in_progress, 0);
  assert.equal(info.rdb_last_bgsave_status, "ok");
  const snap = join(dir, "snapshots", "current");
  const got = await contents(snap);
  const L = await lsnOf(snap);
  assert.equal(L, info.keel_last_save_lsn);
  // The copy holds every a-key and exactly the b-keys whose commit LSN <= L.
  for (let i = 0; i < 2000; i++) assert.equal(got.get(`a${String(i).padStart(5, "0")}`), i);
  let bs = 0;
  for (let i = 0; i < 50; i++) {
    const inSnap = got.has(`b${String(i).padStart(5, "0")}`);
    assert.equal(inSnap, lsnOfKey.get(i)! <= L, `b${i} (lsn ${lsnOfKey.get(i)}) vs snapshot lsn ${L}`);
    if (inSnap) bs++;
  }
  assert.equal(got.size, 2000 + bs);
  // SAVE after a BGSAVE: a fresh snapshot including everything acknowledged.
  await p.save();
  assert.equal((await contents(snap)).size, 2050);
});

test("SAVE during a BGSAVE waits for it, then takes its own snapshot", async (t) => {
  const root = tmp(t);
  const dir = join(root, "db");
  const db = await open(dir);
  t.after(() => db.close());
  const p = new KeelPersistence(db, config(dir), silent);
  for (let i = 0; i < 500; i++) db.put(`k${i}`, i);
  await db.flushed();
  assert.ok(p.bgsave());
  await db.put("late", 1);
  await p.save();
  const got = await contents(join(dir, "snapshots", "current"));
  assert.equal(got.get("late"), 1);
  assert.equal(Object.fromEntries(p.info()).rdb_saves, 2);
});

test("BACKUP writes an atomic, consistent copy that opens as a database; an existing destination is refused", async (t) => {
  const root = tmp(t);
  const dir = join(root, "db");
  const db = await open(dir);
  t.after(() => db.close());
  const p = new KeelPersistence(db, config(dir), silent);
  const model = new Map<string, unknown>();
  for (let i = 0; i < 300; i++) {
    await db.put(`k${i}`, { i });
    model.set(`k${i}`, { i });
  }
  const dest = join(root, "backups", "b1");
  await p.backup(dest);
  assert.deepEqual(await contents(dest), model);
  assert.equal(await lsnOf(dest), db.txlogWatermarks().lastCommittedLsn);
  await assert.rejects(p.backup(dest), (e: unknown) => e instanceof KeelError && e.code === "EXISTS");
  await assert.rejects(p.backup(""), (e: unknown) => e instanceof KeelError && e.code === "INVALID_ARGUMENT");
  // Relative to the server's working directory, unknown to the client: refused.
  await assert.rejects(p.backup("backups/b2"), (e: unknown) => e instanceof KeelError && e.code === "INVALID_ARGUMENT");
  assert.equal(Object.fromEntries(p.info()).keel_backups, 1);
});

test("a save rule fires once its seconds and changes are both reached, and not before", async (t) => {
  const root = tmp(t);
  const dir = join(root, "db");
  const db = await open(dir);
  t.after(() => db.close());
  const cfg = config(dir);
  cfg.saveRules = [{ seconds: 1, changes: 5 }];
  const p = new KeelPersistence(db, cfg, silent, { tickMs: 50 });
  t.after(() => p.stop());
  p.start();
  for (let i = 0; i < 3; i++) await db.put(`k${i}`, i);
  p.noteChanges(3);
  await new Promise((r) => setTimeout(r, 1300));
  assert.equal(existsSync(join(dir, "snapshots", "current")), false, "3 changes < 5: no snapshot");
  for (let i = 3; i < 6; i++) await db.put(`k${i}`, i);
  p.noteChanges(3);
  const t0 = Date.now();
  while (!existsSync(join(dir, "snapshots", "current", "snapshot.json")) && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 50));
  await p.drain();
  assert.equal((await contents(join(dir, "snapshots", "current"))).size, 6);
  assert.equal(p.changesSinceLastSave, 0);
});

test("BGREWRITEAOF checkpoints and garbage-collects the log; the automatic rule starts it when the log grows", async (t) => {
  const root = tmp(t);
  const dir = join(root, "db");
  const db: Database = await open(dir, { walSegmentMaxBytes: 64 * 1024, walRetentionBytes: 0, walRetentionMs: 0, checkpointLogBytes: 1 << 30, checkpointDirtyBytes: 1 << 30, checkpointMs: 3_600_000 });
  t.after(() => db.close());
  const cfg = config(dir);
  const events: PersistenceEvent[] = [];
  const p = new KeelPersistence(db, cfg, silent, { tickMs: 50, observe: (e) => events.push(e) });
  t.after(() => p.stop());
  const big = "x".repeat(1000);
  for (let i = 0; i < 400; i++) await db.put(`k${i}`, big);
  const before = db.txlogWatermarks();
  assert.ok(before.segmentCount > 2, `several segments (${before.segmentCount})`);
  assert.ok(before.lag.applied > 0, "not yet checkpointed");
  assert.equal(p.bgrewriteaof(), true);
  assert.equal(p.bgrewriteaof(), false, "one rewrite at a time");
  await p.drain();
  let after = db.txlogWatermarks();
  assert.equal(after.lag.applied, 0, "checkpointed");
  // gc keeps what the older meta slot needs (the checkpoint floor): once a later checkpoint has
  // moved that slot past them, the next rewrite deletes the sealed segments.
  await db.put("one-more", 1);
  assert.ok(p.bgrewriteaof());
  await p.drain();
  after = db.txlogWatermarks();
  assert.ok(after.segmentCount < before.segmentCount, `segments deleted (${before.segmentCount} -> ${after.segmentCount})`);
  const info = Object.fromEntries(p.info());
  assert.equal(info.aof_last_bgrewrite_status, "ok");
  assert.equal(info.aof_rewrites, 2);
  assert.equal(info.aof_base_size, after.logBytes);
  // Automatic rule: 100% growth over the base and at least min_size bytes.
  cfg.autoAofRewritePercentage = 100;
  cfg.autoAofRewriteMinSize = 1;
  p.start();
  for (let i = 0; i < 400; i++) await db.put(`j${i}`, big);
  const t0 = Date.now();
  while (!events.some((e) => e.job === "auto-rewrite") && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 50));
  assert.ok(events.some((e) => e.job === "auto-rewrite" && e.ok), `auto rewrite ran: ${JSON.stringify(events)}`);
  // Nothing acknowledged was lost by the rewrites.
  await p.drain();
  await db.close();
  const got = await contents(dir);
  assert.equal(got.size, 801);
});
