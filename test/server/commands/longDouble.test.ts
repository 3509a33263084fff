/**
 * INCRBYFLOAT's arithmetic: the long double emulation gives the digits real redis-server 7.0 gave
 * for these sums (recorded from it; the differential fuzz compares live), and string2ld's rules
 * for which texts are floats (decimal, hex and inf forms; overflow, underflow, NaN and blanks refused).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { formatLd, incrLd, string2ld, type LongDouble } from "../../../src/server/commands/longDouble.js";

function sum(a: string, b: string): string | null {
  const x = string2ld(a);
  const y = string2ld(b);
  assert.notEqual(x, null, a);
  assert.notEqual(y, null, b);
  return incrLd(x!, y!);
}

test("sums print as redis-server printed them", () => {
  const cases: Array<[string, string, string]> = [
    ["0.6", "1000", "1000.59999999999999998"],
    ["10.1", "-9.5", "0.6"],
    ["-9223372036854775807", "-0.25", "-9223372036854775807"],
    ["1.23456789012345678", "0.00000000000000000001", "1.23456789012345678"],
    ["0", "1e20", "100000000000000000000"],
    ["0.1", "0.2", "0.3"],
    ["1.5", "2.5", "4"],
    ["-0.25", "0.25", "0"],
    ["3.0", "0", "3"],
    ["5.0e3", "0", "5000"],
    ["0", "-1.5", "-1.5"],
    // strtold's other forms, as redis-server 7.0.15 answered INCRBYFLOAT on them:
    ["0", "0x1p3", "8"],
    ["0", "0x.8", "0.5"],
    ["0", "-0x1P-2", "-0.25"],
    ["0X10", "1.", "17"],
    ["0x10", ".5", "16.5"],
    ["0x10", "+.5e1", "21"],
    ["0", "0x1.8p1", "3"],
    ["0", "0xffffffffffffffffffp0", "4722366482869645213696"],
    ["0", "0x1p-16445", "0"],
    ["0x10", "5e-324", "16"],
    ["0x10", "1e-400", "16"],
    [
      "0x10",
      "1e308",
      "99999999999999999996685879655845645660560099847415567207797047994921734868838061872100126921888539320446747225054013223152134749593960583597420814430196418767959100019603190778663109604507106667939153395788938914560543563061268364901618630217086589253444881623791300855757318142424510452728255046343928578048",
    ],
  ];
  for (const [a, b, want] of cases) assert.equal(sum(a, b), want, `${a} + ${b}`);
});

test("parsing rounds to a 64-bit mantissa, and to denormals at the bottom; printing keeps 17 decimals", () => {
  const ld = (s: string) => string2ld(s) as LongDouble;
  assert.equal(formatLd(ld("0.1")), "0.1");
  assert.equal(formatLd(ld("18446744073709551617")), "18446744073709551616", "2^64 + 1 needs 65 bits");
  assert.equal(formatLd(ld("1e-18")), "0", "below the 17th decimal");
  assert.deepEqual(ld("0x1p-16445"), { m: 1n, e: -16445 }, "the smallest denormal");
  assert.deepEqual(ld("0x3p-16446"), { m: 2n, e: -16445 }, "1.5 x the smallest denormal rounds half to even");
  assert.deepEqual(ld("0x1p-16382"), { m: 1n << 63n, e: -16445 }, "the smallest normal");
  assert.notEqual(string2ld("1e4932"), null);
  assert.notEqual(string2ld("1e-4950"), null);
  assert.deepEqual(string2ld("0e-99999"), { m: 0n, e: 0 }, "zero never underflows");
});

test("texts Redis refuses as floats are refused; inf is a float whose sums are refused", () => {
  for (const s of ["abc", ".", "", " 1", "1 ", "0x", "0x1p", "0x.p1", "1e", "1e+", "nan", "NaN", "nan(1)", "1e4933", "-1e4933", "0x1p16384", "1e-4951", "1e-5000", "0x1p-16446", "1".repeat(5120)]) {
    assert.equal(string2ld(s), null, JSON.stringify(s.slice(0, 20)));
  }
  assert.equal(string2ld("infinity"), Infinity);
  assert.equal(string2ld("-INF"), -Infinity);
  assert.equal(sum("inf", "1"), null);
  assert.equal(sum("1", "-inf"), null);
  assert.equal(sum("1e4932", "1e4932"), null, "overflow of the sum");
});
