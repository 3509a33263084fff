/**
 * restore_from: a dump is loaded only into an empty (or missing) directory, all or nothing; a
 * missing or damaged dump is refused naming the file (and the line/offset) and the directory stays
 * empty; a directory that holds data is left alone. An existing empty directory (a mount point) is
 * loaded in place, with nothing created beside it; leftovers of an interrupted restore are removed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, watch, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { open } from "../../../src/index.js";
import { KeelError } from "../../../src/errors.js";
import { dumpToFile } from "../../../src/maintenance/dumpFile.js";
import * as restore from "../../../src/server/persistence/restoreFromDump.js";
import { HolderSocket } from "../../../src/io/HolderSocket.js";

const { restoreFromDump } = restore;

function tmp(t: { after: (fn: () => void) => void }): string {
  const d = mkdtempSync(join(tmpdir(), "keel-restore-"));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

async function makeDump(root: string, format: "jsonl" | "binary", n = 25_000): Promise<string> {
  const src = await open(join(root, `src-${format}`), { encoding: "json" });
  for (let i = 0; i < n; i += 1000) {
    await src.transaction((tx) => {
      for (let j = i; j < Math.min(n, i + 1000); j++) tx.put(`k${String(j).padStart(6, "0")}`, { j });
    });
  }
  const sub = src.openDB("other", { encoding: "string" });
  await sub.put("x", "y");
  const file = join(root, `dump.${format}`);
  await dumpToFile(src, file, { format });
  await src.close();
  return file;
}

for (const format of ["jsonl", "binary"] as const) {
  test(`an empty directory is restored from a ${format} dump (encodings and sub-databases included)`, async (t) => {
    const root = tmp(t);
    const file = await makeDump(root, format);
    const dir = join(root, "data");
    mkdirSync(dir);
    const r = await restoreFromDump(dir, file, { wal: true, durability: "strict" });
    assert.equal(r.kind, "restored");
    const db = await open(dir);
    try {
      assert.equal(db.getCount(), 25_000);
      assert.deepEqual(db.get("k000123"), { j: 123 });
      assert.equal(db.openDB("other").get("x"), "y");
    } finally {
      await db.close();
    }
    assert.deepEqual(readdirSync(root).filter((n) => n.includes("partial")), [], "no partial directory left");
  });
}

test("a directory that holds a database is left alone (restore_from ignored)", async (t) => {
  const root = tmp(t);
  const file = await makeDump(root, "jsonl", 10);
  const dir = join(root, "data");
  const db = await open(dir);
  await db.put("mine", 1);
  await db.close();
  const r = await restoreFromDump(dir, file, {});
  assert.deepEqual(r, { kind: "skipped", reason: "has-database" });
  const again = await open(dir);
  assert.equal(again.getCount(), 1);
  await again.close();
});

test("a missing dump is NOT_FOUND naming the file; the directory is not created", async (t) => {
  const root = tmp(t);
  const dir = join(root, "data");
  const file = join(root, "nope.dump");
  await assert.rejects(restoreFromDump(dir, file, {}), (e: unknown) => e instanceof KeelError && e.code === "NOT_FOUND" && e.details.file === file && e.message.includes(file));
  assert.equal(existsSync(dir), false);
});

for (const format of ["jsonl", "binary"] as const) {
  test(`a damaged ${format} dump (past the first batch) is CORRUPT naming the file and where; the directory stays empty`, async (t) => {
    const root = tmp(t);
    const file = await makeDump(root, format);
    const bytes = readFileSync(file);
    // Damage near the end: the first batches (10,000 entries each) would already be committed
    // by a plain load; the restore must still leave nothing behind.
    const at = bytes.length - 2000;
    bytes[at] = bytes[at]! ^ 0x5a;
    bytes[at + 1] = bytes[at + 1]! ^ 0x33;
    const bad = join(root, `bad.${format}`);
    writeFileSync(bad, bytes);
    const dir = join(root, "data");
    mkdirSync(dir);
    await assert.rejects(restoreFromDump(dir, bad, {}), (e: unknown) => {
      assert.ok(e instanceof KeelError, String(e));
      assert.equal(e.code, "CORRUPT");
      assert.equal(e.details.file, bad);
      assert.ok(e.message.includes(bad), e.message);
      assert.ok(e.details.offset !== undefined || e.details.line !== undefined, JSON.stringify(e.details));
      return true;
    });
    assert.deepEqual(readdirSync(dir), [], "the data directory stays empty");
    assert.deepEqual(readdirSync(root).filter((n) => n.includes("partial")), [], "no partial directory left");
  });
}

test("a directory that holds something but no database (lost+found of a fresh volume) is refused, not started empty", async (t) => {
  const root = tmp(t);
  const file = await makeDump(root, "jsonl", 10);
  const dir = join(root, "data");
  mkdirSync(join(dir, "lost+found"), { recursive: true });
  await assert.rejects(restoreFromDump(dir, file, {}), (e: unknown) => e instanceof KeelError && e.code === "EXISTS" && e.details.dir === dir && e.message.includes("lost+found"));
  assert.deepEqual(readdirSync(dir), ["lost+found"]);
});

test("an existing empty directory (a mount point) is restored in place: the directory itself is kept, nothing is created beside it", async (t) => {
  const root = tmp(t);
  const file = await makeDump(root, "jsonl", 500);
  const dir = join(root, "data");
  mkdirSync(dir);
  const ino = statSync(dir).ino;
  const beside = readdirSync(root).sort();
  // A mount point cannot be removed or renamed onto: watch the parent for anything created there.
  const created: string[] = [];
  const watcher = watch(root, (_event, name) => {
    if (name && !beside.includes(name)) created.push(name);
  });
  try {
    const r = await restoreFromDump(dir, file, { wal: true, durability: "strict" });
    assert.equal(r.kind, "restored");
  } finally {
    watcher.close();
  }
  assert.equal(statSync(dir).ino, ino, "the data directory is the same directory (not replaced)");
  assert.deepEqual(created, [], "nothing was created beside the data directory");
  assert.deepEqual(readdirSync(root).sort(), beside);
  assert.deepEqual(readdirSync(dir).filter((n) => n.includes("partial")), []);
  const db = await open(dir);
  try {
    assert.equal(db.getCount(), 500);
  } finally {
    await db.close();
  }
});

test("leftovers of an interrupted restore (dead process) are removed, and the dump is restored again", async (t) => {
  const root = tmp(t);
  const file = await makeDump(root, "jsonl", 50);
  const dir = join(root, "data");
  const dead = 99_999_999; // no such process
  // The move into <dir> was cut short: the log is in place, data.keel still in the partial directory.
  mkdirSync(join(dir, `.restore-partial-${dead}`), { recursive: true });
  writeFileSync(join(dir, `.restore-partial-${dead}`, "data.keel"), "half");
  mkdirSync(join(dir, "wal"));
  writeFileSync(join(dir, "wal", "stale-marker"), "x");
  // An older version's sibling partial directory.
  mkdirSync(join(root, `data.restore-partial-${dead}`));
  mkdirSync(join(root, `data.restore-partial-${process.pid}`));
  const r = await restoreFromDump(dir, file, {});
  assert.equal(r.kind, "restored");
  assert.deepEqual(readdirSync(root).filter((n) => n.includes("partial")), []);
  assert.deepEqual(readdirSync(dir).filter((n) => n.includes("partial")), []);
  assert.equal(existsSync(join(dir, "wal", "stale-marker")), false);
  const db = await open(dir);
  try {
    assert.equal(db.getCount(), 50);
  } finally {
    await db.close();
  }
});

test("a finished restore whose partial directory was left behind keeps its database; a live process's partial is not touched", async (t) => {
  const root = tmp(t);
  const file = await makeDump(root, "jsonl", 20);
  const dir = join(root, "data");
  mkdirSync(dir);
  await restoreFromDump(dir, file, {});
  mkdirSync(join(dir, ".restore-partial-99999999"));
  restore.removeRestoreLeftovers(dir);
  assert.deepEqual(readdirSync(dir).filter((n) => n.includes("partial")), []);
  const db = await open(dir);
  assert.equal(db.getCount(), 20);
  await db.close();
  // pid 1 is alive: its restore may be running.
  const other = join(root, "other");
  mkdirSync(join(other, ".restore-partial-1"), { recursive: true });
  restore.removeRestoreLeftovers(other);
  assert.deepEqual(readdirSync(other), [".restore-partial-1"]);
  await assert.rejects(restoreFromDump(other, file, {}), (e: unknown) => e instanceof KeelError && e.code === "LOCKED", "another restore at work: LOCKED, not a foreign directory's EXISTS");
  assert.deepEqual(readdirSync(other), [".restore-partial-1"]);
});

test("a restore at work in another container (a pid that means nothing here, or this process's own number) is told by the socket it listens on inside its partial directory: left alone, a second restore_from beside it is LOCKED (not EXISTS); once nobody listens it is a leftover", async (t) => {
  const root = tmp(t);
  const dir = join(root, "data");
  // Its partial directory is named after its pid in its own namespace: here that is our pid.
  const partial = join(dir, `.restore-partial-${process.pid}`);
  mkdirSync(partial, { recursive: true });
  writeFileSync(join(partial, "data.keel"), "half loaded");
  const working = HolderSocket.listen(partial)!;
  t.after(() => working.close());
  restore.removeRestoreLeftovers(dir);
  assert.deepEqual(readdirSync(dir), [`.restore-partial-${process.pid}`], "a restore at work is not removed");
  assert.equal(readFileSync(join(partial, "data.keel"), "utf8"), "half loaded");
  const dump = await makeDump(root, "jsonl", 5);
  const e = await restoreFromDump(dir, dump, {}).then(
    () => assert.fail("a second restore beside one at work must not run"),
    (err: unknown) => err as KeelError,
  );
  assert.equal(e.code, "LOCKED", String(e));
  assert.equal(e.details.path, partial);
  assert.deepEqual(readdirSync(dir), [`.restore-partial-${process.pid}`], "nothing of the restore at work is touched");
  assert.equal(readFileSync(join(partial, "data.keel"), "utf8"), "half loaded");
  working.close();
  restore.removeRestoreLeftovers(dir);
  assert.deepEqual(readdirSync(dir), [], "nobody listens: a leftover, removed");
});

test("a restore at work is not taken for a leftover by a server starting beside it (same pid number: a rolling deploy across containers); it finishes, leaving no socket file", async (t) => {
  const root = tmp(t);
  const file = await makeDump(root, "jsonl", 30);
  const dir = join(root, "data");
  const running = restoreFromDump(dir, file, {});
  // The restore has made its partial directory and awaits its first read: another start now.
  restore.removeRestoreLeftovers(dir);
  assert.deepEqual(readdirSync(dir), [`.restore-partial-${process.pid}`]);
  const r = await running;
  assert.equal(r.kind, "restored");
  assert.deepEqual(readdirSync(dir).filter((n) => n.includes(".sock") || n.includes("partial")), [], "no socket moved into the database, no partial left");
  const db = await open(dir);
  assert.equal(db.getCount(), 30);
  await db.close();
});
