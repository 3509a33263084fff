/**
 * partialPath: partial names unique per thread, and publishRenamed taking back only its own output
 * after a failed fsync of the parent (a file renamed onto it by a concurrent job is left alone).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KeelError, NodeFileSystem } from "../../src/index.js";
import { FaultFileSystem } from "../../src/io/FaultFileSystem.js";
import { partialPath, publishRenamed } from "../../src/maintenance/partialPath.js";

function root(t: { after: (fn: () => void) => void }): string {
  const r = mkdtempSync(join(tmpdir(), "keel-partial-"));
  t.after(() => rmSync(r, { recursive: true, force: true }));
  return r;
}

/** A file system whose first fsync of `dir` fails with EIO, after running `before`. */
function failingParentSync(dir: string, before: () => void): FaultFileSystem {
  const ffs = new FaultFileSystem(new NodeFileSystem());
  let hit = false;
  ffs.onCall = (c) => {
    if (!hit && c.kind === "syncDir" && c.path === dir) {
      hit = true;
      before();
      throw Object.assign(new Error(`EIO: i/o error, fsync '${dir}' (injected)`), { code: "EIO", errno: -5, syscall: "fsync", path: dir });
    }
  };
  return ffs;
}

test("publishRenamed: a failed parent fsync removes the file it renamed; one a concurrent job renamed over it stays", (t) => {
  const dir = root(t);
  const dest = join(dir, "out.jsonl");
  const mine = partialPath(dest);
  writeFileSync(mine, "mine\n");
  assert.throws(() => publishRenamed(failingParentSync(dir, () => undefined), mine, dest, "a dump", "file"), (e: unknown) => e instanceof KeelError && e.code === "IO");
  assert.ok(!existsSync(dest), "this job's own output is taken back");

  writeFileSync(mine, "mine\n");
  const theirs = `${dest}.other`;
  writeFileSync(theirs, "the other job's dump, which it was told is durable\n");
  const ffs = failingParentSync(dir, () => new NodeFileSystem().rename(theirs, dest));
  assert.throws(() => publishRenamed(ffs, mine, dest, "a dump", "file"), (e: unknown) => e instanceof KeelError && e.code === "IO");
  assert.equal(readFileSync(dest, "utf8"), "the other job's dump, which it was told is durable\n", "another job's file is left alone");
});

test("partialPath: names differ between calls and carry the pid", () => {
  const a = partialPath("/x/out");
  const b = partialPath("/x/out");
  assert.notEqual(a, b);
  assert.match(a, new RegExp(`^/x/out\\.partial-${process.pid}-\\d+$`));
});
