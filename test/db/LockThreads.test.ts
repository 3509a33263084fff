/**
 * Lock across worker threads: threads share the pid, so the LOCK alone cannot tell them apart. A
 * database open in one thread is LOCKED in every other (writable and read-only opens alike), a
 * thread's close never removes another thread's LOCK, a worker that ends without closing is
 * taken over once its descriptors are closed (and not before), and threads racing for one
 * directory (fresh, or behind a stale LOCK) let exactly one in. Real worker_threads, real files.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { open } from "../../src/index.js";
import { deadPid } from "../helpers/processes.js";
import { rejectsKeel, tempDir } from "./dbUtil.js";

const INDEX = fileURLToPath(new URL("../../src/index.js", import.meta.url));
const linux = existsSync("/proc/self/fd");

interface Reply {
  ok?: boolean;
  code?: string;
  pid?: number;
  threadId?: number;
  value?: unknown;
}

/**
 * A worker that runs `steps` (the body of an async function with `open`, `dir`, `say(msg)` and
 * `next()` (resolves with the parent's next message) in scope). Each say() reaches `replies`.
 */
function worker(dir: string, steps: string): { w: Worker; replies: Reply[]; next: () => Promise<Reply>; send: (m: unknown) => void; done: Promise<number> } {
  const code = `
const { parentPort, workerData } = require("node:worker_threads");
const inbox = [];
let waiting = null;
parentPort.on("message", (m) => { if (waiting) { const r = waiting; waiting = null; r(m); } else inbox.push(m); });
const next = () => (inbox.length ? Promise.resolve(inbox.shift()) : new Promise((r) => (waiting = r)));
const say = (m) => parentPort.postMessage(m);
const err = (e) => ({ code: e.code, pid: e.details && e.details.pid, threadId: e.details && e.details.threadId });
import(workerData.index).then(async ({ open }) => {
  const dir = workerData.dir;
  ${steps}
}).catch((e) => { say({ code: "CRASH", value: String(e && e.stack) }); }).finally(() => parentPort.close());
`;
  const w = new Worker(code, { eval: true, workerData: { index: INDEX, dir } });
  const replies: Reply[] = [];
  const waiters: Array<(r: Reply) => void> = [];
  w.on("message", (m: Reply) => {
    const r = waiters.shift();
    if (r) r(m);
    else replies.push(m);
  });
  const done = new Promise<number>((resolve) => w.on("exit", resolve));
  const next = (): Promise<Reply> => (replies.length ? Promise.resolve(replies.shift()!) : new Promise((r) => waiters.push(r)));
  return { w, replies, next, send: (m) => w.postMessage(m), done };
}

test("a database open in the main thread is LOCKED in a worker (naming this pid and thread 0), writable or read-only; the worker's attempt leaves the LOCK alone", { skip: !linux }, async (t) => {
  const dir = tempDir(t);
  const db = await open(dir);
  await db.put("k", "main");
  const lockText = readFileSync(join(dir, "LOCK"), "utf8");
  const wk = worker(
    dir,
    `
  try { const d = await open(dir); say({ ok: true }); await d.close(); } catch (e) { say(err(e)); }
  try { const d = await open(dir, { readOnly: true }); say({ ok: true }); await d.close(); } catch (e) { say(err(e)); }
`,
  );
  const rw = await wk.next();
  const ro = await wk.next();
  await wk.done;
  assert.deepEqual(rw, { code: "LOCKED", pid: process.pid, threadId: 0 });
  assert.deepEqual(ro, { code: "LOCKED", pid: process.pid, threadId: 0 });
  assert.equal(readFileSync(join(dir, "LOCK"), "utf8"), lockText, "the LOCK is the main thread's, untouched");
  await db.put("k2", "still main");
  assert.equal(db.get("k"), "main");
  await db.close();
  assert.equal(existsSync(join(dir, "LOCK")), false);

  // Closed here: now the worker may open it, and what it writes is there afterwards.
  const wk2 = worker(dir, `const d = await open(dir); await d.put("w", "worker"); await d.close(); say({ ok: true });`);
  assert.deepEqual(await wk2.next(), { ok: true });
  await wk2.done;
  const again = await open(dir);
  assert.equal(again.get("w"), "worker");
  assert.equal(again.get("k2"), "still main");
  await again.close();
});

