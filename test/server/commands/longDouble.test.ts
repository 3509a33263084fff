/**
 * INCRBYFLOAT's arithmetic: the long double emulation gives the digits real redis-server 7.0 gave
 * for these sums (recorded from it; the differential fuzz compares live), and the argument rules.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { addFloats, toFloat } from "../../../src/server/commands/args.js";
import { formatLd, parseLd } from "../../../src/server/commands/longDouble.js";

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
  ];
  for (const [a, b, want] of cases) assert.equal(addFloats(a, b), want, `${a} + ${b}`);
});

test("parsing rounds to a 64-bit mantissa; printing keeps 17 decimals", () => {
  assert.equal(formatLd(parseLd("0.1")!), "0.1");
  assert.equal(formatLd(parseLd("18446744073709551617")!), "18446744073709551616", "2^64 + 1 needs 65 bits");
  assert.equal(formatLd(parseLd("1e-18")!), "0", "below the 17th decimal");
  assert.equal(parseLd("abc"), null);
  assert.equal(parseLd("."), null);
  assert.equal(parseLd("0x10"), null);
});

test("infinite results are refused; blanks and hex are not floats", () => {
  assert.equal(addFloats("inf", "1"), null);
  assert.equal(toFloat(Buffer.from(" 1")), null);
  assert.equal(toFloat(Buffer.from("0x10")), null);
  assert.equal(toFloat(Buffer.from("1e5")), 100000);
});
