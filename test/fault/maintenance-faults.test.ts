/**
 * I/O faults in open and in the maintenance jobs, on the real file system (NodeFileSystem wrapped
 * in FaultFileSystem), failing call k for every k until the job succeeds. After each failure:
 * - the caller got a KeelError IO (never an untyped error);
 * - no file descriptor under the test directory is left open (counted in /proc/self/fd): a leaked
 *   one holds a deleted log segment's space until the process exits;
 * - nothing is left at the destination, and no partial output (I7), so the retry is not EXISTS;
 * - the retry without the fault succeeds.
 * Also: a failed parent-directory fsync after the final rename counts as a failure and takes the
 * output back (dumpToFile, salvage, restore); a failing close of a file loadFromFile only read does
 * not turn a finished load into an error; a snapshot that fails before its last rename leaves no
 * `incoming` copy; verify reports an unreadable log or snapshots directory as an I/O problem.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { open, KeelError, NodeFileSystem, dumpToFile, loadFromFile, restore, salvage, verify } from "../../src/index.js";
import { FaultFileSystem, type CallKind } from "../../src/io/FaultFileSystem.js";
import { describeError, quietExpectedWarnings } from "../helpers/crashCheck.js";
import { copyDir } from "../helpers/copyDir.js";

quietExpectedWarnings();

/** Descriptors of this process open on files under `dir`. */
function fdsUnder(dir: string): string[] {
  const out: string[] = [];
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dir)) out.push(target);
    } catch {
      // closed meanwhile (the readdir's own descriptor)
    }
  }
  return out;
}

function isIo(e: unknown): boolean {
  return e instanceof KeelError && (e.code === "IO" || e.code === "FULL");
}

function tmp(): string {
  return mkdtempSync(join(tmpdir(), "keel-mfault-"));
}

/** A database with a checkpointed part, a log tail that open must replay, and a snapshot. */
async function template(dir: string): Promise<void> {
  const db = await open(dir, { checkpointLogBytes: 1 << 30 });
  for (let i = 0; i < 40; i++) await db.put(`k${i}`, `v${i}`.repeat(20));
  await db.createSnapshot();
  for (let i = 0; i < 30; i++) await db.put(`t${i}`, `w${i}`.repeat(30));
  // Copy the files while it is open: the copy has a log tail past the last checkpoint, as after a crash.
  copyDir(dir, `${dir}.tail`);
  await db.close();
  rmSync(dir, { recursive: true });
  copyDir(`${dir}.tail`, dir);
  rmSync(`${dir}.tail`, { recursive: true });
  rmSync(join(dir, "LOCK"), { force: true });
}

/** Fail call k (transient EIO) for k = 1, 2, ... until `job` succeeds; `check` runs after each failure. */
async function sweep(what: string, job: (fs: FaultFileSystem, k: number) => Promise<void>, check: (k: number, err: unknown) => void | Promise<void>, maxK = 2000): Promise<number> {
  for (let k = 1; k <= maxK; k++) {
    const ffs = new FaultFileSystem(new NodeFileSystem()).failAt(k, { errno: "EIO" });
    let err: unknown;
    try {
      await job(ffs, k);
    } catch (e) {
      err = e;
    }
    if (ffs.faultsInjected === 0) {
      assert.equal(err, undefined, `${what}: failed without a fault: ${describeError(err)}`);
      return k;
    }
    if (err === undefined) continue; // the fault hit a call whose failure the job may ride out
    assert.ok(isIo(err), `${what}, EIO at call ${k} (${ffs.lastFault?.kind} ${ffs.lastFault?.path}): ${describeError(err)}`);
    await check(k, err);
  }
  assert.fail(`${what}: still failing at call ${maxK}`);
}