test("a database open in a worker is LOCKED in the main thread, naming the worker's thread; its close releases it", { skip: !linux }, async (t) => {
  const dir = tempDir(t);
  const wk = worker(
    dir,
    `
  const d = await open(dir);
  await d.put("k", "worker");
  say({ ok: true });
  await next();
  await d.close();
  say({ ok: true });
`,
  );
  assert.deepEqual(await wk.next(), { ok: true });
  const e = await rejectsKeel(open(dir), "LOCKED");
  assert.equal(e.details.pid, process.pid);
  assert.equal(e.details.threadId, wk.w.threadId);
  const r = await rejectsKeel(open(dir, { readOnly: true }), "LOCKED");
  assert.equal(r.details.threadId, wk.w.threadId);
  wk.send("close");
  assert.deepEqual(await wk.next(), { ok: true });
  await wk.done;
  const db = await open(dir);
  assert.equal(db.get("k"), "worker");
  await db.close();
});

test("a worker that ends without close(): Node closes its descriptors, so its claim ends and the LOCK is taken over, with its acknowledged writes", { skip: !linux }, async (t) => {
  const dir = tempDir(t);
  const wk = worker(dir, `const d = await open(dir); await d.put("k", "acknowledged"); say({ ok: true }); await next();`);
  assert.deepEqual(await wk.next(), { ok: true });
  await rejectsKeel(open(dir), "LOCKED", "while the worker runs");
  await wk.w.terminate();
  const db = await open(dir);
  assert.equal(db.get("k"), "acknowledged");
  await db.close();
});

test("a worker that ends without close() with trackUnmanagedFds: false leaves its claim open: the database stays locked (refused, never shared)", { skip: !linux }, async (t) => {
  const dir = tempDir(t);
  const code = `
const { parentPort, workerData } = require("node:worker_threads");
import(workerData.index).then(async ({ open }) => { await open(workerData.dir, { wal: false }); parentPort.postMessage("open"); parentPort.close(); });
`;
  const w = new Worker(code, { eval: true, workerData: { index: INDEX, dir }, trackUnmanagedFds: false });
  // Read now: the worker may have exited by the time its message arrives, and threadId is -1 then.
  const tid = w.threadId;
  assert.equal(await new Promise((r) => w.once("message", r)), "open");
  await w.terminate();
  const e = await rejectsKeel(open(dir), "LOCKED");
  assert.equal(e.details.threadId, tid);
});

/** `n` workers released at once by a shared barrier; each tries to open `dir` and reports. */
async function race(dir: string, n: number): Promise<Reply[]> {
  const gate = new Int32Array(new SharedArrayBuffer(4));
  const ws = Array.from({ length: n }, () =>
    worker(
      dir,
      `
  say({ value: "ready" });
  const gate = await next();
  Atomics.wait(gate, 0, 0);
  let d;
  try { d = await open(dir, { wal: false }); say({ ok: true }); } catch (e) { say(err(e)); }
  await next();
  if (d) await d.close();
`,
    ),
  );
  for (const w of ws) assert.deepEqual(await w.next(), { value: "ready" });
  for (const w of ws) w.send(gate);
  await new Promise((r) => setTimeout(r, 50));
  Atomics.store(gate, 0, 1);
  Atomics.notify(gate, 0);
  const out = await Promise.all(ws.map((w) => w.next()));
  for (const w of ws) w.send("close");
  await Promise.all(ws.map((w) => w.done));
  return out;
}

test("threads racing to open one directory: exactly one gets it, the others are LOCKED naming it (fresh, and behind a stale LOCK)", { skip: !linux }, async (t) => {
  for (let round = 0; round < 6; round++) {
    const dir = tempDir(t);
    mkdirSync(dir, { recursive: true });
    // Odd rounds start behind a LOCK left by a dead process: every racer goes through the takeover.
    if (round % 2 === 1) writeFileSync(join(dir, "LOCK"), `${deadPid()}\n2020-01-01T00:00:00.000Z\n`);
    // Rounds 4-5 hold every writer of a LOCK for 30 ms after writing its text: a LOCK that named
    // this pid before its claim was open would be taken over by the racers meanwhile.
    if (round >= 4) process.env.KEEL_TEST_LOCK_WRITE_PAUSE_MS = "30";
    let out: Reply[];
    try {
      out = await race(dir, 4);
    } finally {
      delete process.env.KEEL_TEST_LOCK_WRITE_PAUSE_MS;
    }
    const winners = out.filter((r) => r.ok);
    assert.equal(winners.length, 1, `round ${round}: ${JSON.stringify(out)}`);
    for (const r of out.filter((x) => !x.ok)) {
      assert.equal(r.code, "LOCKED", `round ${round}: ${JSON.stringify(r)}`);
      assert.equal(r.pid, process.pid);
    }
    assert.equal(existsSync(join(dir, "LOCK")), false, "the winner's close removed its LOCK");
  }
});
