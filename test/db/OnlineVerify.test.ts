/**
 * db.verify() on an open database (src/db/onlineVerify.ts): the walk gives the event loop turns,
 * writers commit and checkpoints reuse free pages meanwhile, and the report is still clean,
 * because the pin keeps every page of both meta slots' trees in place and the log is read only up
 * to where it ended when the verify began. Real files; the mutation that drops the pin makes these
 * tests fail (pages the walk has yet to read are rewritten under it).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { open, KeelError, type Database } from "../../src/index.js";
import type { VerifyReport } from "../../src/maintenance/verify.js";
import { LogDurability } from "../../src/db/LogDurability.js";
import { nodeFileSystem } from "../../src/io/NodeFileSystem.js";
import { ProblemList, runAsync } from "../../src/maintenance/verifyTypes.js";
import { scanWal } from "../../src/maintenance/verifyWal.js";

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), "keel-online-verify-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, "db");
}

const ENTRIES = 150_000;

/** About 16,000 pages of 1 KiB: the walk pauses dozens of times (every few ms). */
async function build(db: Database): Promise<Buffer[]> {
  const keys: Buffer[] = [];
  for (let i = 0; i < ENTRIES; i++) keys.push(randomBytes(12));
  await db.transaction((tx) => {
    for (const k of keys) tx.put(k, Buffer.concat([k, k, k, k]));
  });
  await db.checkpoint();
  return keys;
}

function problemsOf(r: VerifyReport): string {
  return JSON.stringify(r.problems.slice(0, 5));
}

/** Writers overwrite random existing keys until `until` settles; returns how many commits resolved before it. */
async function writeDuring(db: Database, keys: Buffer[], until: Promise<unknown>): Promise<{ during: number; total: number }> {
  let settled = false;
  void until.then(
    () => (settled = true),
    () => (settled = true),
  );
  let during = 0;
  let total = 0;
  const writer = async () => {
    while (!settled) {
      const k = keys[Math.floor(Math.random() * keys.length)]!;
      await db.put(k, randomBytes(48));
      total++;
      if (!settled) during++;
    }
  };
  await Promise.all([writer(), writer(), writer(), writer()]);
  return { during, total };
}

for (const wal of [true, false]) {
  test(`db.verify (wal: ${wal}) walks while writers commit and checkpoints reuse pages, and reports no problem`, async (t) => {
    const dir = tempDir(t);
    // A small checkpointLogBytes: policy checkpoints run (and free pages get reused) during the walk.
    const db = await open(dir, { pageSize: 1024, encoding: "binary", keyEncoding: "binary", ...(wal ? { checkpointLogBytes: 1024 } : { wal: false }) });
    try {
      const keys = await build(db);
      const pagesBefore = db.getStats().totalPages;
      const checkpointsBefore = db.engine.checkpoints;
      let turns = 0;
      const timer = setInterval(() => turns++, 0);
      const verifying = db.verify();
      const writes = await writeDuring(db, keys, verifying);
      const r = await verifying;
      clearInterval(timer);
      assert.equal(r.ok, true, problemsOf(r));
      assert.deepEqual(r.problems, [], problemsOf(r));
      assert.ok(r.stats.pages >= pagesBefore * 0.9, `walked ${r.stats.pages} of ${pagesBefore} pages`);
      assert.ok(writes.during > 0, "writers committed while the verify ran");
      assert.ok(turns > 0, "timers fired while the verify ran");
      assert.ok(db.engine.checkpoints > checkpointsBefore, "checkpoints ran while the verify ran");
      // What the writers did is intact, and the file verifies clean once more with nothing running.
      const again = await db.verify();
      assert.deepEqual(again.problems, [], problemsOf(again));
    } finally {
      await db.close();
    }
  });
}

