/**
 * keel against a database in use (exit 3, naming the holder's pid), a damaged one (exit 5 on read,
 * exit 1 from verify), keel doctor (OK/WARN lines, --strict, --json), and a stdout that fails
 * (a full disk, a reader that goes away).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { closeSync, constants, existsSync, openSync, readSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { open } from "../../src/index.js";
import { stampLines } from "../../src/io/ProcessStamp.js";
import { KEEL, damagePages, keelExpect, keelJson, makeDb, tempDir } from "./cliUtil.js";
import { untilCatchesSighup } from "../helpers/processes.js";

/** The LOCK and READER.* files in `dir`: a command that ended must leave none. */
const filesLeft = (dir: string) => readdirSync(dir).filter((n) => n.startsWith("READER.") || n === "LOCK");

test("a database held open by another process: exit 3 naming its pid, for reads, writes and verify", async (t) => {
  const dir = join(tempDir(t), "db");
  await makeDb(dir);
  const db = await open(dir); // this test process holds the LOCK
  try {
    await db.createSnapshot();
    const expected = `database ${dir} is in use by process ${process.pid}; stop it or use \`keel\` commands against the server instead`;
    const runs = [["get", dir, "user:01"], ["put", dir, "k", "v"], ["stat", dir], ["verify", dir], ["txlog", dir], ["dump", dir, "-f", join(dir, "..", "d")], ["salvage", dir, join(dir, "..", "s")], ["compact", dir, join(dir, "..", "c")], ["restore", dir, join(dir, "..", "r")], ["restore", join(dir, "snapshots", "current"), join(dir, "..", "r2")], ["restore", dir, join(dir, "..", "r3"), "--wal-dir", join(dir, "..", "archive", "wal")]];
    const results = await Promise.all(runs.map((args) => keelExpect(args, 3)));
    results.forEach((r, i) => assert.ok(r.stderr.includes(expected), `${runs[i]![0]}: ${r.stderr}`));
    const doc = await keelJson<{ error: { code: string; message: string; details: { pid: number } } }>(["scan", dir], 3);
    assert.equal(doc.error.code, "LOCKED");
    assert.equal(doc.error.details.pid, process.pid);
    assert.equal(doc.error.message, expected);
    // doctor reports the holder instead of failing.
    const d = await keelExpect(["doctor", dir], 0);
    assert.match(d.stdout, new RegExp(`^WARN +lock +.*held by live process ${process.pid}`, "m"));
  } finally {
    await db.close();
  }
  await keelExpect(["get", dir, "user:01"], 0);
});

test("a damaged page: get exits 5 with CORRUPT and where; verify exits 1 listing the pages", async (t) => {
  const dir = join(tempDir(t), "db");
  await makeDb(dir, { wal: false });
  damagePages(dir);
  const r = await keelExpect(["get", dir, "user:01"], 5);
  assert.match(r.stderr, /CORRUPT/);
  assert.match(r.stderr, /page=\d+/);
  const doc = await keelJson<{ error: { code: string; details: { page: number; file: string } } }>(["get", dir, "user:01"], 5);
  assert.equal(doc.error.code, "CORRUPT");
  assert.equal(typeof doc.error.details.page, "number");
  const v = await keelExpect(["verify", dir], 1);
  assert.match(v.stdout, /^ERROR +checksum +.*data\.keel page \d+/m);
  const vj = await keelJson<{ ok: boolean; problems: Array<{ severity: string; page?: number; file: string }> }>(["verify", dir], 1);
  assert.equal(vj.ok, false);
  assert.ok(vj.problems.some((p) => p.severity === "error" && typeof p.page === "number"));
  // doctor says it cannot open it and exits with the error's status.
  const d = await keelExpect(["doctor", dir], 5);
  assert.match(d.stdout, /^WARN +open +.*CORRUPT/m);
  // --json: the checks, and the error as every command reports one.
  const dj = await keelJson<{ ok: boolean; checks: Array<{ name: string }>; error: { code: string; details: { page: number } } }>(["doctor", dir], 5);
  assert.equal(dj.ok, false);
  assert.ok(dj.checks.some((c) => c.name === "open"));
  assert.equal(dj.error.code, "CORRUPT");
  assert.equal(typeof dj.error.details.page, "number");
});

