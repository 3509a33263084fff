/**
 * The public API of the write-ahead-log mode (DESIGN.md sections 4 and 5, I4):
 * txlogWatermarks (fields, lag), openTxLog (ranges, decoding per sub-database encoding), commit
 * events (a throwing listener does not break commits), relaxed group commit by timer with no
 * further writes, transactionSync durable under relaxed, and strict visibility: no reader sees a
 * commit before its log record is durable, and a commit whose log sync fails is never seen.
 */
import { test } from "node:test";
import v8 from "node:v8";
import vm from "node:vm";
import assert from "node:assert/strict";
import { open, KeelError, type CommitReport, type Database } from "../../src/index.js";
import { CrashFileSystem } from "../../src/io/CrashFileSystem.js";
import { FaultFileSystem } from "../../src/io/FaultFileSystem.js";
import { describeError, removeStaleLock } from "../helpers/crashCheck.js";
import { quietWarnings, waitFor, warningCounts } from "../helpers/walUtil.js";
import { throwsKeel } from "./dbUtil.js";

const DIR = "/db";
quietWarnings();

function freshFs(): CrashFileSystem {
  const fs = new CrashFileSystem();
  fs.mkdir(DIR);
  fs.syncDir("/");
  return fs;
}

async function rejects(p: Promise<unknown>, code: string, what: string): Promise<KeelError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof KeelError, `${what}: expected KeelError ${code}, got ${describeError(e)}`);
    assert.equal(e.code, code, `${what}: ${describeError(e)}`);
    return e;
  }
  assert.fail(`${what}: expected a rejection with ${code}`);
}

function throwsCode(fn: () => unknown, code: string, what: string): KeelError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof KeelError, `${what}: expected KeelError ${code}, got ${describeError(e)}`);
    assert.equal(e.code, code, `${what}: ${describeError(e)}`);
    return e;
  }
  assert.fail(`${what}: expected a throw with ${code}`);
}

// ---- txlogWatermarks ----------------------------------------------------------------------------

test("txlogWatermarks: fields, durable and applied lag, floors, replay report (strict)", async () => {
  const fs = freshFs();
  const db = await open(DIR, { fs, checkpointLogBytes: 1 << 30 });
  let w = db.txlogWatermarks();
  const start = w.lastCommittedLsn; // the default database's creation is the first record
  assert.equal(start, 1);
  assert.equal(w.lastDurableLsn, start);
  assert.equal(w.durability, "strict");
  assert.equal(w.activeSegment, "00000000000000000001.wal");
  assert.equal(w.segmentCount, 1);
  assert.equal(w.oldestLsn, 1);
  assert.equal(w.failed, undefined);
  assert.deepEqual({ fromLsn: w.replay.fromLsn, toLsn: w.replay.toLsn, records: w.replay.records }, { fromLsn: 1, toLsn: 0, records: 0 });
  for (let i = 0; i < 5; i++) await db.put(`k${i}`, i);
  w = db.txlogWatermarks();
  assert.equal(w.lastCommittedLsn, start + 5);
  assert.equal(w.lastDurableLsn, start + 5, "strict: every acknowledged commit is durable");
  assert.equal(w.pendingSyncCount, 0);
  assert.equal(w.lag.durable, 0);
  assert.equal(w.lastAppliedLsn, 0, "nothing checkpointed yet");
  assert.equal(w.lag.applied, start + 5 - w.lastAppliedLsn);
  assert.ok(w.logBytes > 64 && w.logDiskBytes >= w.logBytes, `log bytes ${w.logBytes}, on disk ${w.logDiskBytes}`);
  assert.equal(typeof w.lastSyncAt, "number");
  assert.equal(w.floors.checkpoint, 1, "the checkpoint floor keeps everything after the older meta's applied LSN");

  await db.checkpoint();
  w = db.txlogWatermarks();
  assert.equal(w.lastAppliedLsn, start + 5);
  assert.equal(w.lag.applied, 0);
  assert.ok(w.lastCheckpointAt > 0);
  await db.put("more", 1);
  await db.checkpoint();
  w = db.txlogWatermarks();
  assert.equal(w.floors.checkpoint, start + 5 + 1, "the floor follows the older meta slot");
  db.setTxLogFloor("reader", 3);
  assert.equal(db.txlogWatermarks().floors["consumer:reader"], 3);
  db.setTxLogFloor("reader", undefined);
  assert.equal(db.txlogWatermarks().floors["consumer:reader"], undefined);
  throwsCode(() => db.setTxLogFloor("", 1), "INVALID_ARGUMENT", "a floor without a name");
  throwsCode(() => db.setTxLogFloor("x", -1), "INVALID_ARGUMENT", "a negative floor");

  // Records after the last checkpoint are replayed at the next open and reported.
  for (let i = 0; i < 4; i++) await db.put(`r${i}`, i);
  const last = db.txlogWatermarks().lastCommittedLsn;
  const crashed = fs.crashedCopy(5, { model: "dropAll" });
  await db.close();
  removeStaleLock(crashed, DIR);
  const db2 = await open(DIR, { fs: crashed });
  w = db2.txlogWatermarks();
  assert.equal(w.lastCommittedLsn, last);
  assert.equal(w.replay.records, 4, `replay report ${JSON.stringify(w.replay)}`);
  assert.equal(w.replay.toLsn, last);
  assert.equal(w.replay.fromLsn, last - 3);
  assert.equal(db2.get("r3"), 3);
  await db2.close();
});

