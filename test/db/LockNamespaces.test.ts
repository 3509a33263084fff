/**
 * Lock across pid namespaces (containers sharing a directory): a holder's pid means another
 * process here, or none, so its LOCK also names a Unix socket it listens on (io/HolderSocket.ts).
 * A LOCK whose pid reads as gone is taken over only once that socket stops answering. Real files,
 * real sockets, real child processes, and real pid namespaces (unshare) where the machine allows.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { open, verify } from "../../src/index.js";
import { liveLockHolder } from "../../src/db/Lock.js";
import { HolderSocket, HOLDER_SOCKET_NAME, answers, socketNamed } from "../../src/io/HolderSocket.js";
import { nodeFileSystem } from "../../src/io/NodeFileSystem.js";
import { ownStamp } from "../../src/io/ProcessStamp.js";
import { rejectsKeel, tempDir } from "./dbUtil.js";
import { deadPid, unsharePidPrefix } from "../helpers/processes.js";

const INDEX = fileURLToPath(new URL("../../src/index.js", import.meta.url));

const sockets = (dir: string) => readdirSync(dir).filter((n) => HOLDER_SOCKET_NAME.test(n));
const lockText = (dir: string) => readFileSync(join(dir, "LOCK"), "utf8");

/** A holder's LOCK as another pid namespace would leave it: a pid and start time that mean nothing here. */
function foreignLock(pid: number, socket: string): string {
  return `${pid}\n2026-01-01T00:00:00.000Z\nthread 0\nboot ${ownStamp().boot}\nstart 1\nsock ${socket}\n`;
}

/** A child (optionally in a new pid namespace) that opens `dir`, prints one JSON line, and holds it until its stdin ends. */
function holderChild(t: TestContext, dir: string, prefix: string[] = []) {
  const script = `
import { open } from ${JSON.stringify(INDEX)};
try {
  const db = await open(${JSON.stringify(dir)}, { wal: false });
  console.log(JSON.stringify({ ok: true, pid: process.pid }));
  process.stdin.resume();
  process.stdin.on("end", async () => { await db.close(); process.exit(0); });
} catch (e) {
  console.log(JSON.stringify({ code: e.code, pid: e.details?.pid, socket: e.details?.socket }));
  process.exit(0);
}
`;
  const argv = [...prefix, process.execPath, "--input-type=module", "-e", script];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ["pipe", "pipe", "inherit"] });
  t.after(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  const line = new Promise<{ ok?: boolean; code?: string; pid?: number; socket?: string }>((resolve, reject) => {
    let buf = "";
    child.stdout!.on("data", (d) => {
      buf += d;
      if (buf.includes("\n")) resolve(JSON.parse(buf.split("\n")[0]!));
    });
    child.once("exit", (c) => reject(new Error(`child exited with ${c} before a line: ${buf}`)));
  });
  const exited = new Promise((r) => child.once("exit", r));
  return { child, line, exited };
}

test("an open database's LOCK names the holder socket it listens on; close stops it and removes the file; a failed open leaves none", async (t) => {
  const dir = tempDir(t);
  const db = await open(dir, { wal: false });
  const [name] = sockets(dir);
  assert.ok(name, "one holder socket while open");
  assert.deepEqual(sockets(dir), [name]);
  assert.equal(socketNamed(lockText(dir)), name, "the LOCK names it");
  assert.equal(answers(dir, name), true);
  // A second open in this process is refused, and its own socket does not outlive the refusal.
  await rejectsKeel(open(dir, { wal: false }), "LOCKED");
  assert.deepEqual(sockets(dir), [name]);
  await db.close();
  assert.deepEqual(sockets(dir), [], "close removes it");
  // An open that fails after taking the lock (the data file is a directory) releases both.
  const bad = tempDir(t);
  mkdirSync(join(bad, "data.keel"), { recursive: true });
  await assert.rejects(open(bad, { wal: false }));
  assert.deepEqual(sockets(bad), []);
  assert.equal(existsSync(join(bad, "LOCK")), false);
});

test("a LOCK whose pid reads as gone (or as this process's, with another start) but whose socket answers is held elsewhere: LOCKED naming the socket; once it stops answering it is taken over", async (t) => {
  const dir = tempDir(t);
  await (await open(dir, { wal: false })).close();
  // This test process plays the holder in another namespace: it listens, its LOCK names a pid that is gone here.
  const elsewhere = HolderSocket.listen(dir)!;
  t.after(() => elsewhere.close());
  const pid = deadPid();
  writeFileSync(join(dir, "LOCK"), foreignLock(pid, elsewhere.name));
  let e = await rejectsKeel(open(dir, { wal: false }), "LOCKED");
  assert.equal(e.details.pid, pid);
  assert.equal(e.details.socket, elsewhere.name);
  await rejectsKeel(open(dir, { readOnly: true, wal: false }), "LOCKED", "read-only opens too");
  assert.equal(liveLockHolder(nodeFileSystem, dir), pid, "keel verify/salvage/doctor see a live holder");
  assert.equal(lockText(dir), foreignLock(pid, elsewhere.name), "the LOCK is left as it was");
  // Both containers' node processes are often pid 1: a LOCK naming our own pid, unclaimed here.
  writeFileSync(join(dir, "LOCK"), foreignLock(process.pid, elsewhere.name));
  e = await rejectsKeel(open(dir, { wal: false }), "LOCKED");
  assert.equal(e.details.socket, elsewhere.name);
  // verify(dir) passes over this process's own open, not over a writer elsewhere with our pid number.
  e = await rejectsKeel(verify(dir), "LOCKED");
  assert.equal(e.details.socket, elsewhere.name);
  // The holder ends without removing its LOCK (a clean stop would): nobody listens, taken over.
  elsewhere.close();
  const db = await open(dir, { wal: false });
  assert.equal(Number.parseInt(lockText(dir), 10), process.pid);
  await db.close();
});