test("db.verify releases its pin and its log floor, after success and after an abort", async (t) => {
  const dir = tempDir(t);
  const db = await open(dir, { pageSize: 1024, encoding: "binary", keyEncoding: "binary" });
  try {
    await build(db);
    const readers = db.engine.readers.active;
    const d = db.durability as LogDurability;
    const verifyFloors = () => Object.keys(db.txlogWatermarks().floors).filter((k) => k.startsWith("verify:"));
    const ac = new AbortController();
    const p = db.verify({ signal: ac.signal });
    // The pin and the floor are in place while the walk runs.
    await new Promise((r) => setImmediate(r));
    assert.equal(db.engine.readers.active, readers + 1, "one pinned reader while verifying");
    assert.ok(d instanceof LogDurability);
    assert.equal(verifyFloors().length, 1, "a verify floor while verifying");
    ac.abort();
    await assert.rejects(p, (e: unknown) => e instanceof KeelError && e.code === "ABORTED");
    assert.equal(db.engine.readers.active, readers, "the pin is released after an abort");
    assert.deepEqual(verifyFloors(), [], "the floor is gone after an abort");
    const r = await db.verify();
    assert.deepEqual(r.problems, []);
    assert.equal(db.engine.readers.active, readers, "the pin is released after success");
    assert.deepEqual(verifyFloors(), [], "the floor is gone after success");
  } finally {
    await db.close();
  }
});

test("the log is read up to where it ended when the verify began: bytes a writer adds past it are not read", async (t) => {
  const dir = tempDir(t);
  const db = await open(dir, { encoding: "binary", keyEncoding: "binary" });
  try {
    for (let i = 0; i < 20; i++) await db.put(randomBytes(8), randomBytes(32));
    const d = db.durability as LogDurability;
    const bound = d.wal.writtenEnd();
    // A record being appended right now, as another reader could catch it: its first bytes only.
    const fd = openSync(join(dir, "wal", bound.segment), "r+");
    try {
      const half = Buffer.alloc(24, 0x5a);
      half.writeUInt32LE(200, 0);
      writeSync(fd, half, 0, half.length, bound.end);
    } finally {
      closeSync(fd);
    }
    const scan = async (b: typeof bound | undefined) => {
      const out = new ProblemList();
      await runAsync(scanWal(nodeFileSystem, join(dir, "wal"), out, {}, undefined, b), undefined);
      return out.finish();
    };
    assert.deepEqual(await scan(bound), [], "bounded: the half-written bytes are not read");
    assert.ok((await scan(undefined)).length > 0, "unbounded: the same bytes are a problem (the bound is what hides them)");
  } finally {
    await db.close().catch(() => undefined);
  }
});

test("a checkpoint finished after the verify pinned its log bound (a snapshot's, in the same group) is not 'log behind data'", async () => {
  const { CrashFileSystem } = await import("../../src/io/CrashFileSystem.js");
  const db = await open("/db", { fs: new CrashFileSystem() });
  for (let i = 0; i < 5; i++) await db.put(`k${i}`, i);
  await db.checkpoint();
  const snapshot = db.createSnapshot(); // its checkpoint task comes after the verify's pin task
  await db.transaction(() => 1);
  const v = db.verify(); // log bound: the last LSN so far
  const p = db.put("x", 1); // one more LSN, which the snapshot's checkpoint then includes
  await Promise.all([snapshot, p]);
  const report = await v;
  assert.deepEqual(report.problems, [], "a healthy database");
  await db.close();
});

test("db.verify() running when close() comes ends with CLOSED, never a report of damage that is not there", async () => {
  for (const wal of [true, false]) {
    const dir = mkdtempSync(join(tmpdir(), "keel-verify-close-"));
    try {
      const db = await open(join(dir, "db"), { wal });
      const big = "x".repeat(300);
      for (let b = 0; b < 20; b++) await db.transaction((tx) => { for (let i = 0; i < 2000; i++) tx.put(`k${b}-${i}`, big); });
      await db.checkpoint();
      const v = db.verify();
      await new Promise((r) => setTimeout(r, 5));
      const closing = db.close();
      // Open files meanwhile: the closed descriptor's number goes to one of them.
      const others = Array.from({ length: 8 }, (_, i) => openSync(join(dir, `other-${i}`), "w"));
      const [rv, rc] = await Promise.allSettled([v, closing]);
      for (const fd of others) closeSync(fd);
      assert.equal(rc.status, "fulfilled");
      if (rv.status === "fulfilled") assert.equal(rv.value.ok, true, `wal ${wal}: a verify that finished first found nothing: ${JSON.stringify(rv.value.problems.slice(0, 2))}`);
      else assert.ok(rv.reason instanceof KeelError && rv.reason.code === "CLOSED", `wal ${wal}: ${String(rv.reason)}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});