test("txlogWatermarks under relaxed: the durable lag is the unsynced window; sync() closes it", async () => {
  const fs = freshFs();
  const db = await open(DIR, { fs, durability: "relaxed", groupCommit: 1000, groupCommitMs: 60_000 });
  const start = db.txlogWatermarks().lastCommittedLsn;
  for (let i = 0; i < 7; i++) await db.put(`k${i}`, i);
  let w = db.txlogWatermarks();
  assert.equal(w.durability, "relaxed");
  assert.equal(w.lastCommittedLsn, start + 7);
  assert.equal(w.lastDurableLsn, start, "relaxed resolves before the sync");
  assert.equal(w.lag.durable, 7);
  assert.equal(w.pendingSyncCount, 7);
  assert.equal(db.get("k6"), 6, "relaxed: commits are visible at once");
  await db.sync();
  w = db.txlogWatermarks();
  assert.equal(w.lastDurableLsn, start + 7);
  assert.equal(w.lag.durable, 0);
  await db.close();
});

// ---- openTxLog ----------------------------------------------------------------------------------

test("openTxLog: ranges, record fields, and ops decoded by each sub-database's encodings", async () => {
  const fs = freshFs();
  const db = await open(DIR, { fs, walSegmentMaxBytes: 64 * 1024 });
  const strs = db.openDB("strs", { keyEncoding: "string", encoding: "json" });
  const bins = db.openDB("bins", { keyEncoding: "binary", encoding: "binary" });
  const ords = db.openDB("ords"); // ordered-binary keys, msgpack values
  const text = db.openDB("text", { encoding: "string" });
  type Exp = { lsn: number; ops: Array<{ db: string; type: string; key?: unknown; value?: unknown }> };
  const expected: Exp[] = [];
  const t0 = Date.now();
  const step = async (ops: Exp["ops"], fn: () => Promise<unknown>): Promise<void> => {
    await fn();
    expected.push({ lsn: db.txlogWatermarks().lastCommittedLsn, ops });
  };
  await step([{ db: "strs", type: "createDB" }, { db: "strs", type: "put", key: "héllo", value: { a: [1, 2], b: "x" } }], () => strs.put("héllo", { a: [1, 2], b: "x" }));
  await step([{ db: "bins", type: "createDB" }, { db: "bins", type: "put", key: Buffer.from([0, 255, 7]), value: Buffer.from([1, 2, 3]) }], () => bins.put(Buffer.from([0, 255, 7]), Buffer.from([1, 2, 3])));
  await step([{ db: "ords", type: "createDB" }, { db: "ords", type: "put", key: [3, "x"], value: { n: 1, d: [true, null] } }], () => ords.put([3, "x"], { n: 1, d: [true, null] }));
  await step([{ db: "ords", type: "put", key: 42, value: "forty-two" }], () => ords.put(42, "forty-two"));
  await step([{ db: "text", type: "createDB" }, { db: "text", type: "put", key: "t", value: "plain text ✓" }], () => text.put("t", "plain text ✓"));
  await step([{ db: "", type: "put", key: "dflt", value: 1.5 }], () => db.put("dflt", 1.5));
  await step(
    [
      { db: "strs", type: "put", key: "a", value: [1] },
      { db: "ords", type: "remove", key: 42 },
      { db: "", type: "remove", key: "dflt" },
    ],
    () =>
      db.transaction((tx) => {
        tx.for(strs).put("a", [1]);
        tx.for(ords).remove(42);
        tx.remove("dflt");
      }),
  );
  await step([{ db: "text", type: "clearDB" }], () => text.clear());
  await step([{ db: "bins", type: "dropDB" }], () => db.dropDB("bins"));
  const head = db.txlogWatermarks().lastCommittedLsn;

  const norm = (ops: Array<{ db: string; type: string; key: unknown; value: unknown }>) =>
    ops.map((o) => ({ db: o.db, type: o.type, ...(o.key === undefined ? {} : { key: o.key }), ...(o.value === undefined ? {} : { value: o.value }) }));
  const all = [...db.openTxLog(expected[0]!.lsn)];
  assert.deepEqual(
    all.map((r) => r.lsn),
    expected.map((e) => e.lsn),
    "one record per commit, contiguous LSNs",
  );
  for (let i = 0; i < all.length; i++) {
    const r = all[i]!;
    const e = expected[i]!;
    assert.equal(r.kind, "txn");
    assert.ok(r.txTime >= t0 - 5 && r.txTime <= Date.now() + 5, `txTime ${r.txTime}`);
    if (e.ops.some((o) => o.db === "bins")) continue; // bins no longer exists: raw bytes (below)
    assert.deepEqual(norm(r.ops), e.ops, `record ${r.lsn} decoded`);
  }
  // A dropped sub-database's records come back as raw bytes.
  const binRec = all.find((r) => r.ops.some((o) => o.db === "bins" && o.type === "put"))!;
  const binPut = binRec.ops.find((o) => o.type === "put")!;
  assert.ok(Buffer.isBuffer(binPut.key) && Buffer.isBuffer(binPut.value));
  assert.deepEqual([...(binPut.value as Buffer)], [1, 2, 3]);
  // Each decoded op names the encodings it was decoded with (the dropped binary one included: its
  // drop record keeps them); raw bytes name none, so they are never taken for decoded binary.
  const encOf = (db: string) => {
    const op = all.flatMap((r) => r.ops).find((o) => o.db === db && o.type === "put")!;
    return [op.keyEncoding, op.encoding];
  };
  assert.deepEqual(encOf("strs"), ["string", "json"]);
  assert.deepEqual(encOf("bins"), ["binary", "binary"]);
  assert.deepEqual(encOf("ords"), ["ordered-binary", "msgpack"]);
  assert.deepEqual(encOf("text"), ["ordered-binary", "string"]);

  // Ranges are inclusive; toLsn is capped at the last durable LSN.
  const mid = expected[3]!.lsn;
  assert.deepEqual([...db.openTxLog(mid, mid + 2)].map((r) => r.lsn), [mid, mid + 1, mid + 2]);
  assert.deepEqual([...db.openTxLog(mid, mid)].map((r) => r.lsn), [mid]);
  assert.deepEqual([...db.openTxLog(head + 1)], []);
  assert.deepEqual([...db.openTxLog(mid + 1, mid)], []);
  assert.deepEqual([...db.openTxLog(head, head + 100)].map((r) => r.lsn), [head]);
  assert.deepEqual([...db.openTxLog(1)].map((r) => r.lsn), Array.from({ length: head }, (_, i) => i + 1));
  // raw: every key and value as bytes.
  const raw = [...db.openTxLog(expected[0]!.lsn, expected[0]!.lsn, { raw: true })][0]!;
  const rawPut = raw.ops.find((o) => o.type === "put")!;
  assert.ok(Buffer.isBuffer(rawPut.key) && Buffer.isBuffer(rawPut.value));
  assert.deepEqual([rawPut.keyEncoding, rawPut.encoding], [undefined, undefined], "raw ops name no encodings");
  assert.equal((rawPut.key as Buffer).toString("utf8"), "héllo");
  assert.deepEqual(JSON.parse((rawPut.value as Buffer).toString("utf8")), { a: [1, 2], b: "x" });
  throwsCode(() => [...db.openTxLog(0)], "INVALID_ARGUMENT", "openTxLog(0)");
  // toLsn of another type is refused, not coerced by the cap (true was LSN 1, "3" was 3, 3n a TypeError).
  for (const bad of [3n, true, false, "3", [2], {}, null, Number.NaN, -1, 2.5]) {
    throwsCode(() => db.openTxLog(1, bad as unknown as number), "INVALID_ARGUMENT", `openTxLog(1, ${String(bad)})`);
  }
  assert.deepEqual([...db.openTxLog(head, Infinity)].map((r) => r.lsn), [head], "Infinity: everything durable");

  await db.close();
});

