/**
 * Expiry edges against a real server: changing only the expiry of a string stored under a larger
 * maxValueSize than the server now has is that command's documented error (inside MULTI/EXEC the
 * other commands apply); INFO stats expired_keys counts keys removed lazily by the commands that
 * meet them, as Redis does, not only those the sweep removes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { startTestServer } from "../../helpers/respServer.js";

function client(port: number): Redis {
  return new Redis({ port, maxRetriesPerRequest: 0, retryStrategy: () => null });
}

test("PEXPIRE, PERSIST and GETEX of a string stored under a larger maxValueSize: the string-limit error before any write; in EXEC the other commands apply", async () => {
  const dir = mkdtempSync(join(tmpdir(), "keel-lowered-"));
  try {
    const first = await startTestServer({}, dir);
    const a = client(first.port);
    await a.set("big", Buffer.alloc(200_000, 97), "PX", 100_000_000);
    await a.set("big2", Buffer.alloc(200_000, 98));
    await a.set("other", "0");
    a.disconnect();
    await first.stop();

    const second = await startTestServer({}, dir, { maxValueSize: 100 * 1024 });
    const b = client(second.port);
    try {
      for (const call of [() => b.pexpire("big2", 100_000_000), () => b.persist("big"), () => b.getex("big2", "PX", 5_000_000)]) {
        // Before: the engine's "value of 200009 bytes exceeds maxValueSize 102400", and in EXEC
        // a rollback of the whole block.
        await assert.rejects(call(), /string of 200000 bytes exceeds the longest string KeelDB stores/);
      }
      assert.equal(await b.strlen("big"), 200_000, "the value is still there and readable");
      assert.ok((await b.pttl("big")) > 0, "its expiry unchanged");
      const out = await b.multi().incr("other").pexpire("big2", 1_000_000).exec();
      assert.equal(out?.[0]?.[1], 1);
      assert.match(String(out?.[1]?.[0]), /exceeds the longest string/);
      assert.equal(await b.get("other"), "1", "the INCR of the block applied");
      // Deleting it, or an expiry in the past (which deletes), needs no rewrite: allowed.
      assert.equal(await b.pexpire("big", -1), 1);
      assert.equal(await b.exists("big"), 0);
    } finally {
      b.disconnect();
      await second.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("INFO stats expired_keys counts keys that writes met expired (lazy expiry), each once", async () => {
  const ts = await startTestServer();
  const r = client(ts.port);
  try {
    const expiredKeys = async () => Number(/expired_keys:(\d+)/.exec(await r.info("stats"))![1]);
    const before = await expiredKeys();
    for (let i = 0; i < 20; i++) await r.set(`k${i}`, "v", "PX", 20);
    await sleep(40);
    for (let i = 0; i < 20; i++) assert.equal(await r.incr(`k${i}`), 1, "the expired key was gone");
    // Each key was removed once: by the INCR that met it, or by the sweep if it came first.
    // Before, only the sweep's removals counted (2 of 20 in the hunt's run).
    assert.equal((await expiredKeys()) - before, 20);
  } finally {
    r.disconnect();
    await ts.stop();
  }
});
