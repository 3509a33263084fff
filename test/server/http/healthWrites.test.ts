/**
 * /health and INFO persistence against real failures (no mocks):
 * - a damaged page on the keyspace's read path (resp:N:keys: the server never uses the default
 *   sub-database) fails the `read` check, while every GET fails with CORRUPT;
 * - a write that cannot be written (ENOSPC creating a log segment, injected with FaultFileSystem
 *   under a real RESP server) makes aof_last_write_status err and fails the `write` check, until a
 *   write succeeds again.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { Redis } from "ioredis";
import { open } from "../../../src/index.js";
import { FaultFileSystem } from "../../../src/io/FaultFileSystem.js";
import { NodeFileSystem } from "../../../src/io/NodeFileSystem.js";
import { healthCheck } from "../../../src/server/http/healthCheck.js";
import { startHttpServer } from "../../../src/server/http/startHttpServer.js";
import { ServerMetrics } from "../../../src/server/metrics/ServerMetrics.js";
import { KeelPersistence } from "../../../src/server/persistence/KeelPersistence.js";
import { startRespServer } from "../../../src/server/RespServer.js";
import { testConfig } from "../../helpers/respServer.js";

const silent = pino({ level: "silent" });
const LIMITS = { minFreeBytes: 0, maxDurableLag: 0, maxAppliedLag: 0 };

function tmp(t: { after: (fn: () => void) => void }): string {
  const d = mkdtempSync(join(tmpdir(), "keel-health-"));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

test("a damaged branch page of the keyspace fails the read check (the default sub-database is empty)", async (t) => {
  const dir = join(tmp(t), "db");
  const db = await open(dir, { durability: "strict" });
  const keys = db.openDB("resp:0:keys", { keyEncoding: "binary", encoding: "binary" });
  await keys.transaction((tx) => {
    for (let i = 0; i < 5000; i++) tx.put(Buffer.from(`key:${i}`), Buffer.alloc(110, 0x76));
  });
  const pageSize = db.getStats().pageSize;
  await db.checkpoint();
  await db.close();
  // Damage every branch page (type byte 2) past the header pages, as a bad sector would.
  const file = join(dir, "data.keel");
  const b = readFileSync(file);
  let damaged = 0;
  for (let p = 2; p < b.length / pageSize; p++) {
    if (b[p * pageSize] === 2) {
      b.fill(0x58, p * pageSize + 100, p * pageSize + 120);
      damaged++;
    }
  }
  assert.ok(damaged > 0, "the keyspace tree has branch pages");
  writeFileSync(file, b);

  const again = await open(dir, { durability: "strict" });
  t.after(() => again.close());
  const sub = again.openDB("resp:0:keys", { keyEncoding: "binary", encoding: "binary" });
  assert.throws(() => sub.get(Buffer.from("key:1")), (e: unknown) => (e as { code?: string }).code === "CORRUPT", "the data is unreadable");
  const h = healthCheck(again, dir, LIMITS, false);
  assert.equal(h.status, "fail", JSON.stringify(h));
  const read = h.reasons.find((r) => r.check === "read");
  assert.ok(read, JSON.stringify(h.reasons));
  assert.equal(read.code, "CORRUPT");
  assert.match(read.message, /resp:0:keys/);
});

test("a healthy keyspace passes the read check, every sub-database probed", async (t) => {
  const dir = join(tmp(t), "db");
  const db = await open(dir, { durability: "strict" });
  t.after(() => db.close());
  for (const name of ["resp:0:keys", "resp:3:hash"]) {
    const s = db.openDB(name, { keyEncoding: "binary", encoding: "binary" });
    await s.transaction((tx) => {
      for (let i = 0; i < 3000; i++) tx.put(Buffer.from(`k${i}`), Buffer.alloc(50, 1));
    });
  }
  await db.put("plain", 1);
  const h = healthCheck(db, dir, LIMITS, false);
  assert.deepEqual(h.reasons, []);
});

test("writes failing with FULL: aof_last_write_status err and /health 503 (write) until a write succeeds", async (t) => {
  const root = tmp(t);
  const dir = join(root, "db");
  const ffs = new FaultFileSystem(new NodeFileSystem());
  const db = await open(dir, { fs: ffs, durability: "strict", walSegmentMaxBytes: 64 * 1024 });
  const config = testConfig(dir, { saveRules: [], autoAofRewritePercentage: 0 });
  const metrics = new ServerMetrics(db);
  const persistence = new KeelPersistence(db, config, silent);
  const resp = await startRespServer({ db, config, persistence, logger: silent, onShutdown: () => {} });
  const http = await startHttpServer({ db, dir, bind: "127.0.0.1", port: 0, health: LIMITS, metrics, persistence, respStats: () => resp.stats(), shuttingDown: () => false, logger: silent });
  const r = new Redis({ port: resp.port, lazyConnect: true, maxRetriesPerRequest: 0 });
  await r.connect();
  t.after(async () => {
    r.disconnect();
    await http.close();
    await resp.close();
    persistence.stop();
    ffs.clearFaults();
    await db.close();
  });
  const health = async () => {
    const res = await fetch(`http://127.0.0.1:${http.port}/health`);
    return { status: res.status, body: (await res.json()) as { reasons: Array<{ check: string; code?: string }> } };
  };
  const writeStatus = async () => /aof_last_write_status:(\w+)/.exec(await r.info("persistence"))?.[1];

  await r.set("before", "1");
  assert.equal(await writeStatus(), "ok");
  assert.equal((await health()).status, 200);

  // The disk is full: the next log segment cannot be created.
  ffs.failAt(1, { kinds: ["open"], errno: "ENOSPC", persistent: true });
  let failure: Error | undefined;
  for (let i = 0; i < 500 && !failure; i++) {
    await r.set(`k${i}`, "x".repeat(1000)).catch((e: Error) => (failure = e));
  }
  assert.ok(failure, "a write failed");
  assert.match(failure.message, /KeelDB FULL/);
  assert.equal(db.txlogWatermarks().failed, undefined, "the log itself has not failed (reads and later writes work)");
  assert.equal(await r.get("before"), "1", "reads still work");
  assert.equal(await writeStatus(), "err");
  const h = await health();
  assert.equal(h.status, 503);
  assert.deepEqual(
    h.body.reasons.map((x) => [x.check, x.code]),
    [["write", "FULL"]],
  );
  // A read does not clear it; a successful write does.
  await r.get("before");
  assert.equal(await writeStatus(), "err");
  ffs.clearFaults();
  assert.equal(await r.set("after", "1"), "OK");
  assert.equal(await writeStatus(), "ok");
  assert.equal((await health()).status, 200);
});
