/**
 * verifyTypes: the report that verify() returns, the problem collector, progress and the
 * cooperative scheduling shared by verify and salvage.
 *
 * Invariants:
 * - A problem always says where: the file, and the page (data file) or the segment and offset (log)
 *   when there is one. Damage never becomes an exception: it becomes a problem.
 * - The list stays bounded: past MAX_PER_KIND problems of one kind, the rest are counted in one
 *   summary problem of that kind, so a wrecked file cannot make the report unbounded.
 * - The work runs as generators that yield between chunks; the driver (runAsync) gives the event
 *   loop a turn at each yield and honours the AbortSignal there.
 */
import { KeelError } from "../errors.js";

export type VerifySeverity = "error" | "warning";

export interface VerifyProblem {
  severity: VerifySeverity;
  kind: string;
  file: string;
  page?: number;
  segment?: string;
  offset?: number;
  tree?: string;
  message: string;
}

export interface VerifyStats {
  /** Pages below the high-water mark of the meta used (meta pages included). */
  pages: number;
  /** Branch and leaf pages reachable from the catalog (the catalog's own pages included). */
  treePages: number;
  /** Pages of the overflow runs reachable from the trees. */
  overflowPages: number;
  /** Pages the free list names. */
  freePages: number;
  /** Pages of the free-list run itself. */
  freelistPages: number;
  /** Pages below the high-water mark that are neither reachable nor free. */
  leakedPages: number;
  /** Entries of every sub-database (the catalog's are not counted). */
  entries: number;
  /** Sub-databases in the catalog (the default one included). */
  dbs: number;
  /** Valid log records read. */
  logRecords: number;
  /** Log segment files found. */
  logSegments: number;
}

export interface VerifyReport {
  /** True when no problem of severity "error" was found. */
  ok: boolean;
  problems: VerifyProblem[];
  stats: VerifyStats;
}

export interface VerifyProgress {
  pages: number;
  totalPages: number;
}

export function emptyStats(): VerifyStats {
  return { pages: 0, treePages: 0, overflowPages: 0, freePages: 0, freelistPages: 0, leakedPages: 0, entries: 0, dbs: 0, logRecords: 0, logSegments: 0 };
}

export const MAX_PER_KIND = 1000;

export class ProblemList {
  readonly #list: VerifyProblem[] = [];
  readonly #perKind = new Map<string, number>();
  readonly #dropped = new Map<string, { count: number; first: VerifyProblem }>();

  add(p: VerifyProblem): void {
    const clean: VerifyProblem = { severity: p.severity, kind: p.kind, file: p.file, message: p.message };
    if (p.page !== undefined) clean.page = p.page;
    if (p.segment !== undefined) clean.segment = p.segment;
    if (p.offset !== undefined) clean.offset = p.offset;
    if (p.tree !== undefined) clean.tree = p.tree;
    const n = this.#perKind.get(p.kind) ?? 0;
    this.#perKind.set(p.kind, n + 1);
    if (n < MAX_PER_KIND) {
      this.#list.push(clean);
      return;
    }
    const d = this.#dropped.get(p.kind);
    if (d) d.count++;
    else this.#dropped.set(p.kind, { count: 1, first: clean });
  }

  get hasErrors(): boolean {
    return this.#list.some((p) => p.severity === "error");
  }

  count(kind?: string): number {
    if (kind === undefined) return this.#list.length;
    return this.#perKind.get(kind) ?? 0;
  }

  /** The problems, with one summary per kind that passed the cap. */
  finish(): VerifyProblem[] {
    const out = this.#list.slice();
    for (const [kind, d] of this.#dropped) {
      out.push({
        severity: d.first.severity,
        kind,
        file: d.first.file,
        message: `${d.count} more problems of kind "${kind}" are not listed (the first one not listed: ${d.first.message})`,
      });
    }
    return out;
  }
}

