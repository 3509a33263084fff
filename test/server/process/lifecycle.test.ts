/**
 * A real `keel serve` process: clean shutdown (SIGTERM under load, SHUTDOWN SAVE / NOSAVE: exit 0,
 * LOCK released, every acknowledged write there), a second signal exits promptly without losing
 * anything acknowledged, refused starts (bad configuration: exit 2 naming the key; a locked
 * directory: exit 3; a missing or corrupt restore_from dump: exit 4 / 5 naming the file, the
 * directory left empty), restore_from loading a `keel dump` of a served database, a signal during
 * that load (the start stops, exit 0, nothing half-restored), and the HTTP port answering /health.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dumpToFile, open } from "../../../src/index.js";
import { KEEL, client, exited, runServe, startServe, type Served } from "./serveChild.js";
import { untilCatchesSighup } from "../../helpers/processes.js";

function tmp(t: { after: (fn: () => void) => void }): string {
  const d = mkdtempSync(join(tmpdir(), "keel-serve-"));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function guard(t: { after: (fn: () => void) => void }, s: Served): Served {
  t.after(() => {
    s.child.kill("SIGKILL");
  });
  return s;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** The LOCK is released: a writable open of the directory succeeds. */
async function lockReleased(dir: string): Promise<void> {
  const db = await open(dir);
  await db.close();
}

async function checkKeys(port: number, expected: Map<string, string>): Promise<void> {
  const r = client(port);
  try {
    const keys = [...expected.keys()];
    for (let i = 0; i < keys.length; i += 500) {
      const batch = keys.slice(i, i + 500);
      const got = await r.mget(...batch);
      batch.forEach((k, j) => assert.equal(got[j], expected.get(k), k));
    }
  } finally {
    r.disconnect();
  }
}

test("SIGTERM under load: exit 0, LOCK released, every acknowledged write there; /health answered while serving; SIGHUP shuts down as cleanly", async (t) => {
  const root = tmp(t);
  const dir = join(root, "data");
  const httpPort = await freePort();
  const s = guard(t, await startServe(["--dir", dir, "--http-port", String(httpPort)]));
  assert.equal(s.httpPort, httpPort);
  const h = await fetch(`http://127.0.0.1:${httpPort}/health`);
  assert.equal(h.status, 200);
  const acked = new Map<string, string>();
  const clients = Array.from({ length: 8 }, () => client(s.port));
  let stop = false;
  const work = clients.map(async (r, c) => {
    for (let n = 0; !stop; n++) {
      const k = `c${c}:${n}`;
      try {
        if ((await r.set(k, `v${n}`)) === "OK") acked.set(k, `v${n}`);
      } catch {
        return;
      }
    }
  });
  // Under load, not after a fixed time: on a busy machine 400 ms once passed before a write was acknowledged.
  for (let i = 0; i < 3000 && acked.size <= 20; i++) await new Promise((r) => setTimeout(r, 10));
  s.child.kill("SIGTERM");
  const e = await exited(s);
  stop = true;
  await Promise.all(work);
  for (const r of clients) r.disconnect();
  assert.equal(e.code, 0, s.stderr());
  assert.ok(s.lines.some((l) => l.event === "shutdown-complete" && l.code === 0));
  assert.ok(acked.size > 20, `writes acknowledged (${acked.size})`);
  await lockReleased(dir);
  const again = guard(t, await startServe(["--dir", dir, "--http-port", "0"]));
  await checkKeys(again.port, acked);
  // SIGHUP (a closed terminal) shuts down as cleanly: exit 0, the LOCK released.
  again.child.kill("SIGHUP");
  const hup = await exited(again);
  assert.equal(hup.code, 0, again.stderr());
  assert.ok(again.lines.some((l) => l.event === "shutdown-complete" && l.code === 0));
  await lockReleased(dir);
});

