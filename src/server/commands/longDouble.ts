/**
 * longDouble: INCRBYFLOAT arithmetic as Redis does it on x86-64, emulated exactly with BigInt.
 *
 * Redis parses both operands with strtold into an x87 80-bit long double (a 64-bit mantissa), adds
 * them in long double, and prints the sum with "%.17Lf" minus trailing zeros. A JavaScript double
 * (53-bit mantissa) gives other digits (10.1 - 9.5 = 0.5999999999999996), and exact decimal
 * arithmetic gives other digits too (Redis answers 1000.59999999999999998 for 0.6 + 1000). So:
 *
 *   value    = m × 2^e, m a BigInt with 2^63 <= |m| < 2^64, or a denormal (e = -16445, |m| < 2^63),
 *              or 0: an x87 long double. Past 2^16384 it is infinite (ldIsHuge);
 *   toLd     = round-half-even of an exact rational to that form (what strtold does);
 *   string2ld = the texts Redis's string2ld accepts: strtold's decimal, hex ("0x1p3") and "inf"
 *              forms, no leading blank, nothing left over, at most 5119 chars; NaN, an overflow
 *              and an underflow to zero refused;
 *   addLd    = the exact sum, rounded again (what the x87 FPU does in round-to-nearest);
 *   format   = the exact decimal value rounded half-even to 17 places (what glibc's printf does).
 */

export interface LongDouble {
  readonly m: bigint;
  readonly e: number;
}

export const ZERO: LongDouble = { m: 0n, e: 0 };
const TWO63 = 1n << 63n;
/** The exponent of a long double's last mantissa bit is at least this (the smallest denormal is 2^-16445). */
const MIN_E = -16445;
/** string2ld's buffer: a text this long or longer is refused. */
export const LD_MAX_CHARS = 5 * 1024;
const TWO64 = 1n << 64n;

function bitLength(n: bigint): number {
  return n === 0n ? 0 : n.toString(2).length;
}

/** round(num / den), ties to even; num >= 0, den > 0. */
function divRoundEven(num: bigint, den: bigint): bigint {
  const q = num / den;
  const twice = 2n * (num - q * den);
  return twice > den || (twice === den && (q & 1n) === 1n) ? q + 1n : q;
}

/** The long double nearest to num / den (den > 0). */
export function toLd(num: bigint, den: bigint): LongDouble {
  if (num === 0n) return { m: 0n, e: 0 };
  const neg = num < 0n;
  const n = neg ? -num : num;
  const at = (e: number) => (e >= 0 ? divRoundEven(n, den << BigInt(e)) : divRoundEven(n << BigInt(-e), den));
  let e = bitLength(n) - bitLength(den) - 64;
  let m = at(e);
  while (m >= TWO64) m = at(++e);
  while (m < TWO63) m = at(--e);
  if (e < MIN_E) {
    // Below the normal range the last bit stays at 2^-16445: fewer mantissa bits, or 0.
    e = MIN_E;
    m = at(e);
    if (m === 0n) return ZERO;
  }
  return { m: neg ? -m : m, e };
}

const DECIMAL = /^([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?$/;
const HEX = /^([+-]?)0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?(?:[pP]([+-]?[0-9]+))?$/;
const INFINITE = /^([+-]?)inf(?:inity)?$/i;

/**
 * A text as Redis's string2ld reads it: a long double, ±Infinity for "inf"/"infinity", or null
 * when Redis refuses it ("value is not a valid float"). Overflow and underflow are decided on
 * the exponent first, so "1e999999999" costs nothing.
 */
export function string2ld(s: string): LongDouble | number | null {
  if (s.length === 0 || s.length >= LD_MAX_CHARS) return null;
  const inf = INFINITE.exec(s);
  if (inf) return inf[1] === "-" ? -Infinity : Infinity;
  const hex = HEX.exec(s);
  const d = hex ?? DECIMAL.exec(s);
  if (!d) return null;
  const [, sign = "", int = "", frac = "", exp = "0"] = d;
  if (int === "" && frac === "") return null;
  const digits = BigInt(hex ? `0x${int}${frac}` : `${int}${frac}`);
  if (digits === 0n) return ZERO;
  const num = sign === "-" ? -digits : digits;
  let x: LongDouble;
  if (hex) {
    const e2 = Number(exp) - 4 * frac.length;
    const top = bitLength(digits) + e2; // 2^(top-1) <= value < 2^top
    if (top > 16384 || top < MIN_E) return null;
    x = e2 >= 0 ? toLd(num << BigInt(e2), 1n) : toLd(num, 1n << BigInt(-e2));
  } else {
    const e10 = Number(exp) - frac.length;
    const top = digits.toString().length + e10; // 10^(top-1) <= value < 10^top
    if (top > 4934 || top < -4952) return null; // beyond 1.19e4932, or below half the smallest denormal (3.6e-4951)
    x = e10 >= 0 ? toLd(num * 10n ** BigInt(e10), 1n) : toLd(num, 10n ** BigInt(-e10));
  }
  return x.m === 0n || ldIsHuge(x) ? null : x;
}

export function addLd(a: LongDouble, b: LongDouble): LongDouble {
  const e = Math.min(a.e, b.e);
  const sum = (a.m << BigInt(a.e - e)) + (b.m << BigInt(b.e - e));
  return e >= 0 ? toLd(sum << BigInt(e), 1n) : toLd(sum, 1n << BigInt(-e));
}

/** "%.17Lf" with trailing zeros (and a trailing '.') removed; "-0" becomes "0". */
export function formatLd(x: LongDouble): string {
  const neg = x.m < 0n;
  const m = neg ? -x.m : x.m;
  let text: string;
  if (x.e >= 0) text = (m << BigInt(x.e)).toString();
  else {
    const scaled = divRoundEven(m * 10n ** 17n, 1n << BigInt(-x.e)).toString().padStart(18, "0");
    text = `${scaled.slice(0, -17)}.${scaled.slice(-17)}`.replace(/0+$/, "").replace(/\.$/, "");
  }
  return neg && text !== "0" ? `-${text}` : text;
}

/** Whether the value is past the largest long double (about 1.19e4932): the x87 result is infinite. */
export function ldIsHuge(x: LongDouble): boolean {
  return bitLength(x.m < 0n ? -x.m : x.m) + x.e > 16384;
}

/**
 * INCRBYFLOAT's sum as Redis prints it, or null when it is not finite (an infinite operand, or an
 * overflow): Redis then answers "increment would produce NaN or Infinity".
 */
export function incrLd(a: LongDouble | number, b: LongDouble | number): string | null {
  if (typeof a === "number" || typeof b === "number") return null;
  const sum = addLd(a, b);
  return ldIsHuge(sum) ? null : formatLd(sum);
}
