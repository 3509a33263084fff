/**
 * progress: cli-progress bars for long work (copy, compact, dump, load, verify, salvage).
 *
 * A bar is drawn only on a terminal (stderr, or stdout when stdout carries no data and no JSON),
 * and only once the work has run for more than a second: quick commands print nothing extra, and
 * scripts (pipes, files, --json to a pipe) never see a bar. The bar is cleared when the work ends.
 */
import cliProgress from "cli-progress";
import type { Output } from "./output.js";

export interface ProgressCount {
  done: number;
  total: number | undefined;
  unit: string;
}

const PAIRS: Array<[string, string, string]> = [
  ["entries", "totalEntries", "entries"],
  ["pages", "totalPages", "pages"],
  ["records", "totalRecords", "records"],
  ["bytes", "totalBytes", "bytes"],
  ["done", "total", ""],
];

/** Read a count out of whatever an onProgress callback passes ({ entries, totalEntries }, { pages, totalPages }, ...). */
export function progressCount(p: unknown): ProgressCount | undefined {
  if (typeof p === "number") return { done: p, total: undefined, unit: "" };
  if (!p || typeof p !== "object") return undefined;
  const o = p as Record<string, unknown>;
  for (const [d, t, unit] of PAIRS) {
    const done = o[d];
    if (typeof done !== "number") continue;
    const total = o[t];
    return { done, total: typeof total === "number" && total > 0 ? total : undefined, unit };
  }
  return undefined;
}

export interface ProgressOptions {
  stream: NodeJS.WritableStream | undefined;
  delayMs?: number;
  now?: () => number;
}

export class Progress {
  readonly label: string;
  readonly #stream: NodeJS.WritableStream | undefined;
  readonly #delayMs: number;
  readonly #now: () => number;
  readonly #start: number;
  #bar: cliProgress.SingleBar | null = null;
  #barTotal: number | undefined;
  #stopped = false;

  constructor(label: string, o: ProgressOptions) {
    this.label = label;
    this.#stream = o.stream;
    this.#delayMs = o.delayMs ?? 1000;
    this.#now = o.now ?? Date.now;
    this.#start = this.#now();
  }

  /** Whether a bar is on screen now. */
  get shown(): boolean {
    return this.#bar !== null;
  }

  /** An onProgress callback. */
  readonly update = (p: unknown): void => {
    if (this.#stopped || !this.#stream) return;
    const c = progressCount(p);
    if (!c) return;
    if (!this.#bar) {
      if (this.#now() - this.#start < this.#delayMs) return;
      this.#bar = this.#create(c);
    }
    if (c.total !== undefined && c.total !== this.#barTotal) {
      this.#barTotal = c.total;
      this.#bar.setTotal(c.total);
    }
    this.#bar.update(c.done);
  };

  #create(c: ProgressCount): cliProgress.SingleBar {
    const unit = c.unit ? ` ${c.unit}` : "";
    const format =
      c.total !== undefined
        ? `${this.label} [{bar}] {percentage}% | {value}/{total}${unit} | {duration_formatted} | ETA {eta_formatted}`
        : `${this.label} {value}${unit} | {duration_formatted}`;
    const bar = new cliProgress.SingleBar(
      { format, stream: this.#stream, clearOnComplete: true, hideCursor: true, etaBuffer: 50, fps: 5, noTTYOutput: false },
      cliProgress.Presets.shades_classic,
    );
    this.#barTotal = c.total;
    bar.start(c.total ?? 0, c.done);
    return bar;
  }

  /** Remove the bar (if one was drawn). Safe to call more than once. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#bar?.stop();
    this.#bar = null;
  }
}

/** A progress reporter for this command's output: a bar only where a person is watching. */
export function progressFor(out: Output, label: string): Progress {
  let stream: NodeJS.WritableStream | undefined;
  if (out.stderr.isTTY) stream = out.stderr;
  else if (out.stdout.isTTY && !out.stdoutIsData && !out.json) stream = out.stdout;
  return new Progress(label, { stream });
}
