/**
 * args: strict parsing of command arguments, with Redis's rules and error replies: integers as
 * string2ll (no sign '+', no leading zeros, no blanks, within int64), floats as string2ld (strtold's
 * decimal, hex and inf forms; no blanks, no NaN, no overflow).
 */
import { NOT_FLOAT, NOT_INTEGER, RespError } from "../resp/RespError.js";
import { LD_MAX_CHARS, string2ld, type LongDouble } from "./longDouble.js";

const INT_RE = /^(0|-?[1-9][0-9]*)$/;
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

/**
 * A float argument (or stored value) read as Redis reads it, with string2ld: a long double, or
 * ±Infinity for "inf". `message` (Redis's wording for where the text came from) when it is not one.
 */
export function ldArg(b: Buffer, message = NOT_FLOAT): LongDouble | number {
  const x = b.length >= LD_MAX_CHARS ? null : string2ld(b.toString("latin1"));
  if (x === null) throw new RespError(message);
  return x;
}

export function upper(b: Buffer | undefined): string {
  return b === undefined ? "" : b.toString("latin1").toUpperCase();
}
