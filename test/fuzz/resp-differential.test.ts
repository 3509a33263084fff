/**
 * Differential fuzz: random sequences of the supported commands (strings, hashes, expiry, keys,
 * MULTI/EXEC blocks, WATCH, SELECT), with random keys, values and options, sent to a real
 * redis-server and to KeelDB; the raw replies must be equal byte for byte, except the lists whose
 * order differs by design, compared sorted (normalize). Timing-dependent replies (PTTL, short
 * expiries) are left out of the command mix.
 * KEEL_RESP_DIFF_OPS sets the commands per seed (default 600); KEEL_SEED replays one seed.
 */
import assert from "node:assert/strict";
import { existsSync, rmSync } from "node:fs";
import { test } from "node:test";
import { startTestServer } from "../helpers/respServer.js";
import { Rng, seedList } from "../helpers/rng.js";
import { REDIS, startRedis } from "../server/e2e/redisServer.js";
import { replyEnd, ReplyReader } from "../server/e2e/replyReader.js";

const OPS = Number(process.env.KEEL_RESP_DIFF_OPS ?? 600);
// "" and "k*" are legal keys too; "é" is two bytes (UTF-8), so patterns meet multi-byte keys.
const KEYS = ["k1", "k2", "k3", "h1", "h2", "n", "", "k*", "é"];
const FIELDS = ["f1", "f2", "f3"];
const VALUES = ["1", "-5", "abc", "", "9223372036854775807", "-9223372036854775808", "3.5", "007", " 1", "10"];
const FLOATS = ["1.5", "-0.25", "2", "0.5e1", "abc", "-3"];
const INTS = ["1", "-1", "0", "100", "x", "9223372036854775807", "1.5"];

function pick<T>(rng: Rng, a: readonly T[]): T {
  return a[rng.int(a.length)]!;
}

