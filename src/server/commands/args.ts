/**
 * args: strict parsing of command arguments, with Redis's rules and error replies: integers as
 * string2ll (no sign '+', no leading zeros, no blanks, within int64), floats without blanks, hex or
 * NaN.
 */
import { NOT_FLOAT, NOT_INTEGER, RespError } from "../resp/RespError.js";
import { addLd, formatLd, ldIsHuge, parseLd } from "./longDouble.js";

const INT_RE = /^(0|-?[1-9][0-9]*)$/;
const FLOAT_RE = /^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/;
export const INT64_MAX = 9223372036854775807n;
export const INT64_MIN = -9223372036854775808n;

/** An int64, or null if `b` is not one. */
export function toInt64(b: Buffer): bigint | null {
  if (b.length === 0 || b.length > 20) return null;
  const s = b.toString("latin1");
  if (!INT_RE.test(s)) return null;
  const n = BigInt(s);
  return n > INT64_MAX || n < INT64_MIN ? null : n;
}

export function int64Arg(b: Buffer, message = NOT_INTEGER): bigint {
  const n = toInt64(b);
  if (n === null) throw new RespError(message);
  return n;
}

/** An int64 argument as a number (exact only within 2^53, which is what callers need). */
export function intArg(b: Buffer, message = NOT_INTEGER): number {
  return Number(int64Arg(b, message));
}

export function toFloat(b: Buffer): number | null {
  if (b.length === 0 || b.length > 5000) return null;
  const s = b.toString("latin1");
  if (!FLOAT_RE.test(s)) {
    const l = s.toLowerCase();
    if (l === "inf" || l === "+inf" || l === "infinity" || l === "+infinity") return Infinity;
    if (l === "-inf" || l === "-infinity") return -Infinity;
    return null;
  }
  return Number(s);
}

export function floatArg(b: Buffer, message = NOT_FLOAT): number {
  const n = toFloat(b);
  if (n === null || Number.isNaN(n)) throw new RespError(message);
  return n;
}

/**
 * a + b as INCRBYFLOAT answers it: long double arithmetic and printing, emulated exactly (see
 * longDouble.ts). Inputs that are not plain decimals (inf) fall back to doubles. null: the result
 * is not finite.
 */
export function addFloats(a: string, b: string): string | null {
  const x = parseLd(a);
  const y = parseLd(b);
  if (x === null || y === null) {
    const r = Number(a) + Number(b);
    return Number.isFinite(r) ? formatFloat(r) : null;
  }
  const sum = addLd(x, y);
  return ldIsHuge(sum) ? null : formatLd(sum);
}

/** A double as Redis prints INCRBYFLOAT results: plain decimal, no exponent, no trailing zeros. */
export function formatFloat(n: number): string {
  if (Number.isInteger(n)) return BigInt(n).toString();
  const s = String(n);
  if (!s.includes("e")) return s;
  return n.toFixed(17).replace(/0+$/, "").replace(/\.$/, "");
}

export function upper(b: Buffer | undefined): string {
  return b === undefined ? "" : b.toString("latin1").toUpperCase();
}