test("openTxLog after gc: reading before the oldest kept record is NOT_FOUND; relaxed reads only durable records by default", async () => {
  const fs = freshFs();
  const db = await open(DIR, { fs, walSegmentMaxBytes: 64 * 1024, walRetentionBytes: 0 });
  db.setTxLogFloor("tail", 1); // hold everything while writing
  const big = "v".repeat(3000);
  for (let i = 0; i < 80; i++) await db.put(`big${i % 5}`, `${i}${big}`);
  await db.checkpoint();
  await db.put("one-more", 1); // so that the next checkpoint writes a meta (the older slot is the floor)
  await db.checkpoint();
  assert.equal(db.txlogWatermarks().oldestLsn, 1, "the consumer floor kept the log through the checkpoints' gc");
  assert.ok(db.txlogWatermarks().heldByFloor.some((h) => h.floor === "consumer:tail"));
  // gc reports what it kept with the same fields as the watermarks: the LSNs each segment holds too.
  const held = (await db.gcTxlogSegments()).heldByFloor;
  assert.ok(held.length > 0 && held.every((h) => h.floor === "consumer:tail" && h.firstLsn >= 1 && h.lastLsn >= h.firstLsn && typeof h.segment === "string"), JSON.stringify(held));
  db.setTxLogFloor("tail", undefined);
  const r = await db.gcTxlogSegments();
  assert.ok(r.deleted.length > 0, `gc deleted nothing: ${JSON.stringify(r)}`);
  assert.ok(r.freedBytes > 0);
  const oldest = db.txlogWatermarks().oldestLsn!;
  assert.ok(oldest > 1);
  const e = throwsCode(() => [...db.openTxLog(oldest - 1)], "NOT_FOUND", "reading a deleted range");
  assert.equal(e.details.oldestLsn, oldest);
  assert.equal([...db.openTxLog(oldest)][0]!.lsn, oldest);
  await db.close();

  const fs2 = freshFs();
  const rdb = await open(DIR, { fs: fs2, durability: "relaxed", groupCommit: 1000, groupCommitMs: 60_000 });
  const start = rdb.txlogWatermarks().lastCommittedLsn;
  for (let i = 0; i < 3; i++) await rdb.put(`k${i}`, i);
  assert.deepEqual([...rdb.openTxLog(start + 1)], [], "records not yet durable are not read by default");
  assert.deepEqual([...rdb.openTxLog(start + 1, start + 3)], [], "toLsn is capped at the last durable LSN");
  await rdb.sync();
  assert.deepEqual([...rdb.openTxLog(start + 1)].map((x) => x.lsn), [start + 1, start + 2, start + 3]);
  await rdb.close();
});

