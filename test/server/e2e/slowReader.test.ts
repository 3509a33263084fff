/**
 * A client that does not read its replies: the server's memory for it stays near the documented
 * bound (32 MiB of replies waiting), even when one small read holds many commands with large
 * replies, and every reply still arrives, complete and in order, once the client reads. A QUIT or a
 * protocol error after a large reply does not cut it off for a client that starts reading late.
 */
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { startTestServer, type TestServer } from "../../helpers/respServer.js";

const MIB = 1024 * 1024;

/** Wait until the server's command count stops moving (500 ms unchanged), then return it. */
async function settledCommands(ts: TestServer): Promise<number> {
  let last = -1;
  for (;;) {
    const n = ts.server.stats().totalCommandsProcessed;
    if (n === last) return n;
    last = n;
    await sleep(500);
  }
}

/** Resume the paused socket and read until `expected` bytes came (or it closed); then destroy it. */
async function readAll(s: Socket, expected: number): Promise<Buffer> {
  const got: Buffer[] = [];
  let n = 0;
  await new Promise<void>((res, rej) => {
    s.on("data", (d: Buffer) => {
      got.push(d);
      n += d.length;
      if (n >= expected) res();
    });
    s.on("error", rej);
    s.on("close", () => res());
    s.resume();
  });
  s.destroy();
  return Buffer.concat(got);
}

