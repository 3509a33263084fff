/**
 * Lock: one process at a time has a database open. A second open in this process, or from another
 * live process, is LOCKED naming the holder's pid; a LOCK left by a dead process is taken over.
 * Uses real files and real child processes.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { KeelError, NodeFileSystem, open, type OpenMode } from "../../src/index.js";
import { ownStamp, stampLines, startTimeOf } from "../../src/io/ProcessStamp.js";
import { rejectsKeel, tempDir } from "./dbUtil.js";
import { deadPid } from "../helpers/processes.js";
import { overriding } from "../helpers/overriding.js";

const INDEX = fileURLToPath(new URL("../../src/index.js", import.meta.url));

function lockPid(dir: string): number {
  return Number.parseInt(readFileSync(join(dir, "LOCK"), "utf8").split("\n")[0]!, 10);
}

/** A child script that opens `dir` and prints one JSON line: {ok} or {code, pid}. */
function openerScript(dir: string, hold: boolean): string {
  return `
import { open } from ${JSON.stringify(INDEX)};
try {
  const db = await open(${JSON.stringify(dir)}, { wal: false });
  console.log(JSON.stringify({ ok: true, pid: process.pid }));
  if (${hold}) { process.stdin.resume(); process.stdin.on("end", async () => { await db.close(); process.exit(0); }); }
  else await db.close();
} catch (e) {
  console.log(JSON.stringify({ code: e.code, pid: e.details ? e.details.pid : undefined, name: e.name }));
}
`;
}

function runOpener(dir: string): { code?: string; pid?: number; ok?: boolean } {
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", openerScript(dir, false)], { encoding: "utf8", timeout: 20000 });
  assert.equal(r.status, 0, `child failed: ${r.stderr}`);
  const line = r.stdout.trim().split("\n").pop()!;
  return JSON.parse(line);
}

/** Keep the file at `path` young (its mtime now, every 50 ms) until the test ends or the returned stop is called. */
function keepYoung(t: TestContext, path: string): () => void {
  const touch = setInterval(() => {
    const now = new Date();
    utimesSync(path, now, now);
  }, 50);
  const stop = () => clearInterval(touch);
  t.after(stop);
  return stop;
}

/** An open of `dir` in a child process (killed after 30 s), without blocking this one: the child's last line. */
async function openInChild(dir: string, env: NodeJS.ProcessEnv = process.env, onSpawn?: (child: ReturnType<typeof spawn>) => void): Promise<{ ok?: boolean; code?: string; pid?: number }> {
  const child = spawn(process.execPath, ["--input-type=module", "-e", openerScript(dir, false)], { stdio: ["ignore", "pipe", "inherit"], env });
  const kill = setTimeout(() => child.kill("SIGKILL"), 30000);
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  onSpawn?.(child);
  const code = await new Promise((r) => child.on("exit", r));
  clearTimeout(kill);
  assert.equal(code, 0, `the open in the child ended: ${out}`);
  return JSON.parse(out.trim().split("\n").pop()!);
}

test("a second open in the same process is LOCKED naming this process; close releases the lock", async (t) => {
  const dir = tempDir(t);
  const db = await open(dir, { wal: false });
  assert.equal(lockPid(dir), process.pid, "the LOCK names the holder");
  const e = await rejectsKeel(open(dir, { wal: false }), "LOCKED");
  assert.equal(e.details.pid, process.pid);
  // Read-only opens are refused as well while a writer holds the lock.
  const r = await rejectsKeel(open(dir, { readOnly: true }), "LOCKED");
  assert.equal(r.details.pid, process.pid);
  // The first handle is unaffected.
  await db.put("k", 1);
  assert.equal(db.get("k"), 1);
  await db.close();
  assert.equal(existsSync(join(dir, "LOCK")), false, "close removed the LOCK");
  const db2 = await open(dir, { wal: false });
  assert.equal(db2.get("k"), 1);
  await db2.close();
});

test("an open from another live process is LOCKED naming this process's pid", async (t) => {
  const dir = tempDir(t);
  const db = await open(dir, { wal: false });
  await db.put("k", "parent");
  const res = runOpener(dir);
  assert.equal(res.code, "LOCKED", JSON.stringify(res));
  assert.equal(res.pid, process.pid);
  assert.equal(lockPid(dir), process.pid, "the refused child did not touch the LOCK");
  assert.equal(db.get("k"), "parent");
  await db.close();
  // Once closed here, the child can open it.
  const res2 = runOpener(dir);
  assert.equal(res2.ok, true, JSON.stringify(res2));
});