test("SHUTDOWN SAVE takes a snapshot, SHUTDOWN NOSAVE does not; both exit 0 and keep the data", async (t) => {
  const root = tmp(t);
  const dir = join(root, "data");
  const s = guard(t, await startServe(["--dir", dir, "--http-port", "0"]));
  const r = client(s.port);
  await r.set("a", "1");
  await r.call("SHUTDOWN", "NOSAVE").catch(() => {});
  r.disconnect();
  assert.equal((await exited(s)).code, 0);
  assert.equal(existsSync(join(dir, "snapshots", "current")), false, "NOSAVE: no snapshot");
  const s2 = guard(t, await startServe(["--dir", dir, "--http-port", "0"]));
  const r2 = client(s2.port);
  assert.equal(await r2.get("a"), "1");
  await r2.set("b", "2");
  await r2.call("SHUTDOWN", "SAVE").catch(() => {});
  r2.disconnect();
  assert.equal((await exited(s2)).code, 0);
  assert.ok(existsSync(join(dir, "snapshots", "current", "snapshot.json")), "SAVE: a snapshot");
  await lockReleased(dir);
});

test("a second signal during shutdown exits promptly; nothing acknowledged is lost", async (t) => {
  const root = tmp(t);
  const dir = join(root, "data");
  const s = guard(t, await startServe(["--dir", dir, "--http-port", "0"]));
  const r = client(s.port);
  const acked = new Map<string, string>();
  for (let i = 0; i < 200; i++) {
    await r.set(`k${i}`, `v${i}`);
    acked.set(`k${i}`, `v${i}`);
  }
  r.disconnect();
  const t0 = Date.now();
  s.child.kill("SIGTERM");
  s.child.kill("SIGTERM");
  const e = await exited(s, 5000);
  assert.ok(Date.now() - t0 < 5000);
  assert.ok(e.code === 130 || e.code === 0, `forced exit 130 (or 0 if the first shutdown won the race): ${e.code}`);
  const again = guard(t, await startServe(["--dir", dir, "--http-port", "0"]));
  await checkKeys(again.port, acked);
  again.child.kill("SIGTERM");
  await exited(again);
});

test("refused starts: bad configuration exits 2 naming the key; a locked directory exits 3; a port in use exits 6", async (t) => {
  const root = tmp(t);
  const conf = join(root, "keel.toml");
  writeFileSync(conf, `dir = "data"\nappendfsync = "sometimes"\n`);
  const bad = await runServe(["--config", conf]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /appendfsync/);
  assert.match(bad.stderr, /keel\.toml/);
  writeFileSync(conf, `dir = "data"\nport_number = 5\n`);
  const unknown = await runServe(["--config", conf]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown configuration key port_number/);
  assert.equal(existsSync(join(root, "data")), false, "nothing created");
  const missing = await runServe(["--config", join(root, "nope.toml")]);
  assert.equal(missing.code, 4);

  const dir = join(root, "held");
  // The ready line (with the bound port) is printed whatever the log level, "silent" aside.
  const s = guard(t, await startServe(["--dir", dir, "--http-port", "0", "--log-level", "error"]));
  const busy = await runServe(["--dir", join(root, "other"), "--port", String(s.port), "--http-port", "0"]);
  assert.equal(busy.code, 6, `port in use: exit 6\n${busy.stderr}`);
  assert.match(busy.stderr, /EADDRINUSE/);
  const second = await runServe(["--dir", dir, "--port", "0", "--http-port", "0"]);
  assert.equal(second.code, 3, second.stderr);
  assert.match(second.stderr, new RegExp(String(s.child.pid)));
  s.child.kill("SIGTERM");
  await exited(s);
});