test("open failing at call k (every k, a log tail to replay): IO, no descriptor left open, the retry opens", async () => {
  const root = tmp();
  try {
    const tpl = join(root, "tpl");
    await template(tpl);
    const dir = join(root, "db");
    const calls = await sweep(
      "open",
      async (fs) => {
        rmSync(dir, { recursive: true, force: true });
        copyDir(tpl, dir);
        const db = await open(dir, { fs });
        await db.close();
      },
      async (k) => {
        assert.deepEqual(fdsUnder(root), [], `open failing at call ${k} left descriptors open`);
        const db = await open(dir);
        assert.equal(db.get("t29"), "w29".repeat(30), `after the failure at call ${k}`);
        await db.close();
      },
    );
    assert.ok(calls > 20, `open made ${calls} calls`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("a readOnly open whose first stat fails is IO, not an untyped error", async () => {
  const root = tmp();
  try {
    const dir = join(root, "db");
    const db = await open(dir);
    await db.close();
    const fs = new FaultFileSystem(new NodeFileSystem()).failAt(1, { errno: "EIO", kinds: ["stat"] });
    await assert.rejects(open(dir, { fs, readOnly: true }), (e: unknown) => isIo(e) && (e as KeelError).details.path === dir);
    const fs2 = new FaultFileSystem(new NodeFileSystem()).failAt(1, { errno: "EIO", kinds: ["stat"] });
    await assert.rejects(salvage(dir, join(root, "out"), { fs: fs2 }), (e: unknown) => isIo(e));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("restore failing at call k (every k): IO, no target and no partial directory, no descriptor left open, the retry restores", async () => {
  const root = tmp();
  try {
    const src = join(root, "src");
    await template(src);
    const target = join(root, "target");
    const snap = join(src, "snapshots", "current");
    await sweep(
      "restore",
      async (fs) => {
        rmSync(target, { recursive: true, force: true });
        await restore(snap, target, { fs });
      },
      (k) => {
        assert.deepEqual(fdsUnder(root), [], `restore failing at call ${k} left descriptors open`);
        assert.deepEqual(readdirSync(root).sort(), ["src"], `restore failing at call ${k} left output`);
      },
    );
    const db = await open(target, { readOnly: true });
    assert.equal(db.get("t29"), "w29".repeat(30));
    await db.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

/** A FaultFileSystem that fails the first call of `kind` on `path` (after the job got that far). */
function failFirst(kind: CallKind, path: string): FaultFileSystem {
  const ffs = new FaultFileSystem(new NodeFileSystem());
  let hit = false;
  ffs.onCall = (c) => {
    if (!hit && c.kind === kind && c.path === path) {
      hit = true;
      throw Object.assign(new Error(`EIO: i/o error, ${kind} '${path}' (injected)`), { code: "EIO", errno: -5, syscall: kind, path });
    }
  };
  return ffs;
}

test("a failed fsync of the parent after the final rename takes the output back: dumpToFile, salvage and restore fail IO, leave nothing, and the retry works", async () => {
  const root = tmp();
  try {
    const src = join(root, "src");
    await template(src);
    const outDir = join(root, "out");
    const db = await open(src, { fs: failFirst("syncDir", outDir) });
    try {
      const file = join(outDir, "dump.jsonl");
      await assert.rejects(dumpToFile(db, file), (e: unknown) => isIo(e));
      assert.ok(!existsSync(file), "a dump not known durable is not left at its path");
      assert.deepEqual(existsSync(outDir) ? readdirSync(outDir) : [], []);
    } finally {
      await db.close();
    }
    const salvaged = join(outDir, "salvaged");
    await assert.rejects(salvage(src, salvaged, { fs: failFirst("syncDir", outDir) }), (e: unknown) => isIo(e));
    assert.ok(!existsSync(salvaged));
    await salvage(src, salvaged);
    const restored = join(outDir, "restored");
    await assert.rejects(restore(join(src, "snapshots", "current"), restored, { fs: failFirst("syncDir", outDir) }), (e: unknown) => isIo(e));
    assert.ok(!existsSync(restored));
    await restore(join(src, "snapshots", "current"), restored);
    assert.deepEqual(readdirSync(outDir).sort(), ["restored", "salvaged"]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("dumpToFile failing at call k (every k): IO, nothing at the path, no partial file; loadFromFile ignores a failing close of its input", async () => {
  const root = tmp();
  try {
    const src = join(root, "src");
    await template(src);
    const outDir = join(root, "out");
    const file = join(outDir, "dump.jsonl");
    const dumped = await sweep(
      "dumpToFile",
      async (fs) => {
        rmSync(outDir, { recursive: true, force: true });
        const db = await open(src, { fs });
        try {
          await dumpToFile(db, file);
        } finally {
          await db.close().catch(() => undefined);
        }
      },
      (k) => {
        assert.ok(!existsSync(file), `dumpToFile failing at call ${k} left ${file}`);
        assert.deepEqual(existsSync(outDir) ? readdirSync(outDir) : [], [], `dumpToFile failing at call ${k} left a partial file`);
      },
    );
    assert.ok(dumped > 10);
    assert.ok(existsSync(file));
    const dest = join(root, "loaded");
    const db = await open(dest, { fs: failFirst("close", file) });
    try {
      const r = await loadFromFile(db, file);
      assert.equal(r.entries, 70, "the load's report, not the close's error");
      assert.equal(db.get("t29"), "w29".repeat(30));
    } finally {
      await db.close();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("createSnapshot failing at call k (every k): IO, the current snapshot kept, no incoming copy left behind", async () => {
  const root = tmp();
  try {
    const tpl = join(root, "tpl");
    await template(tpl);
    const dir = join(root, "db");
    const snaps = join(dir, "snapshots");
    await sweep(
      "createSnapshot",
      async (fs) => {
        rmSync(dir, { recursive: true, force: true });
        copyDir(tpl, dir);
        const db = await open(dir, { fs });
        try {
          await db.put("s", "x");
          await db.createSnapshot();
        } finally {
          await db.close().catch(() => undefined);
        }
      },
      (k) => {
        const left = readdirSync(snaps).filter((name) => name !== "current" && name !== "previous");
        assert.deepEqual(left, [], `createSnapshot failing at call ${k} left ${left.join(", ")}`);
        assert.ok(existsSync(join(snaps, "current")) || existsSync(join(snaps, "previous")), `a snapshot is kept after the failure at call ${k}`);
      },
    );
    assert.deepEqual(readdirSync(snaps).sort(), ["current", "previous"]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("verify: a log or snapshots directory it cannot read is an I/O problem (wal-io, snapshot-io), not internal", async () => {
  const root = tmp();
  try {
    const dir = join(root, "db");
    await template(dir);
    for (const [path, kind] of [
      [join(dir, "wal"), "wal-io"],
      [join(dir, "snapshots"), "snapshot-io"],
    ] as const) {
      const r = await verify(dir, { fs: failFirst("stat", path) });
      assert.equal(r.ok, false);
      assert.ok(
        r.problems.some((p) => p.kind === kind),
        `${path}: ${JSON.stringify(r.problems)}`,
      );
      assert.ok(!r.problems.some((p) => p.kind === "internal"), JSON.stringify(r.problems));
    }
    writeFileSync(join(dir, "snapshots", "current", "snapshot.json"), "null");
    const r = await verify(dir, { fs: failFirst("readFile", join(dir, "snapshots", "current", "snapshot.json")) });
    assert.ok(r.problems.some((p) => p.kind === "snapshot-io"), JSON.stringify(r.problems));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("open taking over a stale LOCK (empty, or naming this pid) with a stat failing at call k (every k): IO, never an untyped error; the retry opens", async () => {
  const root = tmp();
  try {
    const dir = join(root, "db");
    const db = await open(dir);
    await db.put("k", "v");
    await db.close();
    const old = new Date(Date.now() - 60_000);
    for (const lockText of ["", `${process.pid}\n`]) {
      for (let k = 1; ; k++) {
        writeFileSync(join(dir, "LOCK"), lockText);
        utimesSync(join(dir, "LOCK"), old, old);
        const fs = new FaultFileSystem(new NodeFileSystem()).failAt(k, { errno: "EIO", kinds: ["stat"] });
        let err: unknown;
        try {
          const d = await open(dir, { fs });
          await d.close();
        } catch (e) {
          err = e;
        }
        if (fs.faultsInjected === 0) {
          assert.equal(err, undefined, describeError(err));
          break;
        }
        if (err !== undefined) assert.ok(isIo(err), `LOCK ${JSON.stringify(lockText)}, stat ${k} (${fs.lastFault?.path}): ${describeError(err)}`);
        assert.ok(k < 500);
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