test("doctor: machine checks without a directory; OK/WARN lines; free pages suggest keel compact; --strict; --json", async (t) => {
  const machine = await keelExpect(["doctor"], 0);
  const lines = machine.stdout.trim().split("\n").filter((l) => l && !/warning|all checks OK/.test(l));
  assert.ok(lines.length >= 2);
  for (const l of lines) assert.match(l, /^(OK|WARN) /);
  assert.match(machine.stdout, /swappiness/);
  assert.match(machine.stdout, /huge pages/);

  const dir = join(tempDir(t), "db");
  const db = await open(dir, { wal: false });
  await db.transaction((tx) => {
    for (let i = 0; i < 3000; i++) tx.put(i, "v".repeat(200));
  });
  await db.clear();
  await db.close();
  const r = await keelExpect(["doctor", dir], 0);
  assert.match(r.stdout, new RegExp(`^WARN +free pages +.*\`keel compact ${dir} ${dir}\\.compacted\``, "m"));
  assert.match(r.stdout, /^OK +durability +the write-ahead log is off .*cannot be checked here/m);
  assert.match(r.stdout, /^(OK|WARN) +filesystem /m);
  assert.match(r.stdout, /^(OK|WARN) +disk space /m);
  await keelExpect(["doctor", dir, "--strict"], 1);
  const doc = await keelJson<{ ok: boolean; warnings: number; checks: Array<{ name: string; status: string; message: string }> }>(["doctor", dir]);
  assert.equal(doc.ok, false);
  assert.ok(doc.warnings >= 1);
  assert.equal(doc.checks.find((c) => c.name === "free pages")?.status, "WARN");

  const walDir = join(tempDir(t), "wal-db");
  await makeDb(walDir);
  const w = await keelJson<{ checks: Array<{ name: string; status: string; message: string }> }>(["doctor", walDir]);
  const log = w.checks.find((c) => c.name === "log backlog");
  assert.equal(log?.status, "OK", log?.message);
  assert.match(w.checks.find((c) => c.name === "durability")!.message, /write-ahead log is on/);
});

test("doctor lists read-only processes: OK when none or at the newest meta, WARN when one holds an older view, stale files noted", async (t) => {
  const dir = join(tempDir(t), "db");
  await makeDb(dir, { wal: false });
  const none = await keelJson<{ checks: Array<{ name: string; status: string; message: string }> }>(["doctor", dir]);
  assert.equal(none.checks.find((c) => c.name === "readers")?.status, "OK");
  assert.match(none.checks.find((c) => c.name === "readers")!.message, /no read-only process/);
  // A read-only open of this process registers at the newest meta.
  const ro = await open(dir, { readOnly: true });
  try {
    const at = await keelExpect(["doctor", dir], 0);
    assert.match(at.stdout, new RegExp(`^OK +readers +1 read-only open\\(s\\) by process ${process.pid}, the oldest at txn \\d+$`, "m"));
    // One at txn 1 (older than the newest meta), and a file left by a process that is gone.
    writeFileSync(join(dir, `READER.${process.pid}.999`), `txn 1\n${stampLines()}`);
    const gone = spawnSync(process.execPath, ["-e", ""]).pid!;
    writeFileSync(join(dir, `READER.${gone}.1`), "txn 1\n");
    const behind = await keelJson<{ checks: Array<{ name: string; status: string; message: string; details: { pids: number[]; oldestTxn: number; stale: number } }> }>(["doctor", dir]);
    const c = behind.checks.find((x) => x.name === "readers")!;
    assert.equal(c.status, "WARN", c.message);
    assert.deepEqual(c.details.pids, [process.pid]);
    assert.equal(c.details.oldestTxn, 1);
    assert.equal(c.details.stale, 1);
    assert.match(c.message, /behind the newest meta .*1 file\(s\) left by read-only processes that are gone/);
  } finally {
    await ro.close();
  }
});