test("restore_from: an empty directory is loaded from a keel dump of a served database before serving; a non-empty one ignores it", async (t) => {
  const root = tmp(t);
  const src = join(root, "src");
  const s = guard(t, await startServe(["--dir", src, "--http-port", "0"]));
  const r = client(s.port);
  const expected = new Map<string, string>();
  for (let i = 0; i < 300; i++) expected.set(`k${i}`, `value-${i}`);
  await r.mset(Object.fromEntries(expected));
  await r.hset("h", "f", "v");
  await r.call("SHUTDOWN").catch(() => {});
  r.disconnect();
  await exited(s);
  const dump = join(root, "src.dump");
  const d = spawnSync(process.execPath, [KEEL, "dump", src, "-f", dump], { encoding: "utf8" });
  assert.equal(d.status, 0, d.stderr);

  const target = join(root, "target");
  mkdirSync(target);
  const conf = join(root, "keel.toml");
  writeFileSync(conf, `dir = "target"\nrestore_from = "src.dump"\nhttp_port = 0\nport = 0\n`);
  const s2 = guard(t, await startServe(["--config", conf]));
  assert.ok(s2.lines.some((l) => l.event === "restore" && l.file === dump));
  await checkKeys(s2.port, expected);
  const r2 = client(s2.port);
  assert.equal(await r2.hget("h", "f"), "v");
  await r2.set("new", "1");
  r2.disconnect();
  s2.child.kill("SIGTERM");
  await exited(s2);
  // Restarting with restore_from still configured: the directory holds data, so it is kept.
  const s3 = guard(t, await startServe(["--config", conf]));
  assert.ok(s3.lines.some((l) => l.event === "restore-skipped"));
  const r3 = client(s3.port);
  assert.equal(await r3.get("new"), "1");
  r3.disconnect();
  s3.child.kill("SIGTERM");
  await exited(s3);
});

test("a signal while restore_from loads: the start stops before serving, exit 0, nothing half-restored left; the next start loads the dump", async (t) => {
  const root = tmp(t);
  const src = join(root, "src");
  const db = await open(src);
  await db.transaction((tx) => {
    for (let i = 0; i < 200_000; i++) tx.put(`k${i}`, `value-${i}`);
  });
  const dump = join(root, "src.dump");
  await dumpToFile(db, dump);
  await db.close();
  const target = join(root, "target");
  mkdirSync(target);
  const conf = join(root, "keel.toml");
  writeFileSync(conf, `dir = "target"\nrestore_from = "src.dump"\nhttp_port = 0\nport = 0\n`);
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    const child = spawn(process.execPath, [KEEL, "serve", "--config", conf], { stdio: ["ignore", "pipe", "pipe"] });
    t.after(() => child.kill("SIGKILL"));
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.resume();
    const exit = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    // The load is under way once its partial directory exists.
    const deadline = Date.now() + 20_000;
    while (!readdirSync(target).some((n) => n.includes("partial")) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.ok(Date.now() < deadline, "the load started");
    child.kill(sig);
    assert.equal(await exit, 0, `${sig}: ${out}`);
    const lines = out.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(lines.some((l) => l.event === "shutdown" && l.during === "start"), `${sig}: logged`);
    assert.ok(!lines.some((l) => l.event === "ready"), `${sig}: never served`);
    assert.deepEqual(readdirSync(target), [], `${sig}: nothing half-restored left`);
  }
  const s = guard(t, await startServe(["--config", conf], {}, 60_000));
  assert.equal(s.lines.find((l) => l.event === "restore")?.entries, 200_000, "the next start loads the whole dump");
  s.child.kill("SIGTERM");
  assert.equal((await exited(s)).code, 0);
});