describe("slow readers", () => {
  let ts: TestServer;
  let r: Redis;
  before(async () => {
    ts = await startTestServer();
    r = new Redis({ port: ts.port, maxRetriesPerRequest: 0, retryStrategy: () => null });
    await r.set("big", Buffer.alloc(2 * MIB, 120));
  });
  after(async () => {
    r.disconnect();
    await ts.stop();
  });

  test("100 GETs of 2 MiB in one small write: dispatch stops near the 32 MiB bound, resumes as the client reads", async () => {
    const s = connect({ port: ts.port, host: "127.0.0.1" });
    await new Promise((res) => s.once("connect", res));
    s.pause();
    const base = await settledCommands(ts);
    // An ECHO after every 10th GET checks the order of the replies.
    let req = "";
    for (let i = 0; i < 100; i++) req += i % 10 === 9 ? `GET big\r\nECHO m${i}\r\n` : "GET big\r\n";
    s.write(req);
    const dispatched = (await settledCommands(ts)) - base;
    // 32 MiB is 16 replies; the kernel's socket buffers take a few more. Not 110.
    assert.ok(dispatched < 50, `${dispatched} commands dispatched for a client that reads nothing`);

    const header = Buffer.from(`$${2 * MIB}\r\n`);
    let expected = 0;
    for (let i = 0; i < 100; i++) expected += header.length + 2 * MIB + 2 + (i % 10 === 9 ? `$${`m${i}`.length}\r\nm${i}\r\n`.length : 0);
    const all = await readAll(s, expected);
    assert.equal(all.length, expected);
    let at = 0;
    for (let i = 0; i < 100; i++) {
      assert.ok(all.subarray(at, at + header.length).equals(header), `reply ${i} is the 2 MiB bulk`);
      at += header.length;
      assert.equal(all.indexOf(Buffer.from("\r\n"), at), at + 2 * MIB, `reply ${i} has 2 MiB`);
      at += 2 * MIB + 2;
      if (i % 10 === 9) {
        const echo = `$${`m${i}`.length}\r\nm${i}\r\n`;
        assert.equal(all.subarray(at, at + echo.length).toString("latin1"), echo);
        at += echo.length;
      }
    }
    assert.equal((await settledCommands(ts)) - base, 110);
  });

  test("reads pipelined behind the connection's own writes (SET, GET big) x 200 from a client that reads nothing: dispatch stops after 64 reads, not at 4096 replies; everything arrives in order once it reads", async () => {
    await r.set("big1", Buffer.alloc(MIB, 122));
    const s = connect({ port: ts.port, host: "127.0.0.1" });
    await new Promise((res) => s.once("connect", res));
    s.pause();
    const base = await settledCommands(ts);
    let req = "";
    for (let i = 0; i < 200; i++) req += `SET a${i} 1\r\nGET big1\r\n`;
    s.write(req);
    const dispatched = (await settledCommands(ts)) - base;
    // Each GET waits behind its SET: at most 64 of them run in a group (64 MiB of replies), then the
    // 32 MiB output bound holds. Before the cap all 400 commands ran (200 MiB of replies held).
    assert.ok(dispatched < 250, `${dispatched} commands dispatched for a client that reads nothing`);
    const one = Buffer.concat([Buffer.from("+OK\r\n"), Buffer.from(`$${MIB}\r\n`), Buffer.alloc(MIB, 122), Buffer.from("\r\n")]);
    const expected = 200 * one.length;
    const all = await readAll(s, expected);
    assert.equal(all.length, expected);
    for (let i = 0; i < 200; i++) assert.ok(all.subarray(i * one.length, (i + 1) * one.length).equals(one), `pair ${i} in order`);
    assert.equal((await settledCommands(ts)) - base, 400);
  });

  test("writes that reply with a value (GETEX x 300 of 1 MiB) and multi-value reads behind writes (SET, MGET of 10 x 1 MiB) x 100 from a client that reads nothing: dispatch stops near 64 values, not at 4096 replies", async () => {
    await r.set("big1", Buffer.alloc(MIB, 122));
    const bulk = Buffer.concat([Buffer.from(`$${MIB}\r\n`), Buffer.alloc(MIB, 122), Buffer.from("\r\n")]);
    for (const [one, count, reply, bound] of [
      ["GETEX big1\r\n", 300, bulk, 150],
      [`SET b 1\r\nMGET${" big1".repeat(10)}\r\n`, 100, Buffer.concat([Buffer.from("+OK\r\n*10\r\n"), ...Array<Buffer>(10).fill(bulk)]), 60],
    ] as const) {
      const s = connect({ port: ts.port, host: "127.0.0.1" });
      await new Promise((res) => s.once("connect", res));
      s.pause();
      const base = await settledCommands(ts);
      s.write(one.repeat(count));
      const perRound = one.split("\r\n").length - 1;
      const dispatched = (await settledCommands(ts)) - base;
      // A reply made in the write queue has no size until its group runs: before the value budget,
      // every GETEX ran (300 MiB held) and 64 MGETs (640 MiB).
      assert.ok(dispatched < bound, `${one.trim()}: ${dispatched} commands dispatched for a client that reads nothing`);
      const all = await readAll(s, count * reply.length);
      assert.equal(all.length, count * reply.length);
      for (let i = 0; i < count; i++) assert.ok(all.subarray(i * reply.length, (i + 1) * reply.length).equals(reply), `${one.trim()}: reply ${i} in order`);
      assert.equal((await settledCommands(ts)) - base, count * perRound);
    }
  });

  test("SAVE, then 100 GETs of 2 MiB from a client that reads nothing: the replies ready behind the pending SAVE count against the 32 MiB bound", async () => {
    const s = connect({ port: ts.port, host: "127.0.0.1" });
    await new Promise((res) => s.once("connect", res));
    s.pause();
    const base = await settledCommands(ts);
    s.write("SAVE\r\n" + "GET big\r\n".repeat(100));
    const dispatched = (await settledCommands(ts)) - base;
    // Before: the GETs' replies, ready but behind SAVE's, were counted nowhere: all 100 ran.
    assert.ok(dispatched < 50, `${dispatched} commands dispatched for a client that reads nothing`);
    const one = Buffer.concat([Buffer.from(`$${2 * MIB}\r\n`), Buffer.alloc(2 * MIB, 120), Buffer.from("\r\n")]);
    const all = await readAll(s, 5 + 100 * one.length);
    assert.equal(all.subarray(0, 5).toString("latin1"), "+OK\r\n");
    assert.equal(all.length, 5 + 100 * one.length);
    for (let i = 0; i < 100; i++) assert.ok(all.subarray(5 + i * one.length, 5 + (i + 1) * one.length).equals(one), `reply ${i} in order`);
    assert.equal((await settledCommands(ts)) - base, 101);
  });

  test("QUIT or a protocol error after a 24 MiB reply (under the 32 MiB bound, so the QUIT is dispatched at once): a client that starts reading 3 s later gets all of it", async () => {
    const big = await startTestServer({ protoMaxBulkLen: 64 * MIB });
    try {
      const c = new Redis({ port: big.port, maxRetriesPerRequest: 0, retryStrategy: () => null });
      await c.set("huge", Buffer.alloc(24 * MIB, 121));
      c.disconnect();
      const bulk = `$${24 * MIB}\r\n`.length + 24 * MIB + 2;
      for (const [tail, end] of [
        ["QUIT\r\n", "+OK\r\n"],
        ["*1\r\n:5\r\n", "-ERR Protocol error: expected '$', got ':'\r\n"],
      ] as const) {
        const s = connect({ port: big.port, host: "127.0.0.1" });
        await new Promise((res) => s.once("connect", res));
        s.pause();
        s.write(`GET huge\r\n${tail}`);
        // Longer than the 2 s the server used to give a closing connection in all.
        await sleep(3000);
        const got: Buffer[] = [];
        await new Promise<void>((res) => {
          s.on("data", (d: Buffer) => got.push(d));
          s.on("error", () => res());
          s.on("close", () => res());
          s.resume();
        });
        const all = Buffer.concat(got);
        assert.equal(all.length, bulk + end.length, `after ${JSON.stringify(tail)}: the whole reply, then ${JSON.stringify(end)}`);
        assert.equal(all.subarray(bulk).toString("latin1"), end);
      }
    } finally {
      await big.stop();
    }
  });
});
