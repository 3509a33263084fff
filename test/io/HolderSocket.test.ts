/**
 * HolderSocket: the kernel's sign of life of a LOCK holder. answers() is true while a process
 * listens (even one whose event loop is blocked), false once nobody does (a holder killed with
 * SIGKILL leaves the file), and true whenever it cannot tell. Real sockets, real child processes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { HOLDER_SOCKET_NAME, HolderSocket, answers, openToAllUsers, socketNamed } from "../../src/io/HolderSocket.js";

const MODULE = fileURLToPath(new URL("../../src/io/HolderSocket.js", import.meta.url));

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), "keel-sock-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A child process listening on `path` (then busy for `busyMs`, its event loop blocked), ready when this resolves. */
async function listenerChild(t: { after(fn: () => void): void }, path: string, busyMs: number, backlog = 511) {
  const child = spawn(
    process.execPath,
    ["-e", `require("node:net").createServer((c) => c.destroy()).listen({ path: ${JSON.stringify(path)}, backlog: ${backlog} }, () => { console.log("ready"); const end = Date.now() + ${busyMs}; while (Date.now() < end); setInterval(() => {}, 1000); })`],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  t.after(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once("data", () => resolve());
    child.once("exit", (c) => reject(new Error(`listener exited with ${c}`)));
  });
  return child;
}

test("a holder socket answers while it listens; close stops it and removes its file", (t) => {
  const dir = tempDir(t);
  const s = HolderSocket.listen(dir);
  assert.ok(s, "a socket can be made in a short directory path");
  assert.match(s.name, HOLDER_SOCKET_NAME);
  assert.deepEqual(readdirSync(dir), [s.name]);
  assert.equal(answers(dir, s.name), true, "this process listens (the probe connects from another thread)");
  s.close();
  assert.deepEqual(readdirSync(dir), [], "close removes the file");
  assert.equal(answers(dir, s.name), false, "no file: nobody listens");
  s.close(); // twice is harmless
  const a = HolderSocket.listen(dir)!;
  const b = HolderSocket.listen(dir)!;
  assert.notEqual(a.name, b.name, "each holder listens on a name of its own");
  a.close();
  b.close();
});

test("a listener killed with SIGKILL leaves its socket file, which no longer answers; a blocked listener still answers", async (t) => {
  const dir = tempDir(t);
  const name = "LOCK.0123456789ab.sock";
  const busy = await listenerChild(t, join(dir, name), 4000);
  // Its event loop is blocked for 4 s: the kernel still takes the connection.
  assert.equal(answers(dir, name), true);
  assert.equal(answers(dir, name), true);
  const exited = new Promise((r) => busy.once("exit", r));
  busy.kill("SIGKILL");
  await exited;
  assert.equal(existsSync(join(dir, name)), true, "SIGKILL leaves the file");
  assert.equal(answers(dir, name), false, "refused: its process is gone");
});

test("answers() counts what it cannot tell as live: a blocked listener whose backlog is full (EAGAIN); a file that is no socket is nobody", async (t) => {
  const dir = tempDir(t);
  const name = "LOCK.aaaaaaaaaaaa.sock";
  await listenerChild(t, join(dir, name), 6000, 1);
  // Backlog 1 and no accept(): from the third connect on the kernel says EAGAIN, not "refused".
  for (let i = 0; i < 5; i++) assert.equal(answers(dir, name), true, `probe ${i}`);
  writeFileSync(join(dir, "LOCK.bbbbbbbbbbbb.sock"), "");
  assert.equal(answers(dir, "LOCK.bbbbbbbbbbbb.sock"), false, "connect() to a regular file is refused");
});

test("a directory path too long for a socket address (107 bytes) still gets a socket, reached through a descriptor on the directory, from a long path or a short one", (t) => {
  const root = tempDir(t);
  const dir = join(root, "d".repeat(Math.max(1, 110 - root.length)));
  mkdirSync(dir);
  const s = HolderSocket.listen(dir);
  assert.ok(s, "made through /proc/self/fd");
  assert.deepEqual(readdirSync(dir), [s.name]);
  assert.equal(answers(dir, s.name), true, "asked by the long path");
  const short = join(root, "s");
  symlinkSync(dir, short);
  assert.equal(answers(short, s.name), true, "asked by a short path to the same directory");
  s.close();
  assert.deepEqual(readdirSync(dir), [], "close removes it");
  assert.equal(answers(dir, s.name), false);
  // The other way round: listening by the short path, asked by the long one (a connect to a path
  // over 107 bytes finds no file: it read as "nobody listens").
  const viaShort = HolderSocket.listen(short)!;
  assert.equal(answers(dir, viaShort.name), true);
  viaShort.close();
});