test("a signal during the start's log replay stops the start before a port opens (exit 0, never ready); the next start serves every write", { timeout: 120_000 }, async (t) => {
  const root = tmp(t);
  const dir = join(root, "data");
  // Commits never checkpointed (the writer is killed): the next open replays about 25 MB of log,
  // which runs without a pause.
  const writer = `
import { open } from ${JSON.stringify(new URL("../../../src/index.js", import.meta.url).pathname)};
const db = await open(${JSON.stringify(dir)}, { checkpointLogBytes: 1 << 30, checkpointDirtyBytes: 1 << 30, checkpointMs: 3_600_000 });
for (let r = 0; r < 240; r++) await db.transaction((tx) => { for (let i = 0; i < 250; i++) tx.put("k" + r + "-" + i, "x".repeat(400)); });
process.kill(process.pid, "SIGKILL");
`;
  spawnSync(process.execPath, ["--input-type=module", "-e", writer], { stdio: "inherit" });
  const child = spawn(process.execPath, [KEEL, "serve", "--dir", dir, "--port", "0", "--http-port", "0"], { stdio: ["ignore", "pipe", "pipe"] });
  t.after(() => child.kill("SIGKILL"));
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr.resume();
  const exit = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  // The open is under way once the LOCK names the server (the killed writer left its own); the
  // replay follows it.
  const lockHolder = () => {
    try {
      return Number.parseInt(readFileSync(join(dir, "LOCK"), "utf8"), 10);
    } catch {
      return undefined;
    }
  };
  const deadline = Date.now() + 20_000;
  while (lockHolder() !== child.pid && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
  assert.equal(lockHolder(), child.pid, "the open started");
  child.kill("SIGTERM");
  assert.equal(await exit, 0, out);
  const lines = out.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(!lines.some((l) => l.event === "ready" || String(l.msg ?? "").includes("listening")), `never served: ${out}`);
  assert.ok(lines.some((l) => l.event === "shutdown" && l.during === "start"), `logged: ${out}`);
  const s = guard(t, await startServe(["--dir", dir, "--http-port", "0"], {}, 60_000));
  const r = client(s.port);
  assert.equal(await r.dbsize(), 0, "the keyspace is the server's own (resp:* keys): none yet");
  r.disconnect();
  s.child.kill("SIGTERM");
  assert.equal((await exited(s)).code, 0);
  const db = await open(dir, { readOnly: true });
  assert.equal(db.getCount(), 240 * 250, "every write of the killed writer replayed");
  await db.close();
});

test("a signal while keel serve is still loading its code is a stop before serving: exit 0, as for one during the start", { timeout: 60_000, skip: !existsSync("/proc/self/status") }, async (t) => {
  const root = tmp(t);
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    const child = spawn(process.execPath, [KEEL, "serve", "--dir", join(root, sig), "--port", "0", "--http-port", "0"], { stdio: ["ignore", "pipe", "pipe"] });
    t.after(() => child.kill("SIGKILL"));
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.resume();
    const exit = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    // keel's first handlers are in: its commands' code is loading then.
    assert.ok(await untilCatchesSighup(child.pid));
    child.kill(sig);
    assert.equal(await exit, 0, `${sig}: ${out}`);
    assert.ok(!out.includes('"event":"ready"'), `${sig}: never served`);
  }
});