test("a live child holding the database makes our open LOCKED naming the child; after it is killed, the lock is taken over", async (t) => {
  const dir = tempDir(t);
  const child = spawn(process.execPath, ["--input-type=module", "-e", openerScript(dir, true)], { stdio: ["pipe", "pipe", "inherit"] });
  t.after(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  const line = await new Promise<string>((resolve, reject) => {
    let buf = "";
    child.stdout!.on("data", (d) => {
      buf += d;
      if (buf.includes("\n")) resolve(buf.split("\n")[0]!);
    });
    child.on("exit", (c) => reject(new Error(`child exited early with ${c}: ${buf}`)));
  });
  const ready = JSON.parse(line);
  assert.equal(ready.ok, true);
  assert.equal(ready.pid, child.pid);
  const e = await rejectsKeel(open(dir, { wal: false }), "LOCKED");
  assert.equal(e.details.pid, child.pid);
  // kill -9: the LOCK stays behind, naming a dead process.
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGKILL");
  await exited;
  assert.equal(lockPid(dir), child.pid);
  const db = await open(dir, { wal: false });
  assert.equal(lockPid(dir), process.pid, "the LOCK was taken over");
  await db.close();
});

test("a LOCK naming a dead pid is taken over", async (t) => {
  const dir = tempDir(t);
  mkdirSync(dir, { recursive: true });
  const pid = deadPid();
  writeFileSync(join(dir, "LOCK"), `${pid}\n2020-01-01T00:00:00.000Z\n`);
  const db = await open(dir, { wal: false });
  assert.equal(lockPid(dir), process.pid);
  await db.put("k", 1);
  await db.close();
  assert.equal(existsSync(join(dir, "LOCK")), false);
  // Also with an existing database.
  writeFileSync(join(dir, "LOCK"), `${deadPid()}\n`);
  const db2 = await open(dir, { wal: false });
  assert.equal(db2.get("k"), 1);
  await db2.close();
});

test("an empty or unreadable LOCK (its writer died while writing it) is taken over", async (t) => {
  const dir = tempDir(t);
  mkdirSync(dir, { recursive: true });
  for (const content of ["", "garbage\n", "\n\n"]) {
    writeFileSync(join(dir, "LOCK"), content);
    const db = await open(dir, { wal: false });
    assert.equal(lockPid(dir), process.pid, `LOCK content ${JSON.stringify(content)}`);
    await db.close();
  }
});

test("the wait on a young empty LOCK is timed by a monotonic clock: a wall clock stepped back meanwhile does not stretch it", async (t) => {
  const dir = tempDir(t);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "LOCK"), "");
  // In a child (the wait blocks its thread): Date.now steps back an hour 300 ms into the open. By
  // Date.now the 2 s wait would last an hour and the child would be killed at the timeout.
  const script = `
const realNow = Date.now;
const t0 = realNow();
Date.now = () => (realNow() - t0 >= 300 ? realNow() - 3_600_000 : realNow());
${openerScript(dir, false)}`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 20000 });
  assert.equal(r.status, 0, `the open ended (signal ${r.signal}): ${r.stderr}`);
  assert.deepEqual(JSON.parse(r.stdout.trim().split("\n").pop()!).ok, true, "the empty LOCK was taken over after the wait");
});

test("a young empty LOCK is one being written: open waits for its text and is LOCKED by its writer", async (t) => {
  const dir = tempDir(t);
  mkdirSync(dir, { recursive: true });
  const lock = join(dir, "LOCK");
  writeFileSync(lock, "");
  // The "writer" fills the LOCK 300 ms later and stays alive; an open that took the empty LOCK
  // for stale at once would have removed it and opened.
  const child = spawn(process.execPath, ["-e", `setTimeout(() => require("node:fs").writeFileSync(${JSON.stringify(lock)}, process.pid + "\\n"), 300); setTimeout(() => {}, 20000);`], { stdio: "ignore" });
  t.after(() => child.kill("SIGKILL"));
  const e = await rejectsKeel(open(dir, { wal: false }), "LOCKED");
  assert.equal(e.details.pid, child.pid);
});

test("close does not remove a LOCK that names another process", async (t) => {
  const dir = tempDir(t);
  const db = await open(dir, { wal: false });
  // Something else replaced the LOCK (an operator, a bug): our close must not delete theirs.
  writeFileSync(join(dir, "LOCK"), `${process.ppid}\n`);
  await db.close();
  assert.equal(existsSync(join(dir, "LOCK")), true);
  assert.equal(lockPid(dir), process.ppid);
  const e = await rejectsKeel(open(dir, { wal: false }), "LOCKED");
  assert.equal(e.details.pid, process.ppid);
  assert.ok(e instanceof KeelError);
});

