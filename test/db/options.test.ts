/**
 * open() options: every unknown key and every bad value is INVALID_ARGUMENT naming the option in
 * details.option, before anything is created; every known option with a good value is accepted.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { open, openSync, type OpenOptions } from "../../src/index.js";
import { CrashFileSystem } from "../../src/io/CrashFileSystem.js";
import { validateOptions } from "../../src/db/options.js";
import { DIR, rejectsKeel, throwsKeel } from "./dbUtil.js";

test("every unknown option is INVALID_ARGUMENT with details.option naming it, and nothing is created", async () => {
  for (const k of ["pagesize", "PageSize", "foo", "durabilty", "maxReader", "compression", "path", "encryptionKey", "mapSize", "", "constructor"]) {
    const fs = new CrashFileSystem();
    const e = await rejectsKeel(open(DIR, { fs, [k]: 1 } as OpenOptions), "INVALID_ARGUMENT", `option ${JSON.stringify(k)}`);
    assert.equal(e.details.option, k);
    assert.equal(fs.stat(DIR), undefined, `option ${k}: the directory was created before validation`);
  }
});

test("an inherited unknown option is refused like an own one (inherited known options are read)", async () => {
  const fs = new CrashFileSystem();
  const e = await rejectsKeel(open(DIR, Object.create({ wa: false, fs }) as OpenOptions), "INVALID_ARGUMENT", "inherited typo");
  assert.equal(e.details.option, "wa");
  assert.equal(fs.stat(DIR), undefined, "nothing created");
  const db = await open(DIR, Object.create({ wal: false, fs }) as OpenOptions);
  await db.put("k", 1);
  assert.equal(fs.stat(`${DIR}/wal`), undefined, "the inherited wal: false was read: no log directory");
  await db.close();
});

const BAD: Array<[string, unknown]> = [
  ["pageSize", 1000],
  ["pageSize", 512],
  ["pageSize", 131072],
  ["pageSize", 4096.5],
  ["pageSize", "4096"],
  ["pageSize", NaN],
  ["pageSize", null],
  ["cacheSize", -1],
  ["cacheSize", 1.5],
  ["cacheSize", "big"],
  ["cacheSize", Infinity],
  ["maxReaders", 0],
  ["maxReaders", -3],
  ["maxReaders", 2 ** 21],
  ["maxReaders", true],
  ["maxValueSize", 0],
  ["maxValueSize", 2 ** 31],
  ["maxValueSize", 10.25],
  ["keyEncoding", "utf8"],
  ["keyEncoding", 1],
  ["keyEncoding", null],
  ["encoding", "cbor"],
  ["encoding", "MSGPACK"],
  ["encoding", {}],
  ["wal", "yes"],
  ["wal", 1],
  ["wal", null],
  ["durability", "fast"],
  ["durability", true],
  ["groupCommit", 0],
  ["groupCommit", 2.5],
  ["groupCommitMs", -1],
  ["groupCommitMs", 2 ** 31], // setTimeout would fire it after 1 ms
  ["walSegmentMaxBytes", 1024],
  ["walSegmentMaxBytes", "1MB"],
  ["walSegmentMaxMs", 0],
  ["walRetentionBytes", -1],
  ["walRetentionMs", -5],
  ["checkpointLogBytes", 0],
  ["checkpointDirtyBytes", 0],
  ["checkpointMs", 0],
  ["noMetaSync", "true"],
  ["noSync", 0],
  ["readOnly", "no"],
  ["onPhase", "log"],
  ["onPhase", 42],
];

test("every bad value is INVALID_ARGUMENT with details.option naming the option", async () => {
  for (const [k, v] of BAD) {
    const fs = new CrashFileSystem();
    const opts = { fs, wal: false, [k]: v } as OpenOptions;
    const e = await rejectsKeel(open(DIR, opts), "INVALID_ARGUMENT", `${k}: ${String(v)}`);
    assert.equal(e.details.option, k, `${k}: ${String(v)}`);
    assert.equal(fs.stat(DIR + "/data.keel"), undefined, `${k}: a database was created`);
  }
});

test("a page size in range but not a power of two is INVALID_ARGUMENT naming pageSize, and leaves no lock and no directory", () => {
  const fs = new CrashFileSystem();
  for (const ps of [3000, 1536, 65535]) {
    const e = throwsKeel(() => openSync(DIR, { fs, wal: false, pageSize: ps }), "INVALID_ARGUMENT", `pageSize ${ps}`);
    assert.equal(e.details.option, "pageSize");
    assert.equal(fs.stat(DIR), undefined, "a refused open created the directory");
  }
});

test("noSync and noMetaSync need wal: false (INVALID_ARGUMENT naming the option)", async () => {
  const fs = new CrashFileSystem();
  for (const o of [{ noSync: true }, { noMetaSync: true }, { noSync: true, wal: true }, { noMetaSync: true, wal: true }] as OpenOptions[]) {
    const e = await rejectsKeel(open(DIR, { fs, ...o }), "INVALID_ARGUMENT", JSON.stringify(o));
    assert.equal(e.details.option, o.noSync ? "noSync" : "noMetaSync");
  }
  // Accepted with wal: false; false values are fine with the log.
  const db = openSync(DIR, { fs, wal: false, noSync: true, noMetaSync: true });
  await db.close();
  const db2 = openSync(DIR, { fs, noSync: false, noMetaSync: false });
  await db2.close();
});

test("a file system option that is not a FileSystem is INVALID_ARGUMENT naming fs", async () => {
  // options.ts says a bad value is never silently taken; `fs` is not checked at all, so a wrong
  // value fails later with an untyped TypeError from deep inside open().
  for (const v of [42, "memory", {}, { open: 1 }]) {
    const e = await rejectsKeel(open(DIR, { fs: v } as unknown as OpenOptions), "INVALID_ARGUMENT", `fs: ${JSON.stringify(v)}`);
    assert.equal(e.details.option, "fs");
  }
});

test("options that are not an object, and a bad path, are INVALID_ARGUMENT", async () => {
  for (const v of [null, 5, "wal", true]) {
    await rejectsKeel(open(DIR, v as unknown as OpenOptions), "INVALID_ARGUMENT", String(v));
  }
  for (const p of ["", 5, null, undefined]) {
    const e = await rejectsKeel(open(p as unknown as string, { fs: new CrashFileSystem() }), "INVALID_ARGUMENT", `path ${String(p)}`);
    assert.equal(e.details.argument, "path");
  }
});

test("every known option with a good value is accepted", async () => {
  const fs = new CrashFileSystem();
  const phases: string[] = [];
  const all: Required<OpenOptions> = {
    pageSize: 2048,
    cacheSize: 1 << 20,
    maxReaders: 7,
    maxValueSize: 1 << 20,
    keyEncoding: "string",
    encoding: "json",
    wal: true,
    durability: "relaxed",
    groupCommit: 10,
    groupCommitMs: 5,
    walSegmentMaxBytes: 1 << 20,
    walSegmentMaxMs: 60000,
    walRetentionBytes: 1 << 24,
    walRetentionMs: 3600000,
    checkpointLogBytes: 1 << 20,
    checkpointDirtyBytes: 1 << 20,
    checkpointMs: 60000,
    noMetaSync: false,
    noSync: false,
    readOnly: false,
    fs,
    onPhase: (p) => phases.push(p),
    freelistDeltas: true,
  };
  assert.deepEqual(validateOptions(all), all);
  const db = await open(DIR, all);
  await db.put("k", { v: 1 });
  assert.deepEqual(db.get("k"), { v: 1 });
  const st = db.getStats();
  assert.equal(st.pageSize, 2048);
  assert.equal(st.maxReaders, 7);
  await db.close();
  // undefined values are the same as absent ones.
  assert.deepEqual(validateOptions({ pageSize: undefined, wal: undefined }), { pageSize: undefined, wal: undefined });
  assert.deepEqual(validateOptions(undefined), {});
  // Boundary values.
  for (const [k, v] of [
    ["pageSize", 1024],
    ["pageSize", 65536],
    ["maxReaders", 1],
    ["maxReaders", 1 << 20],
    ["cacheSize", 0],
    ["groupCommitMs", 0],
    ["walSegmentMaxBytes", 64 * 1024],
    ["maxValueSize", 2 ** 31 - 1],
  ] as Array<[string, number]>) {
    assert.doesNotThrow(() => validateOptions({ [k]: v }), `${k}: ${v}`);
  }
});

test("a method's options: an unknown key (a typo) or a flag, signal or callback of the wrong kind is INVALID_ARGUMENT naming it, before anything is done", async () => {
  const { dump } = await import("../../src/maintenance/dump.js");
  const { load } = await import("../../src/maintenance/load.js");
  const { dumpToFile, loadFromFile, restore, salvage, compactTo, verify } = await import("../../src/index.js");
  const fs = new CrashFileSystem();
  const db = await open(DIR, { fs });
  await db.put("k", 1);
  const named = (e: { details: Record<string, unknown> }, option: string, label: string) => assert.equal(e.details.option, option, label);
  // openDB: the typo would have created (and, at the first write, persisted) a msgpack sub-database.
  named(throwsKeel(() => db.openDB("s", { encodng: "json" } as never), "INVALID_ARGUMENT", "openDB typo"), "encodng", "openDB");
  assert.deepEqual(db.listDBs().filter((n) => n === "s"), [], "nothing created");
  // Range options: a typo'd limit was ignored; a string reverse iterated in reverse.
  named(throwsKeel(() => db.getRange({ lmit: 1 } as never), "INVALID_ARGUMENT"), "lmit", "getRange typo");
  named(throwsKeel(() => db.getRange({ reverse: "no" } as never), "INVALID_ARGUMENT"), "reverse", "getRange reverse");
  named(throwsKeel(() => db.getKeys({ offest: 1 } as never), "INVALID_ARGUMENT"), "offest", "getKeys typo");
  named(throwsKeel(() => db.getCount({ rev: true } as never), "INVALID_ARGUMENT"), "rev", "getCount typo");
  named(throwsKeel(() => db.getRange(Object.create({ lmit: 1 }) as never), "INVALID_ARGUMENT"), "lmit", "an inherited typo");
  named(throwsKeel(() => db.getRange({ get reverse() { return "no"; } } as never), "INVALID_ARGUMENT"), "reverse", "a getter's value");
  named(await rejectsKeel(db.backup("/b1", { maxReplayBytes: "x" } as never), "INVALID_ARGUMENT"), "maxReplayBytes", "backup maxReplayBytes (compacting copy too)");
  // Maintenance: `compcat: false` made a compacting copy.
  named(await rejectsKeel(db.backup("/b1", { compcat: false } as never), "INVALID_ARGUMENT"), "compcat", "backup typo");
  named(await rejectsKeel(db.backup("/b1", { signal: "x" } as never), "INVALID_ARGUMENT"), "signal", "backup signal");
  named(await rejectsKeel(db.compact("/b2", { onProgress: 1 } as never), "INVALID_ARGUMENT"), "onProgress", "compact onProgress");
  named(await rejectsKeel(db.verify({ wal: "no" } as never), "INVALID_ARGUMENT"), "wal", "verify wal");
  named(throwsKeel(() => db.openTxLog(1, undefined, { raw: "yes" } as never), "INVALID_ARGUMENT"), "raw", "openTxLog raw");
  named(await rejectsKeel(db.createSnapshot({ sigal: undefined } as never), "INVALID_ARGUMENT"), "sigal", "createSnapshot typo");
  named(await rejectsKeel(dumpToFile(db, "/d.jsonl", { readble: true } as never), "INVALID_ARGUMENT"), "readble", "dumpToFile typo");
  named(await rejectsKeel(dump(db, process.stdout, { reproducible: 1 } as never), "INVALID_ARGUMENT"), "reproducible", "dump flag");
  named(await rejectsKeel(loadFromFile(db, "/d.jsonl", { foo: 1 } as never), "INVALID_ARGUMENT"), "foo", "loadFromFile typo");
  named(await rejectsKeel(load(db, process.stdin, { batchSize: 1 } as never), "INVALID_ARGUMENT"), "batchSize", "load typo");
  for (const p of ["/b1", "/b2", "/d.jsonl"]) assert.equal(fs.stat(p), undefined, `${p}: nothing written`);
  await db.close();
  named(await rejectsKeel(restore(`${DIR}/snapshots/current`, "/r", { fs, to: 3 } as never), "INVALID_ARGUMENT"), "to", "restore typo");
  named(await rejectsKeel(salvage(DIR, "/s", { fs, signl: undefined } as never), "INVALID_ARGUMENT"), "signl", "salvage typo");
  named(await rejectsKeel(compactTo(DIR, "/c", { fs, batch: 10 } as never), "INVALID_ARGUMENT"), "batch", "compactTo batch (never did anything)");
  named(await rejectsKeel(verify(DIR, { fs, snapshot: false } as never), "INVALID_ARGUMENT"), "snapshot", "verify(dir) typo");
  named(await rejectsKeel(restore(`${DIR}/snapshots/current`, "/r", { fs: {} } as never), "INVALID_ARGUMENT"), "fs", "restore with an fs that is not a FileSystem");
  named(await rejectsKeel(compactTo(DIR, "/c", { fs: 5 } as never), "INVALID_ARGUMENT"), "fs", "compactTo with an fs that is not a FileSystem");
  for (const p of ["/r", "/s", "/c"]) assert.equal(fs.stat(p), undefined, `${p}: nothing written`);
  // Every known option still passes.
  const again = await open(DIR, { fs });
  assert.equal([...again.getRange({ start: "a", end: "z", reverse: false, limit: 5, offset: 0 })].length, 1);
  await again.backup("/ok", { compact: false, signal: new AbortController().signal, onProgress: () => {}, maxReplayBytes: 0 });
  await again.close();
});