test("socketNamed() reads a LOCK's sock line, and only a name of the holder-socket form (no path)", () => {
  assert.equal(socketNamed("12\nthread 0\nboot x\nstart 5\nsock LOCK.0123456789ab.sock\n"), "LOCK.0123456789ab.sock");
  assert.equal(socketNamed("12\nboot x\nstart 5\n"), undefined, "a LOCK written before sockets were");
  assert.equal(socketNamed("12\nsock ../../tmp/LOCK.0123456789ab.sock\n"), undefined);
  assert.equal(socketNamed("12\nsock LOCK.0123456789ab.sock.x\n"), undefined);
  assert.equal(socketNamed("12\nsock data.keel\n"), undefined);
});

test("answers() leaves this process's stdio alone: a pipe on fd 1 stays blocking (an application's fs.writeSync(1) does not fail EAGAIN)", async (t) => {
  const dir = tempDir(t);
  const name = "LOCK.cccccccccccc.sock";
  writeFileSync(join(dir, name), ""); // a probe runs (a worker thread), and finds nobody
  const child = spawn(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `import { answers } from ${JSON.stringify(MODULE)};
import { writeSync } from "node:fs";
if (answers(${JSON.stringify(dir)}, ${JSON.stringify(name)}) !== false) throw new Error("expected no listener");
const b = Buffer.alloc(4 << 20);
try { for (let off = 0; off < b.length; ) off += writeSync(1, b, off, b.length - off); writeSync(2, "ok"); }
catch (e) { writeSync(2, String(e.code)); }`,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  t.after(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  let err = "";
  child.stderr!.on("data", (d) => (err += d));
  const exited = new Promise((r) => child.once("exit", r));
  // Not reading for a while: the pipe fills, and a blocking write waits for us.
  await new Promise((r) => setTimeout(r, 1500));
  child.stdout!.resume();
  await exited;
  assert.equal(err.trim(), "ok");
});

test("a holder in a node:cluster worker listens itself (not through the primary): its socket answers while it lives, and not once it is killed", async (t) => {
  const dir = tempDir(t);
  // cluster.fork() runs the primary's script file again: a file, not -e.
  const script = join(dir, "cluster.mjs");
  writeFileSync(
    script,
    `import cluster from "node:cluster";
import { HolderSocket } from ${JSON.stringify(MODULE)};
if (cluster.isPrimary) {
  const w = cluster.fork();
  w.on("message", (m) => console.log(JSON.stringify({ ...m, worker: w.process.pid })));
  process.stdin.resume();
  process.stdin.on("end", () => { w.process.kill("SIGKILL"); setTimeout(() => process.exit(0), 200); });
} else {
  const s = HolderSocket.listen(${JSON.stringify(dir)});
  process.send({ name: s ? s.name : null });
}`,
  );
  const child = spawn(process.execPath, [script], { stdio: ["pipe", "pipe", "inherit"] });
  t.after(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  const line = await new Promise<{ name: string | null; worker: number }>((resolve, reject) => {
    let buf = "";
    child.stdout!.on("data", (d) => {
      buf += d;
      if (buf.includes("\n")) resolve(JSON.parse(buf.split("\n")[0]!));
    });
    child.once("exit", (c) => reject(new Error(`exited with ${c}: ${buf}`)));
  });
  assert.ok(line.name, "a cluster worker gets a socket of its own");
  assert.equal(answers(dir, line.name), true);
  // The worker is killed; the primary lives on: the socket must not outlive the worker.
  process.kill(line.worker, "SIGKILL");
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(answers(dir, line.name), false, "the socket was the worker's, not the primary's");
  child.stdin!.end();
});

test("the socket is opened to all users without following a link: a symbolic link swapped in its place leaves the file it points to as it was", (t) => {
  const dir = tempDir(t);
  const s = HolderSocket.listen(dir)!;
  t.after(() => s.close());
  assert.equal(statSync(join(dir, s.name)).mode & 0o777, 0o666, "any user who may open the database may ask");
  // What a user who can write the directory could do between the bind and a chmod by path.
  const secret = join(dir, "secret");
  writeFileSync(secret, "root's", { mode: 0o600 });
  const swapped = join(dir, "LOCK.ffffffffffff.sock");
  symlinkSync(secret, swapped);
  openToAllUsers(swapped);
  assert.equal(statSync(secret).mode & 0o777, 0o600, "the link's target is not touched");
});
