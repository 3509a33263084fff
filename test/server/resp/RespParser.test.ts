/**
 * RespParser: frames split at every byte position parse as whole frames do; inline commands with
 * quotes; every limit and malformed input is a ProtocolError with Redis's wording; memory held stays
 * bounded while a large bulk arrives in small chunks.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { MAX_LINE, ProtocolError, RespParser, splitArgs, UNAUTH_MAX_BULK, UNAUTH_MAX_MULTIBULK } from "../../../src/server/resp/RespParser.js";

const LIMITS = { maxBulkLen: 1024 * 1024, maxMultibulkLen: 1000 };

function enc(...args: Array<string | Buffer>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === "string" ? Buffer.from(a) : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from("\r\n"));
  }
  return Buffer.concat(parts);
}

function strs(cmds: Buffer[][]): string[][] {
  return cmds.map((c) => c.map((a) => a.toString("latin1")));
}

function parseAll(chunks: Buffer[], limits = LIMITS): string[][] {
  const p = new RespParser(limits);
  const out: Buffer[][] = [];
  for (const c of chunks) p.feed(c, out);
  return strs(out);
}

function errorOf(input: Buffer | string, limits = LIMITS): string {
  const p = new RespParser(limits);
  try {
    p.feed(typeof input === "string" ? Buffer.from(input) : input);
  } catch (e) {
    assert.ok(e instanceof ProtocolError);
    return e.message;
  }
  assert.fail("expected a ProtocolError");
}

const binary = Buffer.from([0, 1, 2, 13, 10, 255, 36, 42]);
const stream = Buffer.concat([
  enc("SET", "key", "value"),
  enc("GET", "key"),
  Buffer.from("PING\r\n"),
  enc("SET", binary, ""),
  Buffer.from('set "a b" \'c\\\'d\' "\\x41\\n"\n'),
  Buffer.from("*0\r\n"),
  enc("ECHO", "x".repeat(200)),
]);
const expected = [
  ["SET", "key", "value"],
  ["GET", "key"],
  ["PING"],
  ["SET", binary.toString("latin1"), ""],
  ["set", "a b", "c'd", "A\n"],
  ["ECHO", "x".repeat(200)],
];

test("a pipelined stream parses into its commands in order", () => {
  assert.deepEqual(parseAll([stream]), expected);
});

test("split at every byte position (two chunks)", () => {
  for (let i = 0; i <= stream.length; i++) {
    assert.deepEqual(parseAll([stream.subarray(0, i), stream.subarray(i)]), expected, `split at ${i}`);
  }
});

test("one byte per chunk", () => {
  const chunks = [...stream].map((b) => Buffer.from([b]));
  assert.deepEqual(parseAll(chunks), expected);
});

test("split at every pair of positions (three chunks)", () => {
  const s = Buffer.concat([enc("SET", "k", binary), Buffer.from("PING\r\n"), enc("GET", "k")]);
  const want = [["SET", "k", binary.toString("latin1")], ["PING"], ["GET", "k"]];
  for (let i = 0; i <= s.length; i++) for (let j = i; j <= s.length; j++) assert.deepEqual(parseAll([s.subarray(0, i), s.subarray(i, j), s.subarray(j)]), want, `${i},${j}`);
});

test("a large bulk arriving in small chunks is gathered without holding more than it", () => {
  const big = Buffer.alloc(300_000, 7);
  const s = Buffer.concat([enc("SET", "k", big), enc("PING")]);
  const p = new RespParser(LIMITS);
  const out: Buffer[][] = [];
  let maxHeld = 0;
  for (let i = 0; i < s.length; i += 1000) {
    p.feed(s.subarray(i, i + 1000), out);
    maxHeld = Math.max(maxHeld, p.bufferedBytes);
  }
  assert.equal(out.length, 2);
  assert.ok(out[0]![2]!.equals(big));
  assert.ok(maxHeld <= big.length + 2000, `held ${maxHeld}`);
});

test("inline commands: blanks, CRLF or LF, quotes, empty lines skipped", () => {
  assert.deepEqual(parseAll([Buffer.from("  get   k \r\n\r\n\nset a \"x y\"\n")]), [["get", "k"], ["set", "a", "x y"]]);
  assert.equal(splitArgs(Buffer.from('"unbalanced')), null);
  assert.equal(splitArgs(Buffer.from('"a"b')), null);
  assert.deepEqual(strs([splitArgs(Buffer.from("'a\\'b' \"\\t\\x7a\""))!]), [["a'b", "\tz"]]);
});

test("inline commands as sdssplitargs: \\v and \\f are skipped between words but do not end one; the 64 KiB limit is on the line without its CR", () => {
  assert.deepEqual(parseAll([Buffer.from("ECHO\va\r\n\x0bECHO \fb\x0c\r\n")]), [["ECHO\va"], ["ECHO", "b\f"]]);
  assert.deepEqual(strs([splitArgs(Buffer.from('"x"\v y'))!]), [["x", "y"]]);
  const line = "x".repeat(MAX_LINE);
  for (const chunks of [[line + "\r\n"], [line + "\r", "\n"], [line, "\r", "\n"]]) {
    assert.deepEqual(parseAll(chunks.map((c) => Buffer.from(c))), [[line]], `${chunks.length} chunk(s)`);
  }
  assert.equal(errorOf(line + "x\r\n"), "Protocol error: too big inline request");
  assert.equal(errorOf(line + "xy"), "Protocol error: too big inline request");
});

test("malformed input: Redis's protocol error messages", () => {
  // The unexpected byte is quoted raw (Redis's %c); CR or LF as a space, not to end the line.
  assert.equal(errorOf("*1\r\n\x01x\r\n"), "Protocol error: expected '$', got '\x01'");
  assert.equal(errorOf("*1\r\n\xe9x\r\n"), "Protocol error: expected '$', got '\u00c3'");
  assert.equal(errorOf("*abc\r\n"), "Protocol error: invalid multibulk length");
  assert.equal(errorOf("*1001\r\n"), "Protocol error: invalid multibulk length");
  assert.equal(errorOf("*1\r\n+x\r\n"), "Protocol error: expected '$', got '+'");
  assert.equal(errorOf("*1\r\n*1\r\n$1\r\na\r\n"), "Protocol error: expected '$', got '*'");
  assert.equal(errorOf("*1\r\n$-1\r\n"), "Protocol error: invalid bulk length");
  assert.equal(errorOf("*1\r\n$x\r\n"), "Protocol error: invalid bulk length");
  assert.equal(errorOf("*1\r\n$99999999999\r\n"), "Protocol error: invalid bulk length");
  assert.equal(errorOf(`*1\r\n$${LIMITS.maxBulkLen + 1}\r\n`), "Protocol error: invalid bulk length");
  assert.equal(errorOf("*1\r\n$1\r\nabc\r\n"), "Protocol error: bulk string not terminated by CRLF");
  assert.equal(errorOf('set "a\n'), "Protocol error: unbalanced quotes in request");
  assert.equal(errorOf(Buffer.alloc(MAX_LINE + 10, 0x61)), "Protocol error: too big inline request");
  assert.equal(errorOf("*" + "1".repeat(MAX_LINE + 10)), "Protocol error: too big mbulk count string");
  assert.equal(errorOf("*1\r\n$" + "1".repeat(MAX_LINE + 10)), "Protocol error: too big bulk count string");
});

test("lengths are read as Redis reads them: no leading zeros, no '-0', no '+', no blanks", () => {
  // Refused by redis-server 7.0.15 with these messages (and the connection closed).
  for (const h of ["*01", "*00", "*-0", "*+1", "* 1", "*1 ", "*", "*-", "*-01", "*-9223372036854775809", "*-10000000000000000000"]) {
    assert.equal(errorOf(`${h}\r\n$4\r\nPING\r\n`), "Protocol error: invalid multibulk length", h);
  }
  for (const h of ["$04", "$00", "$-0", "$+4", "$ 4", "$4 ", "$"]) {
    assert.equal(errorOf(`*1\r\n${h}\r\nPING\r\n`), "Protocol error: invalid bulk length", h);
  }
  // Accepted by redis-server: "*0" and any negative count within 64 bits are empty requests.
  const ok = ["*0", "*-1", "*-5", "*-99999999999999999", "*-9223372036854775808"].map((h) => `${h}\r\n`).join("");
  assert.deepEqual(parseAll([Buffer.from(ok + "*1\r\n$0\r\n\r\n*1\r\n$10\r\n0123456789\r\n")]), [[""], ["0123456789"]]);
});

test("a request whose arguments together exceed the bulk limit is refused before it is buffered", () => {
  const limits = { maxBulkLen: 100_000, maxMultibulkLen: 1000 };
  const p = new RespParser(limits);
  const parts = [Buffer.from("*10\r\n")];
  for (let i = 0; i < 10; i++) parts.push(Buffer.from(`$60000\r\n`), Buffer.alloc(60000, 1), Buffer.from("\r\n"));
  assert.throws(() => p.feed(Buffer.concat(parts)), (e: unknown) => e instanceof ProtocolError && e.message === "Protocol error: request too large");
});

test("the request limit counts the argument bytes only: exactly maxBulkLen + MAX_LINE passes, one more byte does not", () => {
  const limits = { maxBulkLen: 1024 * 1024, maxMultibulkLen: 1024 * 1024 };
  // 20,003 arguments (the old 64 bytes each of overhead alone would be 1.28 MB), the last two
  // (each within maxBulkLen) sized to bring the total to the limit exactly.
  const total = limits.maxBulkLen + MAX_LINE;
  const request = (extra: number): Buffer => {
    const args: Buffer[] = [Buffer.from("MSET")];
    for (let i = 0; i < 20_000; i++) args.push(Buffer.from("k"));
    const used = args.reduce((n, a) => n + a.length, 0);
    const rest = total - used + extra;
    args.push(Buffer.alloc(Math.floor(rest / 2), 0x61), Buffer.alloc(Math.ceil(rest / 2), 0x62));
    return enc(...args);
  };
  const ok = new RespParser(limits).feed(request(0));
  assert.equal(ok.length, 1);
  assert.equal(ok[0]!.length, 20_003);
  assert.throws(() => new RespParser(limits).feed(request(1)), (e: unknown) => e instanceof ProtocolError && e.message === "Protocol error: request too large");
});

test("commands completed before an error are delivered; the parser is dead afterwards", () => {
  const p = new RespParser(LIMITS);
  const out: Buffer[][] = [];
  assert.throws(() => p.feed(Buffer.concat([enc("PING"), Buffer.from("*1\r\n!")]), out), ProtocolError);
  assert.deepEqual(strs(out), [["PING"]]);
  assert.throws(() => p.feed(enc("PING")), ProtocolError);
});

test("authPending: parsing stops at a header beyond the unauthenticated limits, before its bytes are buffered", () => {
  assert.equal(UNAUTH_MAX_MULTIBULK, 10);
  assert.equal(UNAUTH_MAX_BULK, 16384);
  const stalled = (input: string | Buffer): { p: RespParser; out: string[][] } => {
    const p = new RespParser(LIMITS);
    p.authPending = true;
    const out: Buffer[][] = [];
    p.feed(typeof input === "string" ? Buffer.from(input) : input, out);
    return { p, out: strs(out) };
  };
  // Within the limits: parsed as usual.
  const within = stalled(Buffer.concat([enc(...Array.from({ length: 10 }, () => "a")), enc("x".repeat(16384))]));
  assert.equal(within.p.stalled, null);
  assert.equal(within.out.length, 2);
  // Beyond: the commands before it are delivered, then parsing stops at the header.
  const multi = stalled(Buffer.concat([enc("AUTH", "pw"), Buffer.from("*11\r\n$4\r\nMSET\r\n")]));
  assert.deepEqual(multi.out, [["AUTH", "pw"]]);
  assert.equal(multi.p.stalled, "Protocol error: unauthenticated multibulk length");
  const bulk = stalled(`*2\r\n$4\r\nAUTH\r\n$16385\r\n${"x".repeat(1000)}`);
  assert.equal(bulk.p.stalled, "Protocol error: unauthenticated bulk length");
  // fail(): the error, and the parser is dead.
  const e = bulk.p.fail();
  assert.ok(e instanceof ProtocolError && e.message === "Protocol error: unauthenticated bulk length");
  assert.equal(bulk.p.bufferedBytes, 0);
  assert.throws(() => bulk.p.feed(enc("PING")), ProtocolError);
  // resume(): that request parses, and the next one beyond the limits stops again (still pending).
  const again = stalled(Buffer.concat([enc(...Array.from({ length: 11 }, () => "b")), Buffer.from("*12\r\n")]));
  const out: Buffer[][] = [];
  again.p.resume(out);
  assert.equal(out.length, 1);
  assert.equal(out[0]!.length, 11);
  assert.equal(again.p.stalled, "Protocol error: unauthenticated multibulk length");
  // Malformed or over our own bulk limit is still "invalid", checked first (as Redis does).
  assert.throws(() => stalled("*1\r\n$016385\r\n"), (x: unknown) => x instanceof ProtocolError && x.message === "Protocol error: invalid bulk length");
  assert.throws(() => stalled(`*1\r\n$${LIMITS.maxBulkLen + 1}\r\n`), (x: unknown) => x instanceof ProtocolError && x.message === "Protocol error: invalid bulk length");
  // Not pending: no limit but ours.
  assert.equal(parseAll([enc(...Array.from({ length: 11 }, () => "c"), "y".repeat(20000))]).length, 1);
});