/** Run keel with stdout on /dev/full (every write: ENOSPC), or on a pipe closed after its first chunk. */
function keelFailingStdout(args: string[], how: "full" | "closed-pipe"): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const fd = how === "full" ? openSync("/dev/full", "w") : undefined;
    const child = spawn(process.execPath, [KEEL, ...args], { stdio: ["ignore", fd ?? "pipe", "pipe"] });
    if (fd !== undefined) closeSync(fd);
    const err: Buffer[] = [];
    child.stderr!.on("data", (c: Buffer) => err.push(c));
    child.stdout?.once("data", () => child.stdout!.destroy()); // the reader goes away (`| head -c`)
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("error", reject);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stderr: Buffer.concat(err).toString("utf8") });
    });
  });
}

test("a stdout that fails: exit 6 naming FULL on a full disk, never a stack trace; a cut-short dump is never a success; `scan | head` ends quietly", { skip: !existsSync("/dev/full") }, async (t) => {
  const dir = tempDir(t);
  const db = await open(dir);
  await db.transaction((tx) => {
    for (let i = 0; i < 20000; i++) tx.put(`key${i}`, "v".repeat(60));
  });
  await db.close();
  for (const args of [["dump", dir], ["--json", "dump", dir], ["scan", dir], ["--json", "stat", dir], ["--json", "txlog", dir]]) {
    const r = await keelFailingStdout(args, "full");
    assert.equal(r.status, 6, `keel ${args.join(" ")} > /dev/full: ${r.stderr}`);
    assert.match(r.stderr, /\[FULL\]|"code":"FULL"/, `keel ${args.join(" ")}: names FULL`);
    assert.doesNotMatch(r.stderr, /\n\s+at /, `keel ${args.join(" ")}: no stack trace`);
  }
  // The dump's reader goes away after its first chunk: the dump is incomplete, so it fails.
  const cut = await keelFailingStdout(["dump", dir], "closed-pipe");
  assert.equal(cut.status, 6, `dump | head -c: ${cut.stderr}`);
  assert.match(cut.stderr, /\[IO\]/);
  // A listing whose reader goes away is the reader's choice: exit 0, nothing printed.
  const scan = await keelFailingStdout(["scan", dir], "closed-pipe");
  assert.equal(scan.status, 0, `scan | head: ${scan.stderr}`);
  assert.equal(scan.stderr, "");
  // None of these exits left its READER.<pid>.<n> (read-only opens) or its LOCK (txlog's writable open).
  assert.deepEqual(filesLeft(dir), [], "files left by the exits");
});

test("a command that prints nothing on a stdout that refuses every write exits with its own status (an empty flush reached /dev/full: exit 6); --json after -- is an operand", { skip: !existsSync("/dev/full") }, async (t) => {
  const dir = tempDir(t);
  const db = await open(dir);
  await db.put("k", "v");
  await db.close();
  const missing = await keelFailingStdout(["get", dir, "missing"], "full");
  assert.equal(missing.status, 4, `get of a missing key > /dev/full: ${missing.stderr}`);
  assert.doesNotMatch(missing.stderr, /FULL/);
  const empty = await keelFailingStdout(["scan", dir, "--start", "zzz"], "full");
  assert.equal(empty.status, 0, `an empty scan > /dev/full: ${empty.stderr}`);
  // "--json" after "--" is a key, not the option: the usage error stays human, on stderr.
  const r = await keelExpect(["get", dir, "--", "--json", "extra"], 2);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, /too many arguments/);
});

test("a path that is a regular file, not a database directory: exit 4 (NOT_FOUND), not an I/O error", async (t) => {
  const dir = tempDir(t);
  const file = join(dir, "afile");
  writeFileSync(file, "not a database");
  for (const cmd of ["stat", "verify", "list", "scan", "dump"]) {
    const r = await keelExpect([cmd, file], 4);
    assert.match(r.stderr, /no database at/, cmd);
  }
  const j = await keelJson<{ error: { code: string } }>(["stat", file], 4);
  assert.equal(j.error.code, "NOT_FOUND");
  // Commands that may create the database say the same (before: exit 6, mkdir's EEXIST as IO).
  const dump = join(dir, "d.jsonl");
  await makeDb(join(dir, "src"));
  await keelExpect(["dump", join(dir, "src"), "-f", dump], 0);
  for (const args of [["load", file, "-f", dump], ["put", file, "k", "v", "--create"]]) {
    const r = await keelExpect(args, 4);
    assert.match(r.stderr, /no database at .* \[NOT_FOUND\]/, args[0]);
  }
});

