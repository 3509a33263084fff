#!/usr/bin/env node
// Server benchmark: redis-benchmark (loopback, -c 50, SET and GET, with and without -P 16, a
// bounded -n) against `keel serve` (appendfsync always and everysec) and redis-server
// (appendonly yes, appendfsync always and everysec, no RDB saves), each in its own temp
// directory, in ONE run; prints ops/s per server and KeelDB's ratio to redis-server at the same
// appendfsync setting. A "node null" row runs bench/lib/null-resp-server.mjs, a Node RESP server
// that stores nothing and answers at once: the floor of Node's networking on this machine (no
// server written in Node can beat it), quoted against redis-server like the fdatasync rate is
// against the engines in bench/run.mjs. A "node null always" row runs the same server with a log
// file: it appends each write and replies after one fdatasync per event-loop turn, as redis-server
// does with appendfsync always: the ceiling of a Node server under that policy. --no-null skips both.
//
//   node bench/server.mjs [--n 20000] [--clients 50] [--pipeline 16] [--data 100] [--keyspace 100000]
//                         [--repeat 1] [--json] [--no-null] [--tests SET,GET] [--pipelined both|yes|no]
//
// Needs redis-server and redis-benchmark on PATH (CI installs them, .ci/run) and KeelDB built
// (npm run build). Figures are only comparable within one run: quote the ratios.
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const KEEL = path.join(HERE, "..", "dist", "src", "cli", "keel.js");
const NULL_SERVER = path.join(HERE, "lib", "null-resp-server.mjs");

