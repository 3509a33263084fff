/**
 * powerCutSweep: the power-cut sweep of a job that publishes an output (dump, restore, salvage):
 * run it on a copy of `base` with the power cut at its k-th I/O call, for every k from 1 to one
 * past its last call, and check each of several crashed copies, knowing whether the job had
 * resolved before the cut. I7: the output is absent or complete, and present once resolved.
 * The job calls `resolved()` once the operation under test has resolved (its open and close
 * around it are cut too, but say nothing about the output).
 */
import assert from "node:assert/strict";
import { open } from "../../src/index.js";
import { CrashFileSystem } from "../../src/io/CrashFileSystem.js";
import { isSimulatedCrash } from "../../src/io/SimulatedCrash.js";
import { assertSameState, readState, type DbState } from "./dbModel.js";

export interface SweepCheck {
  /** The crashed copy to look at. */
  after: CrashFileSystem;
  /** The operation under test resolved before the cut. */
  resolved: boolean;
  label: string;
}

/** A check for a job whose output is a database directory: absent, or opening equal to `expected`. */
export function databaseOutput(path: string, expected: DbState, what: string): (c: SweepCheck) => Promise<void> {
  return async ({ after, resolved, label }) => {
    const there = !!after.stat(path);
    if (resolved) assert.ok(there, `${label}: the ${what} resolved, then a power cut took it`);
    if (!there) return;
    const db = await open(path, { fs: after, readOnly: true });
    try {
      assertSameState(readState(db), expected, `${what}, ${label}`);
    } finally {
      await db.close();
    }
  };
}

/** Returns the number of I/O calls of one uncut run. */
export async function powerCutSweep(
  base: CrashFileSystem,
  job: (fs: CrashFileSystem, resolved: () => void) => Promise<unknown>,
  check: (c: SweepCheck) => Promise<void> | void,
  seeds: readonly number[] = [1, 2, 3],
): Promise<number> {
  const counting = base.clone();
  counting.resetCounters();
  let uncut = false;
  await job(counting, () => (uncut = true));
  assert.ok(uncut, "the uncut run resolves");
  const total = counting.calls;
  let resolvedRuns = 0;
  for (let k = 1; k <= total + 1; k++) {
    const fs = base.clone();
    fs.resetCounters();
    fs.crashAfterCalls(k);
    let resolved = false;
    try {
      await job(fs, () => (resolved = true));
    } catch (e) {
      assert.ok(isSimulatedCrash(e), `cut at call ${k}: ${String((e as Error)?.stack ?? e)}`);
    }
    if (resolved) resolvedRuns++;
    for (const seed of seeds) await check({ after: fs.crashedCopy(seed), resolved, label: `cut at call ${k} of ${total}, seed ${seed}` });
  }
  assert.ok(resolvedRuns >= 1, "a cut after the operation's last call lets it resolve");
  return total;
}