test("a stored value too large to print (hex or base64 past the largest JavaScript string): get, get --json and a JSON Lines dump exit 2 with INVALID_ARGUMENT, never 10", async (t) => {
  const dir = tempDir(t);
  // 403 MB: allowed with maxValueSize up to 2^31 - 1; its hex (and its base64) pass V8's 2^29 - 24 characters.
  const db = await open(dir, { wal: false, maxValueSize: 2 ** 31 - 1 });
  const bin = db.openDB("bin", { keyEncoding: "binary", encoding: "binary" });
  await bin.put(Buffer.from("k"), Buffer.alloc(403_000_000, 0xab));
  await db.close();
  const get = await keelExpect(["get", dir, "6b", "--db", "bin", "--key-type", "hex"], 2);
  assert.match(get.stderr, /keel dump --format binary/, "the message names the way out");
  const json = await keelJson<{ error: { code: string } }>(["get", dir, "6b", "--db", "bin", "--key-type", "hex"], 2);
  assert.equal(json.error.code, "INVALID_ARGUMENT");
  const dumped = await keelJson<{ error: { code: string; details: { argument: string } } }>(["dump", dir, "-f", join(dir, "..", "big.jsonl")], 2);
  assert.equal(dumped.error.code, "INVALID_ARGUMENT");
  assert.equal(dumped.error.details.argument, "format");
  assert.equal(existsSync(join(dir, "..", "big.jsonl")), false, "no dump left");
});

/**
 * Start `keel args...` with stdout on a named pipe whose reader never reads (64 KiB fill it up), once
 * the first byte of output arrived. `status` settles at its exit.
 */
