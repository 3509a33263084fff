/**
 * configValues: the checkers for single configuration values (integers, sizes, enums, strings).
 *
 * Invariant: a checker either returns a value of the promised type and range or throws a KeelError
 * INVALID_ARGUMENT whose details name the key (`details.key`) and carry the rejected value; no
 * checker reads the message of another error.
 */
import { KeelError } from "../../errors.js";

export interface KeyRef {
  /** The key as the user wrote it: `port`, `engine.cache_size`, `save_rules[1].seconds`, `--port`. */
  readonly key: string;
  /** The file it came from, when it came from one. */
  readonly file: string | null;
}

export function badValue(ref: KeyRef, value: unknown, expected: string): KeelError {
  const where = ref.file ? `${ref.file}: ` : "";
  return new KeelError("INVALID_ARGUMENT", `${where}${ref.key}: ${expected} (got ${show(value)})`, {
    key: ref.key,
    file: ref.file,
    value: typeof value === "bigint" ? value.toString() : value,
    expected,
  });
}

function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "bigint") return v.toString();
  if (v === null || v === undefined) return String(v);
  if (typeof v === "object") return Array.isArray(v) ? "an array" : v instanceof Date ? "a date" : "a table";
  return String(v);
}

/** An integer in [min, max]. A string of digits is accepted too (command-line flags). */
export function intValue(ref: KeyRef, v: unknown, min: number, max: number): number {
  let n: number | undefined;
  if (typeof v === "number" && Number.isInteger(v)) n = v;
  else if (typeof v === "bigint") n = Number(v);
  else if (typeof v === "string" && /^-?\d+$/.test(v.trim())) n = Number(v.trim());
  if (n === undefined || !Number.isSafeInteger(n) || n < min || n > max) throw badValue(ref, v, `must be an integer from ${min} to ${max}`);
  return n;
}

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1000,
  kb: 1024,
  m: 1000 ** 2,
  mb: 1024 ** 2,
  g: 1000 ** 3,
  gb: 1024 ** 3,
};

/**
 * A byte size: an integer, or a string with a unit as Redis reads them ("64mb" = 64 * 1024^2,
 * "64m" = 64 * 10^6; k/kb, m/mb, g/gb, case-insensitive).
 */
export function sizeValue(ref: KeyRef, v: unknown, min: number, max: number): number {
  const expected = `must be a size in bytes from ${min} to ${max} (an integer, or a string such as "64mb")`;
  if (typeof v === "string") {
    const m = /^\s*(\d+)\s*([a-z]*)\s*$/i.exec(v);
    const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
    if (!m || unit === undefined) throw badValue(ref, v, expected);
    const n = Number(m[1]) * unit;
    if (!Number.isSafeInteger(n) || n < min || n > max) throw badValue(ref, v, expected);
    return n;
  }
  if ((typeof v === "number" && Number.isInteger(v)) || typeof v === "bigint") {
    const n = Number(v);
    if (Number.isSafeInteger(n) && n >= min && n <= max) return n;
  }
  throw badValue(ref, v, expected);
}

export function enumValue<T extends string>(ref: KeyRef, v: unknown, choices: readonly T[]): T {
  if (typeof v === "string" && (choices as readonly string[]).includes(v)) return v as T;
  throw badValue(ref, v, `must be one of ${choices.map((c) => JSON.stringify(c)).join(", ")}`);
}

export function stringValue(ref: KeyRef, v: unknown, opts: { nonEmpty?: boolean } = {}): string {
  if (typeof v !== "string" || (opts.nonEmpty && v.trim() === "") || v.includes("\0")) {
    throw badValue(ref, v, opts.nonEmpty ? "must be a non-empty string" : "must be a string");
  }
  return v;
}

/** A host to bind: an IPv4/IPv6 address or a host name. */
export function hostValue(ref: KeyRef, v: unknown): string {
  const s = stringValue(ref, v, { nonEmpty: true });
  if (!/^[A-Za-z0-9.:_%-]+$/.test(s)) throw badValue(ref, v, "must be an IP address or a host name");
  return s;
}