test("close removes only the LOCK it wrote: one naming this process but written by another open (another thread's) stays", async (t) => {
  const dir = tempDir(t);
  const db = await open(dir, { wal: false });
  const theirs = `${process.pid}\n2030-01-01T00:00:00.000Z\nthread 7\n`;
  writeFileSync(join(dir, "LOCK"), theirs);
  await db.close();
  assert.equal(readFileSync(join(dir, "LOCK"), "utf8"), theirs);
});

test("a LOCK whose pid now names another process (recycled, or from an earlier boot) is taken over; one naming that process is LOCKED", { skip: !existsSync("/proc/self/stat") }, async (t) => {
  const dir = tempDir(t);
  mkdirSync(dir, { recursive: true });
  // A live process that is not a KeelDB holder: the pid a crashed holder's LOCK may now name.
  const other = spawn("sleep", ["60"], { stdio: "ignore" });
  t.after(() => {
    if (other.exitCode === null) other.kill("SIGKILL");
  });
  const pid = other.pid!;
  const { boot } = ownStamp();
  const start = startTimeOf(pid);
  const lock = (b: string, s: string) => writeFileSync(join(dir, "LOCK"), `${pid}\n2020-01-01T00:00:00.000Z\nboot ${b}\nstart ${s}\n`);
  lock(boot, start);
  const e = await rejectsKeel(open(dir, { wal: false }), "LOCKED");
  assert.equal(e.details.pid, pid, "a LOCK with that process's own stamp is held");
  await rejectsKeel(open(dir, { readOnly: true }), "LOCKED");
  lock(boot, String(Number(start) - 1));
  const db = await open(dir, { wal: false });
  assert.equal(lockPid(dir), process.pid, "a pid recycled by a process that started later: taken over");
  await db.put("k", 1);
  await db.close();
  lock("00000000-0000-0000-0000-000000000000", start);
  const db2 = await open(dir, { wal: false });
  assert.equal(lockPid(dir), process.pid, "a LOCK from an earlier boot (power cut): taken over");
  assert.equal(db2.get("k"), 1);
  await db2.close();
  const held = await open(dir, { wal: false });
  // The LOCK a holder writes carries its stamp, then the holder socket it listens on (LockNamespaces.test.ts).
  assert.match(readFileSync(join(dir, "LOCK"), "utf8"), new RegExp(`^${process.pid}\\n.*\\nthread 0\\nboot ${boot}\\nstart ${ownStamp().start}\\nsock LOCK\\.[0-9a-f]{12}\\.sock\\n$`));
  await held.close();
});

/** Two child processes race to open `t`'s directory holding a stale LOCK, with the test pauses `pauses`: exactly one must hold it. */
async function raceTakeover(t: TestContext, pauses: Record<string, string>): Promise<void> {
  const dir = tempDir(t);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "LOCK"), `${deadPid()}\n2020-01-01T00:00:00.000Z\n`);
  const env = { ...process.env, ...pauses };
  const children = [0, 1].map(() => spawn(process.execPath, ["--input-type=module", "-e", openerScript(dir, true)], { stdio: ["pipe", "pipe", "inherit"], env }));
  t.after(() => {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  });
  const results = await Promise.all(
    children.map(
      (c) =>
        new Promise<{ ok?: boolean; code?: string; pid?: number }>((resolve, reject) => {
          let buf = "";
          c.stdout!.on("data", (d) => {
            buf += d;
            if (buf.includes("\n")) resolve(JSON.parse(buf.split("\n")[0]!));
          });
          c.on("exit", (code) => reject(new Error(`child exited early with ${code}: ${buf}`)));
        }),
    ),
  );
  const winners = results.filter((r) => r.ok);
  const losers = results.filter((r) => !r.ok);
  assert.equal(winners.length, 1, `exactly one holder: ${JSON.stringify(results)}`);
  assert.equal(losers[0]!.code, "LOCKED", JSON.stringify(results));
  assert.equal(losers[0]!.pid, winners[0]!.pid, "the loser names the winner");
  assert.equal(lockPid(dir), winners[0]!.pid);
  assert.equal(existsSync(join(dir, "LOCK.takeover")), false, "no guard is left behind");
  for (const c of children) c.stdin!.end();
}

test("two processes that find the same stale LOCK at once: exactly one takes it over, the other is LOCKED (the takeover guard)", async (t) => {
  // Each child pauses between judging the LOCK stale and removing it: without the guard both
  // would remove, the slower one removing the LOCK the faster one has just created.
  await raceTakeover(t, { KEEL_TEST_LOCK_TAKEOVER_PAUSE_MS: "400" });
});