function randomCommand(rng: Rng): string[] {
  const k = () => pick(rng, KEYS);
  const v = () => pick(rng, VALUES);
  const f = () => pick(rng, FIELDS);
  switch (rng.int(44)) {
    case 0: {
      const c = ["SET", k(), v()];
      if (rng.int(3) === 0) c.push(pick(rng, ["NX", "XX"]));
      if (rng.int(3) === 0) c.push("GET");
      const e = rng.int(5);
      if (e === 0) c.push("EX", pick(rng, ["100", "0", "-1", "x"]));
      else if (e === 1) c.push("PX", "100000");
      else if (e === 2) c.push("KEEPTTL");
      return c;
    }
    case 1:
      return ["GET", k()];
    case 2:
      return ["SETNX", k(), v()];
    case 3:
      return ["GETSET", k(), v()];
    case 4:
      return ["GETDEL", k()];
    case 5:
      return rng.int(2) ? ["GETEX", k(), "PERSIST"] : ["GETEX", k(), "EX", pick(rng, ["100", "0"])];
    case 6:
      return ["MGET", k(), k(), k()];
    case 7:
      return ["MSET", k(), v(), k(), v()];
    case 8:
      return ["MSETNX", k(), v(), k(), v()];
    case 9:
      return [pick(rng, ["DEL", "UNLINK"]), k(), k()];
    case 10:
      return ["EXISTS", k(), k()];
    case 11:
      return [pick(rng, ["INCR", "DECR"]), k()];
    case 12:
      return [pick(rng, ["INCRBY", "DECRBY"]), k(), pick(rng, INTS)];
    case 13:
      return ["INCRBYFLOAT", k(), pick(rng, FLOATS)];
    case 14:
      return ["APPEND", k(), v()];
    case 15:
      return ["STRLEN", k()];
    case 16:
      return ["GETRANGE", k(), String(rng.range(-5, 5)), String(rng.range(-5, 5))];
    case 17:
      return ["SETRANGE", k(), String(rng.range(-1, 6)), v()];
    case 18: {
      // No expiry that could pass during the run: whether a key is gone would depend on timing.
      const c = rng.int(2) ? ["EXPIRE", k(), pick(rng, ["100", "200", "-1", "x"])] : ["PEXPIRE", k(), pick(rng, ["150000", "250000", "-1", "x"])];
      // GT/LT only with absolute times (case 35): two relative expiries of the same length compare
      // equal or not depending on whether the server's millisecond clock ticked between them.
      if (rng.int(3) === 0) c.push(pick(rng, ["NX", "XX", "FOO"]));
      return c;
    }
    case 19:
      return ["TTL", k()];
    case 20:
      return ["PERSIST", k()];
    case 21:
      return ["TYPE", k()];
    case 22:
      return [pick(rng, ["RENAME", "RENAMENX"]), k(), k()];
    case 23: {
      const c = ["HSET", k()];
      for (let i = rng.range(1, 2); i > 0; i--) c.push(f(), v());
      return c;
    }
    case 24:
      return ["HGET", k(), f()];
    case 25:
      return ["HDEL", k(), f(), f()];
    case 26:
      return ["HLEN", k()];
    case 27:
      return ["HEXISTS", k(), f()];
    case 28:
      return ["HINCRBY", k(), f(), pick(rng, INTS)];
    case 29:
      return ["HMGET", k(), f(), f()];
    case 30:
      return ["HSETNX", k(), f(), v()];
    case 31:
      return ["HSTRLEN", k(), f()];
    case 32:
      return ["DBSIZE"];
    case 34:
      return rng.int(2) ? ["SET", k(), v(), "EXAT", "4102444800"] : ["SET", k(), v(), "PXAT", "4102444800000"];
    case 35: {
      const c = [pick(rng, ["EXPIREAT", "PEXPIREAT"]), k(), pick(rng, ["4102444800", "4102444800123", "4102444900000", "0"])];
      if (rng.int(3) === 0) c.push(pick(rng, ["NX", "XX", "GT", "LT"]));
      return c;
    }
    case 36:
      // EXPIRETIME of a relative expiry depends on each server's clock; the fixed script covers it.
      return ["TTL", k()];
    case 37:
      return [pick(rng, ["HGETALL", "HKEYS", "HVALS"]), k()];
    case 38:
      return ["HMSET", k(), f(), v(), f(), v()];
    case 39:
      return rng.int(2)
        ? pick(rng, [["KEYS", "*"], ["KEYS", "k*"], ["SCAN", "0", "COUNT", "1000"], ["SCAN", "0", "MATCH", "h*", "COUNT", "1000"]])
        : ["KEYS", pick(rng, ["k\\*", "?", "??", "[a-k]?", "[^k]*", "*\\", "[", "\\k1", "*[1-2]", "é", "?\xa9"])];
    case 40:
      return ["SELECT", pick(rng, ["0", "0", "1"])];
    case 41:
      return rng.int(2) ? ["WATCH", k()] : ["UNWATCH"];
    case 42:
      return rng.int(10) === 0 ? ["FLUSHDB"] : ["EXISTS", k()];
    default:
      return ["HINCRBYFLOAT", k(), f(), pick(rng, FLOATS)];
  }
}

/**
 * The TTL of a key that expires at a fixed time (EXAT, EXPIREAT: about 2.3e9 s away) is read a
 * moment later from the second server and can be one second less when a second boundary falls in
 * between. Integers of 10 to 13 digits (only such TTLs reach that size in this mix) may differ by 1.
 */
function sameUpToClock(ra: string | null, rb: string | null): boolean {
  if (ra === rb) return true;
  if (ra === null || rb === null) return false;
  const re = /:(\d{10,13})\r\n/g;
  if (ra.replace(re, ":#\r\n") !== rb.replace(re, ":#\r\n")) return false;
  const na = [...ra.matchAll(re)].map((m) => Number(m[1]));
  const nb = [...rb.matchAll(re)].map((m) => Number(m[1]));
  return na.every((x, i) => Math.abs(x - nb[i]!) <= 1);
}

const ORDERED = ["KEYS", "SCAN", "HGETALL", "HKEYS", "HVALS"];

