/**
 * Fuzz of the RESP server over live TCP: random bytes, truncated and mutated frames, huge declared
 * lengths, nested arrays, half-sent large bulks. Each hostile connection must get only well-formed
 * replies, at most one of them a protocol error (then the connection closes) — or simply be closed;
 * meanwhile another client keeps being served correctly, and the process memory stays bounded.
 * KEEL_RESP_FUZZ_TRIALS sets the number of hostile connections (default 150); KEEL_SEED replays one.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { startTestServer } from "../helpers/respServer.js";
import { oneSeed, Rng } from "../helpers/rng.js";
import { rawConnect } from "../server/e2e/rawClient.js";
import { encodeCommand, replyEnd, ReplyReader } from "../server/e2e/replyReader.js";

const SEED = oneSeed(1);
const TRIALS = Number(process.env.KEEL_RESP_FUZZ_TRIALS ?? 150);
const BULK_LIMIT = 1024 * 1024;

const WORDS = ["SET", "GET", "HSET", "MULTI", "EXEC", "PING", "INCR", "DEL", "EXPIRE", "SCAN", "HGETALL", "k", "v", "0", "-1", "99999999999999999999", "EX", "NX"];

function payload(rng: Rng): Buffer {
  const valid = () => encodeCommand(Array.from({ length: rng.range(1, 5) }, () => WORDS[rng.int(WORDS.length)]!));
  switch (rng.int(8)) {
    case 0: {
      const b = Buffer.alloc(rng.range(1, 4000));
      for (let i = 0; i < b.length; i++) b[i] = rng.int(256);
      return b;
    }
    case 1: {
      const v = Buffer.concat([valid(), valid(), valid()]);
      return v.subarray(0, rng.int(v.length));
    }
    case 2: {
      const v = Buffer.concat([valid(), valid(), valid()]);
      for (let i = 0; i < 3; i++) v[rng.int(v.length)] = rng.int(256);
      return v;
    }
    case 3:
      return Buffer.from(rng.int(2) ? `*1\r\n$${rng.range(BULK_LIMIT + 1, 2 ** 40)}\r\n` : `*${rng.range(2 ** 21, 2 ** 50)}\r\n`);
    case 4: {
      let s = "";
      const depth = rng.range(1, 50);
      for (let i = 0; i < depth; i++) s += "*1\r\n";
      return Buffer.from(s + "$1\r\na\r\n");
    }
    case 5:
      return Buffer.concat([valid(), Buffer.from(`*2\r\n$3\r\nGET\r\n$${rng.range(-5, 5)}x\r\n`), valid()]);
    case 6:
      return Buffer.from(Array.from({ length: rng.range(1, 20) }, () => WORDS[rng.int(WORDS.length)]).join(rng.int(2) ? " " : '"') + (rng.int(2) ? "\r\n" : ""));
    default:
      return Buffer.concat(Array.from({ length: rng.range(1, 30) }, valid));
  }
}

/** The replies in `s`: all well-formed; a protocol error only as the last one. */
function checkReplies(s: string, label: string): void {
  const buf = Buffer.from(s, "latin1");
  let pos = 0;
  const replies: string[] = [];
  while (pos < buf.length) {
    const end = replyEnd(buf, pos);
    assert.ok(end > 0, `${label}: incomplete or malformed reply at ${pos}: ${JSON.stringify(s.slice(pos, pos + 80))}`);
    replies.push(buf.toString("latin1", pos, end));
    pos = end;
  }
  const perr = replies.findIndex((r) => r.startsWith("-ERR Protocol error"));
  if (perr >= 0) assert.equal(perr, replies.length - 1, `${label}: replies after a protocol error`);
}

test("hostile connections get well-formed replies or a close; others keep being served", async () => {
  const ts = await startTestServer({ protoMaxBulkLen: BULK_LIMIT, protoMaxMultibulkLen: 1024 * 1024 });
  const good = await ReplyReader.open(ts.port);
  try {
    const rng = new Rng(SEED);
    for (let t = 0; t < TRIALS; t++) {
      const label = `seed ${SEED} trial ${t} (replay: KEEL_SEED=${SEED} node --test dist/test/fuzz/resp.test.js)`;
      const raw = await rawConnect(ts.port);
      const data = payload(rng);
      // Sent in random pieces, to exercise the parser's split handling over real TCP.
      for (let pos = 0; pos < data.length; ) {
        const n = rng.range(1, Math.max(1, data.length));
        raw.send(data.subarray(pos, pos + n));
        pos += n;
      }
      const out = await raw.until((s) => s.includes("-ERR Protocol error"), rng.int(4) === 0 ? 60 : 15);
      raw.close();
      try {
        checkReplies(out.includes("-ERR Protocol error") ? out : out.slice(0, lastComplete(out)), label);
      } catch (e) {
        throw new Error(`${label}: payload ${JSON.stringify(data.toString("latin1").slice(0, 200))}`, { cause: e });
      }
      if (t % 10 === 0) {
        assert.equal(await good.call("SET", "good", String(t)), "+OK\r\n", label);
        assert.equal(await good.call("GET", "good"), `$${String(t).length}\r\n${t}\r\n`, label);
      }
    }
    assert.ok(ts.server.stats().protocolErrors > 0);
    assert.equal(await good.call("PING"), "+PONG\r\n");
  } finally {
    good.close();
    await ts.stop();
  }
});

function lastComplete(s: string): number {
  const buf = Buffer.from(s, "latin1");
  let pos = 0;
  for (;;) {
    let end: number;
    try {
      end = replyEnd(buf, pos);
    } catch {
      return pos;
    }
    if (end < 0) return pos;
    pos = end;
  }
}

test("memory stays bounded: many connections each holding a half-sent bulk near the limit", async () => {
  const ts = await startTestServer({ protoMaxBulkLen: BULK_LIMIT });
  const conns = [];
  try {
    global.gc?.();
    const before = process.memoryUsage().rss;
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    for (let i = 0; i < 40; i++) {
      const raw = await rawConnect(ts.port);
      conns.push(raw);
      raw.send(`*2\r\n$3\r\nGET\r\n$${BULK_LIMIT}\r\n`);
      for (let sent = 0; sent + chunk.length < BULK_LIMIT; sent += chunk.length) raw.send(chunk);
    }
    // Declaring more than the limit is refused at once, before anything is buffered.
    const over = await rawConnect(ts.port);
    over.send(`*2\r\n$3\r\nSET\r\n$${BULK_LIMIT + 1}\r\n`);
    over.send(Buffer.alloc(512 * 1024));
    assert.equal(await over.until((s) => s.includes("\r\n")), "-ERR Protocol error: invalid bulk length\r\n");
    await sleep(300);
    const grown = process.memoryUsage().rss - before;
    // 40 connections x 1 MiB of partial bulk is ~40 MiB (plus socket buffers); 400 MiB is generous.
    assert.ok(grown < 400 * 1024 * 1024, `rss grew by ${grown}`);
    const good = await ReplyReader.open(ts.port);
    assert.equal(await good.call("PING"), "+PONG\r\n");
    good.close();
    over.close();
  } finally {
    for (const c of conns) c.close();
    await ts.stop();
  }
});