/** Longest slice of work between two yields, in ms (checked every 32 units). */
const YIELD_MS = 4;
/** Most units (pages) between two yields. */
const YIELD_UNITS = 2048;

/** Counts work done, reports progress now and then, and says when to yield. */
export class Progress {
  done = 0;
  total = 0;
  #lastReport = 0;
  #sinceYield = 0;
  /** #sinceYield at which the clock is read next. */
  #clockAt = 32;
  #lastYield = performance.now();
  readonly #cb: ((p: VerifyProgress) => void) | undefined;
  readonly #signal: AbortSignal | undefined;

  constructor(cb: ((p: VerifyProgress) => void) | undefined, signal: AbortSignal | undefined) {
    this.#cb = cb;
    this.#signal = signal;
  }

  /** `n` units (pages) done. Throws Aborted (not a KeelError, so tree walks do not swallow it). */
  step(n = 1): void {
    this.done += n;
    this.#sinceYield += n;
    if (this.#signal?.aborted) throw new Aborted();
    if (this.#cb && this.done - this.#lastReport >= 1024) this.report();
  }

  report(): void {
    this.#lastReport = this.done;
    this.#cb?.({ pages: Math.min(this.done, Math.max(this.total, this.done)), totalPages: Math.max(this.total, this.done) });
  }

  /**
   * True once enough work was done since the last yield: YIELD_MS of it (the clock is read once
   * per 32 units), or YIELD_UNITS units. An online verify then holds the event loop a few ms at a time.
   */
  get wantsYield(): boolean {
    const n = this.#sinceYield;
    if (n < this.#clockAt) return false;
    this.#clockAt = n + 32;
    const now = performance.now();
    if (n < YIELD_UNITS && now - this.#lastYield < YIELD_MS) return false;
    this.#sinceYield = 0;
    this.#clockAt = 32;
    this.#lastYield = now;
    return true;
  }
}

/** Thrown inside the work when the signal fired; the drivers turn it into KeelError ABORTED. */
export class Aborted extends Error {
  constructor() {
    super("aborted");
  }
}

export type Work<T> = Generator<void, T, void>;

const tick = () => new Promise<void>((r) => setImmediate(r));

function abortedError(signal: AbortSignal | undefined): KeelError {
  return new KeelError("ABORTED", "the operation was aborted", { reason: String(signal?.reason ?? "") });
}

/**
 * `stillOpen` runs after every turn given away, and throws (CLOSED) when what the work reads was
 * closed meanwhile: reading on through a closed descriptor (or one reused for another file)
 * reported damage that was not there.
 */
export async function runAsync<T>(w: Work<T>, signal: AbortSignal | undefined, stillOpen?: () => void): Promise<T> {
  try {
    if (signal?.aborted) throw new Aborted();
    for (;;) {
      const r = w.next();
      if (r.done) return r.value;
      await tick();
      if (signal?.aborted) {
        w.return(undefined as T);
        throw new Aborted();
      }
      try {
        stillOpen?.();
      } catch (e) {
        w.return(undefined as T);
        throw e;
      }
    }
  } catch (e) {
    if (e instanceof Aborted) throw abortedError(signal);
    throw e;
  }
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * The problem kind for an error that stopped a check: `ioKind` (io, wal-io, snapshot-io) when the
 * files could not be read (an OS error, or KeelError IO/FULL), "internal" for anything else.
 */
export function stoppedKind(e: unknown, ioKind: string): string {
  if (e instanceof KeelError) return e.code === "IO" || e.code === "FULL" ? ioKind : "internal";
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return typeof code === "string" && /^E[A-Z]+$/.test(code) ? ioKind : "internal";
}

/** The CORRUPT reason of a KeelError, or its code. */
export function reasonOf(e: unknown): string {
  if (e instanceof KeelError) return e.code === "CORRUPT" ? String(e.details.reason ?? "corrupt") : e.code.toLowerCase();
  return "internal";
}
