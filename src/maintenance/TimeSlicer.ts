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
 * - `check()` raises ABORTED (the signal fired) or CLOSED (the source engine closed): the caller
 *   removes its partial output; nothing is left half-written under the final name (I7).
 */
import { KeelError } from "../errors.js";

export const DEFAULT_SLICE_MS = 3;

export class TimeSlicer {
  readonly budgetMs: number;
  #start = performance.now();
  #signal: AbortSignal | undefined;
  #isClosed: () => boolean;
  #what: string;
  /** Yields so far (for tests and reports). */
  slices = 0;

  constructor(o: { signal?: AbortSignal | undefined; isClosed?: () => boolean; budgetMs?: number | undefined; what?: string }) {
    this.budgetMs = o.budgetMs ?? DEFAULT_SLICE_MS;
    this.#signal = o.signal;
    this.#isClosed = o.isClosed ?? (() => false);
    this.#what = o.what ?? "the job";
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
    await new Promise<void>((r) => setImmediate(r));
    this.slices++;
    this.check();
    this.#start = performance.now();
  }

  /** pause() if the slice is used up. */
  async maybePause(): Promise<void> {
    if (this.due()) await this.pause();
  }
}
