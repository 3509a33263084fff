/**
 * keel stat / list / copy / compact / dump / load / verify / snapshot / snapshots / restore /
 * txlog / watermarks / gc: each command's happy path against real databases, in text and --json.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { open } from "../../src/index.js";
import { KEEL, damagePages, keel, keelExpect, keelJson, makeDb, tempDir } from "./cliUtil.js";

test("stat and list, text and --json", async (t) => {
  const dir = join(tempDir(t), "db");
  await makeDb(dir);
  const r = await keelExpect(["stat", dir], 0);
  assert.match(r.stdout, /^database +.*db$/m);
  assert.match(r.stdout, /^entries +54$/m);
  assert.match(r.stdout, /^page size +4096 bytes$/m);
  const s = await keelJson<{ entries: number; pageSize: number; freePages: number; dbs?: unknown }>(["stat", dir]);
  assert.equal(s.entries, 54);
  assert.equal(s.pageSize, 4096);
  assert.equal(s.dbs, undefined, "per sub-database only with --all");
  const all = await keelJson<{ dbs: Record<string, { entries: number; keyEncoding: string; encoding: string }> }>(["stat", dir, "--all"]);
  assert.equal(all.dbs["strs"]?.entries, 2);
  assert.equal(all.dbs[""]?.entries, 51);
  assert.match((await keelExpect(["stat", dir, "--all"], 0)).stdout, /^strs +string +string +2 /m);

  const list = await keelExpect(["list", dir], 0);
  assert.deepEqual(
    list.stdout.trim().split("\n").map((l) => l.split(/\s+/)),
    [
      ["name", "keys", "values", "entries"],
      ["(default)", "ordered-binary", "msgpack", "51"],
      ["bin", "binary", "binary", "1"],
      ["strs", "string", "string", "2"],
    ],
  );
  const l = await keelJson<{ dbs: Array<{ name: string; keyEncoding: string; encoding: string; entries: number }> }>(["list", dir]);
  assert.deepEqual(l.dbs.map((d) => d.name), ["", "bin", "strs"]);
});

test("copy (and --compact) makes a database that opens on its own; an existing destination is exit 2", async (t) => {
  const root = tempDir(t);
  const dir = join(root, "db");
  await makeDb(dir);
  const r = await keelExpect(["copy", dir, join(root, "copy1")], 0);
  assert.match(r.stdout, /^copied 54 entries/);
  const doc = await keelJson<{ entries: number; dest: string; compact: boolean }>(["copy", dir, join(root, "copy2"), "--compact"]);
  assert.equal(doc.entries, 54);
  assert.equal(doc.compact, true);
  const gets = await Promise.all(["copy1", "copy2"].map((c) => keelExpect(["get", join(root, c), "a", "--db", "strs"], 0)));
  for (const g of gets) assert.equal(g.stdout, "hello\n");
  const exists = await keelJson<{ error: { code: string } }>(["copy", dir, join(root, "copy1")], 2);
  assert.equal(exists.error.code, "EXISTS");
});

test("an empty destination path (an unset shell variable) is a usage error before any work: copy, compact, dump -f, restore", async (t) => {
  const root = tempDir(t);
  const dir = join(root, "db");
  await makeDb(dir);
  await keelExpect(["snapshot", dir], 0);
  const cwd = join(root, "cwd");
  mkdirSync(cwd);
  for (const args of [["copy", dir, ""], ["compact", dir, ""], ["dump", dir, "-f", ""], ["restore", dir, ""]]) {
    const r = await keelExpect(["--json", ...args], 2, { cwd });
    const doc = JSON.parse(r.stdout) as { error: { code: string; message: string } };
    assert.equal(doc.error.code, "USAGE", `${args[0]}: ${r.stdout}`);
    assert.match(doc.error.message, /the path is empty/);
  }
  assert.deepEqual(readdirSync(cwd), [], "nothing written where the work would have gone");
});

test("compact rewrites a stopped database without free pages", async (t) => {
  const root = tempDir(t);
  const dir = join(root, "db");
  const db = await open(dir, { wal: false });
  await db.transaction((tx) => {
    for (let i = 0; i < 2000; i++) tx.put(i, "x".repeat(100));
  });
  await db.transaction((tx) => {
    for (let i = 0; i < 1900; i++) tx.remove(i);
  });
  await db.close();
  const before = await keelJson<{ freePages: number }>(["stat", dir]);
  assert.ok(before.freePages > 0);
  const r = await keelJson<{ entries: number; dest: string }>(["compact", dir, join(root, "small")]);
  assert.equal(r.entries, 100);
  const after = await keelJson<{ freePages: number; entries: number }>(["stat", join(root, "small")]);
  assert.equal(after.freePages, 0);
  assert.equal(after.entries, 100);
});

test("dump and load round-trip through a file and through a pipe, jsonl and binary", async (t) => {
  const root = tempDir(t);
  const dir = join(root, "db");
  const src = await open(dir, { keyEncoding: "string", encoding: "json" });
  for (let i = 0; i < 30; i++) await src.put(`k${i}`, { i });
  await src.openDB("other", { encoding: "string" }).put("x", "y");
  await src.close();
  const file = join(root, "d.jsonl");
  const d = await keelJson<{ entries: number; file: string; format: string }>(["dump", dir, "-f", file]);
  assert.deepEqual([d.entries, d.file, d.format], [31, file, "jsonl"]);
  assert.match(readFileSync(file, "utf8").split("\n")[0]!, /"keeldb":"dump"/);
  await keelExpect(["dump", dir, "-f", file], 2); // a dump never overwrites

  // Into a new directory: the default database gets the dump's encodings.
  const l = await keelJson<{ entries: number; created: boolean }>(["load", join(root, "from-file"), "-f", file]);
  assert.deepEqual([l.entries, l.created], [31, true]);
  assert.equal((await keelExpect(["get", join(root, "from-file"), "k7"], 0)).stdout, '{"i":7}\n');

  // Binary, through a pipe, one sub-database.
  const bin = await keelExpect(["dump", dir, "--format", "binary", "--db", "other"], 0);
  assert.equal(bin.stdoutBytes.subarray(0, 8).toString("latin1"), "KEELDUMP");
  const lb = await keelExpect(["load", join(root, "from-pipe")], 0, { input: bin.stdoutBytes });
  assert.match(lb.stdout, /loaded 1 entries/);
  assert.equal((await keelExpect(["get", join(root, "from-pipe"), "x", "--db", "other"], 0)).stdout, "y\n");

  // Loading into sub-databases that are not empty is refused (exit 2), and says why.
  const again = await keelExpect(["load", join(root, "from-file"), "-f", file], 2);
  assert.match(again.stderr, /not empty/);
  // A damaged dump is CORRUPT (exit 5) and leaves no new database behind.
  const text = readFileSync(file, "utf8").replace('"k":"', '"k":"!');
  await keelExpect(["load", join(root, "bad")], 5, { input: text });
  assert.equal(existsSync(join(root, "bad")), false);
});

/** A dump of 30000 entries (several load batches) in a file; returns its path. */
async function bigDump(root: string): Promise<string> {
  const src = await open(join(root, "src"), { wal: false });
  await src.transaction((tx) => {
    for (let i = 0; i < 30000; i++) tx.put(`k${String(i).padStart(6, "0")}`, i);
  });
  await src.close();
  const file = join(root, "d.jsonl");
  await keelExpect(["dump", join(root, "src"), "-f", file], 0);
  return file;
}

