/**
 * Read-only opens and writers (I2 across processes): a read-only Database keeps the state it
 * opened at even when a writer opens the directory afterwards and rewrites every page, because
 * the writer does not reuse a page that state reaches while the read-only process lives.
 * Real files, a real child process holding the read-only view.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { open, type Database } from "../../src/index.js";
import { ownStamp, stampLines } from "../../src/io/ProcessStamp.js";
import { READER_PREFIX, RECHECK_MS, isRegistration, listRegistrations, readOnlyFloor, type SocketVerdicts } from "../../src/db/ReadOnlyReaders.js";
import { HOLDER_SOCKET_NAME, HolderSocket } from "../../src/io/HolderSocket.js";
import { nodeFileSystem } from "../../src/io/NodeFileSystem.js";
import { tempDir } from "./dbUtil.js";
import { deadPid, unsharePidPrefix } from "../helpers/processes.js";

const registrations = (dir: string) => readdirSync(dir).filter(isRegistration);
const INDEX = fileURLToPath(new URL("../../src/index.js", import.meta.url));
const KEYS = 3000;

function value(round: number, i: number): string {
  return `r${round}-${i}-`.padEnd(180, String.fromCharCode(97 + ((round + i) % 26)));
}

/** sha256 over every entry of the default database, in key order. */
function digest(db: Database): { count: number; hash: string } {
  const h = createHash("sha256");
  let count = 0;
  for (const { key, value } of db.getRange({})) {
    h.update(`${String(key)}=${String(value)}\n`);
    count++;
  }
  return { count, hash: h.digest("hex") };
}

/**
 * A child that opens `dir` read-only, prints {ready, count, hash}, then on each stdin line reads
 * everything again and prints {count, hash} or {code}; it closes when stdin ends.
 */
function readerScript(dir: string): string {
  return `
import { createHash } from "node:crypto";
import { createInterface } from "node:readline";
import { open } from ${JSON.stringify(INDEX)};
function digest(db) {
  const h = createHash("sha256");
  let count = 0;
  for (const { key, value } of db.getRange({})) { h.update(String(key) + "=" + String(value) + "\\n"); count++; }
  return { count, hash: h.digest("hex") };
}
const db = await open(${JSON.stringify(dir)}, { readOnly: true, wal: false, cacheSize: 0 });
console.log(JSON.stringify({ ready: true, ...digest(db) }));
const rl = createInterface({ input: process.stdin });
for await (const _ of rl) {
  try { console.log(JSON.stringify(digest(db))); } catch (e) { console.log(JSON.stringify({ code: e.code ?? String(e) })); }
}
await db.close();
console.log(JSON.stringify({ closed: true }));
`;
}

/** A reader child; `prefix` runs it another way (in a pid namespace of its own: unsharePidPrefix). */
function startReader(dir: string, prefix: string[] = []) {
  const argv = [...prefix, process.execPath, "--input-type=module", "-e", readerScript(dir)];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async (): Promise<Record<string, unknown>> => {
    const r = await lines.next();
    assert.ok(!r.done, "the reader child ended early");
    return JSON.parse(r.value as string);
  };
  return { child, next };
}

const sockets = (dir: string) => readdirSync(dir).filter((n) => HOLDER_SOCKET_NAME.test(n));
const UNSHARE = unsharePidPrefix();

for (const foreign of [false, true]) {
  const where = foreign ? " in another pid namespace (a container sharing the directory: its pid means nothing here, its socket answers)" : "";
  test(`a read-only process${where} keeps its view while a writer process opened later rewrites every page`, { skip: foreign && !UNSHARE ? "unshare --pid is not allowed here" : false }, async (t) => {
    await keepsItsView(t, foreign ? UNSHARE : undefined);
  });
}

