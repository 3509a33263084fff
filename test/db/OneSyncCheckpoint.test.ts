/**
 * One-sync checkpoints (wal: false), on real files: a small commit group syncs its pages and its
 * meta in one fdatasync and flags the meta (Checkpoint.ts, "One sync"). A power cut during that
 * sync can leave the meta on disk and one of its pages not. Here the file is put in exactly that
 * state by hand: after a clean commit B, one page B wrote gets back the bytes it held before B
 * (a write that never reached the disk), or half of them (a torn write), and the machine has
 * "rebooted" (a NodeFileSystem reporting another boot id). Open must then fall back to the state
 * before B (B was never acknowledged), warn, skip B's txn id, take new commits and reopen intact;
 * verify must say what happened and find nothing else. An untouched file opens at B. In the boot
 * that wrote B, no power cut can have happened since: the same bad page is damage, CORRUPT.
 * The seeded power-loss campaigns (test/crash/phases.test.ts, powerloss.test.ts) cover the same
 * through the crash backend.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { NodeFileSystem, isKeelError, open, verify } from "../../src/index.js";
import { META_FLAG_ONE_SYNC } from "../../src/pager/Meta.js";
import { readHeader } from "../../src/pager/PageCodec.js";
import { DATA_FILE } from "../../src/txn/Engine.js";
import { quietExpectedWarnings } from "../helpers/crashCheck.js";

quietExpectedWarnings(); // the fallback warnings are expected here (and asserted on)

const PS = 4096;

/** The same files after a reboot: the page cache that held B's pages is gone. */
class RebootedFileSystem extends NodeFileSystem {
  override bootId(): string {
    return "a later boot";
  }
}
const rebooted = new RebootedFileSystem();

