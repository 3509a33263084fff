/**
 * partialPath: partial names unique per thread; publishOutput never replacing an output that
 * appeared after its EXISTS check (a file is linked, a directory renamed only onto nothing), falling
 * back to rename where there are no hard links, and taking back only its own output after a
 * failed fsync of the parent (a file renamed onto it by a concurrent job is left alone).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KeelError, NodeFileSystem } from "../../src/index.js";
import { FaultFileSystem, type CallKind } from "../../src/io/FaultFileSystem.js";
import { partialPath, publishOutput } from "../../src/maintenance/partialPath.js";

function root(t: { after: (fn: () => void) => void }): string {
  const r = mkdtempSync(join(tmpdir(), "keel-partial-"));
  t.after(() => rmSync(r, { recursive: true, force: true }));
  return r;
}

/** In a new directory: `dest` (not there yet) and this job's finished partial file, holding `content`. */
function finished(t: { after: (fn: () => void) => void }, content: string, name = "out.jsonl"): { dir: string; dest: string; mine: string } {
  const dir = root(t);
  const dest = join(dir, name);
  const mine = partialPath(dest);
  writeFileSync(mine, content);
  return { dir, dest, mine };
}

/**
 * A file system that runs `before` right before the first call of `kind` (on `path`, if given):
 * another job's move between this one's EXISTS check and its own. `fail`: that call then fails EIO.
 */
function racing(kind: CallKind, before: () => void, o: { path?: string; fail?: boolean } = {}): FaultFileSystem {
  const ffs = new FaultFileSystem(new NodeFileSystem());
  let hit = false;
  ffs.onCall = (c) => {
    if (hit || c.kind !== kind || (o.path !== undefined && c.path !== o.path)) return;
    hit = true;
    before();
    if (o.fail) throw Object.assign(new Error(`EIO: i/o error, ${c.kind} '${c.path}' (injected)`), { code: "EIO", errno: -5, syscall: c.kind, path: c.path });
  };
  return ffs;
}

/** A file system whose first fsync of `dir` fails with EIO, after running `before`. */
const failingParentSync = (dir: string, before: () => void) => racing("syncDir", before, { path: dir, fail: true });

test("publishOutput: a failed parent fsync removes the file it renamed; one a concurrent job renamed over it stays", (t) => {
  const { dir, dest, mine } = finished(t, "mine\n");
  assert.throws(() => publishOutput(failingParentSync(dir, () => undefined), mine, dest, "a dump", "file"), (e: unknown) => e instanceof KeelError && e.code === "IO");
  assert.ok(!existsSync(dest), "this job's own output is taken back");

  writeFileSync(mine, "mine\n");
  const theirs = `${dest}.other`;
  writeFileSync(theirs, "the other job's dump, which it was told is durable\n");
  const ffs = failingParentSync(dir, () => new NodeFileSystem().rename(theirs, dest));
  assert.throws(() => publishOutput(ffs, mine, dest, "a dump", "file"), (e: unknown) => e instanceof KeelError && e.code === "IO");
  assert.equal(readFileSync(dest, "utf8"), "the other job's dump, which it was told is durable\n", "another job's file is left alone");
});

test("publishOutput: a file that appears after the EXISTS check is not replaced: EXISTS, the winner's dump intact, this job's partial still its own", (t) => {
  const { dest, mine } = finished(t, "the loser's dump\n");
  const ffs = racing("link", () => writeFileSync(dest, "the winner's dump, reported durable\n"));
  assert.throws(() => publishOutput(ffs, mine, dest, "a dump", "file"), (e: unknown) => e instanceof KeelError && e.code === "EXISTS" && e.details.dest === dest);
  assert.equal(readFileSync(dest, "utf8"), "the winner's dump, reported durable\n");
  assert.equal(readFileSync(mine, "utf8"), "the loser's dump\n", "the caller removes its own partial");
});

test("publishOutput: a published file is linked, synced, and its partial name removed; without hard links (EPERM) it is renamed", (t) => {
  const { dir, dest, mine } = finished(t, "dump\n");
  const ffs = new FaultFileSystem(new NodeFileSystem());
  publishOutput(ffs, mine, dest, "a dump", "file");
  assert.deepEqual(readdirSync(dir), ["out.jsonl"]);
  assert.equal(readFileSync(dest, "utf8"), "dump\n");
  assert.equal(ffs.callsOf("link"), 1);
  assert.equal(ffs.callsOf("rename"), 0);
  assert.equal(ffs.callsOf("syncDir"), 1);

  const { dest: dest2, mine: mine2 } = finished(t, "dump on FAT\n", "fat.jsonl");
  const fat = new FaultFileSystem(new NodeFileSystem()).failEvery("link", "EPERM");
  publishOutput(fat, mine2, dest2, "a dump", "file");
  assert.equal(readFileSync(dest2, "utf8"), "dump on FAT\n");
  assert.ok(!existsSync(mine2));
  assert.equal(fat.callsOf("rename"), 1);

  const { dest: dest3, mine: mine3 } = finished(t, "x\n", "eio.jsonl");
  const eio = new FaultFileSystem(new NodeFileSystem()).failEvery("link", "EIO");
  assert.throws(() => publishOutput(eio, mine3, dest3, "a dump", "file"), (e: unknown) => e instanceof KeelError && e.code === "IO" && e.details.op === "link");
  assert.equal(eio.callsOf("rename"), 0, "a failing link is an error, not a reason to rename");
  assert.ok(!existsSync(dest3));
});

test("publishOutput: a directory that appears (not empty) after the EXISTS check is EXISTS, not IO, and is left alone", (t) => {
  const dir = root(t);
  const dest = join(dir, "backup");
  const mine = partialPath(dest);
  mkdirSync(mine);
  writeFileSync(join(mine, "data.keel"), "mine");
  const ffs = racing("rename", () => {
    mkdirSync(dest);
    writeFileSync(join(dest, "data.keel"), "theirs");
  });
  assert.throws(() => publishOutput(ffs, mine, dest, "a backup", "dir"), (e: unknown) => e instanceof KeelError && e.code === "EXISTS");
  assert.equal(readFileSync(join(dest, "data.keel"), "utf8"), "theirs");
});

test("partialPath: names differ between calls and carry the pid", () => {
  const a = partialPath("/x/out");
  const b = partialPath("/x/out");
  assert.notEqual(a, b);
  assert.match(a, new RegExp(`^/x/out\\.partial-${process.pid}-\\d+$`));
});
