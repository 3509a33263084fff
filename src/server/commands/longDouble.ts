/**
 * longDouble: INCRBYFLOAT arithmetic as Redis does it on x86-64, emulated exactly with BigInt.
 *
 * Redis parses both operands with strtold into an x87 80-bit long double (a 64-bit mantissa), adds
 * them in long double, and prints the sum with "%.17Lf" minus trailing zeros. A JavaScript double
 * (53-bit mantissa) gives other digits (10.1 - 9.5 = 0.5999999999999996), and exact decimal
 * arithmetic gives other digits too (Redis answers 1000.59999999999999998 for 0.6 + 1000). So:
 *
 *   value  = m × 2^e, m a BigInt with 2^63 <= |m| < 2^64 (or 0): a long double, without the
 *            exponent-range limits (operands are decimals with |exponent| <= 400, far inside it);
 *   toLd   = round-half-even of an exact rational to that form (what strtold does);
 *   addLd  = the exact sum, rounded again (what the x87 FPU does in round-to-nearest);
 *   format = the exact decimal value rounded half-even to 17 places (what glibc's printf does).
 */

export interface LongDouble {
  readonly m: bigint;
  readonly e: number;
}

const TWO63 = 1n << 63n;
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
  return { m: neg ? -m : m, e };
}

/** A decimal text (as strtold reads it, without hex, inf or nan) as a long double; null if it is not one. */
export function parseLd(s: string): LongDouble | null {
  const d = /^([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]{1,4}))?$/.exec(s);
  if (!d) return null;
  const [, sign = "", int = "", frac = "", exp = "0"] = d;
  if (int === "" && frac === "") return null;
  const e = Number(exp) - frac.length;
  if (Math.abs(e) > 5000) return null;
  let num = BigInt(int + frac);
  if (sign === "-") num = -num;
  return e >= 0 ? toLd(num * 10n ** BigInt(e), 1n) : toLd(num, 10n ** BigInt(-e));
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

/** Whether the long double is beyond the largest double (Redis refuses an infinite sum; long doubles overflow later, past 1.19e4932). */
export function ldIsHuge(x: LongDouble): boolean {
  return bitLength(x.m < 0n ? -x.m : x.m) + x.e > 16384;
}