/** A random command whose reply does not depend on hash order (for MULTI blocks, whose EXEC reply is not normalized). */
function orderFree(rng: Rng): string[] {
  for (;;) {
    const c = randomCommand(rng);
    if (!ORDERED.includes(c[0]!)) return c;
  }
}

/**
 * Replies whose element order differs by design (Redis: hash order; KeelDB: key order) are compared
 * as sorted lists: KEYS, SCAN's key list, HKEYS, HVALS, and HGETALL's field/value pairs.
 */
function normalize(cmd: string[], reply: string | null): string | null {
  const name = cmd[0]!.toUpperCase();
  if (reply === null || !ORDERED.includes(name) || reply.startsWith("-")) return reply;
  const buf = Buffer.from(reply, "latin1");
  const elems: string[] = [];
  let pos = reply.indexOf("\r\n") + 2;
  if (name === "SCAN") {
    const end = replyEnd(buf, pos);
    elems.push(`cursor ${reply.slice(pos, end)}`);
    pos = reply.indexOf("\r\n", end) + 2;
  }
  const items: string[] = [];
  while (pos < buf.length) {
    const end = replyEnd(buf, pos);
    items.push(reply.slice(pos, end));
    pos = end;
  }
  if (name === "HGETALL") for (let i = 0; i < items.length; i += 2) elems.push(`${items[i]} => ${items[i + 1]}`);
  else elems.push(...items.sort());
  return `${name} ${JSON.stringify(name === "HGETALL" ? elems.sort() : elems)}`;
}

test("random command sequences: KeelDB replies as redis-server does", { skip: existsSync(REDIS) ? false : `${REDIS} is missing (CI installs redis-server)` }, async () => {
  const redis = await startRedis();
  const keel = await startTestServer();
  const a = await ReplyReader.open(redis.port);
  const b = await ReplyReader.open(keel.port);
  try {
    for (const seed of seedList(3, "KEEL_RESP_DIFF_SEEDS")) {
      const rng = new Rng(seed);
      const history: string[] = [];
      for (const c of [a, b]) assert.equal(await c.call("FLUSHALL"), "+OK\r\n");
      for (let i = 0; i < OPS; i++) {
        // Now and then a MULTI/EXEC block of a few commands, answered as one array.
        const block = rng.int(20) === 0 ? [["MULTI"], ...Array.from({ length: rng.range(1, 4) }, () => orderFree(rng)), ["EXEC"]] : [randomCommand(rng)];
        for (const cmd of block) {
          history.push(cmd.map((x) => JSON.stringify(x)).join(" "));
          const ra = normalize(cmd, await a.call(...cmd));
          const rb = normalize(cmd, await b.call(...cmd));
          assert.equal(sameUpToClock(ra, rb) ? ra : rb, ra, `seed ${seed}, command ${i}: ${history.at(-1)}\nlast commands:\n${history.slice(-Number(process.env.KEEL_RESP_DIFF_HISTORY ?? 12)).join("\n")}\nreplay: KEEL_SEED=${seed} node --test dist/test/fuzz/resp-differential.test.js`);
        }
      }
    }
  } finally {
    a.close();
    b.close();
    redis.proc.kill("SIGKILL");
    rmSync(redis.dir, { recursive: true, force: true });
    await keel.stop();
  }
});

/**
 * A command mutated the way a client gets it wrong: an argument dropped or one added (arity and
 * syntax errors), the name in another case, or a binary value that is not UTF-8 (and holds CR LF; no NUL: Redis cuts error texts at one, a C artefact).
 */
function mutate(rng: Rng, c: Array<string | Buffer>): Array<string | Buffer> {
  switch (rng.int(4)) {
    case 0:
      return c.length > 1 ? c.slice(0, -1) : c;
    case 1:
      return [...c, pick(rng, ["x", "1", "EX", "NX"])];
    case 2:
      return [(c[0] as string).toLowerCase(), ...c.slice(1)];
    default:
      return c.length > 2 ? [...c.slice(0, -1), Buffer.from([0xff, 0x80, 0x0d, 0x0a, 0x41])] : c;
  }
}