test("openTxLog: a reader is listed as the txlog-reader floor while it iterates; one abandoned unfinished is released when collected", async () => {
  v8.setFlagsFromString("--expose-gc");
  const collect = vm.runInNewContext("gc") as () => void;
  const fs = freshFs();
  const db = await open(DIR, { fs, walSegmentMaxBytes: 64 * 1024, walRetentionBytes: 0 });
  const big = "v".repeat(3000);
  for (let i = 0; i < 60; i++) await db.put(`a${i}`, big);
  const live = db.openTxLog(1)[Symbol.iterator]();
  live.next();
  assert.equal(db.txlogWatermarks().floors["txlog-reader"], 2, "the running reader is a floor, and listed");
  live.return?.();
  assert.equal(db.txlogWatermarks().floors["txlog-reader"], undefined, "released by return()");
  // Read one record, then drop the iterator without finishing it.
  (() => {
    const it = db.openTxLog(1)[Symbol.iterator]();
    it.next();
  })();
  for (let i = 0; i < 10 && db.txlogWatermarks().floors["txlog-reader"] !== undefined; i++) {
    collect();
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(db.txlogWatermarks().floors["txlog-reader"], undefined, "the collected reader still holds the log");
  for (let i = 0; i < 60; i++) await db.put(`b${i}`, big);
  await db.checkpoint();
  await db.put("one-more", 1);
  await db.checkpoint();
  assert.ok(db.txlogWatermarks().oldestLsn! > 60, `the log before the abandoned reader's position was kept: oldest ${db.txlogWatermarks().oldestLsn}`);
  await db.close();
});

test("openTxLog decodes a record with the encodings its sub-database had when it was written", async () => {
  // A sub-database dropped and created again with other encodings: the old records must not be
  // decoded with the new encodings (that returns values that were never written).
  const fs = freshFs();
  const db0 = await open(DIR, { fs });
  await db0.openDB("x", { encoding: "json" }).put("k", { a: 1 });
  const oldLsn = db0.txlogWatermarks().lastCommittedLsn;
  await db0.dropDB("x");
  await db0.close();
  const db = await open(DIR, { fs });
  await db.openDB("x", { encoding: "string" }).put("k", "now a string");
  const rec = [...db.openTxLog(oldLsn, oldLsn)][0]!;
  const put = rec.ops.find((o) => o.type === "put")!;
  const ok = Buffer.isBuffer(put.value) || (typeof put.value === "object" && put.value !== null && (put.value as { a?: number }).a === 1);
  assert.ok(ok, `the record of LSN ${oldLsn} (json {"a":1}) was decoded as ${JSON.stringify(put.value)}: wrong data, decoded with the encoding of the sub-database created later`);
  await db.close();
});

test("openTxLog decodes a record by its own generation's encodings whatever the range: read whole, record by record, or before the drop is durable (relaxed)", async () => {
  for (const durability of ["strict", "relaxed"] as const) {
    for (const [first, second] of [
      [{ keyEncoding: "string", encoding: "json" }, { keyEncoding: "binary", encoding: "binary" }],
      [{ keyEncoding: "binary", encoding: "binary" }, { keyEncoding: "string", encoding: "json" }],
    ] as const) {
      const fs = freshFs();
      const db0 = await open(DIR, { fs, durability });
      const g1 = db0.openDB("x", first);
      const k = (s: string) => (first.keyEncoding === "binary" ? Buffer.from(s) : s);
      const v = (n: number) => (first.encoding === "binary" ? Buffer.from([0xff, 0xfe, n]) : { n });
      await g1.put(k("alpha"), v(1));
      await g1.put(k("beta"), v(2));
      await db0.close(); // a handle keeps its encodings for the session: generation 2 in the next
      const db = await open(DIR, { fs, durability });
      const durable = db.txlogWatermarks().lastDurableLsn;
      await db.dropDB("x");
      const g2 = db.openDB("x", second);
      await g2.put(second.keyEncoding === "binary" ? Buffer.from("k") : "k", second.encoding === "binary" ? Buffer.from([1]) : { m: 1 });
      // Under relaxed the drop and the new generation are committed, not yet durable: the default
      // range ends at `durable`, before them, and must still decode generation 1 as generation 1.
      const tail = [...db.openTxLog(2)];
      if (durability === "relaxed") assert.equal(tail[tail.length - 1]!.lsn, durable);
      await db.sync();
      const whole = [...db.openTxLog(2)];
      const one = whole.map((r) => [...db.openTxLog(r.lsn, r.lsn)][0]);
      assert.deepEqual(one, whole, `${durability} ${first.encoding}->${second.encoding}: each record alone decodes as in the whole range`);
      assert.deepEqual(tail, whole.slice(0, tail.length), `${durability}: the range ending before the drop decodes the same`);
      const beta = whole.find((r) => r.ops[0]!.type === "put" && r.lsn === durable)!.ops[0]!;
      assert.deepEqual([beta.key, beta.value], [k("beta"), v(2)], "generation 1's record, as it was written");
      await db.close();
    }
  }
});

// ---- commit events ------------------------------------------------------------------------------

test("on(): a listener that is not a function, or another event name, is INVALID_ARGUMENT", async () => {
  const db = await open(DIR, { fs: freshFs() });
  throwsKeel(() => db.on("commit", 5 as never), "INVALID_ARGUMENT", "listener 5");
  throwsKeel(() => db.on("comit" as never, () => {}), "INVALID_ARGUMENT", "event name");
  await db.close();
});

test("commit events: an async listener that rejects is reported as KEEL_LISTENER, never left an unhandled rejection", async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  process.on("unhandledRejection", onUnhandled);
  try {
    for (const wal of [true, false]) {
      const fs = freshFs();
      const db = await open(DIR, { fs, wal });
      db.on("commit", async () => {
        await null;
        throw new Error("async listener bug");
      });
      const warningsBefore = warningCounts.get("KEEL_LISTENER") ?? 0;
      await db.put("a", 1);
      await db.put("b", 2);
      for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
      assert.equal(db.get("b"), 2);
      assert.ok((warningCounts.get("KEEL_LISTENER") ?? 0) >= warningsBefore + 2, `wal ${wal}: each rejection is a warning`);
      await db.close();
    }
    assert.deepEqual(unhandled, [], "no rejection was left unhandled");
  } finally {
    process.off("unhandledRejection", onUnhandled);
  }
});