async function keepsItsView(t: { after: (fn: () => void) => void }, prefix: string[] | undefined): Promise<void> {
  const dir = tempDir(t);
  const db0 = await open(dir, { wal: false });
  await db0.transaction((tx) => {
    for (let i = 0; i < KEYS; i++) tx.put(`k${String(i).padStart(5, "0")}`, value(0, i));
  });
  const before = digest(db0);
  await db0.close();

  const reader = startReader(dir, prefix);
  t.after(() => reader.child.kill("SIGKILL"));
  const first = await reader.next();
  assert.deepEqual({ count: first.count, hash: first.hash }, before, "the reader sees the database as written");
  assert.equal(registrations(dir).length, 1, "the read-only open is registered");
  assert.equal(sockets(dir).length, 1, "and listens on the socket its registration names");
  if (prefix) {
    const [r] = listRegistrations(nodeFileSystem, dir);
    assert.equal(r?.pid, 1, "the reader runs in a pid namespace of its own");
    assert.equal(r?.elsewhere, true, "seen from here only by its socket");
  }

  // A writer opens now (the read-only open took no LOCK) and rewrites, deletes and reinserts
  // every key, one small transaction after another: each commit is a checkpoint that frees the
  // pages it replaced, so without the reader's floor the old tree's pages are written over.
  const w = await open(dir, { wal: false });
  for (let round = 1; round <= 4; round++) {
    for (let i = 0; i < KEYS; i += 300) {
      await w.transaction((tx) => {
        for (let j = i; j < Math.min(KEYS, i + 300); j++) {
          if (round === 2 && j % 2 === 0) tx.remove(`k${String(j).padStart(5, "0")}`);
          else tx.put(`k${String(j).padStart(5, "0")}`, value(round, j));
        }
      });
    }
  }
  assert.notDeepEqual(digest(w), before, "the writer changed everything");

  reader.child.stdin!.write("read\n");
  const again = await reader.next();
  assert.deepEqual(again, before, "the read-only view still reads the state it opened at, every page of it");

  reader.child.stdin!.end();
  assert.deepEqual(await reader.next(), { closed: true });
  assert.deepEqual(registrations(dir), [], "close removes the registration");
  await w.close();
  assert.deepEqual(sockets(dir), [], "and the socket");
}

for (const stepBack of [false, true]) {
  const how = stepBack ? ", even after the wall clock stepped back a day" : "";
  test(`the writer releases what the reader pinned once the reader is gone: the file stops growing${how}`, async (t) => {
    const realNow = Date.now;
    t.after(() => (Date.now = realNow));
    await releasesDeadReader(t, () => {
      // The recheck interval is timed by a monotonic clock; by Date.now it never came round again.
      if (stepBack) Date.now = () => realNow() - 86_400_000;
    });
  });
}

async function releasesDeadReader(t: { after: (fn: () => void) => void }, afterFirstChurn: () => void): Promise<void> {
  const dir = tempDir(t);
  const db0 = await open(dir, { wal: false });
  await db0.transaction((tx) => {
    for (let i = 0; i < KEYS; i++) tx.put(`k${i}`, value(0, i));
  });
  await db0.close();
  const reader = startReader(dir);
  t.after(() => reader.child.kill("SIGKILL"));
  await reader.next();

  const w = await open(dir, { wal: false });
  const churn = async (round: number) => {
    for (let i = 0; i < KEYS; i += 500) {
      await w.transaction((tx) => {
        for (let j = i; j < Math.min(KEYS, i + 500); j++) tx.put(`k${j}`, value(round, j));
      });
    }
  };
  await churn(1);
  const pinned = w.getStats().totalPages;
  afterFirstChurn();
  // Killed, not closed: the registration stays behind, naming a dead process.
  reader.child.kill("SIGKILL");
  await new Promise((r) => reader.child.once("exit", r));
  assert.equal(registrations(dir).length, 1, "a killed reader leaves its registration");
  // The writer lists the registrations again at most every RECHECK_MS.
  await new Promise((r) => setTimeout(r, RECHECK_MS + 50));
  for (let round = 2; round < 12; round++) await churn(round);
  const after = w.getStats().totalPages;
  // Ten rounds that each replace every page would need ten times `pinned` if nothing were reused.
  assert.ok(after < pinned * 2, `pages are reused once the reader is dead (${pinned} -> ${after} pages)`);
  assert.deepEqual(registrations(dir), [], "the dead reader's registration is removed");
  await w.close();
}

