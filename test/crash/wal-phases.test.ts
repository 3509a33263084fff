/**
 * kill -9 at every named phase of the WAL mode: the child (helpers/walKillChild.ts) runs with
 * KEEL_CRASH_AT=<phase> and SIGKILLs itself the first time it reaches that phase (src/db/open.ts).
 *
 * Phases: the checkpoint sequence (src/txn/Checkpoint.ts), every phase of the log
 * (src/wal/WalPhases.ts: append, group sync, segment roll, gc, recovery repairs) and the snapshot
 * sequence (Database.createSnapshot, src/maintenance/Snapshots.ts). A guard test reads the compiled
 * sources and fails if a phase name appears there that this list does not cover.
 *
 * Workloads that reach each phase: concurrent writers with large values and 64 KiB segments (rolls),
 * checkpointLogBytes 8 KiB (policy checkpoints and the gc after them), retention 0 (gc deletes what no
 * floor needs), and a maintenance loop: createSnapshot + checkpoint for the snapshot phases,
 * gcTxlogSegments + checkpoint otherwise (snapshots would hold the log by their floor). The group-sync
 * phases exist only in relaxed mode (strict syncs with a blocking fdatasync). The recovery phases run
 * at open: a first child writes and is killed at a random moment, then the parent adds a torn record
 * (or a torn newest segment) to its log, and the crashing child dies inside the repair. Every other
 * phase runs twice: on a fresh directory, and "after prep", where the crashing child opens what a
 * killed child left (a log with records to replay, so a checkpoint phase dies in the checkpoint that
 * ends open's replay; existing segments, so the roll phases die in a real roll; existing snapshots).
 *
 * After each death the parent checks (on the real file system):
 *   - the child died by SIGKILL (the phase was reached) and reported no error;
 *   - reopening works; every acknowledged unit is present (a kill keeps the OS page cache, so this
 *     holds for relaxed too: a relaxed commit is written to the log file before it resolves), the
 *     state is a prefix of the enqueued units, exactly the state at the recovered LSN;
 *   - listSnapshots() lists only complete snapshots (CRC matches); each listed snapshot restores to
 *     its own LSN with the state the history had at that LSN, and (snapshot + log) to the head;
 *   - a createSnapshot afterwards works, leaves no incoming/partial directory, and restores.
 */
