/**
 * ProcessStamp: a file naming a pid is live only while that pid is still the process that wrote
 * it: gone, from another boot, or a pid recycled by a process that started later all read as
 * stale. Real child processes and the real /proc.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isAlive, ownStamp, parseStamp, stampIsLive, stampLines, startTimeOf } from "../../src/io/ProcessStamp.js";
import { deadPid } from "../helpers/processes.js";

const LINUX = existsSync("/proc/self/stat");

/** A live child that does nothing, killed when the test ends. */
function sleeper(t: { after(fn: () => void): void }, file = "sleep"): ChildProcess {
  const child = spawn(file, ["60"], { stdio: "ignore" });
  t.after(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  assert.ok(child.pid && isAlive(child.pid));
  return child;
}

test("this process's stamp round-trips through its lines and is live", { skip: !LINUX }, () => {
  const own = ownStamp();
  assert.equal(own.pid, process.pid);
  assert.match(own.boot, /^[0-9a-f-]{36}$/);
  assert.match(own.start, /^\d+$/);
  const parsed = parseStamp(process.pid, `txn 5\n${stampLines()}`);
  assert.deepEqual(parsed, own);
  assert.equal(stampIsLive(parsed), true);
});

test("a live pid is stale when the stamp's start time or boot is not its own", { skip: !LINUX }, (t) => {
  const child = sleeper(t);
  const pid = child.pid!;
  const start = startTimeOf(pid);
  assert.match(start, /^\d+$/);
  const boot = ownStamp().boot;
  assert.equal(stampIsLive({ pid, boot, start }), true, "the child's real stamp");
  assert.equal(stampIsLive({ pid, boot: "", start: "" }), true, "a pid-only file (written before stamps) is judged by kill(pid, 0)");
  assert.equal(stampIsLive({ pid, boot, start: String(Number(start) + 1) }), false, "another start time: the pid was recycled");
  assert.equal(stampIsLive({ pid, boot: "00000000-0000-0000-0000-000000000000", start }), false, "another boot: left by a power cut");
  assert.equal(stampIsLive({ pid: deadPid(), boot, start }), false, "a dead pid");
  assert.equal(stampIsLive({ pid: 0, boot, start }), false);
});

test("startTimeOf reads field 22 even when the command name holds spaces and parentheses", { skip: !LINUX }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), "keel-stamp-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const odd = join(dir, "a b) (c d)");
  copyFileSync("/bin/sleep", odd);
  spawnSync("chmod", ["+x", odd]);
  const child = sleeper(t, odd);
  const start = startTimeOf(child.pid!);
  assert.match(start, /^\d+$/);
  // Read from the wrong field (a parse that stops at the first ")"), it would not be a start
  // time: start times are ticks after boot, so the child's is at least ours and close to that of
  // a plain sleep started right after it.
  const plain = startTimeOf(sleeper(t).pid!);
  assert.ok(Number(start) >= Number(ownStamp().start), `${start} vs ours ${ownStamp().start}`);
  assert.ok(Math.abs(Number(start) - Number(plain)) < 1000, `${start} vs ${plain}`);
  assert.equal(stampIsLive({ pid: child.pid!, boot: ownStamp().boot, start }), true);
});

test("a zombie (killed, not reaped by its parent) is not alive, nor is its stamp live", { skip: !LINUX }, async (t) => {
  // sh starts a sleep in the background, prints its pid, and becomes a sleep that never waits:
  // the first sleep, once killed, stays a zombie until its parent ends.
  const parent = spawn("sh", ["-c", "sleep 60 & echo $!; exec sleep 60"], { stdio: ["ignore", "pipe", "ignore"] });
  t.after(() => {
    if (parent.exitCode === null) parent.kill("SIGKILL");
  });
  const pid = Number(await new Promise<string>((resolve) => parent.stdout!.once("data", (d) => resolve(String(d).trim()))));
  const stamp = parseStamp(pid, stampLines({ pid, boot: ownStamp().boot, start: startTimeOf(pid) }));
  assert.equal(isAlive(pid), true);
  assert.equal(stampIsLive(stamp), true);
  process.kill(pid, "SIGKILL");
  const dead = () => /\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8")) && readdirSync(`/proc/${pid}/task`).length === 1;
  for (let i = 0; i < 400 && !dead(); i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(dead(), "sanity: the killed sleep is a zombie");
  assert.equal(isAlive(pid), false, "a zombie runs no more");
  assert.equal(stampIsLive(stamp), false);
});

test("a process whose main thread has exited while another thread runs (its leader shows as a zombie) is alive", { skip: !LINUX || spawnSync("python3", ["-c", ""]).status !== 0 }, async (t) => {
  const script = "import threading, time, ctypes, os\nthreading.Thread(target=lambda: time.sleep(60)).start()\nprint(os.getpid(), flush=True)\nctypes.CDLL(None).pthread_exit(None)\n";
  const child = spawn("python3", ["-c", script], { stdio: ["ignore", "pipe", "ignore"] });
  t.after(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  const pid = Number(await new Promise<string>((resolve) => child.stdout!.once("data", (d) => resolve(String(d).trim()))));
  for (let i = 0; i < 400 && !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8")); i++) await new Promise((r) => setTimeout(r, 25));
  assert.match(readFileSync(`/proc/${pid}/stat`, "utf8"), /\) Z /, "sanity: the leader shows as a zombie");
  assert.equal(isAlive(pid), true, "its other thread still runs");
  assert.equal(stampIsLive(parseStamp(pid, stampLines({ pid, boot: ownStamp().boot, start: startTimeOf(pid) }))), true);
});
