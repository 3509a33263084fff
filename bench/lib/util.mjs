// Shared helpers for the benchmark runner, the child process and the workloads.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const now = () => performance.now();

/** Thrown by an engine adapter when the engine does not support the configuration asked for. */
export class EngineUnavailable extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = "EngineUnavailable";
  }
}

/**
 * Hands out fresh random buffers of a fixed size, never reusing or mutating one that was handed out
 * (an engine may keep a reference to a key or value until its commit completes).
 */
export class RandomPool {
  #size;
  #count;
  #buf = Buffer.alloc(0);
  #pos = 0;
  constructor(size, countPerChunk = 65536) {
    this.#size = size;
    this.#count = countPerChunk;
  }
  next() {
    if (this.#pos + this.#size > this.#buf.length) {
      this.#buf = crypto.randomFillSync(Buffer.allocUnsafeSlow(this.#size * this.#count));
      this.#pos = 0;
    }
    const b = this.#buf.subarray(this.#pos, this.#pos + this.#size);
    this.#pos += this.#size;
    return b;
  }
}

/** n random keys and values, stored in two flat buffers; key(i) and value(i) return views. */
export class Dataset {
  constructor(count, keySize = 16, valueSize = 100) {
    this.count = count;
    this.keySize = keySize;
    this.valueSize = valueSize;
    this.keys = crypto.randomFillSync(Buffer.allocUnsafeSlow(count * keySize));
    this.values = Buffer.allocUnsafeSlow(count * valueSize);
    // randomFillSync is limited to 2^31-1 bytes per call
    const step = 64 << 20;
    for (let off = 0; off < this.values.length; off += step) {
      crypto.randomFillSync(this.values, off, Math.min(step, this.values.length - off));
    }
  }
  key(i) {
    return this.keys.subarray(i * this.keySize, (i + 1) * this.keySize);
  }
  value(i) {
    return this.values.subarray(i * this.valueSize, (i + 1) * this.valueSize);
  }
  get bytes() {
    return this.count * (this.keySize + this.valueSize);
  }
}

/** A small fast PRNG (xorshift32) so that read patterns do not depend on crypto speed. */
export function xorshift32(seed = 0x9e3779b9) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** Total size in bytes of the regular files under dir. */
export function dirSize(dir) {
  let total = 0;
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += dirSize(p);
    else if (e.isFile()) {
      try {
        // allocated blocks, not the apparent size: lmdb and others preallocate sparse files
        const st = fs.statSync(p);
        total += Math.min(st.size, st.blocks * 512);
      } catch {}
    }
  }
  return total;
}

/**
 * Run `writers` concurrent loops, each awaiting op() back to back until `seconds` have passed.
 * Returns the number of completed ops and the elapsed seconds (until the last op in flight completed).
 */
export async function timedLoops(writers, seconds, op) {
  const t0 = now();
  const deadline = t0 + seconds * 1000;
  let ops = 0;
  const loops = [];
  for (let w = 0; w < writers; w++) {
    loops.push(
      (async () => {
        while (now() < deadline) {
          await op(w);
          ops++;
        }
      })(),
    );
  }
  await Promise.all(loops);
  return { ops, seconds: (now() - t0) / 1000 };
}

export function fmtNum(v, digits) {
  if (v === undefined || v === null || Number.isNaN(v)) return "";
  const abs = Math.abs(v);
  const d = digits ?? (abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3);
  return v.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
}

export function fmtBytes(n) {
  if (!n) return "0 B";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Render rows (arrays of strings) as a plain-text table; align: array of "l" | "r". */
export function table(header, rows, align) {
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((r) => String(r[c] ?? "").length)));
  const line = (r) =>
    r
      .map((cell, c) => {
        const s = String(cell ?? "");
        return (align?.[c] ?? "l") === "r" ? s.padStart(widths[c]) : s.padEnd(widths[c]);
      })
      .join("  ")
      .trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

export function errorMessage(e) {
  if (!e) return String(e);
  const code = e.code ? ` [${e.code}]` : "";
  return `${e.name ?? "Error"}${code}: ${e.message ?? e}`;
}

/** Version of an installed package, found from its resolved entry point (works despite "exports"). */
export function packageVersion(name, fromUrl = import.meta.url) {
  let dir = path.dirname(fileURLToPath(fromUrl));
  for (;;) {
    const pj = path.join(dir, "node_modules", name, "package.json");
    if (fs.existsSync(pj)) return JSON.parse(fs.readFileSync(pj, "utf8")).version;
    const up = path.dirname(dir);
    if (up === dir) return "?";
    dir = up;
  }
}
