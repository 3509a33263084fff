/**
 * RunningCheckpoint: one checkpoint frozen at `head` (Engine.beginCheckpoint) and the stepping of
 * its steps (Checkpoint.ts checkpointSteps), in one call or between commits.
 *
 * Invariants:
 * - Settled once: adopted or failed by its engine, by whichever driver reaches the end first (the
 *   concurrent `drive` or a synchronous `finish` that takes it over at its last pause).
 * - `last` is the pause the steps reached; a driver resuming at "data-sync" syncs first, so a
 *   takeover never skips the data sync. Nothing shared changes before the last step, so a run
 *   dropped at a pause (its pacer threw) changes nothing.
 */
import type { Pager } from "../pager/Pager.js";
import type { Meta } from "../pager/Meta.js";
import { finishSteps, type CheckpointPause, type CheckpointResult } from "./Checkpoint.js";
import type { Snapshot } from "./Snapshot.js";

export interface CheckpointInfo {
  txn: number;
  lsn: number;
  bytes: number;
  ms: number;
}

/** How a concurrent checkpoint gives the event loop back (maintenance/TimeSlicer fits). */
export interface CheckpointPacer {
  due(): boolean;
  pause(): Promise<void>;
}

/** What a driver needs from the engine that owns the run. */
export interface CheckpointHost {
  readonly pager: Pager;
  readonly noSync: boolean;
  /** Install the finished checkpoint; settles the run. */
  adoptRun(run: RunningCheckpoint, res: CheckpointResult): void;
  /** Record the failure (or the drop); settles the run with its error. */
  failRun(run: RunningCheckpoint, e: unknown): void;
}

export class RunningCheckpoint {
  /** The last pause the steps reached (null: not started). */
  last: IteratorResult<CheckpointPause, CheckpointResult> | null = null;
  settled = false;
  info: CheckpointInfo | null = null;
  /** The meta it wrote (a backup of `head` copies the pages it names). */
  meta: Meta | null = null;
  error: unknown = null;
  constructor(
    readonly head: Snapshot,
    readonly steps: Generator<CheckpointPause, CheckpointResult, void>,
    /** engine.dirtyBytes when it froze: what it makes clean. */
    readonly dirty: number,
    readonly t0: number,
  ) {}

  /** Run the rest in this call (the data sync blocks); a failure is thrown. */
  finish(host: CheckpointHost): void {
    let res: CheckpointResult;
    try {
      res = finishSteps(this.steps, host.pager, this.last);
    } catch (e) {
      host.failRun(this, e);
      throw this.error;
    }
    host.adoptRun(this, res);
  }

  /**
   * Run the rest while commits go on: `pacer.pause()` is awaited whenever `pacer.due()` between
   * steps, and the syncs ("flush", "data-sync") run on the thread pool. Resolves with its report,
   * also when a synchronous `finish` took it over meanwhile; rejects with its error, or with the
   * pacer's (ABORTED, CLOSED), which drops the run.
   */
  async drive(host: CheckpointHost, pacer: CheckpointPacer): Promise<CheckpointInfo> {
    for (;;) {
      if (this.settled) {
        if (this.error !== null) throw this.error;
        return this.info!;
      }
      let failed = false;
      let err: unknown;
      const at = this.last?.value;
      if (at === "data-sync" || (at === "flush" && !host.noSync)) {
        try {
          await host.pager.syncAsync();
        } catch (e) {
          failed = true;
          err = e;
        }
      } else if (this.last && pacer.due()) {
        try {
          await pacer.pause();
        } catch (e) {
          if (!this.settled) host.failRun(this, e);
          throw e;
        }
      }
      if (this.settled) continue;
      let r: IteratorResult<CheckpointPause, CheckpointResult>;
      try {
        r = failed ? this.steps.throw(err) : this.steps.next();
      } catch (e) {
        host.failRun(this, e);
        continue;
      }
      this.last = r;
      if (r.done) host.adoptRun(this, r.value);
    }
  }
}