test("load into an existing directory without a database: a failed load or open removes what it created, keeps what was there", async (t) => {
  const root = tempDir(t);
  const file = await bigDump(root);
  const dir = join(root, "target");
  mkdirSync(dir);
  writeFileSync(join(dir, "notes.txt"), "the user's");
  // A dump cut short fails after batches were committed into the new database.
  const text = readFileSync(file);
  const r = await keelExpect(["load", dir], 5, { input: text.subarray(0, Math.floor(text.length * 0.7)) });
  assert.match(r.stderr, /committedEntries=[1-9]/);
  assert.deepEqual(readdirSync(dir), ["notes.txt"]);
  // A wal entry without a data.keel (a log without its data file) is refused up front.
  writeFileSync(join(dir, "wal"), "not a directory");
  await keelExpect(["load", dir, "-f", file], 2);
  assert.deepEqual(readdirSync(dir).sort(), ["notes.txt", "wal"]);
  assert.equal(readFileSync(join(dir, "wal"), "utf8"), "not a directory");
  rmSync(join(dir, "wal"));
  // The rerun starts from the directory as it was.
  const l = await keelJson<{ entries: number; created: boolean }>(["load", dir, "-f", file]);
  assert.deepEqual([l.entries, l.created], [30000, true]);
  assert.equal(readFileSync(join(dir, "notes.txt"), "utf8"), "the user's");
});