const { values: opt } = parseArgs({
  options: {
    n: { type: "string", default: "20000" },
    clients: { type: "string", default: "50" },
    pipeline: { type: "string", default: "16" },
    data: { type: "string", default: "100" },
    keyspace: { type: "string", default: "100000" },
    repeat: { type: "string", default: "1" },
    json: { type: "boolean", default: false },
    "no-null": { type: "boolean", default: false },
    tests: { type: "string", default: "SET,GET" },
    pipelined: { type: "string", default: "both" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (opt.help) {
  console.log(fs.readFileSync(fileURLToPath(import.meta.url), "utf8").split("\n").slice(1, 17).map((l) => l.replace(/^\/\/ ?/, "")).join("\n"));
  process.exit(0);
}
const N = Number(opt.n);
const C = Number(opt.clients);
const P = Number(opt.pipeline);
const out = opt.json ? process.stderr : process.stdout;
const say = (s) => out.write(`${s}\n`);

for (const bin of ["redis-server", "redis-benchmark"]) {
  try {
    execFileSync(bin, ["--version"], { stdio: "ignore" });
  } catch {
    console.error(`bench/server.mjs: ${bin} is not on PATH (apt-get install redis-server redis-tools)`);
    process.exit(2);
  }
}
if (!fs.existsSync(KEEL)) {
  console.error(`bench/server.mjs: ${KEEL} is missing: run npm run build first`);
  process.exit(2);
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

async function waitPort(port, child, ms = 20000) {
  const t0 = Date.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited (${child.exitCode}) before listening on ${port}`);
    const ok = await new Promise((r) => {
      const s = net.connect(port, "127.0.0.1", () => {
        s.destroy();
        r(true);
      });
      s.on("error", () => r(false));
    });
    if (ok) return;
    if (Date.now() - t0 > ms) throw new Error(`nothing listens on ${port} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const SERVERS = [
  {
    name: "keel always",
    fsync: "always",
    start: (dir, port) => spawn(process.execPath, [KEEL, "serve", "--dir", dir, "--port", String(port), "--http-port", "0", "--appendfsync", "always", "--log-level", "warn"], { stdio: "ignore" }),
  },
  {
    name: "redis always",
    fsync: "always",
    start: (dir, port) => spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "no"], { stdio: "ignore" }),
  },
  {
    name: "keel everysec",
    fsync: "everysec",
    start: (dir, port) => spawn(process.execPath, [KEEL, "serve", "--dir", dir, "--port", String(port), "--http-port", "0", "--appendfsync", "everysec", "--log-level", "warn"], { stdio: "ignore" }),
  },
  {
    name: "redis everysec",
    fsync: "everysec",
    start: (dir, port) => spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--protected-mode", "no"], { stdio: "ignore" }),
  },
  {
    name: "node null",
    fsync: "none",
    start: (_dir, port) => spawn(process.execPath, [NULL_SERVER, String(port)], { stdio: "ignore" }),
  },
  {
    name: "node null always",
    fsync: "always",
    start: (dir, port) => spawn(process.execPath, [NULL_SERVER, String(port), path.join(dir, "null.aof")], { stdio: "ignore" }),
  },
].filter((s) => !(opt["no-null"] && s.name.startsWith("node null")));

const TESTS = [
  { name: "SET", t: "set", pipeline: 1 },
  { name: "GET", t: "get", pipeline: 1 },
  { name: `SET -P ${P}`, t: "set", pipeline: P },
  { name: `GET -P ${P}`, t: "get", pipeline: P },
].filter((t) => {
  const commands = opt.tests.toLowerCase().split(",");
  if (!commands.includes(t.t)) return false;
  return opt.pipelined === "both" || (opt.pipelined === "yes") === t.pipeline > 1;
});
if (TESTS.length === 0 || !["both", "yes", "no"].includes(opt.pipelined)) {
  console.error("bench/server.mjs: --tests takes SET, GET or SET,GET and --pipelined both, yes or no");
  process.exit(2);
}

function benchmark(port, test) {
  const args = ["-h", "127.0.0.1", "-p", String(port), "-t", test.t, "-n", String(test.pipeline > 1 ? N * 5 : N), "-c", String(C), "-P", String(test.pipeline), "-d", opt.data, "-r", opt.keyspace, "--csv"];
  const text = execFileSync("redis-benchmark", args, { encoding: "utf8", timeout: 600_000 });
  // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
  const row = text.trim().split("\n").find((l) => l.startsWith(`"${test.t.toUpperCase()}"`));
  if (!row) throw new Error(`no ${test.t} row in redis-benchmark output:\n${text}`);
  const cells = row.split(",").map((c) => c.replace(/"/g, ""));
  return { rps: Number(cells[1]), p50: Number(cells[4]), p99: Number(cells[6]), command: `redis-benchmark ${args.join(" ")}` };
}

const results = {}; // server -> test -> [rps...]
const root = fs.mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), "keel-server-bench-"));
try {
  for (let rep = 0; rep < Number(opt.repeat); rep++) {
    for (const srv of SERVERS) {
      const dir = path.join(root, `${srv.name.replace(/ /g, "-")}-${rep}`);
      fs.mkdirSync(dir, { recursive: true });
      const port = await freePort();
      const child = srv.start(dir, port);
      try {
        await waitPort(port, child);
        for (const test of TESTS) {
          const r = benchmark(port, test);
          ((results[srv.name] ??= {})[test.name] ??= []).push(r);
          say(`${srv.name.padEnd(16)} ${test.name.padEnd(9)} ${Math.round(r.rps).toString().padStart(9)} ops/s  p50 ${r.p50} ms  p99 ${r.p99} ms`);
        }
      } finally {
        child.kill("SIGTERM");
        await new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", r)));
      }
    }
  }
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}

const med = (xs) => {
  const s = xs.map((x) => x.rps).sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
say("");
say(`redis-benchmark -c ${C} -n ${N} (x5 with -P ${P}) -d ${opt.data} -r ${opt.keyspace}, loopback, ops/s${Number(opt.repeat) > 1 ? ` (median of ${opt.repeat})` : ""}`);
say(`| test | keel always | redis always | ratio | keel everysec | redis everysec | ratio |`);
say(`| --- | ---: | ---: | ---: | ---: | ---: | ---: |`);
const summary = [];
for (const test of TESTS) {
  const ka = med(results["keel always"][test.name]);
  const ra = med(results["redis always"][test.name]);
  const ke = med(results["keel everysec"][test.name]);
  const re = med(results["redis everysec"][test.name]);
  say(`| ${test.name} | ${Math.round(ka)} | ${Math.round(ra)} | ${(ka / ra).toFixed(2)} | ${Math.round(ke)} | ${Math.round(re)} | ${(ke / re).toFixed(2)} |`);
  summary.push({ test: test.name, keelAlways: ka, redisAlways: ra, ratioAlways: ka / ra, keelEverysec: ke, redisEverysec: re, ratioEverysec: ke / re });
}
if (results["node null"]) {
  say("");
  say("Floors of a Node RESP server (bench/lib/null-resp-server.mjs: no parsing, no storage, answers at once;");
  say("\"always\" appends each write chunk to a file and replies after one fdatasync per event-loop turn, as redis does):");
  for (const test of TESTS) {
    const nn = med(results["node null"][test.name]);
    const na = med(results["node null always"][test.name]);
    const ra = med(results["redis always"][test.name]);
    const ka = med(results["keel always"][test.name]);
    say(
      `  ${test.name.padEnd(9)} null ${Math.round(nn).toString().padStart(8)} ops/s = ${(nn / ra).toFixed(2)}x redis always; ` +
        `null always ${Math.round(na).toString().padStart(8)} ops/s = ${(na / ra).toFixed(2)}x redis always; keel always reaches ${(ka / na).toFixed(2)} of it`,
    );
    const row = summary.find((r) => r.test === test.name);
    if (row) Object.assign(row, { nodeNull: nn, nullVsRedisAlways: nn / ra, nodeNullAlways: na, nullAlwaysVsRedisAlways: na / ra, keelAlwaysVsNullAlways: ka / na });
  }
}
say("");
say("Targets (appendfsync always): SET ratio >= 1.0, GET ratio >= 0.5.");
if (opt.json) console.log(JSON.stringify({ n: N, clients: C, pipeline: P, summary, results }, null, 2));