/** Arguments at the edges of their ranges: overflowing expiries, offsets past the size limit, infinities. */
function edgeCommand(rng: Rng): string[] {
  const k = pick(rng, KEYS);
  const big = pick(rng, ["9223372036854775807", "-9223372036854775808", "9223372036854775", "4611686018427387", "1e3", "+5", "0x10", ""]);
  return pick(rng, [
    ["SET", k, "v", "EX", big],
    ["SET", k, "v", "PX", big],
    ["SET", k, "v", "EXAT", big],
    ["SET", k, "v", "NX", "GET"],
    ["SET", k, "v", "GET", "XX", "KEEPTTL"],
    ["GETEX", k, pick(rng, ["PX", "EXAT", "PXAT", "EX"]), big],
    ["GETEX", k, "PERSIST", "EX", "10"],
    ["EXPIRE", k, big],
    ["PEXPIRE", k, big],
    ["EXPIREAT", k, big],
    ["PEXPIREAT", k, big],
    // Not up to 512 MiB: KeelDB's proto-max-bulk-len is lower than Redis's (docs/SERVER-COMMANDS.md, Limits).
    ["SETRANGE", k, pick(rng, ["1000", "536870912", "-1", big]), "x"],
    ["SETRANGE", k, "536870912", ""],
    ["GETRANGE", k, big, big],
    ["INCRBYFLOAT", k, pick(rng, ["1e308", "inf", "-inf", "nan", "1e-320", "0x1p3", " 1", "1 "])],
    ["INCRBY", k, big],
    ["DECRBY", k, big],
    ["HINCRBY", k, "f1", big],
    ["HINCRBYFLOAT", k, "f1", pick(rng, ["1e308", "inf", "1e-320"])],
    // Only cursor 0 or a malformed one: KeelDB refuses a cursor it never issued (docs/SERVER-COMMANDS.md).
    ["SCAN", pick(rng, ["0", "x", " 0"]), "COUNT", pick(rng, ["0", "-1", "10", "x"])],
    ["SCAN", "0", "TYPE", pick(rng, ["string", "hash", "list", "x"]), "COUNT", "1000"],
    ["SELECT", pick(rng, ["-1", "16", "x", "15"])],
  ]);
}

/**
 * KeelDB keeps an expiry past 2^53 ms (year 287396) at 2^53 ms, where Redis keeps any int64
 * (docs/SERVER-COMMANDS.md, Expiry): a TTL that large is compared as "beyond", not to the second.
 */
const BEYOND_TTL = 8.9e12;

function capTtl(reply: string): string {
  const m = /^:(\d+)\r\n$/.exec(reply);
  return m && Number(m[1]) >= BEYOND_TTL ? ":<beyond 2^53 ms>\r\n" : reply;
}

/**
 * As normalize, and: HELLO's map is reduced to its type and protocol (server version and client id
 * differ by design); TTLs are capped (capTtl), also inside an EXEC reply, whose elements are matched
 * with the commands queued (`queued`).
 */
function normalizeAny(name: string, reply: string | null, queued: string[]): string | null {
  if (reply === null || reply.startsWith("-")) return reply;
  if (name === "HELLO") return `HELLO ${reply[0]} proto ${/proto\r\n:(\d)/.exec(reply)?.[1]}`;
  if (name === "TTL") return capTtl(reply);
  if (name === "EXEC" && reply.startsWith("*") && !reply.startsWith("*-1")) {
    const buf = Buffer.from(reply, "latin1");
    let pos = reply.indexOf("\r\n") + 2;
    let out = reply.slice(0, pos);
    for (const q of queued) {
      const end = replyEnd(buf, pos);
      const item = reply.slice(pos, end);
      out += q === "TTL" ? capTtl(item) : item;
      pos = end;
    }
    return out + reply.slice(pos);
  }
  return normalize([name], reply);
}

