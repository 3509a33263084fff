#!/usr/bin/env node
// KeelDB benchmark runner: runs KeelDB and its peers side by side in one run on one machine,
// each job (one engine x one workload, or one group of workloads) in its own child process and its
// own fresh directory, engines interleaved, and prints a table per workload with ratios.
//
//   node run.mjs [--scale 0.2] [--only w1,w2] [--engines keel,lmdb] [--repeat 2] [--json] ...
//   node run.mjs --help
//
// Workloads live in workloads/ (one file each, registered in workloads/index.mjs); engine adapters
// in engines/ (one file each, registered in engines/index.mjs). See README.md.
import { fork, execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { engines as allEngines } from "./engines/index.mjs";
import { workloads as allWorkloads } from "./workloads/index.mjs";
import { fmtNum, median, table } from "./lib/util.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CHILD = path.join(HERE, "lib", "child.mjs");

const HELP = `Usage: node run.mjs [options]   (npm run bench builds KeelDB first, then runs this)

Options:
  --scale F        size factor for counts and durations (default 1; 0.1 for a quick run)
  --only LIST      comma-separated workloads or families to run (default: all); see --list
  --engines LIST   comma-separated engines to run (default: all); see --list
  --repeat N       run everything N times, engines interleaved; tables show the median (default 1)
  --seconds S      duration of each timed workload (default max(1, 3 x scale))
  --dir PATH       root for the temp databases (default $BENCH_DIR or <tmpdir>/keel-bench)
  --timeout S      kill a job that runs longer than S seconds (default 300 x max(1, scale))
  --json           print the results as JSON on stdout (the tables go to stderr)
  --keep           keep the database directories (default: removed after each job)
  --verbose        show the children's stderr even when they succeed
  --list           list workloads and engines, then exit
  -h, --help       this text

Figures are only comparable within one run: quote ratios, not absolute numbers.`;

function parseCli(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      scale: { type: "string" },
      only: { type: "string" },
      engines: { type: "string" },
      repeat: { type: "string" },
      seconds: { type: "string" },
      dir: { type: "string" },
      timeout: { type: "string" },
      json: { type: "boolean" },
      keep: { type: "boolean" },
      verbose: { type: "boolean" },
      list: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  const num = (name, v, def) => {
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got ${v}`);
    return n;
  };
  const scale = num("scale", values.scale, 1);
  return {
    scale,
    repeat: Math.round(num("repeat", values.repeat, 1)),
    seconds: num("seconds", values.seconds, Math.max(1, 3 * scale)),
    timeout: num("timeout", values.timeout, 300 * Math.max(1, scale)),
    only: values.only ? values.only.split(",").map((s) => s.trim()).filter(Boolean) : null,
    engines: values.engines ? values.engines.split(",").map((s) => s.trim()).filter(Boolean) : null,
    dir: values.dir ?? process.env.BENCH_DIR ?? path.join(os.tmpdir(), "keel-bench"),
    json: !!values.json,
    keep: !!values.keep,
    verbose: !!values.verbose,
    list: !!values.list,
    help: !!values.help,
  };
}

function paramsFor(opts) {
  return {
    scale: opts.scale,
    seconds: Math.round(opts.seconds * 100) / 100,
    keySize: 16,
    valueSize: 100,
    bulkKeys: Math.max(1000, Math.round(1_000_000 * opts.scale)),
    reads: Math.max(1000, Math.round(2_000_000 * opts.scale)),
    walRecoveryBytes: Math.max(1e6, Math.round(1e9 * opts.scale)),
    seed: 0x2545f491,
  };
}

/** Selected workloads, plus the setup dependencies they need, grouped into jobs ("units"). */
function planUnits(only) {
  const byName = new Map(allWorkloads.map((w) => [w.name, w]));
  let selected;
  if (!only) selected = new Set(allWorkloads.map((w) => w.name));
  else {
    selected = new Set();
    for (const name of only) {
      const matches = allWorkloads.filter((w) => w.name === name || w.family === name || w.group === name);
      if (!matches.length) throw new Error(`unknown workload "${name}" (see --list)`);
      for (const w of matches) selected.add(w.name);
    }
  }
  const needed = new Set(selected);
  for (const name of selected) {
    for (let dep = byName.get(name).dependsOn; dep && !needed.has(dep); dep = byName.get(dep).dependsOn) needed.add(dep);
  }
  const units = [];
  const groups = new Map();
  for (const w of allWorkloads) {
    if (!needed.has(w.name)) continue;
    const entry = { name: w.name, report: selected.has(w.name) };
    if (w.group) {
      let u = groups.get(w.group);
      if (!u) {
        u = { id: w.group, workloads: [], engineless: false, requires: new Set() };
        groups.set(w.group, u);
        units.push(u);
      }
      u.workloads.push(entry);
      for (const r of w.requires ?? []) u.requires.add(r);
    } else {
      units.push({ id: w.name, workloads: [entry], engineless: !!w.engineless, requires: new Set(w.requires ?? []) });
    }
  }
  return { units, selected: allWorkloads.filter((w) => selected.has(w.name)) };
}

function machineInfo(dir) {
  let fsType;
  try {
    fsType = execFileSync("findmnt", ["-n", "-o", "FSTYPE,SOURCE", "-T", dir], { encoding: "utf8" }).trim().replace(/\s+/g, " ");
  } catch {}
  const cpus = os.cpus();
  return {
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpu: `${cpus[0]?.model ?? "?"} x ${cpus.length}`,
    memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    benchDir: dir,
    filesystem: fsType,
  };
}

function runChild(job, opts) {
  return new Promise((resolve) => {
    const child = fork(CHILD, [], {
      execArgv: ["--max-old-space-size=8192"],
      stdio: ["ignore", "pipe", "pipe", "ipc"],
      env: { ...process.env, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? "4" },
    });
    let output = "";
    const keep = (d) => {
      output += d;
      if (output.length > 16384) output = output.slice(-8192);
      if (opts.verbose) process.stderr.write(d);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    let results = null;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, opts.timeout * 1000);
    child.on("message", (m) => {
      results = m.results;
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (results) return resolve({ results, output });
      const status = timedOut ? "timeout" : "error";
      const error = timedOut
        ? `killed after ${opts.timeout} s`
        : `child exited with ${signal ?? `code ${code}`}${output ? `: ${output.trim().split("\n").slice(-3).join(" | ")}` : ""}`;
      resolve({
        output,
        results: job.workloads
          .filter((w) => w.report)
          .map((w) => ({ workload: w.name, engine: job.engine ?? w.name, status, error })),
      });
    });
    child.send(job);
  });
}

function figure(r) {
  if (r.status !== "ok") return undefined;
  if (typeof r.value === "number") return r.value;
  return r.seconds > 0 ? r.ops / r.seconds : undefined;
}

function summarize(results, selected, engines) {
  // per (workload, engine): median over repetitions
  const out = [];
  for (const w of selected) {
    const names = w.engineless ? [w.name] : engines.map((e) => e.name);
    for (const name of names) {
      const rs = results.filter((r) => r.workload === w.name && r.engine === name);
      if (!rs.length) continue;
      const ok = rs.filter((r) => r.status === "ok");
      const values = ok.map(figure).filter((v) => v !== undefined);
      const mb = ok.filter((r) => r.bytes).map((r) => r.bytes / r.seconds / 1e6);
      // notes (sizes, open times...) of the run whose figure is the median
      const mid = values.length ? median(values) : undefined;
      const rep = ok.reduce((a, r) => (a && Math.abs(figure(a) - mid) <= Math.abs(figure(r) - mid) ? a : r), null);
      const notes = [...(rep?.notes ?? [])];
      const failed = rs.find((r) => r.status !== "ok");
      out.push({
        workload: w.name,
        engine: name,
        kind: w.engineless ? "reference" : engines.find((e) => e.name === name).kind,
        unit: w.unit,
        status: ok.length ? "ok" : failed.status,
        error: ok.length ? undefined : failed.error,
        value: values.length ? median(values) : undefined,
        runs: values,
        mbPerSec: mb.length ? median(mb) : undefined,
        notes,
      });
    }
  }
  // ratios: KeelDB (and every engine) against the best peer, >1 = better than the best peer
  for (const w of selected) {
    if (w.engineless) continue;
    const lower = w.better === "lower";
    const rows = out.filter((s) => s.workload === w.name);
    const peers = rows.filter((s) => s.kind === "peer" && s.value !== undefined);
    if (!peers.length) continue;
    const best = peers.reduce((a, b) => ((lower ? b.value < a.value : b.value > a.value) ? b : a));
    for (const s of rows) {
      if (s.value === undefined) continue;
      s.bestPeer = best.engine;
      s.vsBestPeer = lower ? best.value / s.value : s.value / best.value;
    }
  }
  return out;
}

function short(s, max = 90) {
  s = String(s ?? "");
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}

function render(summary, selected, engines, params, info, versions, opts) {
  const lines = [];
  const p = (s = "") => lines.push(s);
  p(`KeelDB benchmark: ${info.cpu}, ${info.memory}, ${info.platform}, node ${info.node}`);
  p(`databases under ${info.benchDir}${info.filesystem ? ` (${info.filesystem})` : ""}; scale ${params.scale}, ${opts.repeat} run(s), median shown`);
  p();
  p("Engines:");
  for (const e of engines) p(`  ${e.name.padEnd(17)} ${versions[e.name] ?? ""}: ${e.description}\n  ${"".padEnd(17)} durability: ${e.durability}`);
  p();
  const fsync = summary.find((s) => s.workload === "fdatasync" && s.value !== undefined)?.value;
  for (const w of selected) {
    const rows = summary.filter((s) => s.workload === w.name);
    if (!rows.length) continue;
    p(`== ${w.name}: ${w.title}`);
    if (w.describe) p(`   ${w.describe(params)}`);
    const withMb = rows.some((r) => r.mbPerSec !== undefined) && w.name !== "single-writer" && !w.family;
    const withFsync = fsync && (w.name === "single-writer" || w.family === "concurrent-writers");
    const header = ["engine", w.unit];
    if (withMb) header.push("MB/s");
    if (!w.engineless) header.push("vs best peer");
    if (withFsync) header.push("vs fdatasync");
    header.push("notes");
    const body = rows.map((r) => {
      const row = [r.engine];
      if (r.status !== "ok") {
        row.push(r.status);
        if (withMb) row.push("");
        if (!w.engineless) row.push("");
        if (withFsync) row.push("");
        row.push(short(r.error));
        return row;
      }
      row.push(fmtNum(r.value));
      if (withMb) row.push(r.mbPerSec !== undefined ? fmtNum(r.mbPerSec) : "");
      if (!w.engineless) {
        row.push(r.vsBestPeer === undefined ? "" : r.kind === "peer" && r.engine === r.bestPeer ? "1.00x (best)" : `${fmtNum(r.vsBestPeer, 2)}x`);
      }
      if (withFsync) row.push(`${fmtNum(r.value / fsync, 2)}x`);
      const notes = [...r.notes];
      if ((opts.repeat > 1 || w.engineless) && r.runs.length > 1) notes.push(`runs: ${r.runs.map((v) => fmtNum(v)).join(" / ")}`);
      row.push(notes.join("; "));
      return row;
    });
    const align = header.map((h) => (h === "engine" || h === "notes" ? "l" : "r"));
    p(table(header, body, align).replace(/^/gm, "   "));
    p();
  }
  // one-screen summary of the KeelDB configurations against the best peer
  const keelEngines = engines.filter((e) => e.kind === "keel");
  const ratioRows = selected
    .filter((w) => !w.engineless)
    .map((w) => {
      const rows = summary.filter((s) => s.workload === w.name);
      const best = rows.find((s) => s.kind === "peer" && s.engine === s.bestPeer);
      return [
        w.name,
        ...keelEngines.map((e) => {
          const r = rows.find((s) => s.engine === e.name);
          if (!r) return "";
          if (r.status !== "ok") return r.status;
          return r.vsBestPeer === undefined ? fmtNum(r.value) : `${fmtNum(r.vsBestPeer, 2)}x`;
        }),
        best ? `${best.engine} ${fmtNum(best.value)} ${w.unit}` : "",
      ];
    });
  if (keelEngines.length && ratioRows.length) {
    p("== summary: KeelDB vs the best peer of this run (>1 = KeelDB ahead)");
    const header = ["workload", ...keelEngines.map((e) => e.name), "best peer"];
    p(table(header, ratioRows, header.map((_, i) => (i === 0 || i === header.length - 1 ? "l" : "r"))).replace(/^/gm, "   "));
    p();
  }
  const failures = new Map();
  for (const s of summary) if (s.status !== "ok" && s.error && !failures.has(s.engine)) failures.set(s.engine, `${s.status}: ${s.error}`);
  if (failures.size) {
    p("Not run or failed (first reason per engine):");
    for (const [name, why] of failures) p(`  ${name}: ${why}`);
    p();
  }
  if (fsync) {
    const single = summary.filter((s) => s.workload === "single-writer" && s.value !== undefined);
    p(`Physical limit: fdatasync ${fmtNum(fsync)} syncs/s on this disk.`);
    for (const s of single) {
      p(`  ${s.kind === "keel" ? "KeelDB" : "peer"} ${s.engine} single-writer vs fdatasync: ${fmtNum(s.value / fsync, 2)}x`);
    }
    // The same loop with CPU work per round: the ceiling of a single writer whose commit costs that much CPU.
    for (const s of summary.filter((x) => x.workload.startsWith("fdatasync-cpu") && x.value !== undefined)) {
      p(`  ${s.workload} (the ceiling of a commit costing that much CPU): ${fmtNum(s.value)} syncs/s, ${fmtNum(s.value / fsync, 2)}x fdatasync`);
    }
    p();
  }
  if (engines.some((e) => e.syncApi)) {
    p(`Note: ${engines.filter((e) => e.syncApi).map((e) => e.name).join(", ")} has a synchronous API: each commit blocks the event loop (and fsyncs), so its "concurrent" writers run one at a time.`);
  }
  if (engines.some((e) => e.name === "keel-wal-relaxed")) {
    p(`Note: keel-wal-relaxed acknowledges before the sync (bounded loss window): not comparable with the durable rows.`);
  }
  p("Figures come from one run on a shared machine: compare ratios within a run, not absolute numbers across runs.");
  return lines.join("\n");
}

async function main() {
  const opts = parseCli(process.argv.slice(2));
  if (opts.help) {
    console.log(HELP);
    return 0;
  }
  if (opts.list) {
    console.log("Workloads:");
    for (const w of allWorkloads) {
      console.log(`  ${w.name.padEnd(16)} ${w.family ? `[${w.family}] ` : ""}${w.group ? `[group ${w.group}] ` : ""}${w.title}`);
    }
    console.log("Engines:");
    for (const e of allEngines) console.log(`  ${e.name.padEnd(17)} ${e.kind.padEnd(5)} ${e.description}`);
    return 0;
  }
  const engines = opts.engines
    ? opts.engines.map((n) => {
        const e = allEngines.find((x) => x.name === n);
        if (!e) throw new Error(`unknown engine "${n}" (see --list)`);
        return e;
      })
    : allEngines;
  const { units, selected } = planUnits(opts.only);
  const params = paramsFor(opts);
  fs.mkdirSync(opts.dir, { recursive: true });
  const info = machineInfo(opts.dir);
  const versions = {};
  for (const e of engines) {
    try {
      versions[e.name] = await e.version();
    } catch (err) {
      versions[e.name] = `? (${err.message})`;
    }
  }
  const runRoot = fs.mkdtempSync(path.join(opts.dir, `run-${new Date().toISOString().replace(/[:.]/g, "-")}-`));
  const log = (s) => process.stderr.write(`${s}\n`);
  log(`bench: scale ${opts.scale}, ${params.seconds} s per timed workload, ${params.bulkKeys} keys loaded, ${params.reads} reads; ` +
    `engines ${engines.map((e) => e.name).join(", ")}; databases in ${runRoot}`);

  const disabled = new Map(); // engine -> { status, error }: n/a or failed to open, skipped afterwards
  const results = [];
  const started = Date.now();
  // Reference (engineless) units, like the disk's fdatasync rate, run at the start AND at the end of
  // each repetition when engines run too: the disk's rate drifts, and the median of both is used.
  const refUnits = units.filter((u) => u.engineless);
  const engineUnits = units.filter((u) => !u.engineless);
  const schedule = engineUnits.length && refUnits.length ? [...refUnits, ...engineUnits, ...refUnits] : units;
  const total = opts.repeat * schedule.reduce((n, u) => n + (u.engineless ? 1 : engines.length), 0);
  let done = 0;
  for (let rep = 1; rep <= opts.repeat; rep++) {
    for (const unit of schedule) {
      for (const engine of unit.engineless ? [null] : engines) {
        done++;
        const label = `[${done}/${total}] ${unit.id} x ${engine?.name ?? "disk"}${opts.repeat > 1 ? ` (run ${rep})` : ""}`;
        const reported = unit.workloads.filter((w) => w.report);
        const skip = (status, error) => {
          for (const w of reported) results.push({ workload: w.name, engine: engine.name, rep, status, error });
          log(`${label}: ${status} (${error})`);
        };
        if (engine && disabled.has(engine.name)) {
          const d = disabled.get(engine.name);
          skip(d.status, d.error);
          continue;
        }
        const missing = engine ? [...unit.requires].filter((c) => !engine.capabilities.includes(c)) : [];
        if (missing.length) {
          skip("n/a", `adapter lacks ${missing.join(", ")}`);
          continue;
        }
        const dir = path.join(runRoot, `${rep}-${unit.id}-${engine?.name ?? "disk"}`);
        fs.mkdirSync(dir, { recursive: true });
        const job = { engine: engine?.name ?? null, workloads: unit.workloads, dir, params };
        const t0 = Date.now();
        const { results: rs, output } = await runChild(job, opts);
        if (!opts.keep) fs.rmSync(dir, { recursive: true, force: true });
        for (const r of rs) results.push({ ...r, rep });
        const parts = rs.map((r) =>
          r.status === "ok" ? `${r.workload} ${fmtNum(figure(r))} ${selected.find((w) => w.name === r.workload)?.unit ?? ""}` : `${r.workload} ${r.status}: ${r.error}`,
        );
        log(`${label}: ${parts.join(", ")} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
        if (rs.some((r) => r.status === "error") && output && !opts.verbose) {
          log(output.trim().split("\n").slice(-15).map((l) => `    | ${l}`).join("\n"));
        }
        const bad = engine && rs.find((r) => r.status === "n/a" || r.engineFailed);
        if (bad) disabled.set(engine.name, { status: bad.status, error: bad.error });
      }
    }
  }
  if (!opts.keep) fs.rmSync(runRoot, { recursive: true, force: true });
  log(`bench: done in ${((Date.now() - started) / 1000).toFixed(0)} s`);

  const summary = summarize(results, selected, engines);
  const text = render(summary, selected, engines, params, info, versions, opts);
  if (opts.json) {
    process.stderr.write(`\n${text}\n`);
    const json = {
      date: new Date().toISOString(),
      machine: info,
      params,
      repeat: opts.repeat,
      engines: engines.map((e) => ({ name: e.name, kind: e.kind, version: versions[e.name], description: e.description, durability: e.durability, syncApi: e.syncApi })),
      workloads: selected.map((w) => ({ name: w.name, family: w.family, title: w.title, unit: w.unit, better: w.better ?? "higher", engineless: !!w.engineless })),
      summary,
      results,
    };
    process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
  } else {
    process.stdout.write(`\n${text}\n`);
  }
  return results.some((r) => r.status === "error" || r.status === "timeout") ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`bench: ${e.message}\n`);
    process.exitCode = 2;
  },
);
