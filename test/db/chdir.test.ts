/**
 * A database, and a job, named by a relative path stay where they were opened when the process
 * changes its working directory (daemons chdir("/")): every file is named from the absolute path
 * fixed at open.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { KeelError, open, verify } from "../../src/index.js";
import { tempDir } from "./dbUtil.js";

function inDir<T>(t: { after(fn: () => void): void }, dir: string): void {
  const before = process.cwd();
  t.after(() => process.chdir(before));
  process.chdir(dir);
}

test("a database opened by a relative path keeps its log and its LOCK where it was opened after process.chdir()", async (t) => {
  const root = tempDir(t);
  for (const d of ["a", "b"]) mkdirSync(join(root, d));
  // Another database of the same name under b: the writes of a/db must not land in it.
  const other = await open(join(root, "b", "db"));
  await other.put("mine", "b");
  await other.close();
  const bWal = readdirSync(join(root, "b", "db", "wal"));
  inDir(t, join(root, "a"));
  const db = await open("db", { walSegmentMaxBytes: 64 * 1024 });
  assert.equal(db.path, join(root, "a", "db"), "db.path is absolute");
  process.chdir(join(root, "b"));
  for (let i = 0; i < 200; i++) db.putSync(`a${i}`, "x".repeat(1000)); // several segment rolls
  await db.backup("copy");
  await db.close();
  assert.equal(existsSync(join(root, "a", "db", "LOCK")), false, "close removed its LOCK");
  assert.deepEqual(readdirSync(join(root, "b", "db", "wal")), bWal, "nothing was written into b/db");
  assert.equal(existsSync(join(root, "b", "copy", "data.keel")), true, "a relative backup path is the caller's, at the call");
  for (const d of ["a/db", "b/db", "b/copy"]) assert.equal((await verify(join(root, d))).ok, true, d);
  const a = await open(join(root, "a", "db"));
  assert.equal(a.get("a199"), "x".repeat(1000));
  assert.equal(a.get("mine"), undefined);
  await a.close();
  const b = await open(join(root, "b", "db"));
  assert.equal(b.get("mine"), "b");
  assert.equal(b.get("a0"), undefined);
  await b.close();
});

test("a relative path while the working directory has been removed is a coded error (IO), as before paths were fixed at open", async (t) => {
  const root = tempDir(t);
  const gone = join(root, "gone");
  mkdirSync(gone);
  inDir(t, gone);
  rmSync(gone, { recursive: true });
  await assert.rejects(open("db"), (e: unknown) => e instanceof KeelError && e.code === "IO");
  await assert.rejects(verify("db"), (e: unknown) => e instanceof KeelError);
});
