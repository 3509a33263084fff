/**
 * restore_from: a dump is loaded only into an empty (or missing) directory, all or nothing; a
 * missing or damaged dump is refused naming the file (and the line/offset) and the directory stays
 * empty; a directory that holds data is left alone.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { open } from "../../../src/index.js";
import { KeelError } from "../../../src/errors.js";
import { dumpToFile } from "../../../src/maintenance/dumpFile.js";
import { restoreFromDump } from "../../../src/server/persistence/restoreFromDump.js";

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
