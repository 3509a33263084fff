/**
 * appendfsync always: the server replies to a write only once it is durable. The seeds' first known
 * weakness is a server that acknowledges under "fsync always" before the fsync; this test would
 * see it. The server runs on a CrashFileSystem with the open options `keel serve` derives from
 * appendfsync (durabilityFor); the moment a client reads a reply, the test takes a power-cut copy
 * of the disk (unsynced writes dropped or torn by the seed). Every copy, opened by a new server,
 * must hold every write acknowledged before it was taken (a write whose reply is still on its way
 * may be there or not).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { CrashFileSystem } from "../../../src/io/CrashFileSystem.js";
import { durabilityFor } from "../../../src/server/config/loadConfig.js";
import { removeStaleLock } from "../../helpers/crashCheck.js";
import { startTestServer } from "../../helpers/respServer.js";

const ROOT = "/srv";
const DIR = `${ROOT}/db`;

test("appendfsync always: every write a client has seen acknowledged is in a power-cut copy of the disk taken at that moment (SET, INCR, HSET, MSET, EXEC, DEL)", async () => {
  const fs = new CrashFileSystem();
  const ts = await startTestServer({ appendfsync: "always" }, ROOT, { fs, ...durabilityFor("always") });
  // Per copy: what each key must hold (null: deleted), as acknowledged before the copy was taken,
  // and what a write in flight then (sent, its reply not yet read) may have made it.
  const copies: Array<{ fs: CrashFileSystem; expect: Map<string, string | null>; inFlight: Map<string, string | null> }> = [];
  const acked = new Map<string, string | null>();
  const inFlight = new Map<string, string | null>();
  let seed = 1;
  const snapshot = () => copies.push({ fs: fs.crashedCopy(seed++), expect: new Map(acked), inFlight: new Map(inFlight) });
  const send = async <T>(writes: Array<[string, string | null]>, command: Promise<T>): Promise<T> => {
    for (const [k, v] of writes) inFlight.set(k, v);
    const reply = await command;
    for (const [k, v] of writes) {
      inFlight.delete(k);
      acked.set(k, v);
    }
    return reply;
  };
  const clients = Array.from({ length: 4 }, () => new Redis({ port: ts.port, lazyConnect: true, maxRetriesPerRequest: 0 }));
  try {
    await Promise.all(clients.map((c) => c.connect()));
    await Promise.all(
      clients.map(async (c, n) => {
        for (let i = 0; i < 12; i++) {
          const k = `c${n}:k${i}`;
          const count = String(5 * (Math.floor(i / 6) + 1));
          switch (i % 6) {
            case 0:
              assert.equal(await send([[k, `v${i}`]], c.set(k, `v${i}`)), "OK");
              break;
            case 1:
              assert.equal(await send([[`c${n}:counter`, count]], c.incrby(`c${n}:counter`, 5)), Number(count));
              break;
            case 2:
              assert.equal(await send([[`c${n}:h/f${i}`, `x${i}`]], c.hset(`c${n}:h`, `f${i}`, `x${i}`)), 1);
              break;
            case 3:
              assert.equal(await send([[k, "m1"], [`${k}b`, "m2"]], c.mset(k, "m1", `${k}b`, "m2")), "OK");
              break;
            case 4: {
              const r = await send([[k, "in-exec"], [`${k}b`, "in-exec-2"]], c.multi().set(k, "in-exec").set(`${k}b`, "in-exec-2").exec());
              assert.deepEqual(r, [[null, "OK"], [null, "OK"]]);
              break;
            }
            case 5:
              assert.equal(await send([[`c${n}:k${i - 5}`, null]], c.del(`c${n}:k${i - 5}`)), 1);
              break;
          }
          snapshot(); // the reply has been read: it must be durable by now
        }
      }),
    );
  } finally {
    for (const c of clients) c.disconnect();
    await ts.stop();
  }
  assert.equal(copies.length, 48);
  for (const [i, copy] of copies.entries()) {
    removeStaleLock(copy.fs, DIR);
    const back = await startTestServer({ appendfsync: "always" }, ROOT, { fs: copy.fs, ...durabilityFor("always") });
    const r = new Redis({ port: back.port, maxRetriesPerRequest: 0 });
    try {
      for (const [key, want] of copy.expect) {
        const got = key.includes("/") ? await r.hget(key.split("/")[0]!, key.split("/")[1]!) : await r.get(key);
        if (copy.inFlight.has(key) && got === copy.inFlight.get(key)) continue;
        assert.equal(got, want, `copy ${i} (crash seed ${i + 1}): ${key} was acknowledged as ${want}`);
      }
    } finally {
      r.disconnect();
      await back.stop();
    }
  }
});