test("readOnlyFloor: live registrations give their txn, dead or foreign-boot ones are removed, pending ones pin the newest meta", (t) => {
  const dir = tempDir(t);
  const reg = (name: string) => join(dir, READER_PREFIX + name);
  const dead = deadPid();
  assert.equal(readOnlyFloor(nodeFileSystem, dir, 50).floor, Infinity, "no registrations: no floor");
  writeFileSync(reg(`${dead}.1`), "txn 7\n");
  assert.equal(readOnlyFloor(nodeFileSystem, dir, 50).floor, Infinity, "a dead pid pins nothing");
  assert.ok(!existsSync(reg(`${dead}.1`)), "and its file is removed");
  writeFileSync(reg(`${process.pid}.9`), "txn 12\nboot not-this-boot\n");
  assert.equal(readOnlyFloor(nodeFileSystem, dir, 50).floor, Infinity, "a registration from another boot pins nothing");
  writeFileSync(reg(`${process.pid}.10`), "txn 12\n");
  writeFileSync(reg(`${process.pid}.11`), "");
  const f = readOnlyFloor(nodeFileSystem, dir, 50);
  assert.equal(f.floor, 12, "a live reader pins its txn; one still opening pins the newest meta (50) at most");
  assert.deepEqual(f.pids, [process.pid]);
  writeFileSync(reg(`${process.pid}.11`), "txn 9\n");
  assert.equal(readOnlyFloor(nodeFileSystem, dir, 50).floor, 9);
  writeFileSync(reg(`${process.pid}.12`), "garbage");
  assert.equal(readOnlyFloor(nodeFileSystem, dir, 50).floor, 9, "an unreadable registration of a live process pins the newest meta at most");
  if (existsSync("/proc/self/stat")) {
    // Our pid, but a start time before ours: left by an earlier process that had this pid.
    writeFileSync(reg(`${process.pid}.13`), `txn 3\nboot ${ownStamp().boot}\nstart ${Number(ownStamp().start) - 1}\n`);
    assert.equal(readOnlyFloor(nodeFileSystem, dir, 50).floor, 9, "a registration whose pid was recycled pins nothing");
    assert.ok(!existsSync(reg(`${process.pid}.13`)), "and its file is removed");
    writeFileSync(reg(`${process.pid}.14`), `txn 4\n${stampLines()}`);
    assert.equal(readOnlyFloor(nodeFileSystem, dir, 50).floor, 4, "one with this process's own stamp pins its txn");
  }
});

test("readOnlyFloor: a registration whose pid reads as gone but whose socket answers pins its txn (asked again only every 30 s through the writer's verdicts); once the socket stops answering, the file and the socket file are removed", (t) => {
  const dir = tempDir(t);
  const socket = HolderSocket.listen(dir);
  if (!socket) return t.skip("no Unix socket can be made here");
  t.after(() => socket.close());
  const name = `${READER_PREFIX}${deadPid()}.1`;
  writeFileSync(join(dir, name), `txn 7\nboot ${ownStamp().boot}\nstart 1\nsock ${socket.name}\n`);
  const verdicts: SocketVerdicts = new Map();
  const f = readOnlyFloor(nodeFileSystem, dir, 50, verdicts);
  assert.equal(f.floor, 7, "a reader elsewhere pins its txn");
  assert.ok(verdicts.has(`${name} ${socket.name}`), "the writer keeps the verdict");
  const [info] = listRegistrations(nodeFileSystem, dir);
  assert.deepEqual({ live: info?.live, elsewhere: info?.elsewhere, socket: info?.socket }, { live: true, elsewhere: true, socket: socket.name });

  // The reader is killed: its socket file stays, nobody listens. (libuv removes the file at close,
  // so a dead listener is made by binding a plain file's name: a file nobody can connect to.)
  socket.close();
  writeFileSync(join(dir, socket.name), "");
  assert.equal(readOnlyFloor(nodeFileSystem, dir, 50, verdicts).floor, 7, "within 30 s of a live answer it is not asked again");
  assert.ok(existsSync(join(dir, name)));
  assert.equal(readOnlyFloor(nodeFileSystem, dir, 50).floor, Infinity, "asked again: nobody answers, it pins nothing");
  assert.deepEqual(registrations(dir), [], "its registration is removed");
  assert.deepEqual(sockets(dir), [], "and its socket file");

  writeFileSync(join(dir, name), `txn 7\nboot ${ownStamp().boot}\nstart 1\nsock LOCK.0123456789ab.sock\n`);
  assert.equal(readOnlyFloor(nodeFileSystem, dir, 50, verdicts).floor, Infinity, "a socket that is not there answers for nobody (a verdict on another socket of a file of that name is not its)");
  assert.equal(verdicts.size, 0, "verdicts of registrations gone are dropped");
});