test("commit events: contiguous LSNs, op counts and bytes, after durability under strict; a throwing listener breaks nothing", async () => {
  const fs = freshFs();
  const db = await open(DIR, { fs });
  const seen: CommitReport[] = [];
  const checks: string[] = [];
  db.on("commit", () => {
    throw new Error("listener bug");
  });
  const listener = (r: CommitReport): void => {
    seen.push(r);
    const w = db.txlogWatermarks();
    if (w.lastDurableLsn < r.lsn) checks.push(`event for LSN ${r.lsn} before it was durable (durable ${w.lastDurableLsn})`);
  };
  db.on("commit", listener);
  const warningsBefore = warningCounts.get("KEEL_LISTENER") ?? 0;
  const start = db.txlogWatermarks().lastCommittedLsn;
  assert.equal(await db.put("a", "xyz"), true);
  await Promise.all([db.put("b", 1), db.put("c", 2), db.remove("a")]); // one group, one record
  await db.remove("b"); // a remove alone: its key bytes
  await db.transaction((tx) => {
    tx.put("d", "dd");
    tx.put("e", "ee");
  });
  db.transactionSync((tx) => tx.put("f", "ff"));
  await db.transaction(() => {}); // empty: no record
  assert.equal(db.get("d"), "dd", "commits went through a throwing listener");
  assert.deepEqual(checks, []);
  const real = seen.filter((r) => r.lsn !== 0);
  assert.deepEqual(
    real.map((r) => r.lsn),
    [start + 1, start + 2, start + 3, start + 4, start + 5],
  );
  assert.deepEqual(
    real.map((r) => r.ops),
    [1, 3, 1, 2, 1],
  );
  // Encoded bytes: "a" (1) + msgpack "xyz" (4); b 1, c 2 (2 each) + the removed key "a" (1); "b".
  assert.deepEqual(
    real.slice(0, 3).map((r) => r.bytes),
    [5, 5, 1],
    "puts count key and value bytes, removes their key's",
  );
  assert.ok(real.every((r) => r.bytes > 0 && r.time > 0 && r.txnId > 0));
  for (let i = 1; i < real.length; i++) assert.ok(real[i]!.txnId > real[i - 1]!.txnId);
  await new Promise((r) => setImmediate(r));
  assert.ok((warningCounts.get("KEEL_LISTENER") ?? 0) > warningsBefore, "the throwing listener is reported as a warning");
  db.off("commit", listener);
  await db.put("g", 1);
  assert.equal(seen.filter((r) => r.lsn !== 0).length, 5, "off() removes the listener");
  // off() checks its arguments as on() does.
  for (const [ev, fn] of [["commit", 5], ["commit", null], ["bogus", listener]] as const) {
    throwsCode(() => db.off(ev as "commit", fn as unknown as (r: CommitReport) => void), "INVALID_ARGUMENT", `off(${String(ev)}, ${typeof fn})`);
  }
  await db.close();
});