test("restore_from a corrupt dump refuses to start (exit 5, naming the file and where) and the directory stays empty; a missing dump exits 4", async (t) => {
  const root = tmp(t);
  const src = join(root, "src");
  const db = await open(src);
  for (let i = 0; i < 100; i++) await db.put(`k${i}`, `v${i}`);
  await db.close();
  const dump = join(root, "src.dump");
  assert.equal(spawnSync(process.execPath, [KEEL, "dump", src, "-f", dump]).status, 0);
  const lines = readFileSync(dump, "utf8").split("\n");
  lines[5] = lines[5]!.replace(/"[A-Za-z0-9+/=]{4}/, '"!!!!');
  const bad = join(root, "bad.dump");
  writeFileSync(bad, lines.join("\n"));
  const target = join(root, "target");
  mkdirSync(target);
  const conf = join(root, "keel.toml");
  writeFileSync(conf, `dir = "target"\nrestore_from = "bad.dump"\nhttp_port = 0\nport = 0\n`);
  const e = await runServe(["--config", conf]);
  assert.equal(e.code, 5, e.stderr);
  assert.ok(e.stderr.includes(bad), e.stderr);
  assert.match(e.stderr, /line \d+/);
  const fatal = e.lines.find((l) => l.event === "start-failed") as { err: { code: string; details: { file: string; line: number } } } | undefined;
  assert.equal(fatal?.err.code, "CORRUPT");
  assert.equal(fatal?.err.details.file, bad);
  assert.equal(typeof fatal?.err.details.line, "number");
  assert.deepEqual(readdirSync(target), [], "the data directory stays empty");
  assert.deepEqual(readdirSync(root).filter((n) => n.includes("partial")), []);

  writeFileSync(conf, `dir = "target"\nrestore_from = "gone.dump"\nhttp_port = 0\nport = 0\n`);
  const m = await runServe(["--config", conf]);
  assert.equal(m.code, 4);
  assert.ok(m.stderr.includes(join(root, "gone.dump")), m.stderr);
  assert.deepEqual(readdirSync(target), []);
});

test("over RESP: BGSAVE, SAVE, BACKUP and BGREWRITEAOF; the snapshot and the backup serve the data at their LSN", async (t) => {
  const root = tmp(t);
  const dir = join(root, "data");
  const s = guard(t, await startServe(["--dir", dir, "--http-port", "0"]));
  const r = client(s.port);
  const first = new Map<string, string>();
  for (let i = 0; i < 500; i++) first.set(`k${i}`, `v${i}`);
  await r.mset(Object.fromEntries(first));
  assert.equal(await r.bgsave(), "Background saving started");
  const info = async () => Object.fromEntries(((await r.info("persistence")) as string).split("\r\n").filter((l) => l.includes(":")).map((l) => l.split(":") as [string, string]));
  for (let i = 0; i < 100 && (await info()).rdb_bgsave_in_progress !== "0"; i++) await new Promise((res) => setTimeout(res, 50));
  await r.set("after-bgsave", "1");
  const backup = join(root, "backup");
  assert.equal(await r.call("BACKUP", backup), "OK");
  await r.set("after-backup", "1");
  assert.equal(await r.save(), "OK");
  const lastsave = await r.lastsave();
  assert.ok(Math.abs(lastsave - Date.now() / 1000) < 5);
  assert.match(String(await r.bgrewriteaof()), /rewriting started/i);
  for (let i = 0; i < 100 && (await info()).aof_rewrite_in_progress !== "0"; i++) await new Promise((res) => setTimeout(res, 50));
  const p = await info();
  assert.equal(p.aof_rewrites, "1");
  assert.equal(p.aof_last_bgrewrite_status, "ok");
  assert.equal(p.rdb_last_bgsave_status, "ok");
  assert.equal(p.rdb_saves, "2");
  assert.equal(p.keel_last_save_lsn, p.keel_last_durable_lsn, "SAVE covered every acknowledged write");
  await r.call("SHUTDOWN", "NOSAVE").catch(() => {});
  r.disconnect();
  assert.equal((await exited(s)).code, 0);

  // The backup (BACKUP after "after-bgsave") serves that state: first + after-bgsave, not after-backup.
  const b = guard(t, await startServe(["--dir", backup, "--http-port", "0"]));
  await checkKeys(b.port, new Map([...first, ["after-bgsave", "1"]]));
  const rb = client(b.port);
  assert.equal(await rb.get("after-backup"), null);
  rb.disconnect();
  b.child.kill("SIGTERM");
  await exited(b);
  // The snapshot (SAVE after "after-backup") copied out of snapshots/current serves everything.
  const snapCopy = join(root, "snap-copy");
  mkdirSync(snapCopy);
  writeFileSync(join(snapCopy, "data.keel"), readFileSync(join(dir, "snapshots", "current", "data.keel")));
  const c = guard(t, await startServe(["--dir", snapCopy, "--http-port", "0"]));
  await checkKeys(c.port, new Map([...first, ["after-bgsave", "1"], ["after-backup", "1"]]));
  c.child.kill("SIGTERM");
  await exited(c);
});