test("a holder killed with SIGKILL leaves its socket file, which no longer answers: the next open takes the LOCK over and removes that file", async (t) => {
  const dir = tempDir(t);
  const h = holderChild(t, dir);
  assert.equal((await h.line).ok, true);
  const [theirs] = sockets(dir);
  assert.ok(theirs);
  const e = await rejectsKeel(open(dir, { wal: false }), "LOCKED");
  assert.equal(e.details.pid, h.child.pid);
  h.child.kill("SIGKILL");
  await h.exited;
  assert.deepEqual(sockets(dir), [theirs], "SIGKILL leaves the socket file");
  const db = await open(dir, { wal: false });
  const mine = socketNamed(lockText(dir));
  assert.ok(mine && mine !== theirs);
  assert.deepEqual(sockets(dir), [mine], "the dead holder's socket file went with its LOCK");
  await db.close();
  assert.deepEqual(sockets(dir), []);
});

test("a takeover guard whose pid reads as gone but whose socket answers is one in progress elsewhere: waited for, never removed", async (t) => {
  const dir = tempDir(t);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "LOCK"), `${deadPid()}\n2020-01-01T00:00:00.000Z\n`);
  const elsewhere = HolderSocket.listen(dir)!;
  t.after(() => elsewhere.close());
  const pid = deadPid();
  const guard = `${pid}\nthread 0\nboot ${ownStamp().boot}\nstart 1\nsock ${elsewhere.name}\n`;
  writeFileSync(join(dir, "LOCK.takeover"), guard);
  const e = await rejectsKeel(open(dir, { wal: false }), "LOCKED");
  assert.equal(e.details.pid, pid, "the guard's holder is named");
  assert.equal(readFileSync(join(dir, "LOCK.takeover"), "utf8"), guard, "the guard stays");
  elsewhere.close();
  const db = await open(dir, { wal: false });
  assert.equal(existsSync(join(dir, "LOCK.takeover")), false);
  await db.close();
});

test("one directory reached by paths of different lengths (a short one, and one too long for a socket address): a holder seen through either is LOCKED", async (t) => {
  const root = tempDir(t);
  const dir = join(root, "d".repeat(Math.max(1, 110 - root.length)));
  mkdirSync(dir);
  const short = join(root, "s");
  symlinkSync(dir, short);
  // A holder elsewhere that reached it by the short path; this process opens by the long one.
  const elsewhere = HolderSocket.listen(short)!;
  t.after(() => elsewhere.close());
  writeFileSync(join(dir, "LOCK"), foreignLock(deadPid(), elsewhere.name));
  const e = await rejectsKeel(open(dir, { wal: false }), "LOCKED");
  assert.equal(e.details.socket, elsewhere.name);
  await rejectsKeel(open(dir, { readOnly: true, wal: false }), "LOCKED");
  elsewhere.close();
  // A holder by the long path names a socket (through a descriptor on the directory), and a
  // process that reaches it by the short path is refused.
  const db = await open(dir, { wal: false });
  assert.ok(socketNamed(lockText(dir)));
  const h = holderChild(t, short);
  const r = await h.line;
  assert.equal(r.code, "LOCKED");
  assert.equal(r.pid, process.pid);
  await db.close();
  assert.deepEqual(sockets(dir), []);
});

/** Whether this machine lets a child run in a new pid namespace (root, or unprivileged user namespaces). */
const UNSHARE = unsharePidPrefix();

test("processes in different pid namespaces (containers sharing the directory) are kept apart, both ways", { skip: UNSHARE ? false : "unshare --pid is not allowed here" }, async (t) => {
  const dir = tempDir(t);
  // A holder in a new namespace (there it is pid 1); this process opens.
  const inside = holderChild(t, dir, UNSHARE);
  const r = await inside.line;
  assert.equal(r.ok, true);
  assert.equal(r.pid, 1, "the child runs in a pid namespace of its own");
  const e = await rejectsKeel(open(dir, { wal: false }), "LOCKED");
  assert.equal(e.details.socket, socketNamed(lockText(dir)));
  inside.child.stdin!.end();
  await inside.exited;
  // This process holds; an opener in a new namespace is refused.
  const db = await open(dir, { wal: false });
  await db.put("k", 1);
  const opener = holderChild(t, dir, UNSHARE);
  const o = await opener.line;
  assert.equal(o.code, "LOCKED", JSON.stringify(o));
  assert.equal(o.socket, socketNamed(lockText(dir)));
  await opener.exited;
  assert.equal(Number.parseInt(lockText(dir), 10), process.pid, "this process still holds it");
  await db.close();
});

