/**
 * TimeSlicer: cuts a long maintenance job (backup, compaction) into slices of bounded CPU time on
 * the event loop, so that writers and readers of the same process go on while it runs.
 *
 * Invariants:
 * - The job calls `due()` between units of work (a chunk of pages, one leaf, one log record); once
 *   `budgetMs` of work has run since the last yield, `due()` is true and the job awaits `pause()`,
 *   which yields one turn of the event loop (setImmediate: queued I/O callbacks and timers run
 *   first), then checks the abort signal and whether the source closed. No slice runs longer than
 *   the budget plus one unit of work.
 * - Writers first: when `activity()` (the source's head txn) moved since the last slice, writers are
 *   committing, and the job steps back: it sleeps long enough that its slices take at most `share`
 *   of the event loop's time (default 0.1). Without writers it runs at full speed (one turn of
 *   the event loop between slices).
 * - `check()` raises ABORTED (the signal fired) or CLOSED (the source engine closed): the caller
 *   removes its partial output; nothing is left half-written under the final name (I7).
 */
import { KeelError } from "../errors.js";

export const DEFAULT_SLICE_MS = 2;
/** Share of the event loop a job takes while writers are committing. */
export const DEFAULT_SHARE = 0.1;

export class TimeSlicer {
  readonly budgetMs: number;
  #start = performance.now();
  #signal: AbortSignal | undefined;
  #isClosed: () => boolean;
  #what: string;
  #activity: (() => number) | undefined;
  #lastActivity: number;
  #share: number;
  /** Yields so far, and how many of them stepped back for writers (for tests and reports). */
  slices = 0;
  backoffs = 0;
  /** The sleeps of those backoffs, in ms, as asked of the timer. */
  sleptMs = 0;
  /** Whether the last pause stepped back for writers. */
  writersActive = false;

  constructor(o: {
    signal?: AbortSignal | undefined;
    isClosed?: () => boolean;
    budgetMs?: number | undefined;
    what?: string;
    /** A number that changes when writers commit (the source's head txn). */
    activity?: (() => number) | undefined;
    share?: number | undefined;
  }) {
    this.budgetMs = o.budgetMs ?? DEFAULT_SLICE_MS;
    this.#signal = o.signal;
    this.#isClosed = o.isClosed ?? (() => false);
    this.#what = o.what ?? "the job";
    this.#activity = o.activity;
    this.#lastActivity = o.activity?.() ?? 0;
    this.#share = Math.min(1, Math.max(0.01, o.share ?? DEFAULT_SHARE));
  }

  /** True once this slice has used its budget. */
  due(): boolean {
    return performance.now() - this.#start >= this.budgetMs;
  }

  /** ABORTED or CLOSED when the job must stop. */
  check(): void {
    const s = this.#signal;
    if (s?.aborted) throw new KeelError("ABORTED", `${this.#what} was aborted`, { reason: String(s.reason ?? "") });
    if (this.#isClosed()) throw new KeelError("CLOSED", `the source database was closed during ${this.#what}`, {});
  }

  /** Yield one turn of the event loop, then check. */
  async pause(): Promise<void> {
    const worked = performance.now() - this.#start;
    const a = this.#activity?.();
    const busy = a !== undefined && a !== this.#lastActivity;
    // Commits during a sleep count at the next pause: the job keeps stepping back while they go on.
    if (a !== undefined) this.#lastActivity = a;
    this.writersActive = busy;
    if (busy && this.#share < 1) {
      this.backoffs++;
      const ms = Math.max(1, Math.round((worked * (1 - this.#share)) / this.#share));
      this.sleptMs += ms;
      await new Promise<void>((r) => setTimeout(r, ms));
    } else await new Promise<void>((r) => setImmediate(r));
    this.slices++;
    this.check();
    this.#start = performance.now();
  }

  /** pause() if the slice is used up. */
  async maybePause(): Promise<void> {
    if (this.due()) await this.pause();
  }
}
