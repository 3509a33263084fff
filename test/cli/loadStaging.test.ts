/**
 * loadStaging: a `.load-partial-<pid>` staging directory is a leftover only when its process is
 * gone (or is this one) and no holder socket answers inside it: a load at work in another pid
 * namespace (a container sharing the volume) may carry any pid number, ours included. A publish
 * is all or nothing: a failed directory fsync takes the published file back.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fs, { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { publishStaged, removeStaleStaging } from "../../src/cli/loadStaging.js";
import { open } from "../../src/index.js";
import { HolderSocket } from "../../src/io/HolderSocket.js";
import { deadPid } from "../helpers/processes.js";

test("a staging directory with a live holder socket inside is a load at work, whatever its pid; without one, a dead or own pid's is removed", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "keel-staging-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ours = join(dir, `.load-partial-${process.pid}`);
  const dead = join(dir, `.load-partial-${deadPid()}`);
  mkdirSync(ours);
  mkdirSync(dead);
  const atWork = HolderSocket.listen(ours)!;
  t.after(() => atWork.close());
  removeStaleStaging(dir);
  assert.deepEqual(readdirSync(dir), [`.load-partial-${process.pid}`], "the dead one removed, the one at work kept");
  atWork.close();
  removeStaleStaging(dir);
  assert.deepEqual(readdirSync(dir), []);
});

test("a publish whose directory fsync fails takes its own data.keel back (the load fails and leaves no database); one that cannot remove its staging afterwards has published all the same", async (t) => {
  const root = mkdtempSync(join(tmpdir(), "keel-publish-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, "data");
  const staging = join(dir, ".load-partial-1");
  const db = await open(staging, { wal: false });
  await db.put("k", 1);
  await db.close();
  // The fsync of <dir> fails (EIO), as a real one may on a failing disk.
  const realFsync = fs.fsyncSync;
  const realRm = fs.rmSync;
  t.after(() => {
    fs.fsyncSync = realFsync;
    fs.rmSync = realRm;
    syncBuiltinESMExports();
  });
  fs.fsyncSync = () => {
    throw Object.assign(new Error("EIO: i/o error, fsync"), { code: "EIO" });
  };
  syncBuiltinESMExports();
  assert.throws(() => publishStaged(staging, dir), (e: NodeJS.ErrnoException) => e.code === "EIO");
  assert.equal(existsSync(join(dir, "data.keel")), false, "not known to be durable: taken back");
  assert.equal(existsSync(join(staging, "data.keel")), true, "the staged database is still there for the undo");
  // Now the fsync works but removing the staging fails: the database is published, no error.
  fs.fsyncSync = realFsync;
  fs.rmSync = ((p: string, o?: object) => {
    if (p === staging) throw Object.assign(new Error("EPERM"), { code: "EPERM" });
    return realRm(p, o);
  }) as typeof fs.rmSync;
  syncBuiltinESMExports();
  publishStaged(staging, dir);
  const published = await open(dir, { readOnly: true, wal: false });
  assert.equal(published.get("k"), 1);
  await published.close();
});
