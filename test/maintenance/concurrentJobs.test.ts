/**
 * Jobs started together toward one destination, in one process, on real files (I7).
 *
 * - createSnapshot calls run one at a time: all of them succeed, and current and previous are the
 *   last two, each complete (its checksum holds). Before, two at once shared snapshots/incoming and
 *   the second cleared the first's copy as a crash leftover (IO error).
 * - Two backups (compacting and page by page), two dumps or two restores to one path: the first to
 *   finish is published and the other fails with EXISTS; the published copy is complete, and no
 *   partial copy is left. Before, they shared `<dest>.partial-<pid>`: one cleared the other's partial
 *   copy, and the one that "succeeded" could publish the other's unfinished file. (restore never
 *   yields between its EXISTS check and its rename, so it was not affected; its case holds that.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { compactTo, dumpToFile, KeelError, loadFromFile, open, restore, verify, type Database } from "../../src/index.js";
import { checkSnapshot } from "../../src/maintenance/Snapshots.js";
import { tempDir } from "../db/dbUtil.js";

async function filled(dir: string, n = 3000): Promise<Database> {
  const db = await open(join(dir, "db"));
  for (let i = 0; i < n; i++) void db.put(`k${i}`, { i, pad: "x".repeat(100) });
  await db.put("last", n);
  return db;
}

/** One fulfilled, the rest rejected with EXISTS. */
function oneWinner<T>(results: PromiseSettledResult<T>[]): T {
  const ok = results.filter((r): r is PromiseFulfilledResult<T> => r.status === "fulfilled");
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
  assert.equal(ok.length, 1, `exactly one succeeds: ${failed.map((f) => String(f.reason)).join("; ")}`);
  for (const f of failed) assert.ok(f.reason instanceof KeelError && f.reason.code === "EXISTS", `the others fail with EXISTS, got ${String(f.reason)}`);
  return ok[0]!.value;
}

function noPartials(parent: string): void {
  assert.deepEqual(
    readdirSync(parent).filter((n) => n.includes(".partial-")),
    [],
    "no partial copy is left",
  );
}

test("createSnapshot called three times at once: all succeed in turn; current and previous are the last two, complete", async (t) => {
  const dir = tempDir(t);
  const db = await filled(dir);
  try {
    const infos = await Promise.all([db.createSnapshot(), db.createSnapshot(), db.createSnapshot()]);
    const snaps = db.listSnapshots();
    assert.deepEqual(
      snaps.map((s) => s.name),
      ["current", "previous"],
    );
    assert.equal(snaps[0]!.createdAt, infos[2]!.createdAt, "current is the last call's");
    for (const s of snaps) {
      checkSnapshot(db.fs, s);
      assert.equal(s.entries, 3001);
    }
    assert.deepEqual(readdirSync(join(dir, "db", "snapshots")).sort(), ["current", "previous"]);
  } finally {
    await db.close();
  }
});

test("two backups to one dest at once (compacting, then page by page): one is published complete, the other is EXISTS", async (t) => {
  const dir = tempDir(t);
  const db = await filled(dir);
  try {
    for (const compact of [true, false]) {
      const dest = join(dir, `backup-${compact}`);
      oneWinner(await Promise.allSettled([db.backup(dest, { compact }), db.backup(dest, { compact })]));
      noPartials(dir);
      const copy = await open(dest, { readOnly: true });
      assert.equal(copy.getCount(), 3001);
      assert.equal(copy.get("last"), 3000);
      await copy.close();
    }
  } finally {
    await db.close();
  }
});

test("two dumps to one file at once: one is published complete, the other is EXISTS", async (t) => {
  const dir = tempDir(t);
  const db = await filled(dir);
  const path = join(dir, "all.dump");
  try {
    oneWinner(await Promise.allSettled([dumpToFile(db, path), dumpToFile(db, path)]));
    noPartials(dir);
  } finally {
    await db.close();
  }
  const back = await open(join(dir, "loaded"));
  try {
    await loadFromFile(back, path);
    assert.equal(back.getCount(), 3001);
    assert.equal(back.get("last"), 3000);
  } finally {
    await back.close();
  }
});

