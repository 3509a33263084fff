/**
 * The operations HTTP listener on a real database: /health 200 (real read probe, lag, disk),
 * 503 with reasons (disk below the minimum; a closed database), /metrics in Prometheus text
 * format with the documented metric names and live values, /stats JSON, 404 and 405.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { open } from "../../../src/index.js";
import { resolveConfig } from "../../../src/server/config/resolveConfig.js";
import { startHttpServer } from "../../../src/server/http/startHttpServer.js";
import { memoryInfo } from "../../../src/server/http/memoryInfo.js";
import { METRIC_NAMES, ServerMetrics } from "../../../src/server/metrics/ServerMetrics.js";
import { KeelPersistence } from "../../../src/server/persistence/KeelPersistence.js";
import type { RespServerStats } from "../../../src/server/ServerContext.js";

const silent = pino({ level: "silent" });

let keyspace: RespServerStats["keyspace"] = [{ db: 0, keys: 42, expires: 2 }];
const respStats: RespServerStats = {
  connectedClients: 3,
  totalConnectionsReceived: 7,
  totalCommandsProcessed: 1234,
  rejectedConnections: 1,
  protocolErrors: 0,
  statsEpoch: 0,
  get keyspace() {
    return keyspace;
  },
};

async function setup(t: { after: (fn: () => Promise<void> | void) => void }, minFreeBytes = 0, idleMs?: number, closeGraceMs?: number) {
  const root = mkdtempSync(join(tmpdir(), "keel-http-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, "db");
  const config = resolveConfig(`save_rules = []\n[health]\nmin_free_bytes = ${minFreeBytes}`, null, { dir }, "/");
  const db = await open(dir);
  const metrics = new ServerMetrics(db);
  metrics.attach();
  metrics.setRespStats(() => respStats);
  const persistence = new KeelPersistence(db, config.server, silent, { observe: metrics.observePersistence });
  const http = await startHttpServer({
    db,
    dir,
    bind: "127.0.0.1",
    port: 0,
    health: config.health,
    metrics,
    persistence,
    respStats: () => respStats,
    shuttingDown: () => false,
    logger: silent,
    ...(idleMs !== undefined ? { idleMs } : {}),
    ...(closeGraceMs !== undefined ? { closeGraceMs } : {}),
  });
  t.after(async () => {
    metrics.detach();
    await http.close();
    await db.close();
  });
  const get = async (path: string, init?: RequestInit) => {
    const r = await fetch(`http://127.0.0.1:${http.port}${path}`, init);
    return { status: r.status, type: r.headers.get("content-type") ?? "", body: await r.text() };
  };
  return { db, persistence, get, dir, port: http.port, http, metrics };
}

test("/health is 200 with the read probe, the LSNs, the lag and free disk", async (t) => {
  const { db, get } = await setup(t);
  await db.put("a", 1);
  const r = await get("/health");
  assert.equal(r.status, 200, r.body);
  assert.match(r.type, /application\/json/);
  const h = JSON.parse(r.body) as { status: string; reasons: unknown[]; lsn: { committed: number; durable: number }; lag: { durable: number }; disk: { freeBytes: number } };
  assert.equal(h.status, "ok");
  assert.deepEqual(h.reasons, []);
  const w = db.txlogWatermarks();
  assert.equal(h.lsn.committed, w.lastCommittedLsn);
  assert.equal(h.lsn.durable, w.lastCommittedLsn, "strict: durable = committed");
  assert.equal(h.lag.durable, 0);
  assert.ok(h.disk.freeBytes > 0);
});

test("/health is 503 naming the reason: free disk under the minimum; a closed database fails the read probe", async (t) => {
  const { db, get } = await setup(t, Number.MAX_SAFE_INTEGER);
  const r = await get("/health");
  assert.equal(r.status, 503);
  const h = JSON.parse(r.body) as { status: string; reasons: Array<{ check: string }> };
  assert.equal(h.status, "fail");
  assert.deepEqual(h.reasons.map((x) => x.check), ["disk"]);
  await db.close();
  const r2 = await get("/health");
  assert.equal(r2.status, 503);
  const h2 = JSON.parse(r2.body) as { reasons: Array<{ check: string; code?: string }> };
  assert.ok(h2.reasons.some((x) => x.check === "read" && x.code === "CLOSED"), r2.body);
});

test("/metrics is Prometheus text with every documented metric, fed by real commits, syncs, checkpoints and saves", async (t) => {
  const { db, persistence, get } = await setup(t);
  for (let i = 0; i < 20; i++) db.put(`k${i}`, i);
  await db.flushed();
  await db.put("x", 1);
  await db.checkpoint();
  await persistence.save();
  const r = await get("/metrics");
  assert.equal(r.status, 200);
  assert.match(r.type, /^text\/plain; version=0\.0\.4/);
  const lines = r.body.split("\n");
  // Text format: comment lines (# HELP / # TYPE) and samples `name{labels} value`.
  for (const l of lines) {
    if (l === "" || l.startsWith("# HELP ") || l.startsWith("# TYPE ")) continue;
    assert.match(l, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? (-?[0-9.]+(e[+-]?[0-9]+)?|nan|[+-]inf)( -?[0-9]+)?$/i, `sample line: ${l}`);
  }
  for (const name of METRIC_NAMES) assert.ok(lines.some((l) => l.startsWith(`# TYPE ${name} `)), `metric ${name} present`);
  const value = (sample: string): number => {
    const l = lines.find((x) => x.startsWith(`${sample} `));
    assert.ok(l, `sample ${sample}`);
    return Number(l.split(" ")[1]);
  };
  // The first write of a new database also creates its default database (one more commit).
  assert.ok(value("keel_commits_total") >= 2);
  assert.ok(value("keel_commit_ops_total") >= 21);
  assert.ok(value("keel_commit_group_size_count") >= 2, "at least two groups: the burst of 20 puts and the single put");
  assert.equal(value("keel_commit_group_size_sum"), value("keel_commits_total"), "every commit belongs to one group");
  assert.equal(value("keel_commit_group_writers_sum"), 21, "the 20 puts and the single put; checkpoint and save tasks are not writers");
  assert.equal(value('keel_commit_group_writers_bucket{le="16"}'), 1, "only the single put's group has at most 16 writers");
  assert.equal(value('keel_commit_group_writers_bucket{le="32"}'), 2, "the 20 puts of one tick share a group");
  assert.ok(value('keel_wal_syncs_total{mode="inline"}') >= 2);
  assert.ok(value('keel_wal_sync_seconds_count{mode="inline"}') >= 2);
  assert.ok(value("keel_checkpoint_seconds_count") >= 1);
  assert.ok(value("keel_checkpoints_total") >= 1);
  assert.equal(value('keel_snapshot_seconds_count{job="save"}'), 1);
  assert.ok(value("keel_write_group_wait_seconds_count") >= 2);
  assert.equal(value('keel_lsn{kind="committed"}'), db.txlogWatermarks().lastCommittedLsn);
  assert.equal(value("keel_entries"), 21);
  assert.equal(value("keel_connected_clients"), 3);
  assert.equal(value("keel_commands_processed_total"), 1234);
  assert.equal(value('keel_keys{db="0"}'), 42);
  // Counters from cumulative sources only go up across scrapes.
  const again = await get("/metrics");
  assert.ok(again.body.includes("keel_commands_processed_total 1234"));
  // A database emptied since (FLUSHDB): the keyspace no longer lists it, and its gauge reads 0.
  const listed = keyspace;
  keyspace = [{ db: 3, keys: 5, expires: 0 }];
  try {
    const emptied = (await get("/metrics")).body.split("\n");
    assert.ok(emptied.includes('keel_keys{db="0"} 0'), "db 0, emptied, reads 0");
    assert.ok(emptied.includes('keel_keys{db="3"} 5'));
  } finally {
    keyspace = listed;
  }
});

test("/stats is JSON with getStats, the watermarks, the server and persistence; unknown paths 404, POST 405", async (t) => {
  const { db, get } = await setup(t);
  await db.put("a", 1);
  const r = await get("/stats");
  assert.equal(r.status, 200);
  const s = JSON.parse(r.body) as { stats: { entries: number }; watermarks: { lastDurableLsn: number; durability: string }; server: RespServerStats; persistence: Record<string, unknown> };
  assert.equal(s.stats.entries, 1);
  assert.equal(s.watermarks.lastDurableLsn, db.txlogWatermarks().lastDurableLsn);
  assert.equal(s.watermarks.durability, "strict");
  assert.equal(s.server.totalCommandsProcessed, 1234);
  assert.equal(s.persistence.aof_enabled, 1);
  assert.equal((await get("/nope")).status, 404);
  assert.equal((await get("/health", { method: "POST" })).status, 405);
});

test("INFO memory: used_memory and friends from process.memoryUsage()", async (t) => {
  const { db } = await setup(t);
  const m = Object.fromEntries(memoryInfo(db));
  for (const k of ["used_memory", "used_memory_rss", "used_memory_peak", "used_memory_human", "maxmemory", "keel_page_cache_pages"]) assert.ok(k in m, k);
  assert.ok((m.used_memory as number) > 0);
});

test("/metrics counters fed from RESP stats: a CONFIG RESETSTAT (statsEpoch) counts all of the new value even when it grew past the old one; a scrape while the stats cannot be read (closed database) keeps the last values", async (t) => {
  const root = mkdtempSync(join(tmpdir(), "keel-http-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const db = await open(join(root, "db"));
  t.after(() => db.close());
  const metrics = new ServerMetrics(db);
  let s: RespServerStats | null = { ...respStats, totalCommandsProcessed: 104, statsEpoch: 0, keyspace: [] };
  metrics.setRespStats(() => {
    if (!s) throw new Error("the database is closed");
    return s;
  });
  const commands = async () => {
    const line = (await metrics.registry.metrics()).split("\n").find((l) => l.startsWith("keel_commands_processed_total "));
    return Number(line?.split(" ")[1]);
  };
  assert.equal(await commands(), 104);
  s = { ...s, totalCommandsProcessed: 301, statsEpoch: 1 }; // reset, then 301 commands
  assert.equal(await commands(), 405, "nothing counted before the reset is lost, nothing after it either");
  s = { ...s, totalCommandsProcessed: 310 };
  assert.equal(await commands(), 414);
  s = null;
  assert.equal(await commands(), 414, "the scrape does not throw; the counter keeps its value");
});

test("INFO memory: used_memory counts Buffer memory once (process.memoryUsage's external already holds arrayBuffers)", async (t) => {
  const { db } = await setup(t);
  const big = Buffer.alloc(64 << 20, 1);
  const m = Object.fromEntries(memoryInfo(db));
  const u = process.memoryUsage();
  assert.ok((m.used_memory as number) < u.heapUsed + u.external + u.arrayBuffers - (32 << 20), `used_memory ${m.used_memory}, external ${u.external}, arrayBuffers ${u.arrayBuffers}`);
  assert.ok((m.used_memory as number) >= big.length);
});

test("the HTTP port holds at most HTTP_MAX_CONNECTIONS connections (more are closed at accept) and closes silent ones after the idle timeout", { timeout: 30_000 }, async (t) => {
  const { connect } = await import("node:net");
  const { HTTP_MAX_CONNECTIONS } = await import("../../../src/util/clientsForFdLimit.js");
  const silent = (port: number) =>
    new Promise<{ closed: Promise<void>; isClosed: () => boolean }>((resolve, reject) => {
      let isClosed = false;
      const s = connect(port, "127.0.0.1", () => resolve({ closed, isClosed: () => isClosed }));
      const closed = new Promise<void>((r) => s.once("close", () => ((isClosed = true), r())));
      s.on("error", () => undefined);
      s.once("error", reject);
    });
  // An idle timeout longer than the test: only the limit can close a connection here.
  const a = await setup(t, 0, 600_000);
  const sockets = await Promise.all(Array.from({ length: HTTP_MAX_CONNECTIONS + 8 }, () => silent(a.port)));
  await new Promise<void>((r) => {
    const check = () => (sockets.filter((s) => s.isClosed()).length >= 8 ? r() : setTimeout(check, 10));
    check();
  });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(sockets.filter((s) => s.isClosed()).length, 8, "exactly the 8 over the limit were closed");
  // Short idle timeout, one silent connection: nothing but the timeout can close it.
  const b = await setup(t, 0, 400);
  const one = await silent(b.port);
  await one.closed;
  assert.equal((await b.get("/health")).status, 200, "the port still answers");
});

test("close() ends at once the connections with no request in progress (one that never sent a request too) and lets one in progress finish its answer", { timeout: 20_000 }, async (t) => {
  const { port, http, metrics } = await setup(t, 0, undefined, 600_000);
  const { connect } = await import("node:net");
  const open = () =>
    new Promise<{ s: import("node:net").Socket; closed: Promise<void>; data: () => string }>((resolve, reject) => {
      let data = "";
      const s = connect(port, "127.0.0.1", () => resolve({ s, closed, data: () => data }));
      const closed = new Promise<void>((r) => s.once("close", () => r()));
      s.on("data", (b) => (data += b.toString("latin1")));
      s.on("error", () => undefined);
      s.once("error", reject);
    });
  // A /metrics answer held until the test lets it go.
  let release!: (text: string) => void;
  let entered!: () => void;
  const inHandler = new Promise<void>((r) => (entered = r));
  metrics.text = () => {
    entered();
    return new Promise<string>((r) => (release = r));
  };
  const silent = await open();
  const busy = await open();
  busy.s.write("GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n");
  await inHandler;
  const closing = http.close();
  // The silent connection ends while the request is still held (before: only when the grace
  // ran out, which also cut the held answer).
  await silent.closed;
  release("held_metric 1\n");
  await busy.closed;
  await closing;
  assert.match(busy.data(), /^HTTP\/1\.1 200 /);
  assert.match(busy.data(), /held_metric 1\n$/);
});

test("close() right after a complete request reached the socket still answers it (the request is read before silent connections are ended)", { timeout: 30_000 }, async (t) => {
  const { connect } = await import("node:net");
  for (let i = 0; i < 10; i++) {
    const { port, http } = await setup(t);
    const answer = await new Promise<string>((resolve) => {
      let data = "";
      const s = connect(port, "127.0.0.1", () => {
        s.write("GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        setImmediate(() => void http.close());
      });
      s.on("data", (b: Buffer) => (data += b.toString("latin1")));
      s.on("error", () => undefined);
      s.on("close", () => resolve(data));
    });
    assert.match(answer, /^HTTP\/1\.1 200 /, `round ${i}`);
  }
});