async function keelIntoStalledPipe(t: { after: (fn: () => void) => void }, args: readonly string[]) {
  const fifo = join(tempDir(t), "fifo");
  assert.equal(spawnSync("mkfifo", [fifo]).status, 0);
  // The reader end, held open (O_NONBLOCK: the open does not wait for a writer).
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  t.after(() => closeSync(reader));
  const child = spawn("/bin/sh", ["-c", `exec "$0" "$@" > "${fifo}"`, process.execPath, KEEL, ...args], { stdio: ["ignore", "ignore", "pipe"] });
  const err: Buffer[] = [];
  child.stderr.on("data", (c: Buffer) => err.push(c));
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const status = new Promise<{ status: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on("close", (st, signal) => {
      clearTimeout(timer);
      r({ status: st, signal });
    }),
  );
  t.after(() => child.kill("SIGKILL"));
  for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
    try {
      if (readSync(reader, Buffer.alloc(1)) === 1) break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return { child, status, stderr: () => Buffer.concat(err).toString() };
}

test("a signal to a command blocked on a reader that stopped reading (`keel scan db | less`), during or after its work, exits 130 and leaves no READER or LOCK file", { timeout: 120_000, skip: spawnSync("mkfifo", ["--version"]).status !== 0 }, async (t) => {
  const dir = tempDir(t);
  const db = await open(dir);
  await db.transaction((tx) => {
    for (let i = 0; i < 20000; i++) tx.put(`key${i}`, "v".repeat(60));
  });
  await db.put("big", "b".repeat(70_000));
  await db.close();
  for (const [args, sig] of [
    [["scan", dir], "SIGTERM"],
    [["txlog", dir], "SIGHUP"],
    [["--json", "scan", dir], "SIGINT"],
    // Output a little over the pipe's 64 KiB: the work is done and the database closed; the exit
    // waits for the reader.
    [["scan", dir, "--limit", "1000"], "SIGTERM"],
    [["get", dir, "big"], "SIGTERM"],
  ] as const) {
    const k = await keelIntoStalledPipe(t, args);
    await new Promise((r) => setTimeout(r, 300)); // the pipe fills up and the write waits
    k.child.kill(sig);
    const what = `keel ${args.join(" ")} + ${sig}`;
    assert.deepEqual(await k.status, { status: 130, signal: null }, `${what}: ${k.stderr()}`);
    assert.match(k.stderr(), /^keel: interrupted\n$/, what);
    assert.deepEqual(filesLeft(dir), [], `${what}: files left`);
  }
});

test("a dump into a named pipe whose reader stopped reading ends at the first signal (exit 130), not at a second one", { timeout: 60_000, skip: spawnSync("mkfifo", ["--version"]).status !== 0 }, async (t) => {
  const dir = tempDir(t);
  const db = await open(dir);
  await db.transaction((tx) => {
    for (let i = 0; i < 20000; i++) tx.put(`key${i}`, "v".repeat(60));
  });
  await db.close();
  const k = await keelIntoStalledPipe(t, ["dump", dir]);
  await new Promise((r) => setTimeout(r, 300)); // the pipe fills up (1.6 MB of dump) and the write waits
  k.child.kill("SIGTERM");
  assert.deepEqual(await k.status, { status: 130, signal: null }, k.stderr());
  assert.match(k.stderr(), /aborted \[ABORTED\]/);
  assert.deepEqual(filesLeft(dir), [], "files left");
});

test("a signal before the database is opened (`keel put db k -` waiting for stdin) exits 130, not killed by the signal", { timeout: 60_000, skip: !existsSync("/proc/self/status") }, async (t) => {
  const dir = tempDir(t);
  const db = await open(dir);
  await db.close();
  const child = spawn(process.execPath, [KEEL, "put", dir, "k", "-"], { stdio: ["pipe", "pipe", "pipe"] });
  t.after(() => child.kill("SIGKILL"));
  const err: Buffer[] = [];
  child.stderr.on("data", (c: Buffer) => err.push(c));
  const exited = new Promise<{ status: number | null; signal: NodeJS.Signals | null }>((r) => child.on("close", (status, signal) => r({ status, signal })));
  assert.ok(await untilCatchesSighup(child.pid), "keel installed its signal handlers while waiting for stdin");
  child.kill("SIGTERM");
  assert.deepEqual(await exited, { status: 130, signal: null }, Buffer.concat(err).toString());
  assert.equal(Buffer.concat(err).toString(), "keel: interrupted\n");
  assert.deepEqual(filesLeft(dir), []);
  const after = await open(dir);
  assert.equal(after.get("k"), undefined, "nothing was written");
  await after.close();
});

test("`keel put --create` interrupted at any moment: either it finished (exit 0, the key is there) or it left no database behind (exit 130)", { timeout: 120_000 }, async (t) => {
  const root = tempDir(t);
  const run = (dir: string, killAfterMs: number | null) =>
    new Promise<{ status: number | null; signal: NodeJS.Signals | null; ms: number }>((resolve) => {
      const t0 = performance.now();
      const child = spawn(process.execPath, [KEEL, "put", "--create", dir, "k", "v"], { stdio: "ignore" });
      if (killAfterMs !== null) setTimeout(() => child.kill("SIGTERM"), killAfterMs);
      child.on("close", (status, signal) => resolve({ status, signal, ms: performance.now() - t0 }));
    });
  const whole = await run(join(root, "first"), null);
  assert.equal(whole.status, 0);
  const outcomes = new Map<string, number>();
  for (let i = 0; i < 16; i++) {
    const dir = join(root, `db${i}`);
    // Spread over the whole run, start-up included.
    const r = await run(dir, ((i + 0.5) / 16) * whole.ms);
    const what = `signal after ${(((i + 0.5) / 16) * whole.ms).toFixed(0)} ms: ${JSON.stringify(r)}`;
    if (r.status === 0) {
      const db = await open(dir, { readOnly: true });
      assert.equal(db.get("k"), "v", what);
      await db.close();
    } else {
      // Killed by the signal itself only before keel's first line runs (Node's start-up): nothing was made then.
      assert.ok(r.status === 130 || r.signal === "SIGTERM", what);
      assert.equal(existsSync(join(dir, "data.keel")), false, `${what}: a database was left`);
      assert.equal(existsSync(join(dir, "LOCK")), false, `${what}: a LOCK was left`);
    }
    const k = r.status === 0 ? "done" : r.status === 130 ? "interrupted" : "killed";
    outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
  }
  t.diagnostic(`outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`);
});