test("two restores to one target at once: one is published complete, the other is EXISTS", async (t) => {
  const dir = tempDir(t);
  const db = await filled(dir);
  try {
    await db.createSnapshot();
    await db.put("after", 1);
  } finally {
    await db.close();
  }
  const target = join(dir, "restored");
  const snap = join(dir, "db", "snapshots", "current");
  oneWinner(await Promise.allSettled([restore(snap, target), restore(snap, target)]));
  noPartials(dir);
  const r = await open(target, { readOnly: true });
  assert.equal(r.getCount(), 3002);
  assert.equal(r.get("after"), 1);
  await r.close();
});

test("two compactTo to one dest: the one that loses, aborted after the other published, leaves the winner's copy alone", async (t) => {
  const dir = tempDir(t);
  const db = await filled(dir, 20_000);
  await db.close();
  const dest = join(dir, "compacted");
  const acs = [new AbortController(), new AbortController()];
  const jobs = acs.map((ac) => compactTo(join(dir, "db"), dest, { signal: ac.signal }));
  // Whichever publishes first wins; then the other is aborted (or has already failed EXISTS).
  const winner = await Promise.any(jobs.map((j, i) => j.then((r) => ({ i, r }))));
  assert.equal(winner.r.entries, 20_001);
  acs[1 - winner.i]!.abort("cancelled");
  await assert.rejects(jobs[1 - winner.i]!, (e: unknown) => e instanceof KeelError && (e.code === "ABORTED" || e.code === "EXISTS"));
  assert.ok(readdirSync(dir).includes("compacted"), "the winner's copy is still there");
  assert.equal((await verify(dest)).ok, true);
  noPartials(dir);
});

test("two worker threads dumping to one path get distinct partial names: one dump wins whole (it loads), the other gets EXISTS; neither truncates the other", { timeout: 120_000 }, async (t) => {
  const { Worker } = await import("node:worker_threads");
  const { mkdtempSync: mk, rmSync: rm } = await import("node:fs");
  const { tmpdir: td } = await import("node:os");
  const { join: j } = await import("node:path");
  const { fileURLToPath } = await import("node:url");
  const { open: openDb, loadFromFile } = await import("../../src/index.js");
  const INDEX = fileURLToPath(new URL("../../src/index.js", import.meta.url));
  const root = mk(j(td(), "keel-threads-dump-"));
  t.after(() => rm(root, { recursive: true, force: true }));
  for (const name of ["a", "b"]) {
    const db = await openDb(j(root, name));
    await db.transaction((tx) => {
      for (let i = 0; i < 20_000; i++) tx.put(`${name}${i}`, `${name}-${i}-`.padEnd(200, name));
    });
    await db.close();
  }
  const dest = j(root, "out.jsonl");
  const code = `
    const { parentPort, workerData } = require("node:worker_threads");
    import(workerData.index).then(async ({ open, dumpToFile }) => {
      const db = await open(workerData.dir, { readOnly: true });
      try {
        const r = await dumpToFile(db, workerData.dest);
        parentPort.postMessage({ ok: true, entries: r.entries });
      } catch (e) {
        parentPort.postMessage({ ok: false, code: e.code, message: e.message });
      } finally {
        await db.close();
      }
    });
  `;
  const run = (name: string) =>
    new Promise<{ ok: boolean; code?: string; entries?: number; name: string }>((resolve, reject) => {
      const w = new Worker(code, { eval: true, workerData: { index: INDEX, dir: j(root, name), dest } });
      w.once("message", (m) => resolve({ ...m, name }));
      w.once("error", reject);
    });
  const results = await Promise.all([run("a"), run("b")]);
  const won = results.filter((r) => r.ok);
  assert.equal(won.length, 1, JSON.stringify(results));
  assert.deepEqual(results.filter((r) => !r.ok).map((r) => r.code), ["EXISTS"], JSON.stringify(results));
  const loaded = await openDb(j(root, "loaded"));
  try {
    const rep = await loadFromFile(loaded, dest);
    assert.equal(rep.entries, 20_000);
    assert.ok(loaded.get(`${won[0]!.name}19999`), "the winner's own dump is at the path");
  } finally {
    await loaded.close();
  }
});