test("a process killed while it waits for the lock leaves no socket file; socket files nobody listens on are swept by the next holder, live ones kept", async (t) => {
  const dir = tempDir(t);
  mkdirSync(dir, { recursive: true });
  // An empty LOCK kept young: an opener waits (retrying) for its writer.
  writeFileSync(join(dir, "LOCK"), "");
  const touch = setInterval(() => {
    const now = new Date();
    utimesSync(join(dir, "LOCK"), now, now);
  }, 50);
  t.after(() => clearInterval(touch));
  const waiter = holderChild(t, dir);
  waiter.line.catch(() => {}); // it never prints: killed while it waits
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(waiter.child.exitCode, null, "still waiting");
  waiter.child.kill("SIGKILL");
  await waiter.exited;
  clearInterval(touch);
  assert.deepEqual(sockets(dir), [], "no socket of the killed waiter");
  // Leftovers: one whose listener was killed, one live (this process listens, no LOCK names it).
  const dead = "LOCK.dddddddddddd.sock";
  const listener = spawn(process.execPath, ["-e", `require("node:net").createServer().listen(${JSON.stringify(join(dir, dead))}, () => console.log("ready"))`], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise((r) => listener.stdout!.once("data", r));
  const gone = new Promise((r) => listener.once("exit", r));
  listener.kill("SIGKILL");
  await gone;
  const live = HolderSocket.listen(dir)!;
  t.after(() => live.close());
  writeFileSync(join(dir, "LOCK"), `${deadPid()}\n`);
  // A young one is never swept (bound, maybe not listening yet): only the old dead one goes.
  const young = "LOCK.eeeeeeeeeeee.sock";
  writeFileSync(join(dir, young), "");
  const old = new Date(Date.now() - 60_000);
  for (const n of [dead, live.name]) utimesSync(join(dir, n), old, old);
  const db = await open(dir, { wal: false });
  const mine = socketNamed(lockText(dir))!;
  assert.deepEqual(sockets(dir).sort(), [live.name, mine, young].sort(), "the old dead one swept; the live one and the young one kept");
  await db.close();
});

test("a socket that cannot be checked (here: no worker threads allowed) is taken to be alive, and the error says it could not be checked instead of that it answers", async (t) => {
  const dir = tempDir(t);
  await (await open(dir, { wal: false })).close();
  const elsewhere = HolderSocket.listen(dir)!;
  t.after(() => elsewhere.close());
  writeFileSync(join(dir, "LOCK"), foreignLock(deadPid(), elsewhere.name));
  const opener = (flags: string[]) => {
    const script = `import { open } from ${JSON.stringify(INDEX)};
try { await open(${JSON.stringify(dir)}, { wal: false }); console.log(JSON.stringify({ ok: true })); }
catch (e) { console.log(JSON.stringify({ code: e.code, details: e.details })); }`;
    const r = spawnSync(process.execPath, [...flags, "--input-type=module", "-e", script], { encoding: "utf8", timeout: 30_000 });
    return JSON.parse(r.stdout.trim().split("\n").pop()!) as { ok?: boolean; code?: string; details?: { socket?: string; socketCheck?: string } };
  };
  const checked = opener([]);
  assert.equal(checked.code, "LOCKED");
  assert.equal(checked.details?.socket, elsewhere.name);
  assert.equal(checked.details?.socketCheck, undefined, "it answered");
  const unchecked = opener(["--experimental-permission", "--allow-fs-read=*", "--allow-fs-write=*", "--no-warnings"]);
  assert.equal(unchecked.code, "LOCKED", JSON.stringify(unchecked));
  assert.equal(unchecked.details?.socketCheck, "unknown");
});

test("a takeover guard left by a process that died names its socket file: the guard's takeover removes that file too", async (t) => {
  const dir = tempDir(t);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "LOCK"), `${deadPid()}\n2020-01-01T00:00:00.000Z\n`);
  const name = "LOCK.abababababab.sock";
  writeFileSync(join(dir, name), ""); // nobody listens (a regular file: refused); young, so no sweep takes it
  writeFileSync(join(dir, "LOCK.takeover"), `${deadPid()}\nthread 0\nboot ${ownStamp().boot}\nstart 1\nsock ${name}\n`);
  const db = await open(dir, { wal: false });
  assert.equal(existsSync(join(dir, "LOCK.takeover")), false);
  assert.equal(existsSync(join(dir, name)), false, "the dead guard holder's socket file went with its guard");
  await db.close();
});