for (const sig of ["SIGINT", "SIGHUP"] as const) {
  test(`load interrupted (${sig}) into an existing empty directory while its input is silent: exit 130 at once, the database it created is removed`, async (t) => {
    const root = tempDir(t);
    const lines = readFileSync(await bigDump(root), "utf8").split("\n");
    const dir = join(root, "target");
    mkdirSync(dir);
    const child = spawn(process.execPath, [KEEL, "load", dir], { stdio: ["pipe", "pipe", "pipe"] });
    t.after(() => child.kill("SIGKILL")); // a no-op once it has exited
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((r) => child.on("close", r));
    // Most of the dump, without its end: the load commits batches, then waits for more input.
    child.stdin.on("error", () => {}); // EPIPE if it exits with input still in the pipe: expected
    child.stdin.write(lines.slice(0, 25000).join("\n") + "\n");
    const staged = join(dir, `.load-partial-${child.pid}`, "data.keel");
    for (let i = 0; i < 400 && !existsSync(staged); i++) await delay(50);
    assert.ok(existsSync(staged), "the load created its database, in its staging directory");
    await delay(500);
    // The input stays open and sends nothing (a slow producer): the load must not wait for it.
    child.kill(sig);
    const status = await Promise.race([exited, delay(20_000).then(() => "still running 20 s after the signal")]);
    assert.equal(status, 130, stderr);
    assert.deepEqual(readdirSync(dir), []);
  });
}

for (const madeDir of [false, true]) {
  test(`a load that fails after another load into the same new directory${madeDir ? " (which neither found)" : ""} published its database leaves that database alone`, async (t) => {
    const root = tempDir(t);
    const lines = readFileSync(await bigDump(root), "utf8").split("\n");
    const one = await open(join(root, "one"), { wal: false });
    await one.put("only", 1);
    await one.close();
    const small = join(root, "small.jsonl");
    await keelExpect(["dump", join(root, "one"), "-f", small], 0);
    const dir = join(root, "target");
    if (!madeDir) mkdirSync(dir);
    // Load A: most of the dump, then it waits for more input.
    const a = spawn(process.execPath, [KEEL, "load", dir], { stdio: ["pipe", "ignore", "pipe"] });
    t.after(() => a.kill("SIGKILL"));
    const aExit = new Promise<number | null>((r) => a.on("close", r));
    a.stdin.on("error", () => {});
    a.stdin.write(lines.slice(0, 25000).join("\n") + "\n");
    const staged = join(dir, `.load-partial-${a.pid}`, "data.keel");
    for (let i = 0; i < 400 && !existsSync(staged); i++) await delay(50);
    assert.ok(existsSync(staged));
    // Load B finishes first and publishes its database.
    const b = await keelJson<{ entries: number; created: boolean }>(["load", dir, "-f", small]);
    assert.deepEqual([b.entries, b.created], [1, true]);
    // A's input turns out damaged: A fails, and undoes only what is its own.
    a.stdin.end("{ not json\n");
    assert.equal(await aExit, 5);
    assert.equal(existsSync(join(dir, "data.keel")), true, "B's database is still there");
    assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith(".load-partial-")), []);
    const db = await open(dir, { readOnly: true });
    assert.equal(db.getCount(), 1);
    await db.close();
  });
}