async function inTmpDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "keel-onesync-"));
  try {
    await fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Write `after` back with page p as the disk holds it if B's write of it was lost (torn: only its second half). */
function loseWrite(dir: string, before: Buffer, after: Buffer, p: number, torn = false): void {
  const file = Buffer.from(after);
  const old = (p + 1) * PS <= before.length ? before.subarray(p * PS, (p + 1) * PS) : Buffer.alloc(PS);
  if (torn) old.copy(file, p * PS + PS / 2, PS / 2, PS);
  else old.copy(file, p * PS);
  fs.writeFileSync(path.join(dir, DATA_FILE), file);
}

async function warningsDuring<T>(fn: () => Promise<T>): Promise<{ value: T; warnings: Array<Error & { code?: string }> }> {
  const warnings: Array<Error & { code?: string }> = [];
  const on = (w: Error & { code?: string }) => warnings.push(w);
  process.on("warning", on);
  try {
    const value = await fn();
    await new Promise((r) => setImmediate(r)); // emitWarning delivers on a later tick
    return { value, warnings };
  } finally {
    process.off("warning", on);
  }
}

/** A database at state A (durable), then commit B (one small group): the file before and after B. */
async function twoStates(dir: string): Promise<{ before: Buffer; after: Buffer; txnB: number }> {
  const db = await open(dir, { wal: false });
  await db.transaction((tx) => {
    for (let i = 0; i < 400; i++) tx.put(`k${String(i).padStart(4, "0")}`, "a".repeat(60));
  });
  await db.put("k0007", "first"); // some pages freed and reusable by B
  await db.put("k0300", "first");
  await db.put("k0150", "first");
  const file = path.join(dir, DATA_FILE);
  const before = fs.readFileSync(file);
  await db.put("k0007", "changed by B");
  const meta = db.engine.durableMeta;
  assert.equal(meta.flags & META_FLAG_ONE_SYNC, META_FLAG_ONE_SYNC, "a one-put group is a one-sync checkpoint");
  await db.close();
  return { before, after: fs.readFileSync(file), txnB: meta.txn };
}

/** Page numbers (above the metas) whose header names txn B. */
function pagesOf(buf: Buffer, txn: number): number[] {
  const out: number[] = [];
  for (let p = 2; (p + 1) * PS <= buf.length; p++) if (readHeader(buf.subarray(p * PS, (p + 1) * PS)).txn === txn) out.push(p);
  return out;
}

async function expectFellBack(dir: string, txnB: number): Promise<void> {
  const report = await verify(dir, { fs: rebooted });
  const torn = report.problems.filter((p) => p.kind === "checkpoint-torn");
  assert.equal(torn.length, 1, JSON.stringify(report.problems));
  assert.equal(torn[0]!.severity, "warning");
  assert.deepEqual(report.problems.filter((p) => p.severity === "error"), [], "nothing else is wrong: the older state is whole");
  assert.equal(report.ok, true);

  const { value: db, warnings } = await warningsDuring(() => open(dir, { wal: false, fs: rebooted }));
  try {
    assert.ok(warnings.some((w) => w.code === "KEEL_META_FALLBACK" && /did not reach the disk whole/.test(w.message)), warnings.map((w) => w.message).join("\n"));
    assert.equal(db.get("k0007"), "first", "the state before B");
    assert.equal(db.get("k0399"), "a".repeat(60));
    assert.match(db.getStats().metaFallback?.reason ?? "", /^torn-checkpoint/);
    await db.put("z", "after the fallback");
    assert.ok(db.engine.durable.txn > txnB, "B's txn id is never used again");
  } finally {
    await db.close();
  }
  const { value: again, warnings: w2 } = await warningsDuring(() => open(dir, { wal: false, fs: rebooted }));
  try {
    assert.deepEqual(w2.filter((w) => w.code === "KEEL_META_FALLBACK"), []);
    assert.equal(again.get("z"), "after the fallback");
    assert.equal(again.get("k0007"), "first");
    assert.equal(again.getStats().entries, 401);
  } finally {
    await again.close();
  }
  const clean = await verify(dir, { fs: rebooted });
  assert.deepEqual(clean.problems, []);
}

test("a page of the last one-sync checkpoint that never reached the disk: open falls back to the state before it", async () => {
  await inTmpDir(async (dir) => {
    const { before, after, txnB } = await twoStates(dir);
    const pages = pagesOf(after, txnB);
    assert.ok(pages.length >= 2, `B wrote ${pages.length} pages`);
    // Each page B wrote, in turn, is the one the disk lost (B reused freed pages: they hold older txns).
    for (const p of pages) {
      loseWrite(dir, before, after, p);
      await expectFellBack(dir, txnB);
    }
  });
});

test("in the boot that wrote it, a bad page of the last one-sync checkpoint is damage: verify reports it, reads meet CORRUPT, no fallback", async () => {
  await inTmpDir(async (dir) => {
    const { before, after, txnB } = await twoStates(dir);
    const p = pagesOf(after, txnB)[0]!;
    loseWrite(dir, before, after, p);
    const report = await verify(dir);
    assert.equal(report.ok, false);
    assert.ok(report.problems.some((x) => x.severity === "error" && x.page === p), JSON.stringify(report.problems));
    assert.ok(!report.problems.some((x) => x.kind === "checkpoint-torn"));
    const corruptHere = (e: unknown) => isKeelError(e, "CORRUPT") && (e.details as { page?: number }).page === p;
    const { value: db, warnings } = await warningsDuring(() =>
      open(dir, { wal: false }).catch((e: unknown) => {
        // Or the open itself meets the page (the catalog or the free list): CORRUPT naming it.
        assert.ok(corruptHere(e), String(e));
        return null;
      }),
    );
    assert.deepEqual(warnings.filter((w) => w.code === "KEEL_META_FALLBACK"), [], "no silent step back to an older state");
    if (db) {
      try {
        assert.throws(() => [...db.getRange({})].length, corruptHere);
      } finally {
        await db.close();
      }
    }
  });
});

test("a torn page of the last one-sync checkpoint (half old, half new): open falls back", async () => {
  await inTmpDir(async (dir) => {
    const { before, after, txnB } = await twoStates(dir);
    loseWrite(dir, before, after, pagesOf(after, txnB)[0]!, true);
    await expectFellBack(dir, txnB);
  });
});

test("a one-sync checkpoint whose pages all reached the disk opens as it is, without a warning", async () => {
  await inTmpDir(async (dir) => {
    await twoStates(dir);
    for (const fsys of [undefined, rebooted]) {
      const report = await verify(dir, { fs: fsys });
      assert.deepEqual(report.problems, []);
      const { value: db, warnings } = await warningsDuring(() => open(dir, { wal: false, fs: fsys }));
      try {
        assert.deepEqual(warnings.filter((w) => w.code === "KEEL_META_FALLBACK"), []);
        assert.equal(db.get("k0007"), "changed by B");
        assert.equal(db.getStats().metaFallback, undefined);
      } finally {
        await db.close();
      }
    }
  });
});

test("a group larger than the one-sync bound takes two syncs and leaves the meta unflagged", async () => {
  await inTmpDir(async (dir) => {
    const db = await open(dir, { wal: false });
    try {
      await db.transaction((tx) => {
        for (let i = 0; i < 2000; i++) tx.put(`big${i}`, Buffer.alloc(3000, i % 251)); // ~6 MiB of pages
      });
      assert.equal(db.engine.durableMeta.flags & META_FLAG_ONE_SYNC, 0);
      await db.put("small", 1);
      assert.equal(db.engine.durableMeta.flags & META_FLAG_ONE_SYNC, META_FLAG_ONE_SYNC);
    } finally {
      await db.close();
    }
  });
});