import { describe, it, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { open } from "../../src/index.js";
import { restore } from "../../src/maintenance/restore.js";
import { WAL_PHASES } from "../../src/wal/WalPhases.js";
import { canon, diffStates, emptyState, readState, type DbState } from "../helpers/dbModel.js";
import { describeError } from "../helpers/crashCheck.js";
import { parseLines, startChild, verifyAfterDeath, type ChildExit } from "../helpers/walChild.js";
import type { ChildConfig } from "../helpers/walKillChild.js";
import { addTornSegment, appendTornRecord, scanSegment, segmentNames } from "../helpers/walFiles.js";
import type { WalHistory } from "../helpers/walHistory.js";
import { oneSeed } from "../helpers/rng.js";
import { copyDir } from "../helpers/copyDir.js";

const CHECKPOINT_PHASES = [
  "checkpoint:before-write",
  "checkpoint:after-write",
  "checkpoint:after-data-sync",
  "checkpoint:before-meta",
  "checkpoint:after-meta",
  "checkpoint:after-meta-sync",
];
const SNAPSHOT_PHASES = [
  "snapshot:after-checkpoint",
  "snapshot:before-copy",
  "snapshot:after-copy",
  "snapshot:before-rotate",
  "snapshot:after-rename-previous",
  "snapshot:after-rotate",
];
const ALL_PHASES = [...CHECKPOINT_PHASES, ...WAL_PHASES, ...SNAPSHOT_PHASES];
const SEED = oneSeed(77);

type Variant = "fresh" | "after-prep" | "torn-tail" | "torn-segment";

function variantsOf(phase: string): Variant[] {
  if (phase.startsWith("wal-recovery:")) return phase.includes("torn-segment") ? ["torn-segment"] : ["torn-tail"];
  // "fresh" reaches some phases inside the first open (the first segment is created through the
  // roll phases, the default database through an append); "after-prep" reaches them in the
  // workload of a database with history (and existing snapshots), and the checkpoint phases in the
  // checkpoint that ends open's replay.
  return ["fresh", "after-prep"];
}

function childConfig(dir: string, phase: string, seed: number, label: string): ChildConfig {
  const snapshots = phase.startsWith("snapshot:");
  const relaxed = phase.startsWith("wal-sync:");
  return {
    dir,
    seed,
    label,
    options: {
      durability: relaxed ? "relaxed" : "strict",
      ...(relaxed ? { groupCommit: 2, groupCommitMs: 2 } : {}),
      walSegmentMaxBytes: 64 * 1024,
      checkpointLogBytes: 8 * 1024,
      walRetentionBytes: 0,
    },
    writers: { putLoops: 3, txnLoops: 1, unitsPerWriter: 150, keySpace: 30, bigValues: 0.3, yieldRate: 0.2 },
    maintenance: { rounds: 12, gap: 4, actions: snapshots ? ["snapshot", "checkpoint"] : ["gc", "checkpoint"] },
    exitWhenDone: true,
  };
}

async function exitWithin(run: ReturnType<typeof startChild>, ms: number, what: string): Promise<ChildExit> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, rej) => {
    timer = setTimeout(() => {
      run.kill();
      rej(new Error(`${what}: the child did not exit within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([run.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function leftovers(dir: string): string[] {
  const root = join(dir, "snapshots");
  if (!existsSync(root)) return [];
  return readdirSync(root).filter((n) => n !== "current" && n !== "previous");
}

async function restoreOrFail(ctx: string, what: string, snapshotDir: string, target: string, toLsn?: number): Promise<void> {
  try {
    await restore(snapshotDir, target, toLsn === undefined ? {} : { toLsn });
  } catch (e) {
    assert.fail(`${ctx}: restoring ${what}${toLsn === undefined ? " to the head" : ` to LSN ${toLsn}`} failed (a listed snapshot must restore with the log after it): ${describeError(e)}`);
  }
}

async function openState(dir: string): Promise<DbState> {
  const db = await open(dir);
  try {
    return readState(db);
  } finally {
    await db.close();
  }
}

async function runScenario(phase: string, variant: Variant, seed: number): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), "keel-wal-phase-"));
  const dir = join(work, "db");
  const ctx = `phase ${phase} (${variant}, KEEL_SEED=${SEED})`;
  try {
    const hists: WalHistory[] = [];
    let base: DbState = emptyState();
    let lsn = 0;
    if (variant !== "fresh") {
      // A first child writes for a while and is killed at a random moment.
      const prep = startChild({ ...childConfig(dir, phase, seed + 1, "prep"), exitWhenDone: false });
      await prep.ready;
      await prep.untilAcked(15 + (seed % 5) * 10);
      await new Promise((r) => setTimeout(r, (seed % 7) * 15));
      prep.kill();
      const pexit = await prep.exited;
      assert.equal(pexit.signal, "SIGKILL", `${ctx}: the prep child was not killed (code ${pexit.code}): ${pexit.stderr.slice(0, 1500)}`);
      const pp = parseLines(pexit.lines, base, lsn);
      assert.deepEqual(pp.errors, [], `${ctx}: the prep child reported errors`);
      assert.ok(pp.hist.acked > 0, `${ctx}: the prep child acknowledged nothing before it was killed`);
      hists.push(pp.hist);
      // Verify on a copy, so that the crashing child finds the log exactly as the kill left it
      // (with records to replay); recovery is deterministic, so the copy's result is its result.
      const copy = join(work, "copy");
      copyDir(dir, copy);
      const v = await verifyAfterDeath(copy, pp.hist, { requireAcked: true, context: `${ctx} (prep)` });
      rmSync(copy, { recursive: true, force: true });
      base = v.state;
      lsn = v.lsn;
    }
    let torn: { segment: string; offset: number } | undefined;
    let tornSegment: string | undefined;
    if (variant === "torn-tail") torn = appendTornRecord(dir, 0.6);
    if (variant === "torn-segment") tornSegment = addTornSegment(dir);

    const run = startChild(childConfig(dir, phase, seed, "crash"), { KEEL_CRASH_AT: phase });
    const exit = await exitWithin(run, 60_000, ctx);
    const finished = exit.lines.includes("D");
    assert.equal(
      exit.signal,
      "SIGKILL",
      `${ctx}: the child was not killed at the phase (exit code ${exit.code}${finished ? ", its workload finished without reaching the phase" : ""}); stderr: ${exit.stderr.slice(0, 2000)}`,
    );
    const parsed = parseLines(exit.lines, base, lsn);
    assert.deepEqual(parsed.errors, [], `${ctx}: the child reported errors`);
    if (parsed.readyLsn !== undefined && variant !== "fresh") {
      assert.equal(parsed.readyLsn, lsn, `${ctx}: the child's open recovered up to LSN ${parsed.readyLsn}, a copy of the same files recovered up to ${lsn}`);
    }
    if (phase.startsWith("wal-recovery:") || (variant === "after-prep" && phase.startsWith("checkpoint:"))) {
      // These die inside open (the repair, or the checkpoint that ends a replay).
      if (phase.startsWith("wal-recovery:")) assert.equal(parsed.readyLsn, undefined, `${ctx}: the child should have died inside open`);
    }
    hists.push(parsed.hist);

    const v = await verifyAfterDeath(dir, parsed.hist, { requireAcked: true, context: ctx });
    if (torn) {
      assert.equal(v.lsn, lsn, `${ctx}: the torn record must not be replayed`);
      const scan = scanSegment(dir, torn.segment);
      const b = readFileSync(scan.path);
      assert.ok(b.subarray(torn.offset).every((x) => x === 0), `${ctx}: the torn tail at ${torn.segment}:${torn.offset} is still in the file after recovery`);
    }
    if (tornSegment) {
      // Removed (or, when it was the empty active segment, created again whole under its name).
      if (segmentNames(dir).includes(tornSegment)) {
        const b = readFileSync(join(dir, "wal", tornSegment));
        assert.ok(b.length >= 64 && b.subarray(0, 4).toString("latin1") === "KLWS", `${ctx}: the torn newest segment ${tornSegment} is still there after recovery`);
      }
      assert.equal(v.lsn, lsn, `${ctx}: removing a torn segment must not change the LSN`);
    }

    // Snapshots: what is listed is complete and restores; nothing else is listed.
    const stateAt = (at: number): DbState | undefined => {
      for (const h of hists) {
        if (at === h.baseLsn) return h.base;
        const s = h.stateAtLsn(at, ctx);
        if (s) return s;
      }
      return undefined;
    };
    if (phase === "snapshot:after-rename-previous") {
      assert.deepEqual(
        v.snapshots.map((s) => s.name),
        ["previous"],
        `${ctx}: between the two renames only the previous snapshot is complete and listed`,
      );
    }
    if (phase === "snapshot:after-rotate") assert.equal(v.snapshots[0]?.name, "current", `${ctx}: the rotated snapshot is listed`);
    let n = 0;
    for (const s of v.snapshots) {
      const target = join(work, `restore-${n++}`);
      await restoreOrFail(ctx, `listed snapshot ${s.name} (LSN ${s.lsn})`, s.path, target, s.lsn);
      const want = stateAt(s.lsn);
      const got = await openState(target);
      if (want) assert.equal(canon(got), canon(want), `${ctx}: snapshot ${s.name} restored to its LSN ${s.lsn} differs from the history:\n  ${diffStates(got, want).join("\n  ")}`);
      const head = join(work, `restore-${n++}`);
      await restoreOrFail(ctx, `listed snapshot ${s.name} (LSN ${s.lsn})`, s.path, head);
      const gotHead = await openState(head);
      assert.equal(canon(gotHead), canon(v.state), `${ctx}: snapshot ${s.name} + log restored to the head differs from the database:\n  ${diffStates(gotHead, v.state).join("\n  ")}`);
    }

    // The database goes on: a new snapshot clears leftovers and restores to the same state.
    const db = await open(dir);
    let snapPath: string;
    try {
      const info = await db.createSnapshot();
      snapPath = info.path;
      assert.equal(info.lsn, v.lsn, `${ctx}: a snapshot of the recovered database is at its LSN`);
      assert.deepEqual(leftovers(dir), [], `${ctx}: createSnapshot left or kept partial snapshot directories`);
      assert.equal(db.listSnapshots()[0]?.name, "current");
    } finally {
      await db.close();
    }
    console.log(
      `${phase} (${variant}): ${parsed.readyLsn === undefined ? "died inside open" : `died after ${parsed.hist.acked} acknowledged units`}, recovered LSN ${v.lsn}, ${v.snapshots.length} snapshot(s) listed`,
    );
    const final = join(work, "restore-final");
    await restoreOrFail(ctx, "the snapshot made after recovery", snapPath, final);
    assert.equal(canon(await openState(final)), canon(v.state), `${ctx}: the new snapshot does not restore the recovered state`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

test("every phase name in the compiled sources is covered by this suite", () => {
  const src = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "src");
  const found = new Set<string>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith(".js")) {
        for (const m of readFileSync(p, "utf8").matchAll(/["'`]((?:checkpoint|snapshot|wal-[a-z-]+):[a-z-]+)["'`]/g)) found.add(m[1]!);
      }
    }
  };
  walk(src);
  const missing = [...found].filter((p) => !ALL_PHASES.includes(p));
  assert.deepEqual(missing, [], "phase names used in src/ that wal-phases.test does not crash at");
  assert.ok(found.size >= ALL_PHASES.length - 2, `expected to find the phase names in ${src}`);
});

describe("kill -9 at each named phase (KEEL_CRASH_AT)", { concurrency: 2 }, () => {
  let i = 0;
  for (const phase of ALL_PHASES) {
    for (const variant of variantsOf(phase)) {
      const seed = SEED * 100 + i++;
      it(`${phase} (${variant})`, async () => {
        await runScenario(phase, variant, seed);
      });
    }
  }
});