// ---- relaxed timer and transactionSync ---------------------------------------------------------

test("relaxed: the log is synced by the groupCommitMs timer with no further writes", async () => {
  for (const ms of [1, 25]) {
    const fs = freshFs();
    const db = await open(DIR, { fs, durability: "relaxed", groupCommit: 10_000, groupCommitMs: ms });
    for (let i = 0; i < 3; i++) await db.put(`k${i}`, i);
    const target = db.txlogWatermarks().lastCommittedLsn;
    // No further writes, no sync(): the timer alone must make them durable.
    await waitFor(() => db.txlogWatermarks().lastDurableLsn >= target, ms + 5000, `lastDurableLsn to reach ${target} (groupCommitMs ${ms})`);
    // ... and really durable: a crash now keeps them.
    const crashed = fs.crashedCopy(3, { model: "dropAll" });
    await db.close();
    removeStaleLock(crashed, DIR);
    const db2 = await open(DIR, { fs: crashed });
    assert.equal(db2.get("k2"), 2, `groupCommitMs ${ms}: the timer-synced records survive a crash`);
    await db2.close();
  }
});

test("relaxed: transactionSync is durable when it returns (and so is everything before it)", async () => {
  const fs = freshFs();
  const db = await open(DIR, { fs, durability: "relaxed", groupCommit: 10_000, groupCommitMs: 60_000 });
  for (let i = 0; i < 5; i++) await db.put(`k${i}`, i);
  const before = db.txlogWatermarks();
  assert.ok(before.lastDurableLsn < before.lastCommittedLsn, "the puts are not durable yet");
  db.transactionSync((tx) => tx.put("sync", "yes"));
  const w = db.txlogWatermarks();
  assert.equal(w.lastDurableLsn, w.lastCommittedLsn, "transactionSync made the log durable");
  // Power cut right now: only synced data survives.
  const crashed = fs.crashedCopy(9, { model: "dropAll" });
  removeStaleLock(crashed, DIR);
  const db2 = await open(DIR, { fs: crashed });
  assert.equal(db2.get("sync"), "yes");
  assert.equal(db2.get("k4"), 4);
  assert.equal(db2.txlogWatermarks().lastCommittedLsn, w.lastCommittedLsn);
  await db2.close();
  await db.close();
});

// ---- strict visibility ---------------------------------------------------------------------------

test("strict: no reader sees a commit before its log sync returned", async () => {
  const fs = new FaultFileSystem(freshFs());
  let db: Database | undefined;
  const seenDuringSync: string[] = [];
  let watching: string | undefined;
  fs.onCall = (info) => {
    if (watching && db && (info.kind === "sync" || info.kind === "syncAsync") && info.path.includes("/wal/")) {
      const v = db.get(watching);
      if (v !== undefined) seenDuringSync.push(`${watching}=${String(v)} visible during the log sync (${info.kind})`);
      if (db.getRange().asArray.some((e) => e.key === watching)) seenDuringSync.push(`${watching} in getRange during the log sync`);
    }
  };
  db = await open(DIR, { fs });
  for (let i = 0; i < 20; i++) {
    watching = `k${i}`;
    const p = db.put(watching, i);
    assert.equal(db.get(watching), undefined, "not visible right after put() returns");
    await p;
    assert.equal(db.get(watching), i, "visible once acknowledged");
  }
  watching = undefined;
  assert.deepEqual(seenDuringSync, []);
  await db.close();
});