test("the second process to take the guard finds the stale LOCK gone: it removes nothing, and the LOCK the first creates next stays (exactly one holder)", async (t) => {
  // The first removes the stale LOCK and gives the guard up, then pauses before its create; the
  // second, in the guard meanwhile, finds no LOCK. Taking "gone" for "stale", it removed the LOCK
  // the first had created by the end of its own pause, and both held the database (seen in CI
  // without the pauses, when the first was descheduled between the guard and the create).
  await raceTakeover(t, { KEEL_TEST_LOCK_TAKEOVER_PAUSE_MS: "400", KEEL_TEST_LOCK_RETRY_PAUSE_MS: "300" });
});

test("a takeover guard left by a process that died (named, or still empty after the wait) does not block opens", async (t) => {
  const dir = tempDir(t);
  mkdirSync(dir, { recursive: true });
  for (const guard of [`${deadPid()}\n`, ""]) {
    writeFileSync(join(dir, "LOCK"), `${deadPid()}\n`);
    writeFileSync(join(dir, "LOCK.takeover"), guard);
    const db = await open(dir, { wal: false });
    assert.equal(lockPid(dir), process.pid, `guard ${JSON.stringify(guard)}`);
    assert.equal(existsSync(join(dir, "LOCK.takeover")), false);
    await db.close();
  }
});

test("a takeover guard that is empty because a live process has just created it is waited for, however long this open has waited: LOCKED, never removed", async (t) => {
  const dir = tempDir(t);
  mkdirSync(dir, { recursive: true });
  const stale = `${deadPid()}\n2020-01-01T00:00:00.000Z\n`;
  writeFileSync(join(dir, "LOCK"), stale);
  const guard = join(dir, "LOCK.takeover");
  writeFileSync(guard, "");
  // Kept young: the guard of a live process between its create and its write, met again and again
  // (a waiter whose own wait ran out took such a guard for one left by a death, removed it, and
  // two processes went on to take the LOCK over together).
  const stop = keepYoung(t, guard);
  const res = await openInChild(dir);
  stop();
  assert.equal(res.code, "LOCKED", `the open waited for the guard's writer: ${JSON.stringify(res)}`);
  assert.equal(existsSync(guard), true, "the guard was not removed");
  assert.equal(readFileSync(join(dir, "LOCK"), "utf8"), stale, "the stale LOCK is left for the guard's holder");
});

test("a LOCK whose holder was killed but not yet reaped (a zombie: a container's pid 1 that never reaps) is taken over", { skip: !existsSync("/proc/self/stat") }, async (t) => {
  const dir = tempDir(t);
  mkdirSync(dir, { recursive: true });
  // The holder's parent is a sleep that never waits for it (sh execs into it).
  const script = `import(process.env.KEEL_INDEX).then((k) => { k.openSync(process.env.KEEL_DIR, { wal: false }); console.log(process.pid); setInterval(() => {}, 1000); });`;
  const parent = spawn("sh", ["-c", `"$NODE" -e "$SCRIPT" & exec sleep 60`], { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, NODE: process.execPath, SCRIPT: script, KEEL_INDEX: INDEX, KEEL_DIR: dir } });
  t.after(() => {
    if (parent.exitCode === null) parent.kill("SIGKILL");
  });
  const holder = Number(await new Promise<string>((resolve) => parent.stdout!.once("data", (d) => resolve(String(d).trim()))));
  assert.equal(lockPid(dir), holder);
  process.kill(holder, "SIGKILL");
  // A zombie whose threads have all ended (until then one may still be in a write: alive).
  const dead = () => /\) Z /.test(readFileSync(`/proc/${holder}/stat`, "utf8")) && readdirSync(`/proc/${holder}/task`).length === 1;
  for (let i = 0; i < 400 && !dead(); i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(dead(), "sanity: the holder is a zombie with no thread left");
  const db = await open(dir, { wal: false });
  assert.equal(lockPid(dir), process.pid, "the zombie's LOCK was taken over");
  await db.close();
});

test("an empty LOCK that something keeps young ends the open with LOCKED (it spun forever); a LOCK that is a dangling symbolic link is an IO error, not a hang", async (t) => {
  const dir = tempDir(t);
  mkdirSync(dir, { recursive: true });
  const lock = join(dir, "LOCK");
  writeFileSync(lock, "");
  const stop = keepYoung(t, lock);
  assert.equal((await openInChild(dir)).code, "LOCKED");
  assert.equal(readFileSync(lock, "utf8"), "", "left in place");
  stop();
  rmSync(lock);
  symlinkSync(join(dir, "nowhere"), lock);
  assert.equal((await openInChild(dir)).code, "IO");
});

