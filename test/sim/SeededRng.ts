/** Seeded PRNG (mulberry32) so that every randomized test prints a seed that replays it. */
export class Rng {
  #s: number;
  readonly seed: number;
  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.#s = this.seed || 0x9e3779b9;
  }
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

/** Seeds for a randomized test: KEEL_SEED replays one; otherwise `count` seeds from `base`. */
export function seeds(count: number, base = 1): number[] {
  const one = process.env.KEEL_SEED;
  if (one) return [Number(one)];
  return Array.from({ length: count }, (_, i) => base + i);
}
