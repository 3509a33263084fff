/**
 * The command set through ioredis (a real client, real TCP) against a server started in-process on
 * a real database in a temp dir. Covers strings, keys, expiry (also across a restart), hashes,
 * pipelining, MULTI/EXEC/WATCH, RESP3, binary values, AUTH, maxclients, administration commands.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { connect } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { walSyncChannel, writeGroupDoneChannel, type WriteGroupDoneMessage } from "../../../src/util/instrumentation.js";
import { startTestServer, type TestServer } from "../../helpers/respServer.js";
import { rawConnect } from "../e2e/rawClient.js";
import { ReplyReader } from "../e2e/replyReader.js";

function client(port: number, extra: Record<string, unknown> = {}): Redis {
  return new Redis({ port, host: "127.0.0.1", maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: true, ...extra });
}

async function rejects(p: Promise<unknown>, message: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.equal((e as Error).message, message);
    return true;
  });
}

describe("ioredis against the KeelDB server", () => {
  let ts: TestServer;
  let r: Redis;
  before(async () => {
    ts = await startTestServer();
    r = client(ts.port);
  });
  after(async () => {
    r.disconnect();
    await ts.stop();
  });

  test("strings: SET options, SETNX, GETSET, GETDEL, GETEX, MGET/MSET/MSETNX", async () => {
    assert.equal(await r.set("s1", "v1"), "OK");
    assert.equal(await r.get("s1"), "v1");
    assert.equal(await r.set("s1", "v2", "NX"), null);
    assert.equal(await r.set("s1", "v2", "XX"), "OK");
    assert.equal(await r.set("nx1", "v", "XX"), null);
    assert.equal(await r.set("s1", "v3", "GET"), "v2");
    assert.equal(await r.set("nope1", "v", "GET"), null);
    assert.equal(await r.set("s1", "v4", "EX", 100), "OK");
    assert.ok((await r.ttl("s1")) > 95);
    assert.equal(await r.set("s1", "v5", "KEEPTTL"), "OK");
    assert.ok((await r.pttl("s1")) > 95_000);
    assert.equal(await r.set("s1", "v6"), "OK");
    assert.equal(await r.ttl("s1"), -1);
    assert.equal(await r.set("s1", "v", "PX", 100_000), "OK");
    assert.equal(await r.set("s1", "v", "EXAT", Math.floor(Date.now() / 1000) + 100), "OK");
    assert.equal(await r.set("s1", "v", "PXAT", Date.now() + 100_000), "OK");
    await rejects(r.set("s1", "v", "EX", 0), "ERR invalid expire time in 'set' command");
    await rejects(r.call("set", "s1", "v", "NX", "XX"), "ERR syntax error");
    await rejects(r.call("set", "s1", "v", "EX", "x"), "ERR value is not an integer or out of range");
    assert.equal(await r.setnx("s2", "a"), 1);
    assert.equal(await r.setnx("s2", "b"), 0);
    assert.equal(await r.getset("s2", "c"), "a");
    assert.equal(await r.getdel("s2"), "c");
    assert.equal(await r.exists("s2"), 0);
    await r.set("s3", "x");
    assert.equal(await r.getex("s3", "EX", 50), "x");
    assert.ok((await r.ttl("s3")) > 40);
    assert.equal(await r.getex("s3", "PERSIST"), "x");
    assert.equal(await r.ttl("s3"), -1);
    assert.equal(await r.mset("m1", "1", "m2", "2"), "OK");
    assert.deepEqual(await r.mget("m1", "m2", "nope"), ["1", "2", null]);
    assert.equal(await r.msetnx("m3", "3", "m1", "x"), 0);
    assert.equal(await r.exists("m3"), 0);
    assert.equal(await r.msetnx("m3", "3", "m4", "4"), 1);
    await rejects(r.call("mset", "a"), "ERR wrong number of arguments for 'mset' command");
  });

  test("counters, APPEND, STRLEN, GETRANGE, SETRANGE, DEL/UNLINK/EXISTS", async () => {
    assert.equal(await r.incr("c"), 1);
    assert.equal(await r.incrby("c", 10), 11);
    assert.equal(await r.decr("c"), 10);
    assert.equal(await r.decrby("c", 20), -10);
    assert.equal(await r.incrbyfloat("c", "0.5"), "-9.5");
    assert.equal(await r.incrbyfloat("c", "10.1"), "0.6");
    assert.equal(await r.incrbyfloat("c", "1e3"), "1000.59999999999999998", "long double digits, as Redis prints them");
    assert.equal(await r.incrbyfloat("c", "-1000.6"), "0");
    await r.set("big", "9223372036854775807");
    await rejects(r.incr("big"), "ERR increment or decrement would overflow");
    await r.set("str", "abc");
    await rejects(r.incr("str"), "ERR value is not an integer or out of range");
    await rejects(r.incrbyfloat("str", "1"), "ERR value is not a valid float");
    await rejects(r.call("incrby", "c", "1.5"), "ERR value is not an integer or out of range");
    assert.equal(await r.append("str", "def"), 6);
    assert.equal(await r.append("newstr", "x"), 1);
    assert.equal(await r.strlen("str"), 6);
    assert.equal(await r.strlen("nope"), 0);
    assert.equal(await r.getrange("str", 1, 3), "bcd");
    assert.equal(await r.getrange("str", -3, -1), "def");
    assert.equal(await r.getrange("str", 10, 20), "");
    assert.equal(await r.setrange("str", 8, "Z"), 9);
    assert.equal(await r.get("str"), "abcdef\0\0Z");
    await rejects(r.setrange("str", -1, "x"), "ERR offset is out of range");
    assert.equal(await r.exists("str", "str", "nope"), 2);
    assert.equal(await r.del("str", "newstr", "nope"), 2);
    await r.set("u", "1");
    assert.equal(await r.unlink("u"), 1);
  });

  test("keys: TYPE, RENAME, SCAN, KEYS, DBSIZE, SELECT, FLUSHDB; errors", async () => {
    const c = client(ts.port, { db: 3 });
    try {
      await c.mset("a:1", "1", "a:2", "2", "b:1", "3");
      await c.hset("h:1", "f", "v");
      assert.equal(await c.type("a:1"), "string");
      assert.equal(await c.type("h:1"), "hash");
      assert.equal(await c.type("nope"), "none");
      assert.equal(await c.dbsize(), 4);
      assert.deepEqual((await c.keys("a:*")).sort(), ["a:1", "a:2"]);
      assert.equal(await c.rename("a:2", "a:3"), "OK");
      await rejects(c.rename("nope", "x"), "ERR no such key");
      const seen: string[] = [];
      let cursor = "0";
      let rounds = 0;
      do {
        const [next, keys] = await c.scan(cursor, "COUNT", 1);
        seen.push(...keys);
        cursor = next;
        rounds++;
      } while (cursor !== "0");
      assert.deepEqual(seen.sort(), ["a:1", "a:3", "b:1", "h:1"]);
      assert.ok(rounds >= 4);
      const matched = await c.scan("0", "MATCH", "a:*", "COUNT", 100);
      assert.deepEqual(matched, ["0", ["a:1", "a:3"]]);
      await rejects(c.scan("abc"), "ERR invalid cursor");
      await rejects(c.scan("12345678"), "ERR invalid cursor");
      assert.equal(await r.exists("a:1"), 0, "db 0 does not see db 3");
      await rejects(c.get("h:1"), "WRONGTYPE Operation against a key holding the wrong kind of value");
      await rejects(c.call("select", "99"), "ERR DB index is out of range");
      await rejects(c.call("nosuch", "a", "b"), "ERR unknown command 'nosuch', with args beginning with: 'a' 'b' ");
      await rejects(c.call("get"), "ERR wrong number of arguments for 'get' command");
      assert.equal(await c.flushdb(), "OK");
      assert.equal(await c.dbsize(), 0);
    } finally {
      c.disconnect();
    }
  });

  test("expiry: EXPIRE family, TTL/PTTL semantics, lazy and active expiry", async () => {
    await r.set("e1", "v");
    assert.equal(await r.ttl("e1"), -1);
    assert.equal(await r.ttl("nope"), -2);
    assert.equal(await r.pttl("nope"), -2);
    assert.equal(await r.expire("e1", 100), 1);
    assert.equal(await r.ttl("e1"), 100);
    assert.equal(await r.call("expire", "e1", "50", "GT"), 0);
    assert.equal(await r.call("expire", "e1", "50", "LT"), 1);
    assert.equal(await r.call("expire", "e1", "70", "NX"), 0);
    assert.equal(await r.pexpire("e1", 100_000), 1);
    assert.ok((await r.pttl("e1")) > 99_000);
    assert.equal(await r.expireat("e1", Math.floor(Date.now() / 1000) + 200), 1);
    assert.equal(await r.persist("e1"), 1);
    assert.equal(await r.persist("e1"), 0);
    assert.equal(await r.expire("nope", 10), 0);
    await rejects(r.expire("e1", 99999999999999999), "ERR invalid expire time in 'expire' command");
    assert.equal(await r.expire("e1", -1), 1, "a past expiry deletes");
    assert.equal(await r.exists("e1"), 0);
    await r.set("e2", "v", "PX", 60);
    await r.hset("e3", "f", "v");
    await r.pexpire("e3", 60);
    for (let i = 0; i < 50; i++) await r.set(`e4:${i}`, "v", "PX", 60);
    await sleep(90);
    assert.equal(await r.get("e2"), null, "lazy: an expired key is never returned");
    assert.equal(await r.hget("e3", "f"), null);
    assert.equal(await r.exists("e3"), 0);
    await sleep(300);
    const left = (await r.keys("e4:*")).length;
    assert.equal(left, 0);
    const info = await r.info("keyspace");
    assert.ok(!/expires=5\d/.test(info), info);
  });

  test("hashes", async () => {
    assert.equal(await r.hset("h", "a", "1", "b", "2"), 2);
    assert.equal(await r.hset("h", { b: "3", c: "4" }), 1);
    assert.equal(await r.hget("h", "b"), "3");
    assert.equal(await r.hget("h", "z"), null);
    assert.equal(await r.hget("nohash", "z"), null);
    assert.deepEqual(await r.hgetall("h"), { a: "1", b: "3", c: "4" });
    assert.deepEqual(await r.hgetall("nohash"), {});
    assert.equal(await r.hlen("h"), 3);
    assert.equal(await r.hexists("h", "a"), 1);
    assert.equal(await r.hexists("h", "z"), 0);
    assert.deepEqual(await r.hkeys("h"), ["a", "b", "c"]);
    assert.deepEqual(await r.hvals("h"), ["1", "3", "4"]);
    assert.deepEqual(await r.hmget("h", "a", "z", "c"), ["1", null, "4"]);
    assert.equal(await r.hincrby("h", "a", 5), 6);
    assert.equal(await r.hincrby("h", "n", -2), -2);
    await rejects(r.hincrby("h", "a", "x" as unknown as number), "ERR value is not an integer or out of range");
    await r.hset("h", "s", "abc");
    await rejects(r.hincrby("h", "s", 1), "ERR hash value is not an integer");
    assert.equal(await r.hdel("h", "a", "b", "zz"), 2);
    assert.equal(await r.hlen("h"), 3);
    assert.equal(await r.hdel("h", "c", "n", "s"), 3);
    assert.equal(await r.exists("h"), 0, "an emptied hash is gone");
    await r.set("str2", "x");
    await rejects(r.hset("str2", "f", "v"), "WRONGTYPE Operation against a key holding the wrong kind of value");
    await rejects(r.call("hset", "h", "f"), "ERR wrong number of arguments for 'hset' command");
  });

  test("pipelining: order kept, read-your-writes, writes group-committed", async () => {
    const p = r.pipeline();
    for (let i = 0; i < 500; i++) {
      p.set(`p:${i}`, String(i));
      p.get(`p:${i}`);
      p.incr("p:counter");
    }
    const res = (await p.exec())!;
    for (let i = 0; i < 500; i++) {
      assert.deepEqual(res[i * 3], [null, "OK"]);
      assert.deepEqual(res[i * 3 + 1], [null, String(i)]);
      assert.deepEqual(res[i * 3 + 2], [null, i + 1]);
    }
    // Later writes of the pipeline commit in the same group as earlier ones: each read must still
    // see the state at its own position.
    const seq = await r.pipeline().set("", "v").get("").expire("", 100).ttl("").del("").hset("", "f", "v").get("").type("").exec();
    assert.deepEqual(seq!.map(([e, v]) => (e ? (e as Error).message : v)), ["OK", "v", 1, 100, 1, 1, "WRONGTYPE Operation against a key holding the wrong kind of value", "hash"]);
    const base = await r.dbsize();
    const counts = await r.pipeline().set("cnt:a", "1").dbsize().hset("cnt:h", "f", "v").dbsize().del("cnt:a", "cnt:h").dbsize().exec();
    assert.deepEqual(counts!.map(([, v]) => v), ["OK", base + 1, 1, base + 2, 2, base]);
    const inMulti = await r.multi().set("cnt:b", "1").dbsize().del("cnt:b").dbsize().exec();
    assert.deepEqual(inMulti!.map(([, v]) => v), ["OK", base + 1, 1, base]);
    const before = ts.db.txlogWatermarks().lastDurableLsn;
    let syncs = 0;
    const onSync = () => void syncs++;
    const groups: WriteGroupDoneMessage[] = [];
    const onGroup = (m: unknown) => void groups.push(m as WriteGroupDoneMessage);
    walSyncChannel.subscribe(onSync);
    writeGroupDoneChannel.subscribe(onGroup);
    try {
      const p2 = r.pipeline();
      for (let i = 0; i < 200; i++) p2.set(`q:${i}`, "x");
      await p2.exec();
    } finally {
      walSyncChannel.unsubscribe(onSync);
      writeGroupDoneChannel.unsubscribe(onGroup);
    }
    // Every batched command is a writer of its group (what keel_commit_group_writers counts).
    assert.equal(groups.reduce((n, g) => n + g.writers, 0), 200, JSON.stringify(groups));
    assert.ok(groups.every((g) => g.ok) && groups.length <= 10, `${groups.length} groups for 200 pipelined SETs`);
    const records = ts.db.txlogWatermarks().lastDurableLsn - before;
    assert.ok(records >= 1 && records < 200, `writes dispatched in one turn share a log record: ${records} records for 200 writes`);
    assert.equal(await r.exists(...Array.from({ length: 200 }, (_, i) => `q:${i}`)), 200);
    assert.ok(syncs >= 1 && syncs <= 10, `200 pipelined writes share syncs (group commit): ${syncs} syncs`);
  });

  test("many clients at once: concurrent INCRs are serialized", async () => {
    const clients = Array.from({ length: 8 }, () => client(ts.port));
    try {
      await Promise.all(clients.map(async (c) => {
        const p = c.pipeline();
        for (let i = 0; i < 100; i++) p.incr("conc");
        await p.exec();
      }));
      assert.equal(await r.get("conc"), "800");
    } finally {
      for (const c of clients) c.disconnect();
    }
  });

  test("MULTI/EXEC: results, queued errors abort, runtime errors are per command, DISCARD", async () => {
    const res = await r.multi().set("t1", "a").incr("t2").get("t1").exec();
    assert.deepEqual(res, [[null, "OK"], [null, 1], [null, "a"]]);
    const raw = await rawConnect(ts.port);
    try {
      raw.send("MULTI\r\nSET t3 x\r\nNOSUCH\r\nEXEC\r\nGET t3\r\n");
      const out = await raw.until((s) => s.endsWith("$-1\r\n"));
      assert.equal(out, "+OK\r\n+QUEUED\r\n-ERR unknown command 'NOSUCH', with args beginning with: \r\n-EXECABORT Transaction discarded because of previous errors.\r\n$-1\r\n");
      raw.send("MULTI\r\nSET t4 x\r\nINCR t4\r\nSET t5 y\r\nEXEC\r\n");
      const out2 = await raw.until((s) => s.includes("*3\r\n") && s.endsWith("+OK\r\n") && s.split("\r\n").length > 10);
      assert.ok(out2.endsWith("*3\r\n+OK\r\n-ERR value is not an integer or out of range\r\n+OK\r\n"), out2);
      raw.send("EXEC\r\nDISCARD\r\nMULTI\r\nMULTI\r\nSET t6 z\r\nDISCARD\r\nEXISTS t6\r\n");
      const out3 = await raw.until((s) => s.endsWith(":0\r\n"));
      assert.ok(out3.endsWith("-ERR EXEC without MULTI\r\n-ERR DISCARD without MULTI\r\n+OK\r\n-ERR MULTI calls can not be nested\r\n+QUEUED\r\n+OK\r\n:0\r\n"), out3);
    } finally {
      raw.close();
    }
  });

  test("MULTI/EXEC: a command that fails after meeting an expired key is that command's error; the rest of the block applies (as Redis)", async () => {
    const raw = await rawConnect(ts.port);
    try {
      // "e" is expired but not yet swept: RENAME and INCRBYFLOAT read it (removing it) and then fail.
      raw.send("SET xe 1 PXAT 1\r\nSET xf 1 PXAT 1\r\nMULTI\r\nSET xa 1\r\nRENAME xe xb\r\nINCRBYFLOAT xf abc\r\nINCR xcounter\r\nEXEC\r\nGET xa\r\nGET xcounter\r\nEXISTS xe xf xb\r\n");
      const out = await raw.until((s) => s.endsWith(":0\r\n") && s.includes("*4\r\n"));
      assert.equal(
        out,
        "+OK\r\n+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n" +
          "*4\r\n+OK\r\n-ERR no such key\r\n-ERR value is not a valid float\r\n:1\r\n" +
          "$1\r\n1\r\n$1\r\n1\r\n:0\r\n",
      );
    } finally {
      raw.close();
    }
  });

  test("KEYS and SCAN MATCH: the empty key matches * (everything) but no other pattern, as in Redis", async () => {
    const raw = await rawConnect(ts.port);
    try {
      raw.send("SELECT 9\r\nSET \"\" v\r\nSET g1 v\r\nKEYS *\r\nKEYS **\r\nSCAN 0 MATCH *\r\nSCAN 0 MATCH **\r\nFLUSHDB\r\nSELECT 0\r\n");
      // All 27 reply lines: KEYS behind the SETs holds the rest back until it runs (the value
      // budget), so the replies may come in more than one write.
      const out = await raw.until((s) => s.split("\r\n").length >= 28);
      assert.equal(
        out,
        "+OK\r\n+OK\r\n+OK\r\n" +
          "*2\r\n$0\r\n\r\n$2\r\ng1\r\n" +
          "*1\r\n$2\r\ng1\r\n" +
          "*2\r\n$1\r\n0\r\n*2\r\n$0\r\n\r\n$2\r\ng1\r\n" +
          "*2\r\n$1\r\n0\r\n*1\r\n$2\r\ng1\r\n" +
          "+OK\r\n+OK\r\n",
      );
    } finally {
      raw.close();
    }
  });

  test("SELECT inside MULTI and pipelined after writes: each command keeps the db it was sent for", async () => {
    const raw = await rawConnect(ts.port);
    try {
      raw.send("SET sel a\r\nSELECT 5\r\nSET sel b\r\nMULTI\r\nSELECT 6\r\nSET sel c\r\nEXEC\r\nGET sel\r\nSELECT 0\r\nGET sel\r\nSELECT 5\r\nGET sel\r\n");
      const out = await raw.until((s) => s.split("\r\n").length >= 16);
      assert.equal(out, "+OK\r\n+OK\r\n+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n+OK\r\n$1\r\nc\r\n+OK\r\n$1\r\na\r\n+OK\r\n$1\r\nb\r\n");
      // With WATCH the EXEC may abort, and then its SELECT never happened: pipelined commands after
      // it must run in the db the EXEC really leaves.
      raw.send("SELECT 0\r\nWATCH wsel\r\nSET wsel x\r\nMULTI\r\nSELECT 7\r\nEXEC\r\nGET wsel\r\nWATCH wsel\r\nMULTI\r\nSELECT 7\r\nSET wsel y\r\nEXEC\r\nGET wsel\r\nSELECT 0\r\nGET wsel\r\n");
      const out2 = await raw.until((s) => s.endsWith("$1\r\nx\r\n") && s.includes("$1\r\ny\r\n"));
      assert.ok(out2.endsWith("+OK\r\n+OK\r\n+OK\r\n+OK\r\n+QUEUED\r\n*-1\r\n$1\r\nx\r\n+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n+OK\r\n$1\r\ny\r\n+OK\r\n$1\r\nx\r\n"), out2);
    } finally {
      raw.close();
    }
  });

  test("WATCH: EXEC aborts when a watched key changed, runs when it did not", async () => {
    const other = client(ts.port);
    try {
      await r.set("w1", "1");
      await r.watch("w1");
      await other.set("w1", "2");
      assert.equal(await r.multi().set("w1", "3").exec(), null);
      assert.equal(await r.get("w1"), "2");
      await r.watch("w1");
      await other.set("w-unrelated", "x");
      assert.deepEqual(await r.multi().set("w1", "4").exec(), [[null, "OK"]]);
      assert.equal(await r.get("w1"), "4");
      await r.watch("w1");
      await other.flushdb();
      assert.equal(await r.multi().set("w1", "5").exec(), null, "FLUSHDB touches every key");
      await r.watch("w2");
      await r.unwatch();
      await other.set("w2", "x");
      assert.deepEqual(await r.multi().get("w2").exec(), [[null, "x"]]);
    } finally {
      other.disconnect();
    }
  });

  test("WATCH under concurrent writes: a successful EXEC implies the pipelined GET saw the last write", async () => {
    const writer = client(ts.port);
    const watcher = await ReplyReader.open(ts.port);
    try {
      let ran = 0;
      let before: string | null = null;
      const bulkOf = (v: string | null) => (v === null ? "$-1\r\n" : `$${v.length}\r\n${v}\r\n`);
      for (let round = 0; round < 10; round++) {
        const burst = writer.pipeline();
        for (let i = 0; i < 50; i++) burst.set("race", `${round}:${i}`);
        const burstDone = burst.exec();
        watcher.socket.write("WATCH race\r\nGET race\r\nMULTI\r\nSET race mine\r\nEXEC\r\n");
        const replies = [];
        for (let i = 0; i < 5; i++) replies.push(await watcher.next());
        await burstDone;
        const after = await r.get("race");
        if (replies[4] !== "*-1\r\n") {
          // EXEC ran, so no write of the burst fell between WATCH and EXEC: the burst came entirely
          // before (GET saw its last value, EXEC's value won) or entirely after (GET saw the old value).
          ran++;
          const allBefore = replies[1] === bulkOf(`${round}:49`) && after === "mine";
          const allAfter = replies[1] === bulkOf(before) && after === `${round}:49`;
          assert.ok(allBefore || allAfter, `round ${round}: EXEC ran; GET saw ${replies[1]}, final ${after}`);
        }
        before = after;
      }
    } finally {
      writer.disconnect();
      watcher.close();
    }
  });

  test("RESP3 via HELLO 3: maps and nulls", async () => {
    const c3 = client(ts.port, { protocol: 3 });
    try {
      await c3.hset("r3", "a", "1");
      assert.deepEqual(await c3.hgetall("r3"), { a: "1" });
      assert.equal(await c3.get("nope"), null);
      const raw = await rawConnect(ts.port);
      raw.send("HELLO 3\r\nGET nope\r\nHGETALL r3\r\nHELLO 2\r\nGET nope\r\n");
      const out = await raw.until((s) => s.endsWith("$-1\r\n"));
      assert.ok(out.startsWith("%7\r\n$6\r\nserver\r\n"), out);
      assert.ok(out.includes("$5\r\nproto\r\n:3\r\n"));
      assert.ok(out.includes("_\r\n%1\r\n$1\r\na\r\n$1\r\n1\r\n"), out);
      raw.send("HELLO 4\r\n");
      assert.ok((await raw.until((s) => s.includes("NOPROTO"))).endsWith("-NOPROTO unsupported protocol version\r\n"));
      raw.close();
    } finally {
      c3.disconnect();
    }
  });

  test("binary keys and values round-trip exactly, large ones too", async () => {
    const key = Buffer.from([0, 1, 2, 255, 13, 10, 32]);
    const val = Buffer.alloc(256 * 3);
    for (let i = 0; i < val.length; i++) val[i] = i % 256;
    await r.set(key, val);
    assert.ok((await r.getBuffer(key))!.equals(val));
    const big = Buffer.alloc(2 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE(i, i);
    await r.set("bigval", big);
    assert.ok((await r.getBuffer("bigval"))!.equals(big));
    await r.hset("binh", key, val);
    assert.ok((await r.hgetBuffer("binh", key))!.equals(val));
    const long = "k".repeat(2000);
    await assert.rejects(r.set(long, "v"), (e: Error) => e.message.startsWith("ERR key too long for KeelDB"));
    assert.equal(await r.get(long), null);
    assert.equal(await r.exists(long), 0);
    await assert.rejects(r.hset("hk", "f".repeat(2000), "v"), (e: Error) => e.message.startsWith("ERR key too long for KeelDB"));
    // A hash's key and field may be 4 bytes longer than a key (996 at 4096-byte pages): the message names that limit.
    assert.equal(await r.hset("k".repeat(996), "ffff", "v"), 1);
    await assert.rejects(r.hset("k".repeat(996), "fffff", "v"), (e: Error) => e.message === "ERR key too long for KeelDB (at most 1000 bytes of key and field)");
    await assert.rejects(r.set("k".repeat(997), "v"), (e: Error) => e.message === "ERR key too long for KeelDB (at most 996 bytes)");
    await r.set("empty", "");
    assert.equal(await r.get("empty"), "");
    assert.equal(await r.strlen("empty"), 0);
  });

  test("CONFIG, INFO, CLIENT, COMMAND, TIME, ECHO, PING", async () => {
    assert.deepEqual(await r.config("GET", "save"), ["save", "3600 1"]);
    assert.equal(await r.config("SET", "save", "900 1 300 10"), "OK");
    assert.deepEqual(ts.config.saveRules, [{ seconds: 900, changes: 1 }, { seconds: 300, changes: 10 }]);
    assert.equal(await r.config("SET", "save", ""), "OK");
    assert.deepEqual(ts.config.saveRules, []);
    assert.deepEqual(await r.config("GET", "appendonly"), ["appendonly", "yes"]);
    assert.deepEqual(await r.config("GET", "appendfsync"), ["appendfsync", "always"]);
    assert.equal(await r.config("SET", "maxclients", "50"), "OK");
    assert.equal(ts.config.maxclients, 50);
    await rejects(r.config("SET", "port", "1"), "ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config");
    await rejects(r.config("SET", "foo", "1"), "ERR Unknown option or number of arguments for CONFIG SET - 'foo'");
    await rejects(r.config("SET", "maxclients", "x"), "ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument couldn't be parsed into an integer");
    const all = (await r.config("GET", "*")) as string[];
    assert.ok(all.includes("proto-max-bulk-len") && all.includes("databases"));
    const info = await r.info();
    for (const s of ["# Server", "# Clients", "# Memory", "# Persistence", "# Stats", "# Keyspace"]) assert.ok(info.includes(s), s);
    assert.ok(info.includes("rdb_changes_since_last_save:"));
    assert.ok(/connected_clients:\d+/.test(info));
    assert.equal(await r.client("SETNAME", "tester"), "OK");
    assert.equal(await r.client("GETNAME"), "tester");
    const id = await r.client("ID");
    assert.ok(typeof id === "number" && id > 0);
    const list = (await r.client("LIST")) as string;
    assert.ok(list.includes(`id=${id} `) && list.includes("name=tester"));
    await rejects(r.client("SETNAME", "a b"), "ERR Client names cannot contain spaces, newlines or special characters.");
    const count = (await r.command("COUNT")) as unknown as number;
    assert.ok(count > 60);
    const getInfo = (await r.command("INFO", "get")) as unknown[][];
    assert.equal(getInfo[0]![0], "get");
    assert.equal(getInfo[0]![1], 2);
    const [sec, usec] = await r.time();
    assert.ok(Math.abs(Number(sec) - Date.now() / 1000) < 5 && Number(usec) < 1_000_000);
    assert.equal(await r.echo("hi"), "hi");
    assert.equal(await r.ping(), "PONG");
  });

  test("SAVE, BGSAVE, LASTSAVE, BACKUP, BGREWRITEAOF; noteChanges counts acknowledged writes", async () => {
    await r.set("dirty", "1");
    assert.ok(ts.persistence.changesSinceLastSave > 0);
    assert.equal(await r.save(), "OK");
    assert.equal(ts.persistence.changesSinceLastSave, 0);
    await r.set("dirty", "2");
    await r.hset("dirtyh", "a", "1", "b", "2");
    assert.equal(ts.persistence.changesSinceLastSave, 2);
    assert.ok(Math.abs((await r.lastsave()) - Date.now() / 1000) < 5);
    const dest = join(ts.dir, "backup1");
    assert.equal(await r.call("backup", dest), "OK");
    assert.ok(existsSync(dest));
    await assert.rejects(r.call("backup", dest), (e: Error) => e.message.startsWith("ERR KeelDB EXISTS: "));
    assert.equal(await r.call("bgsave"), "Background saving started");
    assert.equal(await r.bgrewriteaof(), "Background append only file rewriting started");
    await ts.persistence.drain();
  });

  test("SHUTDOWN calls onShutdown with the mode and closes the connection", async () => {
    const raw = await rawConnect(ts.port);
    raw.send("SHUTDOWN NOSAVE\r\n");
    await raw.until(() => false, 300);
    assert.deepEqual(ts.shutdowns, ["nosave"]);
    raw.close();
  });
});

describe("AUTH, maxclients, close()", () => {
  test("requirepass: NOAUTH before AUTH, WRONGPASS, AUTH and HELLO AUTH", async () => {
    const ts = await startTestServer({ requirepass: "s3cret" });
    try {
      const raw = await rawConnect(ts.port);
      raw.send("GET k\r\nEXEC\r\nAUTH wrong\r\nHELLO 3\r\nAUTH s3cret\r\nSET k v\r\nGET k\r\n");
      const out = await raw.until((s) => s.endsWith("$1\r\nv\r\n"));
      assert.equal(
        out,
        // EXEC refused is an EXECABORT naming why (Redis 7, checked against redis-server 7.0.15).
        "-NOAUTH Authentication required.\r\n-EXECABORT Transaction discarded because of: NOAUTH Authentication required.\r\n" +
          "-WRONGPASS invalid username-password pair or user is disabled.\r\n" +
          "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n" +
          "+OK\r\n+OK\r\n$1\r\nv\r\n",
      );
      raw.close();
      const c = client(ts.port, { password: "s3cret" });
      assert.equal(await c.get("k"), "v");
      c.disconnect();
      const c3 = client(ts.port, { password: "s3cret", protocol: 3 });
      assert.equal(await c3.get("k"), "v");
      c3.disconnect();
      const bad = client(ts.port, { password: "nope", lazyConnect: true });
      bad.on("error", () => undefined);
      await assert.rejects(bad.connect());
      bad.disconnect();
    } finally {
      await ts.stop();
    }
  });

  test("maxclients: one too many gets the error and is closed; the rest keep working", async () => {
    const ts = await startTestServer({ maxclients: 2 });
    try {
      const a = await rawConnect(ts.port);
      const b = await rawConnect(ts.port);
      const c = await rawConnect(ts.port);
      const out = await c.until((s) => s.length > 0);
      assert.equal(out, "-ERR max number of clients reached\r\n");
      await c.until(() => false, 200);
      assert.ok(c.closed);
      a.send("PING\r\n");
      assert.equal(await a.until((s) => s.endsWith("\r\n")), "+PONG\r\n");
      assert.equal(ts.server.stats().rejectedConnections, 1);
      // As redis-server 7.0.15 (INFO stats): a refused connection is not a connection received.
      assert.equal(ts.server.stats().totalConnectionsReceived, 2);
      a.close();
      b.close();
    } finally {
      await ts.stop();
    }
  });

  test("maxclients: a refused peer that never closes its side does not keep the server's socket", async () => {
    const ts = await startTestServer({ maxclients: 1 });
    try {
      const a = await rawConnect(ts.port);
      // allowHalfOpen: the peer does not answer the server's FIN with its own, as a leaking client would not.
      const s = connect({ port: ts.port, host: "127.0.0.1", allowHalfOpen: true });
      let got = "";
      s.on("data", (d: Buffer) => (got += d.toString("latin1")));
      s.on("error", () => undefined);
      await once(s, "end");
      assert.equal(got, "-ERR max number of clients reached\r\n");
      // Data sent to a socket the server has destroyed is answered with a reset, and the peer's
      // socket closes; a socket the server only ended (old code) takes the data and stays open.
      const closed = new Promise((r) => s.once("close", r));
      const poke = setInterval(() => s.destroyed || s.write("PING\r\n"), 100);
      try {
        const r = await Promise.race([closed.then(() => "closed"), sleep(10_000).then(() => "still open")]);
        assert.equal(r, "closed");
      } finally {
        clearInterval(poke);
        s.destroy();
      }
      a.close();
    } finally {
      await ts.stop();
    }
  });

  test("close(): in-flight pipelined writes are replied to before the sockets close", async () => {
    const ts = await startTestServer();
    const raw = await rawConnect(ts.port);
    let cmds = "";
    for (let i = 0; i < 300; i++) cmds += `SET k${i} v${i}\r\n`;
    raw.send(cmds);
    await raw.until((s) => s.length > 0);
    await ts.server.close();
    const out = await raw.until(() => false, 200);
    assert.equal(out, "+OK\r\n".repeat(300));
    assert.ok(raw.closed);
    await ts.restart();
    const r = client(ts.port);
    assert.equal(await r.get("k299"), "v299");
    r.disconnect();
    await ts.stop();
  });

  test("expiry survives a restart: pending expiries kept, due ones gone", async () => {
    const ts = await startTestServer();
    try {
      let r = client(ts.port);
      await r.set("long", "v", "EX", 1000);
      await r.set("short", "v", "PX", 150);
      await r.hset("hl", "f", "v");
      await r.expire("hl", 1000);
      r.disconnect();
      await ts.restart();
      await sleep(200);
      r = client(ts.port);
      assert.ok((await r.ttl("long")) > 990);
      assert.ok((await r.ttl("hl")) > 990);
      assert.equal(await r.get("short"), null);
      assert.equal(await r.ttl("short"), -2);
      r.disconnect();
    } finally {
      await ts.stop();
    }
  });
});

describe("maxValueSize", () => {
  test("lowered since a value was stored: RENAME of it inside EXEC is refused without touching it, the rest of the block applies", async () => {
    const dir = mkdtempSync(join(tmpdir(), "keel-rename-"));
    try {
      const first = await startTestServer({}, dir, { maxValueSize: 8192 });
      const a = client(first.port);
      assert.equal(await a.set("big", Buffer.alloc(5000, 7)), "OK");
      assert.equal(await a.hset("hbig", "f", Buffer.alloc(5000, 8)), 1);
      a.disconnect();
      await first.stop();
      const ts = await startTestServer({}, dir, { maxValueSize: 4096 });
      const r = client(ts.port);
      try {
        const res = await r.multi().rename("big", "dst").rename("hbig", "hdst").set("other", "1").exec();
        assert.ok(res);
        assert.deepEqual(
          res.map(([e, v]) => (e ? e.message.split(" ")[0] : v)),
          ["ERR", "ERR", "OK"],
        );
        assert.equal((await r.getBuffer("big"))?.length, 5000, "the source string is kept");
        assert.equal((await r.hgetBuffer("hbig", "f"))?.length, 5000, "the source hash is kept");
        assert.equal(await r.exists("dst", "hdst"), 0);
        assert.equal(await r.get("other"), "1");
        await rejects(r.rename("big", "dst"), "ERR string of 5000 bytes exceeds the longest string KeelDB stores, 4087 bytes (maxValueSize 4096 minus the 9-byte value header)");
      } finally {
        r.disconnect();
        await ts.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the longest string is maxValueSize minus the 9-byte header; a longer one is refused in the client's terms", async () => {
    const ts = await startTestServer({}, undefined, { maxValueSize: 1024 });
    const r = client(ts.port);
    try {
      assert.equal(await r.set("s", Buffer.alloc(1015, 1)), "OK");
      const msg = "ERR string of 1016 bytes exceeds the longest string KeelDB stores, 1015 bytes (maxValueSize 1024 minus the 9-byte value header)";
      await rejects(r.set("s", Buffer.alloc(1016, 1)), msg);
      await rejects(r.append("s", "x"), "ERR string of 1016 bytes exceeds the longest string KeelDB stores, 1015 bytes (maxValueSize 1024 minus the 9-byte value header)");
      assert.equal(await r.strlen("s"), 1015);
      // A hash field's value has no header: maxValueSize itself.
      assert.equal(await r.hset("h", "f", Buffer.alloc(1024, 2)), 1);
      await rejects(r.hset("h", "g", "1", "f2", Buffer.alloc(1025, 2)), "ERR value of 1025 bytes exceeds maxValueSize 1024");
      assert.equal(await r.hexists("h", "g"), 0, "HSET refused whole: no field of it written");
      await rejects(r.mset("m1", "1", "m2", Buffer.alloc(1016, 1)), msg);
      assert.equal(await r.exists("m1"), 0, "MSET refused whole");

      // Inside EXEC the refusal is that command's error, as a Redis runtime error is: the rest applies.
      const res = await r.multi().set("d", "1").set("e", Buffer.alloc(1016, 1)).incr("d").mset("m3", "x", "m4", Buffer.alloc(2000)).hset("h2", "a", "1", "b", Buffer.alloc(1025)).incr("d").exec();
      assert.ok(res);
      assert.deepEqual(
        res.map(([e, v]) => (e ? e.message.split(" ")[0] : v)),
        ["OK", "ERR", 2, "ERR", "ERR", 3],
      );
      assert.equal(await r.get("d"), "3");
      assert.equal(await r.exists("e", "m3", "h2"), 0, "the refused commands wrote nothing");
    } finally {
      r.disconnect();
      await ts.stop();
    }
  });
});