test("a takeover whose guard was taken from it meanwhile (another process judged it stale) removes nothing: the other process's LOCK stays, this open is LOCKED naming it", async (t) => {
  const dir = tempDir(t);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "LOCK"), `${deadPid()}\n2020-01-01T00:00:00.000Z\n`);
  const guard = join(dir, "LOCK.takeover");
  // The child pauses inside the guard after judging the LOCK stale; meanwhile this process plays
  // one that took the guard from it (the guard's own takeover is not guarded) and the LOCK over.
  const env = { ...process.env, KEEL_TEST_LOCK_TAKEOVER_PAUSE_MS: "2000" };
  const child = spawn(process.execPath, ["--input-type=module", "-e", openerScript(dir, false)], { stdio: ["ignore", "pipe", "inherit"], env });
  t.after(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  const exited = new Promise((r) => child.on("exit", r));
  const inGuard = () => existsSync(guard) && readFileSync(guard, "utf8").startsWith(`${child.pid}\n`);
  for (let i = 0; i < 2000 && !inGuard(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(inGuard(), "the child holds the guard");
  // Inside its pause by now (or not yet judging: then it meets this LOCK, LOCKED all the same).
  await new Promise((r) => setTimeout(r, 100));
  rmSync(guard);
  const ourGuard = `${process.pid}\nthread 0\n${stampLines()}`;
  writeFileSync(guard, ourGuard);
  const ours = `${process.pid}\n2030-01-01T00:00:00.000Z\nthread 0\n${stampLines()}`;
  rmSync(join(dir, "LOCK"));
  writeFileSync(join(dir, "LOCK"), ours);
  await exited;
  // Step 3 removes only the guard the child wrote: this process's is still there.
  assert.equal(readFileSync(guard, "utf8"), ourGuard, "the child left the guard that replaced its own");
  rmSync(guard);
  const res = JSON.parse(out.trim().split("\n").pop()!);
  assert.equal(res.code, "LOCKED", `the child left this process's LOCK alone: ${out}`);
  assert.equal(res.pid, process.pid);
  assert.equal(readFileSync(join(dir, "LOCK"), "utf8"), ours);
});

test("a guard removed by another process between this one's create and its claim counts as taken: the open retries, no IO error", async (t) => {
  const dir = tempDir(t);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "LOCK"), `${deadPid()}\n2020-01-01T00:00:00.000Z\n`);
  // As a process does that judged a dead holder's guard stale just before this one replaced it.
  const inner = new NodeFileSystem();
  let removed = 0;
  const fs = overriding(inner, {
    claim: (path: string) => {
      if (path.endsWith("LOCK.takeover") && removed++ === 0) inner.remove(path);
      return inner.claim(path);
    },
  });
  const db = await open(dir, { wal: false, fs });
  assert.equal(removed >= 1, true, "the guard was removed under the open");
  assert.equal(lockPid(dir), process.pid);
  await db.close();
});

test("a writer stalled between creating its LOCK and writing it, whose empty LOCK was taken over meanwhile, does not go on as a second holder: LOCKED naming the new one", { skip: !existsSync("/proc/self/stat") }, async (t) => {
  const dir = tempDir(t);
  mkdirSync(dir, { recursive: true });
  // The one that took it over: a live process with its stamp.
  const other = spawn("sleep", ["60"], { stdio: "ignore" });
  t.after(() => {
    if (other.exitCode === null) other.kill("SIGKILL");
  });
  const theirs = `${other.pid}\n2030-01-01T00:00:00.000Z\nthread 0\n${stampLines({ pid: other.pid!, boot: ownStamp().boot, start: startTimeOf(other.pid!) })}`;
  const lockPath = join(dir, "LOCK");
  const inner = new NodeFileSystem();
  let stalled = 0;
  const fs = overriding(inner, {
    open: (path: string, mode: OpenMode) => {
      const h = inner.open(path, mode);
      if (path !== lockPath || mode !== "createExclusive" || stalled++ > 0) return h;
      // The stall: before this writer's text lands, its empty LOCK is judged stale (older than
      // 2 s), removed and replaced by the other process's.
      return overriding(h, {
        write: (buf: Uint8Array, off: number, len: number, pos: number) => {
          rmSync(lockPath);
          writeFileSync(lockPath, theirs);
          h.write(buf, off, len, pos);
        },
      });
    },
  });
  const e = await rejectsKeel(open(dir, { wal: false, fs }), "LOCKED");
  assert.equal(e.details.pid, other.pid);
  assert.equal(stalled, 1);
  assert.equal(readFileSync(lockPath, "utf8"), theirs, "their LOCK is untouched");
});
