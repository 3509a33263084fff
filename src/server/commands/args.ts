/**
 * args: strict parsing of command arguments, with Redis's rules and error replies: integers as
 * string2ll (no sign '+', no leading zeros, no blanks, within int64), floats without blanks, hex or
 * NaN.
 */
import { NOT_FLOAT, NOT_INTEGER, RespError } from "../resp/RespError.js";

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

/** A decimal number as an exact fraction m / 10^scale, or null when it is not a plain decimal. */
function parseDecimal(s: string): { m: bigint; scale: number } | null {
  const d = /^([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]{1,4}))?$/.exec(s);
  if (!d) return null;
  const [, sign, int = "", frac = "", exp = "0"] = d;
  if (int === "" && frac === "") return null;
  const e = Number(exp);
  if (Math.abs(e) > 400) return null;
  let m = BigInt(int + frac);
  if (sign === "-") m = -m;
  let scale = frac.length - e;
  if (scale < 0) {
    m *= 10n ** BigInt(-scale);
    scale = 0;
  }
  return { m, scale };
}

/**
 * a + b as INCRBYFLOAT prints it. Redis adds in long double and prints with "%.17Lf" minus trailing
 * zeros; adding the decimal texts exactly and rounding to 17 places gives the same digits for
 * ordinary inputs (a double sum would print 10.1 - 9.5 as 0.5999999999999996). Falls back to double
 * arithmetic for inputs that are not plain decimals (inf). null: the result is not finite.
 */
export function addFloats(a: string, b: string): string | null {
  const x = parseDecimal(a);
  const y = parseDecimal(b);
  if (x === null || y === null) {
    const r = Number(a) + Number(b);
    return Number.isFinite(r) ? formatFloat(r) : null;
  }
  const scale = Math.max(x.scale, y.scale);
  let m = x.m * 10n ** BigInt(scale - x.scale) + y.m * 10n ** BigInt(scale - y.scale);
  let sc = scale;
  if (sc > 17) {
    const div = 10n ** BigInt(sc - 17);
    const q = m / div;
    const rem = m % div;
    const twice = (rem < 0n ? -rem : rem) * 2n;
    m = twice >= div ? q + (m < 0n ? -1n : 1n) : q;
    sc = 17;
  }
  const neg = m < 0n;
  let digits = (neg ? -m : m).toString().padStart(sc + 1, "0");
  let out = sc === 0 ? digits : `${digits.slice(0, digits.length - sc)}.${digits.slice(digits.length - sc)}`;
  if (sc > 0) out = out.replace(/0+$/, "").replace(/\.$/, "");
  digits = out;
  const text = neg && digits !== "0" ? `-${digits}` : digits;
  return Number.isFinite(Number(text)) ? text : null;
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