test("a writer's sweep of old socket files leaves a read-only open's that is live here alone (not asked), and removes one nobody names or answers", async (t) => {
  const dir = tempDir(t);
  await (await open(dir, { wal: false })).close();
  const [readerSock, deadSock] = ["LOCK.aaaaaaaaaaaa.sock", "LOCK.bbbbbbbbbbbb.sock"];
  // Plain files: a connect to either is refused, as to a socket nobody listens on.
  for (const n of [readerSock, deadSock]) {
    writeFileSync(join(dir, n), "");
    utimesSync(join(dir, n), new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
  }
  const reg = join(dir, `${READER_PREFIX}${process.pid}.77`);
  writeFileSync(reg, `txn 1\n${stampLines()}sock ${readerSock}\n`);
  const w = await open(dir, { wal: false });
  await w.close();
  assert.deepEqual(sockets(dir), [readerSock], "the live reader's socket is not judged by its answer");
  assert.ok(existsSync(reg));
});

test("a read-only open of a database whose log holds commits not yet checkpointed: backups include them and write nothing to the source", async () => {
  const { CrashFileSystem } = await import("../../src/io/CrashFileSystem.js");
  const { removeStaleLock } = await import("../helpers/crashCheck.js");
  const live = new CrashFileSystem();
  const writer = await open("/db", { fs: live });
  for (let i = 0; i < 10; i++) await writer.put(`k${i}`, `v${i}`);
  // The writer is killed: its commits are in the log only.
  const fs = live.clone();
  removeStaleLock(fs, "/db");
  const before = Buffer.from(fs.readFile("/db/data.keel"));
  const db = await open("/db", { fs, readOnly: true });
  assert.equal(db.get("k9"), "v9", "the read-only open replays the log in memory");
  for (const compact of [true, false]) {
    const dest = `/copy-${compact}`;
    await db.backup(dest, { compact }); // a page backup checkpointed through the read-only descriptor: IO EBADF
    const copy = await open(dest, { fs, readOnly: true });
    assert.deepEqual([...copy.getRange()].map((e) => e.key), Array.from({ length: 10 }, (_, i) => `k${i}`));
    await copy.close();
  }
  await db.sync();
  await db.close();
  assert.ok(Buffer.from(fs.readFile("/db/data.keel")).equals(before), "the read-only process wrote to data.keel");
});

/** Rewrite the first `keys` keys `rounds` times in `dir` (wal: false: every commit a checkpoint that reuses pages). */
function writerScript(dir: string, keys: number, rounds: number): string {
  return `
import { open } from ${JSON.stringify(INDEX)};
const db = await open(${JSON.stringify(dir)}, { wal: false });
for (let r = 0; r < ${rounds}; r++) {
  const ps = [];
  for (let i = 0; i < ${keys}; i++) ps.push(db.put("k" + String(i).padStart(5, "0"), "w" + r + "-" + i + "-".repeat(150)));
  await Promise.all(ps);
}
await db.close();
`;
}

test("verify(dir) registers like a read-only open: a writer process that opens and rewrites pages during the walk reuses none it reads (no false damage)", async (t) => {
  const dir = tempDir(t);
  // Big enough (about 4,000 pages) that verify reports progress (every 1,024 pages) mid-walk.
  const keys = 10 * KEYS;
  const db = await open(dir, { wal: false });
  for (let r = 0; r < 3; r++) await db.transaction((tx) => {
    for (let i = 0; i < keys; i++) tx.put(`k${String(i).padStart(5, "0")}`, value(r, i));
  });
  await db.close();
  const { verify } = await import("../../src/index.js");
  const { spawnSync } = await import("node:child_process");
  let ran = false;
  let seenReader = false;
  const report = await verify(dir, {
    onProgress: (p) => {
      // A third of the way: the metas are read and part of the trees walked.
      if (ran || p.pages < p.totalPages / 3) return;
      ran = true;
      seenReader = registrations(dir).length === 1;
      // Mid-walk, blocking the walk: another process opens for writing and rewrites every key
      // a few times, each commit a checkpoint that reuses what the free list allows.
      const w = spawnSync(process.execPath, ["--input-type=module", "-e", writerScript(dir, keys, 4)], { stdio: "inherit" });
      assert.equal(w.status, 0);
    },
  });
  assert.ok(ran, "the writer ran mid-walk");
  assert.deepEqual(report.problems, [], "the walk read only pages of the trees it started on");
  assert.ok(seenReader, "verify's registration was there while the writer ran");
  assert.deepEqual(registrations(dir), [], "the registration is removed at the end");
  // Afterwards the database is whole and holds the writer's last round.
  const after = await verify(dir);
  assert.equal(after.ok, true);
});

test("verify(dir) keeps the log too: a writer process that opens during the walk, commits, checkpoints and closes deletes no segment until the walk ends (no false wal-missing)", async (t) => {
  const dir = tempDir(t);
  // Small segments and no retention: every checkpoint of the writer may delete all but the newest.
  const opts = { walSegmentMaxBytes: 64 << 10, walRetentionBytes: 0, walRetentionMs: 0 };
  const db = await open(dir, opts);
  // About 1,400 pages, so that verify reports progress (every 1,024 pages) mid-walk, before the log.
  for (let r = 0; r < 2; r++) await db.transaction((tx) => {
    for (let i = 0; i < 10 * KEYS; i++) tx.put(`k${String(i).padStart(5, "0")}`, value(r, i));
  });
  for (let i = 0; i < 300; i++) await db.put(`x${i}`, "y".repeat(400));
  await db.close();
  const segments = () => readdirSync(join(dir, "wal")).length;
  const before = segments();
  assert.ok(before > 3, `${before} segments`);
  const { verify } = await import("../../src/index.js");
  const { spawnSync } = await import("node:child_process");
  const writer = `
import { open } from ${JSON.stringify(INDEX)};
const db = await open(${JSON.stringify(dir)}, ${JSON.stringify(opts)});
for (let i = 0; i < 600; i++) await db.put("w" + i, "z".repeat(400));
await db.checkpoint();
const gc = await db.gcTxlogSegments();
await db.close();
process.stdout.write(JSON.stringify({ deleted: gc.deleted.length, heldBy: [...new Set(gc.heldByFloor.map((h) => h.floor))] }));
`;
  let gc: { deleted: number; heldBy: string[] } | undefined;
  const report = await verify(dir, {
    onProgress: (p) => {
      if (gc || p.pages >= p.totalPages) return;
      // Mid-walk of the data file, blocking the walk, which reads the log afterwards.
      const w = spawnSync(process.execPath, ["--input-type=module", "-e", writer], { encoding: "utf8" });
      assert.equal(w.status, 0, w.stderr);
      gc = JSON.parse(w.stdout) as { deleted: number; heldBy: string[] };
    },
  });
  assert.ok(gc, "the writer ran mid-walk");
  assert.deepEqual(report.problems, [], "no log segment went missing under the walk");
  assert.deepEqual(gc, { deleted: 0, heldBy: ["read-only-process"] }, "the writer's gc kept the segments for verify's registration");
  assert.ok(segments() >= before, "the writer's close deleted none either");
  assert.deepEqual(registrations(dir), []);
  // Once verify is done, the next writer's gc lets them go.
  const again = await open(dir, opts);
  await again.checkpoint();
  await again.gcTxlogSegments();
  await again.close();
  assert.ok(segments() < before, `${segments()} segments after a writer with no verify running`);
  assert.equal((await verify(dir)).ok, true);
});

test("a worker thread's read-only open that ends without close(): its registration is dropped (no claim), and a writer of the process reuses pages again; a live one is kept", async (t) => {
  const { Worker } = await import("node:worker_threads");
  const { statSync, utimesSync } = await import("node:fs");
  const dir = tempDir(t);
  let db = await open(dir, { wal: false });
  for (let i = 0; i < 200; i++) await db.put(`k${i}`, value(0, i));
  await db.close();
  const code = `
    const { parentPort, workerData } = require("node:worker_threads");
    import(workerData.index).then(async ({ open }) => {
      const db = await open(workerData.dir, { readOnly: true, wal: false });
      parentPort.postMessage(db.get("k1"));
      parentPort.on("message", () => parentPort.postMessage(db.get("k1")));
    });
  `;
  const workers: Array<InstanceType<typeof Worker>> = [];
  const startWorker = async (): Promise<{ w: InstanceType<typeof Worker>; first: unknown }> => {
    const w = new Worker(code, { eval: true, workerData: { index: INDEX, dir } });
    workers.push(w);
    const first = await new Promise((resolve, reject) => {
      w.once("message", resolve);
      w.once("error", reject);
    });
    return { w, first };
  };
  try {
    // A live worker's registration is claimed: kept, and its view stays intact under the writer.
    const live = await startWorker();
    assert.equal(live.first, value(0, 1));
    db = await open(dir, { wal: false });
    for (let r = 1; r <= 30; r++) await db.transaction((tx) => {
      for (let i = 0; i < 200; i++) tx.put(`k${i}`, value(r, i));
    });
    assert.equal(registrations(dir).length, 1, "a live worker's registration is kept");
    live.w.postMessage("read");
    assert.equal(await new Promise((resolve) => live.w.once("message", resolve)), value(0, 1), "its view is intact");
    await db.close();
    await live.w.terminate();

    // A terminated worker's: unclaimed once its descriptors are closed. Aged past the moment
    // between create and claim, the next listing drops it (and the one left above).
    const dead = await startWorker();
    assert.equal(dead.first, value(30, 1));
    await dead.w.terminate();
    assert.equal(registrations(dir).length, 2, "the terminated workers left their registrations");
    const old = new Date(Date.now() - 60_000);
    for (const n of registrations(dir)) utimesSync(join(dir, n), old, old);
  } finally {
    for (const w of workers) await w.terminate();
  }
  db = await open(dir, { wal: false });
  assert.deepEqual(registrations(dir), [], "a registration no thread claims is a dead thread's: removed");
  const grown = () => statSync(join(dir, "data.keel")).size;
  const round = (r: number) =>
    db.transaction((tx) => {
      for (let i = 0; i < 200; i++) tx.put(`k${i}`, value(r, i));
    });
  for (let r = 100; r < 104; r++) await round(r);
  const before = grown();
  for (let r = 104; r <= 160; r++) await round(r);
  assert.ok(grown() <= before * 2, `pages are reused again: ${before} -> ${grown()} bytes`);
  await db.close();
});

test("a read-only open whose claim on its registration failed is judged by its pid alone: a writer of the same process keeps its view, however old the file", async (t) => {
  const { FaultFileSystem } = await import("../../src/io/FaultFileSystem.js");
  const { NodeFileSystem } = await import("../../src/index.js");
  const { utimesSync } = await import("node:fs");
  const dir = tempDir(t);
  let db = await open(dir, { wal: false });
  for (let i = 0; i < 300; i++) await db.put(`k${i}`, value(0, i));
  await db.close();
  const ffs = new FaultFileSystem(new NodeFileSystem());
  let readerOpens = 0;
  ffs.onCall = (c) => {
    // The 2nd open of the READER file is the claim (the 1st its exclusive create).
    if (c.kind === "open" && c.path.includes(READER_PREFIX) && ++readerOpens === 2) {
      throw Object.assign(new Error(`EMFILE: too many open files, open '${c.path}' (injected)`), { code: "EMFILE", errno: -24, syscall: "open", path: c.path });
    }
  };
  const ro = await open(dir, { readOnly: true, wal: false, cacheSize: 0, fs: ffs });
  try {
    assert.ok(readerOpens >= 2, "the claim was attempted and failed");
    const old = new Date(Date.now() - 60_000);
    for (const n of registrations(dir)) utimesSync(join(dir, n), old, old);
    db = await open(dir, { wal: false });
    for (let r = 1; r <= 20; r++) await db.transaction((tx) => {
      for (let i = 0; i < 300; i++) tx.put(`k${i}`, value(r, i));
    });
    assert.equal(registrations(dir).length, 1, "the registration is kept");
    for (let i = 0; i < 300; i++) assert.equal(ro.get(`k${i}`), value(0, i), `the view at open, key ${i}`);
    await db.close();
  } finally {
    await ro.close();
  }
});