test("load killed (SIGKILL) halfway: no database under the final name, and the rerun loads it whole", async (t) => {
  const root = tempDir(t);
  const file = await bigDump(root);
  const lines = readFileSync(file, "utf8").split("\n");
  for (const existing of [false, true]) {
    const dir = join(root, `target-${existing}`);
    if (existing) mkdirSync(dir);
    const child = spawn(process.execPath, [KEEL, "load", dir], { stdio: ["pipe", "ignore", "ignore"] });
    t.after(() => child.kill("SIGKILL"));
    const exited = new Promise((r) => child.on("close", r));
    // Killing the child while the pipe still holds input breaks it: EPIPE on our side is expected
    // (without a handler it is an uncaught error that fails the test at random).
    child.stdin.on("error", () => {});
    child.stdin.write(lines.slice(0, 25000).join("\n") + "\n");
    const staged = join(dir, `.load-partial-${child.pid}`, "data.keel");
    for (let i = 0; i < 400 && !existsSync(staged); i++) await delay(50);
    await delay(500); // batches committed into the staged database
    child.kill("SIGKILL");
    await exited;
    assert.equal(existsSync(join(dir, "data.keel")), false, "a half-loaded database under the final name");
    const l = await keelJson<{ entries: number; created: boolean }>(["load", dir, "-f", file]);
    assert.deepEqual([l.entries, l.created], [30000, true]);
    assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith(".load-partial-")), [], "the dead load's staging is removed");
    await keelExpect(["verify", dir], 0);
  }
});

test("verify a healthy database: exit 0, and the report as JSON", async (t) => {
  const dir = join(tempDir(t), "db");
  await makeDb(dir);
  const r = await keelExpect(["verify", dir], 0);
  assert.match(r.stdout, /no problems found/);
  const doc = await keelJson<{ ok: boolean; problems: unknown[]; stats: { entries: number } }>(["verify", dir]);
  assert.equal(doc.ok, true);
  assert.deepEqual(doc.problems, []);
  assert.equal(doc.stats.entries, 54);
});

test("txlog prints each record by the encodings it was written with: a dropped or re-created sub-database keeps its own", async (t) => {
  const dir = join(tempDir(t), "db");
  let db = await open(dir);
  await db.openDB("bin", { keyEncoding: "binary", encoding: "binary" }).put(Buffer.from([1, 2]), Buffer.from([3, 4]));
  await db.openDB("re", { keyEncoding: "binary", encoding: "binary" }).put(Buffer.from([5]), Buffer.from([6]));
  await db.dropDB("bin");
  await db.dropDB("re");
  await db.close();
  db = await open(dir); // a re-created name with other encodings needs a reopen
  await db.openDB("re", { encoding: "json" }).put("s", { x: 1 });
  await db.close();
  type Doc = { records: Array<{ ops: Array<{ db: string; type: string; key?: unknown; value?: unknown }> }> };
  const puts = (await keelJson<Doc>(["txlog", dir])).records.flatMap((r) => r.ops).filter((o) => o.type === "put");
  assert.deepEqual(puts, [
    { db: "bin", type: "put", key: "0102", value: "0304" },
    { db: "re", type: "put", key: "05", value: "06" },
    { db: "re", type: "put", key: "s", value: { x: 1 } },
  ]);
  const text = (await keelExpect(["txlog", dir], 0)).stdout;
  assert.match(text, /put +bin +0102 = 0304/);
  assert.match(text, /put +re +05 = 06/);
  assert.match(text, /put +re +s = \{"x":1\}/);
});

