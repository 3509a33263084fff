/**
 * The wire behaviour of one connection: inline commands, QUIT, a protocol error in the middle of a
 * pipeline (earlier replies first, then the error, then the close), limits from the config, Redis 7's
 * limits on a request before AUTH (requirepass), and the reply to a pipeline split into one-byte TCP
 * writes.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startTestServer, type TestServer } from "../../helpers/respServer.js";
import { rawConnect } from "./rawClient.js";

/** Send `req` on a fresh raw connection: the server answers exactly `reply`, then closes it. */
async function expectRepliedAndClosed(port: number, req: string, reply: string): Promise<void> {
  const c = await rawConnect(port);
  c.send(req);
  assert.equal(await c.until(() => false, 300), reply, req);
  assert.ok(c.closed, req);
}

describe("RESP wire behaviour", () => {
  let ts: TestServer;
  before(async () => {
    ts = await startTestServer({ protoMaxBulkLen: 1024 * 1024, protoMaxMultibulkLen: 100 });
  });
  after(async () => {
    await ts.stop();
  });

  test("a client that half-closes after its request (nc -N, shutdown(SHUT_WR)) gets every reply, slow ones included, then the close; a MULTI it never EXECs is not applied", async () => {
    const cases: Array<[string, string]> = [
      ["SAVE\r\n", "+OK\r\n"],
      ["SET hc:a 1\r\nSAVE\r\nINCR hc:a\r\nGET hc:a\r\n", "+OK\r\n+OK\r\n:2\r\n$1\r\n2\r\n"],
      ["MULTI\r\nSET hc:b 1\r\nINCR hc:b\r\nEXEC\r\nBGREWRITEAOF\r\n", "+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n:2\r\n+Background append only file rewriting started\r\n"],
      ["MULTI\r\nSET hc:never 1\r\n", "+OK\r\n+QUEUED\r\n"],
    ];
    for (const [req, reply] of cases) {
      const c = await rawConnect(ts.port);
      c.socket.end(req);
      assert.equal(await c.until(() => false, 3000), reply, req);
      assert.ok(c.closed, `${req}: the server ended the connection`);
    }
    const check = await rawConnect(ts.port);
    check.send("EXISTS hc:never\r\n");
    assert.equal(await check.until((s) => s.endsWith("\r\n")), ":0\r\n");
    check.close();
  });

  test("inline commands and QUIT", async () => {
    const c = await rawConnect(ts.port);
    c.send('set greeting "hello world"\r\nget greeting\nPING\r\nQUIT\r\nPING\r\n');
    const out = await c.until(() => false, 500);
    assert.equal(out, "+OK\r\n$11\r\nhello world\r\n+PONG\r\n+OK\r\n");
    assert.ok(c.closed);
  });

  test("a protocol error mid-pipeline: earlier replies, the error, then the close", async () => {
    const c = await rawConnect(ts.port);
    c.send("*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\n*1\r\n:5\r\n*1\r\n$4\r\nPING\r\n");
    const out = await c.until(() => false, 500);
    assert.equal(out, "+OK\r\n$1\r\n1\r\n-ERR Protocol error: expected '$', got ':'\r\n");
    assert.ok(c.closed);
    assert.ok(ts.server.stats().protocolErrors >= 1);
  });

  test("limits from the config: multibulk length and bulk length", async () => {
    const a = await rawConnect(ts.port);
    a.send("*101\r\n");
    assert.equal(await a.until(() => false, 300), "-ERR Protocol error: invalid multibulk length\r\n");
    assert.ok(a.closed);
    const b = await rawConnect(ts.port);
    b.send(`*2\r\n$3\r\nGET\r\n$${1024 * 1024 + 1}\r\n`);
    assert.equal(await b.until(() => false, 300), "-ERR Protocol error: invalid bulk length\r\n");
    assert.ok(b.closed);
  });

  test("a length with a leading zero or '-0' is a protocol error, as in redis-server", async () => {
    // redis-server 7.0.15's replies to the same bytes; "*-1" is an empty request there too.
    for (const [req, reply] of [
      ["*01\r\n$4\r\nPING\r\n", "-ERR Protocol error: invalid multibulk length\r\n"],
      ["*-0\r\nPING\r\n", "-ERR Protocol error: invalid multibulk length\r\n"],
      ["*1\r\n$04\r\nPING\r\n", "-ERR Protocol error: invalid bulk length\r\n"],
    ] as const) {
      await expectRepliedAndClosed(ts.port, req, reply);
    }
    const d = await rawConnect(ts.port);
    d.send("*-1\r\nPING\r\n");
    assert.equal(await d.until((s) => s.endsWith("\r\n")), "+PONG\r\n");
    d.close();
  });

  test("a pipeline written one byte at a time gets its replies in order", async () => {
    const c = await rawConnect(ts.port);
    const cmds = "*3\r\n$3\r\nSET\r\n$2\r\nbk\r\n$3\r\nabc\r\nAPPEND bk de\r\n*2\r\n$3\r\nGET\r\n$2\r\nbk\r\n";
    for (const ch of cmds) {
      c.send(ch);
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(await c.until((s) => s.endsWith("abcde\r\n")), "+OK\r\n:5\r\n$5\r\nabcde\r\n");
    c.close();
  });

  test("CLIENT SETNAME and HELLO inside MULTI apply to the commands pipelined after the EXEC", async () => {
    // The replies of redis-server 7.0.15 to the same bytes (its EXEC array header goes out in RESP2,
    // before the HELLO inside switches the connection; KeelDB encodes the whole EXEC reply in RESP2).
    const a = await rawConnect(ts.port);
    a.send("MULTI\r\nCLIENT SETNAME foo\r\nEXEC\r\nCLIENT GETNAME\r\n");
    assert.equal(await a.until((s) => s.endsWith("foo\r\n") || s.endsWith("$-1\r\n")), "+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n$3\r\nfoo\r\n");
    a.close();
    const b = await rawConnect(ts.port);
    b.send("MULTI\r\nHELLO 3\r\nEXEC\r\nGET nokey-in-multi\r\n");
    const out = await b.until((s) => /\*0\r\n.+\r\n$/s.test(s));
    assert.ok(out.endsWith("$7\r\nmodules\r\n*0\r\n_\r\n"), `the GET after EXEC answers the RESP3 null: ${JSON.stringify(out)}`);
    b.close();
  });

  test("stats(): connections, commands, keyspace", async () => {
    const s = ts.server.stats();
    assert.ok(s.totalConnectionsReceived >= 4);
    assert.ok(s.totalCommandsProcessed >= 5);
    const db0 = s.keyspace.find((k) => k.db === 0);
    assert.ok(db0 && db0.keys >= 2);
  });
});

describe("RESP wire behaviour with requirepass: Redis 7's limits on unauthenticated requests", () => {
  let ts: TestServer;
  before(async () => {
    // Redis's default bulk limit, so a 200 MB header is refused for authentication, not for size.
    ts = await startTestServer({ requirepass: "secret", protoMaxBulkLen: 512 * 1024 * 1024 });
  });
  after(async () => {
    await ts.stop();
  });

  const mset = (n: number) => `*${n}\r\n$4\r\nMSET\r\n` + "$1\r\nk\r\n$1\r\nv\r\n".repeat((n - 1) / 2);

  test("beyond 10 arguments or a 16 KiB argument before AUTH: the protocol error and the close, as redis-server answers", async () => {
    // redis-server 7.0.15 (requirepass secret) answers these bytes so, and closes after the error.
    for (const [req, reply] of [
      ["*11\r\n", "-ERR Protocol error: unauthenticated multibulk length\r\n"],
      ["*2000000000\r\n", "-ERR Protocol error: unauthenticated multibulk length\r\n"],
      ["*2147483648\r\n", "-ERR Protocol error: invalid multibulk length\r\n"],
      ["*2\r\n$4\r\nAUTH\r\n$16385\r\n", "-ERR Protocol error: unauthenticated bulk length\r\n"],
      ["*2\r\n$4\r\nAUTH\r\n$200000000\r\n", "-ERR Protocol error: unauthenticated bulk length\r\n"],
      ["PING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$20000\r\n", "-NOAUTH Authentication required.\r\n-ERR Protocol error: unauthenticated bulk length\r\n"],
      ["AUTH wrong\r\n*11\r\n", "-WRONGPASS invalid username-password pair or user is disabled.\r\n-ERR Protocol error: unauthenticated multibulk length\r\n"],
      ["*-5\r\n*11\r\n", "-ERR Protocol error: unauthenticated multibulk length\r\n"],
      ["*2\r\n$4\r\nAUTH\r\n$016385\r\n", "-ERR Protocol error: invalid bulk length\r\n"],
    ] as const) {
      await expectRepliedAndClosed(ts.port, req, reply);
    }
  });

  test("within the limits, or after AUTH pipelined just before it, a request is served", async () => {
    const a = await rawConnect(ts.port);
    a.send(`*2\r\n$4\r\nAUTH\r\n$16384\r\n${"x".repeat(16384)}\r\n${mset(9)}`);
    assert.equal(await a.until((s) => s.split("\r\n").length > 2), "-WRONGPASS invalid username-password pair or user is disabled.\r\n-NOAUTH Authentication required.\r\n");
    // AUTH and the large requests in one write: they are read once the AUTH has run.
    a.send(`AUTH secret\r\n${mset(11)}*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$20000\r\n${"y".repeat(20000)}\r\nSTRLEN big\r\n`);
    assert.equal(await a.until((s) => s.endsWith(":20000\r\n")), "-WRONGPASS invalid username-password pair or user is disabled.\r\n-NOAUTH Authentication required.\r\n+OK\r\n+OK\r\n+OK\r\n:20000\r\n");
    assert.ok(!a.closed);
    a.close();
    const b = await rawConnect(ts.port);
    b.send(`HELLO 2 AUTH default secret\r\n${mset(13)}`);
    assert.ok((await b.until((s) => s.endsWith("+OK\r\n"))).endsWith("*0\r\n+OK\r\n"));
    b.close();
  });

  test("once requirepass is removed, a client that connected before is not limited (its password is not required)", async () => {
    const early = await rawConnect(ts.port);
    const admin = await rawConnect(ts.port);
    admin.send('AUTH secret\r\nCONFIG SET requirepass ""\r\n');
    assert.equal(await admin.until((s) => s === "+OK\r\n+OK\r\n"), "+OK\r\n+OK\r\n");
    early.send(mset(11));
    assert.equal(await early.until((s) => s.endsWith("\r\n")), "+OK\r\n");
    admin.send("CONFIG SET requirepass secret\r\n");
    assert.equal(await admin.until((s) => s.length > 10), "+OK\r\n+OK\r\n+OK\r\n");
    early.send(mset(11));
    assert.equal(await early.until((s) => s.length > 5), "+OK\r\n-ERR Protocol error: unauthenticated multibulk length\r\n");
    admin.close();
    early.close();
  });
});