const show = (c: Array<string | Buffer>) => c.map((x) => (typeof x === "string" ? JSON.stringify(x) : `<${x.toString("hex")}>`)).join(" ");

test("two clients, RESP2 and RESP3, malformed calls: KeelDB replies as redis-server does", { skip: existsSync(REDIS) ? false : `${REDIS} is missing (CI installs redis-server)` }, async () => {
  const redis = await startRedis();
  const keel = await startTestServer();
  const pairs: Array<[ReplyReader, ReplyReader]> = [];
  for (let i = 0; i < 2; i++) pairs.push([await ReplyReader.open(redis.port), await ReplyReader.open(keel.port)]);
  try {
    for (const seed of seedList(3, "KEEL_RESP_DIFF_SEEDS")) {
      const rng = new Rng(seed);
      const history: string[] = [];
      // Each client's state: inside MULTI (its EXEC reply is compared raw, so no hash-ordered replies).
      const inMulti = [false, false];
      const queued: string[][] = [[], []];
      for (const [a, b] of pairs) {
        for (const c of [a, b]) {
          assert.notEqual(await c.call("DISCARD"), null);
          assert.notEqual(await c.call("UNWATCH"), null);
          assert.notEqual(await c.call("HELLO", "2"), null);
          assert.notEqual(await c.call("SELECT", "0"), null);
        }
      }
      assert.equal(await pairs[0]![0].call("FLUSHALL"), "+OK\r\n");
      assert.equal(await pairs[0]![1].call("FLUSHALL"), "+OK\r\n");
      for (let i = 0; i < OPS; i++) {
        const who = rng.int(2);
        let cmd: Array<string | Buffer>;
        const r = rng.int(100);
        if (inMulti[who]) cmd = r < 15 ? [pick(rng, ["EXEC", "EXEC", "DISCARD"])] : r < 17 ? ["MULTI"] : orderFree(rng);
        else if (r < 6) cmd = ["MULTI"];
        else if (r < 8) cmd = ["HELLO", pick(rng, ["2", "3"])];
        else if (r < 10) cmd = pick(rng, [["PING"], ["PING", "hi"], ["ECHO", "e"], ["EXEC"], ["DISCARD"], ["SUBSTR", "k1", "0", "1"]]);
        else if (r < 16) cmd = edgeCommand(rng);
        else cmd = randomCommand(rng);
        if (rng.int(12) === 0) cmd = mutate(rng, cmd);
        if (cmd[0] === "HELLO" && cmd.length > 2) cmd = cmd.slice(0, 2); // HELLO's optional arguments are AUTH/SETNAME
        history.push(`client ${who}: ${show(cmd)}`);
        const [a, b] = pairs[who]!;
        const name = (cmd[0] as string).toUpperCase();
        const ra = normalizeAny(name, await a.call(...cmd), queued[who]!);
        const rb = normalizeAny(name, await b.call(...cmd), queued[who]!);
        assert.equal(sameUpToClock(ra, rb) ? ra : rb, ra, `seed ${seed}, command ${i}: ${history.at(-1)}\nlast commands:\n${history.slice(-Number(process.env.KEEL_RESP_DIFF_HISTORY ?? 16)).join("\n")}\nreplay: KEEL_SEED=${seed} node --test dist/test/fuzz/resp-differential.test.js`);
        // Track MULTI state from the (equal) replies: MULTI opens unless nested; EXEC/DISCARD close it.
        if (name === "MULTI" && ra === "+OK\r\n") {
          inMulti[who] = true;
          queued[who] = [];
        } else if ((name === "EXEC" || name === "DISCARD") && cmd.length === 1) inMulti[who] = false;
        else if (ra === "+QUEUED\r\n") queued[who]!.push(name);
      }
    }
  } finally {
    for (const [a, b] of pairs) {
      a.close();
      b.close();
    }
    redis.proc.kill("SIGKILL");
    rmSync(redis.dir, { recursive: true, force: true });
    await keel.stop();
  }
});