test("snapshot, snapshots, restore to an LSN, txlog, watermarks, gc", async (t) => {
  const root = tempDir(t);
  const dir = join(root, "db");
  await makeDb(dir);
  const none = await keelJson<{ snapshots: unknown[] }>(["snapshots", dir]);
  assert.deepEqual(none.snapshots, []);
  const snap = await keelJson<{ name: string; lsn: number; entries: number }>(["snapshot", dir]);
  assert.equal(snap.name, "current");
  assert.equal(snap.entries, 54);
  const list = await keelExpect(["snapshots", dir], 0);
  assert.match(list.stdout, /^current +\d+/m);
  await keelExpect(["put", dir, "after", "1"], 0);
  await keelExpect(["put", dir, "after2", "2"], 0);

  const w = await keelJson<{ lastCommittedLsn: number; lastDurableLsn: number; lag: { durable: number } }>(["watermarks", dir]);
  assert.equal(w.lastDurableLsn, snap.lsn + 2);
  assert.equal(w.lag.durable, 0);
  assert.match((await keelExpect(["watermarks", dir], 0)).stdout, /^last durable lsn +\d+$/m);

  // txlog: the two puts after the snapshot.
  const tl = await keelJson<{ records: Array<{ lsn: number; ops: Array<{ type: string; key: unknown; value: unknown }> }>; count: number }>(["txlog", dir, "--from", String(snap.lsn + 1)]);
  assert.equal(tl.count, 2);
  assert.deepEqual(tl.records[0]!.ops[0], { db: "", type: "put", key: "after", value: "1" });
  const text = await keelExpect(["txlog", dir, "--from", String(snap.lsn + 2), "--to", String(snap.lsn + 2)], 0);
  assert.match(text.stdout, new RegExp(`^lsn ${snap.lsn + 2} `, "m"));
  assert.match(text.stdout, /put +\(default\) +after2 = "2"/);
  await keelExpect(["txlog", dir, "--from", "5", "--to", "3"], 2);

  // restore from the database directory (its current snapshot) up to the first put only.
  const restored = join(root, "restored");
  const rr = await keelJson<{ lsn: number; records: number }>(["restore", dir, restored, "--to-lsn", String(snap.lsn + 1)]);
  assert.deepEqual([rr.lsn, rr.records], [snap.lsn + 1, 1]);
  await keelExpect(["get", restored, "after"], 0);
  await keelExpect(["get", restored, "after2"], 4);
  await keelExpect(["restore", join(dir, "snapshots", "current"), join(root, "r2")], 0);
  await keelExpect(["get", join(root, "r2"), "after2"], 0);

  const gc = await keelJson<{ deleted: string[]; freedBytes: number }>(["gc", dir, "--keep-from", "1"]);
  assert.ok(Array.isArray(gc.deleted));
  assert.match((await keelExpect(["gc", dir], 0)).stdout, /deleted/);
});

test("commands that only read leave a closed database's files as they were", async (t) => {
  const dir = join(tempDir(t), "db");
  await makeDb(dir, { wal: false });
  const before = readFileSync(join(dir, "data.keel"));
  const runs = [["stat", dir], ["list", dir], ["get", dir, "user:01"], ["scan", dir], ["snapshots", dir], ["verify", dir]];
  const results = await Promise.all(runs.map((args) => keel(args)));
  results.forEach((r, i) => assert.equal(r.status, 0, `${runs[i]!.join(" ")}: ${r.stderr}`));
  assert.ok(readFileSync(join(dir, "data.keel")).equals(before));
  assert.equal(existsSync(join(dir, "LOCK")), false);
});

test("salvage rebuilds a healthy database whole, and a damaged one into a database that opens", async (t) => {
  const root = tempDir(t);
  const dir = join(root, "db");
  await makeDb(dir, { wal: false });
  const whole = await keelJson<{ entries: number; perDb: Record<string, number>; badPages: number[] }>(["salvage", dir, join(root, "whole")]);
  assert.equal(whole.entries, 54);
  assert.deepEqual(whole.badPages, []);
  assert.equal((await keelExpect(["get", join(root, "whole"), "a", "--db", "strs"], 0)).stdout, "hello\n");
  damagePages(dir, 3);
  const r = await keelExpect(["salvage", dir, join(root, "saved")], 0);
  assert.match(r.stdout, /^salvaged .* into .*saved: \d+ entries/);
  assert.match(r.stdout, /bad pages +[1-9]/);
  await keelExpect(["stat", join(root, "saved")], 0);
  await keelExpect(["salvage", dir, join(root, "saved")], 2); // the destination exists
});
