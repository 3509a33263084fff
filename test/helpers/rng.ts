/**
 * Seeded PRNG and seed plumbing shared by the crash, fault and fuzz suites.
 *
 * Every randomized test draws all of its choices from one `Rng(seed)`, so a failure is replayed
 * exactly by running the same test file with `KEEL_SEED=<seed>` (the failure message prints the
 * seed and the command line). Seed lists: `KEEL_SEED` (one seed, or a comma-separated list) wins;
 * otherwise `count` seeds from `KEEL_SEED_BASE` (default 1), where count comes from the suite's own
 * environment variable (e.g. KEEL_CRASH_SEEDS) or its default.
 */

/** mulberry32 with the seed mixed first (so seeds 1, 2, 3... start far apart). */
export class Rng {
  #s: number;
  readonly seed: number;

  constructor(seed: number) {
    this.seed = seed;
    let h = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13) ^ (Math.floor(seed / 0x1_0000_0000) >>> 0), 0xc2b2ae35);
    this.#s = (h ^ (h >>> 16)) >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Integer in [lo, hi] (both inclusive). */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  bool(p = 0.5): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("pick from an empty list");
    return items[this.int(items.length)]!;
  }

  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    let i = 0;
    for (; i + 4 <= n; i += 4) b.writeUInt32LE(Math.floor(this.next() * 0x1_0000_0000), i);
    for (; i < n; i++) b[i] = this.int(256);
    return b;
  }

  /** A printable ASCII string of length n (random content, so torn writes change bytes). */
  text(n: number): string {
    let s = "";
    for (let i = 0; i < n; i++) s += String.fromCharCode(33 + this.int(94));
    return s;
  }

  /** A new generator derived from this one (independent stream). */
  fork(): Rng {
    return new Rng(this.int(0x7fffffff) * 31 + this.int(31));
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }
}

/** Seeds to run: KEEL_SEED (one or a list) or `count` consecutive seeds from KEEL_SEED_BASE. */
export function seedList(defaultCount: number, countEnv?: string): number[] {
  const one = process.env.KEEL_SEED;
  if (one !== undefined && one.trim() !== "") {
    return one.split(",").map((s) => {
      const n = Number(s.trim());
      if (!Number.isSafeInteger(n)) throw new RangeError(`KEEL_SEED must be integers, got ${s}`);
      return n;
    });
  }
  const raw = countEnv ? process.env[countEnv] : undefined;
  const count = raw !== undefined && raw !== "" ? Number(raw) : defaultCount;
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`${countEnv} must be a positive integer, got ${raw}`);
  const base = Number(process.env.KEEL_SEED_BASE ?? 1);
  return Array.from({ length: count }, (_, i) => base + i);
}

/**
 * The seed of a suite that runs from one seed: KEEL_SEED (the first of a list), else KEEL_SEED_BASE
 * (so that a campaign moving the base moves these suites too), else the suite's default.
 */
export function oneSeed(defaultSeed: number): number {
  if (process.env.KEEL_SEED !== undefined && process.env.KEEL_SEED.trim() !== "") return seedList(1)[0]!;
  const base = process.env.KEEL_SEED_BASE;
  if (base === undefined || base === "") return defaultSeed;
  const n = Number(base);
  if (!Number.isSafeInteger(n)) throw new RangeError(`KEEL_SEED_BASE must be an integer, got ${base}`);
  return n;
}

/** True when one explicit seed is being replayed (suites may print more detail then). */
export const replaying = process.env.KEEL_SEED !== undefined && process.env.KEEL_SEED !== "";

/**
 * Run `fn` for every seed. Failures are collected (up to `maxFailures`, then the run stops) and
 * reported together, each with its seed and the command that replays it.
 */
export async function forEachSeed(
  label: string,
  seeds: readonly number[],
  fn: (seed: number) => Promise<void> | void,
  opts: { file?: string; maxFailures?: number } = {},
): Promise<void> {
  const failures: Array<{ seed: number; error: unknown }> = [];
  const max = opts.maxFailures ?? 3;
  for (const seed of seeds) {
    try {
      await fn(seed);
    } catch (e) {
      failures.push({ seed, error: e });
      if (failures.length >= max) break;
    }
  }
  if (failures.length === 0) return;
  const file = opts.file ? ` node --test ${opts.file}` : "";
  const parts = failures.map(({ seed, error }) => {
    const msg = error instanceof Error ? (error.stack ?? error.message) : String(error);
    return `--- ${label}: seed ${seed} (replay: KEEL_SEED=${seed}${file})\n${msg}`;
  });
  const err = new Error(
    `${label}: ${failures.length} failing seed(s)${failures.length >= max ? " (stopped early)" : ""}: ${failures.map((f) => f.seed).join(", ")}\n${parts.join("\n")}`,
    { cause: failures[0]!.error },
  );
  throw err;
}

/** Attach the seed (and optional context) to an error thrown by `fn`. */
export function withContext<T>(context: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof Error) e.message = `[${context}] ${e.message}`;
    throw e;
  }
}

/** Yield to the event loop `n` times (lets abandoned commit pipelines settle). */
export async function ticks(n = 3): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r));
}