test("strict: a commit whose log sync fails rejects with IO and is never visible; the log refuses writes until reopened", async () => {
  const fs = new FaultFileSystem(freshFs());
  const db = await open(DIR, { fs });
  await db.put("ok", 1);
  const events: number[] = [];
  db.on("commit", (r) => events.push(r.lsn));
  const lsnBefore = db.txlogWatermarks().lastCommittedLsn;
  let seenDuring: unknown[] = [];
  fs.onCall = (info) => {
    if (info.kind === "sync" && info.path.includes("/wal/")) seenDuring = [db.get("bad1"), db.get("bad2"), db.getCount()];
  };
  fs.failAt(1, { kinds: ["sync", "syncAsync"] });
  const p1 = db.put("bad1", "x");
  const p2 = db.transaction((tx) => tx.put("bad2", "y"));
  assert.equal(db.get("bad1"), undefined, "before the group runs");
  const e1 = await rejects(p1, "IO", "the put whose log sync failed");
  await rejects(p2, "IO", "the transaction of the same group");
  fs.onCall = undefined;
  assert.deepEqual(seenDuring, [undefined, undefined, 1], "nothing of the failing group was visible during its sync");
  assert.equal(db.get("bad1"), undefined, "not visible after the failure");
  assert.equal(db.get("bad2"), undefined);
  assert.equal(db.getCount(), 1);
  assert.equal(db.get("ok"), 1, "the last good state is kept");
  assert.deepEqual(events, [], "no commit event for a failed commit");
  assert.ok(e1.details.errno === "EIO" || String(e1.message).includes("EIO"), describeError(e1));
  const w = db.txlogWatermarks();
  assert.ok(w.failed, "the log reports its failure");
  assert.equal(w.lastDurableLsn, lsnBefore);
  // fsync is not retried (fsyncgate): later writes are refused until the log is reopened.
  await rejects(db.put("later", 1), "IO", "a write after the failed sync");
  assert.equal(db.get("later"), undefined);
  await db.close();
  // After a reopen the outcome of the failed commits is whatever the log holds; the database
  // opens, is consistent, and takes writes again.
  fs.clearFaults();
  const db2 = await open(DIR, { fs });
  assert.equal(db2.get("ok"), 1);
  await db2.put("later", 2);
  assert.equal(db2.get("later"), 2);
  await db2.close();
});

test("consumer floors are kept across a close and a power cut: gc after a reopen keeps the log they need", async () => {
  const fs = freshFs();
  const opts = { fs, walSegmentMaxBytes: 65536, walRetentionBytes: 0, walRetentionMs: 0 };
  let db = await open(DIR, opts);
  const big = "x".repeat(9000);
  for (let i = 0; i < 40; i++) await db.put(`k${i}`, big);
  const early = 5;
  db.setTxLogFloor("replica", early);
  await db.checkpoint();
  assert.ok(db.txlogWatermarks().oldestLsn! <= early, "the floor holds the log while open");
  await db.close();

  // Reopened: the floor is still there, and the checkpoint and gc of this session keep its log.
  const reopen = async (f: CrashFileSystem) => {
    removeStaleLock(f, DIR);
    return open(DIR, { ...opts, fs: f });
  };
  db = await reopen(fs);
  assert.equal(db.txlogWatermarks().floors["consumer:replica"], early, "the floor survived the close");
  for (let i = 0; i < 20; i++) await db.put(`m${i}`, big);
  await db.checkpoint();
  await db.gcTxlogSegments();
  assert.ok(db.txlogWatermarks().oldestLsn! <= early, `gc after the reopen kept the log from ${early} (oldest ${db.txlogWatermarks().oldestLsn})`);
  assert.equal([...db.openTxLog(early, early)].length, 1, "the consumer can still read from its floor");

  // A floor moved without a gc since is not on disk yet: a power cut keeps the older one (more log,
  // never less). After a gc it is on disk.
  db.setTxLogFloor("replica", 30);
  let cut = fs.crashedCopy(1, { model: "dropAll" });
  let after = await reopen(cut);
  assert.equal(after.txlogWatermarks().floors["consumer:replica"], early, "an unpersisted move falls back to the older floor");
  await after.close();
  await db.gcTxlogSegments();
  cut = fs.crashedCopy(2, { model: "dropAll" });
  after = await reopen(cut);
  assert.equal(after.txlogWatermarks().floors["consumer:replica"], 30, "persisted by the gc");
  await after.close();

  // Removed: after the next gc and a reopen, nothing holds the log any more.
  db.setTxLogFloor("replica", undefined);
  await db.checkpoint();
  await db.close();
  db = await reopen(fs);
  assert.equal(db.txlogWatermarks().floors["consumer:replica"], undefined);
  await db.checkpoint();
  await db.gcTxlogSegments();
  assert.ok(db.txlogWatermarks().oldestLsn! > 30, "without the floor the old log goes");
  await db.close();

  // A damaged floors file keeps all the log, with a warning naming the code.
  const f = fs.open(`${DIR}/txlog-floors.json`, "create");
  f.write(Buffer.from("{ not json"), 0, 10, 0);
  f.close();
  const warned = warningCounts.get("KEEL_FLOORS_DAMAGED") ?? 0;
  db = await reopen(fs);
  await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
  assert.equal(warningCounts.get("KEEL_FLOORS_DAMAGED") ?? 0, warned + 1, "open warns about the damaged file");
  assert.equal(db.txlogWatermarks().floors["consumer-floors-unreadable"], 0, "and keeps all the log");
  await db.close();
});

