/**
 * loadStaging: a `.load-partial-<pid>` staging directory is a leftover only when its process is
 * gone (or is this one) and no holder socket answers inside it: a load at work in another pid
 * namespace (a container sharing the volume) may carry any pid number, ours included.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { removeStaleStaging } from "../../src/cli/loadStaging.js";
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