test("openTxLog: an iteration running across close() ends with CLOSED; a read-only open has no log API (INVALID_ARGUMENT naming readOnly)", async () => {
  const fs = freshFs();
  const db = await open(DIR, { fs });
  for (let i = 0; i < 5; i++) await db.put(`k${i}`, i);
  const it = db.openTxLog(1)[Symbol.iterator]();
  assert.equal(it.next().done, false);
  await db.close();
  throwsCode(() => it.next(), "CLOSED", "next() after close");
  const ro = await open(DIR, { fs, readOnly: true });
  const e = throwsCode(() => ro.txlogWatermarks(), "INVALID_ARGUMENT", "txlogWatermarks on a read-only open");
  assert.equal(e.details.option, "readOnly");
  await ro.close();
});

test("commit listeners: transactionSync inside one is TXN (its own event would run the listener again without end); db.put there is queued and works", async () => {
  for (const wal of [true, false]) {
    const fs = freshFs();
    const db = await open(DIR, { fs, wal });
    const seen: unknown[] = [];
    let echoed = false;
    db.on("commit", () => {
      try {
        db.transactionSync((tx) => tx.put("sync-in-listener", 1));
        seen.push("committed");
      } catch (e) {
        seen.push(e instanceof KeelError ? e.code : String(e));
      }
      if (!echoed) {
        echoed = true;
        void db.put("echo", 1);
      }
    });
    await db.put("a", 1);
    await db.flushed();
    await db.put("b", 2);
    assert.ok(seen.length >= 2 && seen.every((s) => s === "TXN"), `wal ${wal}: ${JSON.stringify(seen)}`);
    assert.equal(db.get("sync-in-listener"), undefined);
    assert.equal(db.get("echo"), 1, `wal ${wal}: a queued write from a listener`);
    await db.close();
  }
});

test("a floors temp file left by a process killed while writing txlog-floors.json is removed by the next open", async () => {
  const fs = freshFs();
  const db0 = await open(DIR, { fs });
  db0.setTxLogFloor("replica", 1);
  await db0.close();
  // What writeFileAtomic leaves when its process dies between the temp write and the rename.
  const h = fs.open(`${DIR}/txlog-floors.json.tmp-99999`, "create");
  h.write(Buffer.from("{}"), 0, 2, 0);
  h.close();
  const db = await open(DIR, { fs });
  assert.deepEqual(fs.list(DIR).filter((n) => n.includes(".tmp-")), [], "no temp file left");
  assert.equal(db.txlogWatermarks().floors["consumer:replica"], 1, "the floors themselves are read as before");
  await db.close();
});

test("commit events: a transaction that changed nothing (a remove of a missing key, a callback that only read) emits none, with or without the log", async () => {
  for (const wal of [true, false]) {
    const db = await open(DIR, { fs: freshFs(), wal });
    const seen: CommitReport[] = [];
    db.on("commit", (r) => void seen.push(r));
    await db.put("a", 1);
    await db.remove("missing");
    await db.transaction((tx) => void tx.get("a"));
    await db.transaction(() => {});
    await db.put("b", 2);
    assert.deepEqual(seen.map((r) => r.ops), [1, 1], `wal ${wal}: the two puts only`);
    if (wal) {
      const lsns = seen.map((r) => r.lsn);
      assert.equal(lsns[1], lsns[0]! + 1, "contiguous LSNs, no 0 between them");
    }
    await db.close();
  }
});
