/**
 * Value encodings: msgpack (Buffers, Dates, nested structures), json, string and binary round trip
 * through a database, inline and overflow-sized, before and after a checkpoint and a reopen; binary
 * values are copies both ways; bad values are INVALID_ARGUMENT; the maxValueSize limit.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { decodeValue, encodeValue } from "../../src/db/ValueCodec.js";
import { openSync, type Database, type OpenOptions } from "../../src/index.js";
import { CrashFileSystem } from "../../src/io/CrashFileSystem.js";
import { DIR, memDb, rejectsKeel, throwsKeel } from "./dbUtil.js";

const big = (n: number, seed = 1) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 131 + seed * 17) & 0xff));

const MSGPACK_VALUES: Array<[string, unknown]> = [
  ["null", null],
  ["true", true],
  ["int", 42],
  ["negative", -7],
  ["double", 3.141592653589793],
  ["big int", 2 ** 53 - 1],
  ["bigint", 12345678901234567890n],
  ["string", "h\u00e9llo \u{1F600}"],
  ["empty string", ""],
  ["buffer", Buffer.from([0, 1, 2, 255])],
  ["empty buffer", Buffer.alloc(0)],
  ["date", new Date(1700000000123)],
  ["nested", { a: [1, { b: [true, null, "x", { c: Buffer.from("deep") }] }], d: new Date(0), e: { f: { g: { h: [[], {}] } } } }],
  ["array", [1, "two", [3], { four: 4 }]],
  ["large string", "L".repeat(20000)],
  ["large buffer", big(50000)],
  ["large nested", { rows: Array.from({ length: 400 }, (_, i) => ({ id: i, name: `row ${i}`, at: new Date(i * 1000), blob: Buffer.from([i & 255]) })) }],
];

async function roundTrip(opts: OpenOptions, values: Array<[string, unknown]>, check: (got: unknown, want: unknown, label: string) => void): Promise<void> {
  const fs = new CrashFileSystem();
  let db: Database = openSync(DIR, { fs, ...opts });
  await db.transaction((tx) => {
    for (const [k, v] of values) tx.put(k, v);
  });
  for (const [k, v] of values) check(db.get(k), v, `${k} (after commit)`);
  for (const e of db.getRange()) check(e.value, values.find(([k]) => k === e.key)![1], `${String(e.key)} (getRange)`);
  await db.transaction((tx) => {
    for (const [k, v] of values) check(tx.get(k), v, `${k} (in a transaction)`);
  });
  await db.close();
  db = openSync(DIR, { fs, ...opts });
  for (const [k, v] of values) check(db.get(k), v, `${k} (after reopen)`);
  await db.close();
}

test("msgpack round trips nested values, Buffers, Dates, bigints, inline and overflow-sized", async () => {
  const check = (got: unknown, want: unknown, label: string) => {
    assert.deepEqual(got, want, label);
    if (Buffer.isBuffer(want)) assert.ok(Buffer.isBuffer(got), `${label}: a Buffer comes back as a Buffer`);
    if (want instanceof Date) assert.ok(got instanceof Date, `${label}: a Date comes back as a Date`);
  };
  await roundTrip({ wal: false }, MSGPACK_VALUES, check);
  await roundTrip({}, MSGPACK_VALUES, check); // with the log: values replayed/checkpointed
});

test("msgpack Buffers read back are copies: changing one does not change the stored value", async () => {
  const { db } = memDb({ wal: false });
  await db.put("b", { buf: Buffer.from("abc"), big: big(5000) });
  const a = db.get("b") as { buf: Buffer; big: Buffer };
  a.buf[0] = 0x7a;
  a.big[0] = 0;
  const again = db.get("b") as { buf: Buffer; big: Buffer };
  assert.equal(again.buf.toString(), "abc");
  assert.ok(again.big.equals(big(5000)));
  await db.close();
});

test("json round trips plain data (Dates become strings, as JSON does)", async () => {
  const values: Array<[string, unknown]> = [
    ["obj", { a: 1, b: [true, null, "x"], c: { d: -2.5 } }],
    ["str", "\u00e9\u{1F600}"],
    ["num", 12.5],
    ["null", null],
    ["arr", [[], {}, [1, [2, [3]]]]],
    ["big", { text: "j".repeat(30000) }],
  ];
  await roundTrip({ wal: false, encoding: "json" }, values, (g, w, l) => assert.deepEqual(g, w, l));
  const { db } = memDb({ wal: false, encoding: "json" });
  await db.put("d", { at: new Date(0) });
  assert.deepEqual(db.get("d"), { at: "1970-01-01T00:00:00.000Z" });
  await db.close();
});

test("string round trips UTF-8 text and refuses other types", async () => {
  const values: Array<[string, unknown]> = [
    ["a", ""],
    ["b", "plain"],
    ["c", "\u0000\u00ff\u4e2d\u{1F600}"],
    ["d", "s".repeat(40000)],
  ];
  await roundTrip({ wal: false, encoding: "string" }, values, (g, w, l) => assert.equal(g, w, l));
  const { db } = memDb({ wal: false, encoding: "string" });
  for (const bad of [1, null, { a: 1 }, Buffer.from("x")]) await rejectsKeel(db.put("k", bad), "INVALID_ARGUMENT", `string value ${String(bad)}`);
  await db.close();
});

test("binary round trips bytes; a value read back is a copy the caller may change", async () => {
  const values: Array<[string, unknown]> = [
    ["empty", Buffer.alloc(0)],
    ["small", Buffer.from([1, 2, 3])],
    ["u8", new Uint8Array([9, 8, 7])],
    ["edge", Buffer.alloc(4096 / 2 - 50, 0xee)],
    ["big", big(70000)],
  ];
  await roundTrip({ wal: false, encoding: "binary" }, values, (g, w, l) => {
    assert.ok(Buffer.isBuffer(g), `${l}: a Buffer`);
    assert.ok((g as Buffer).equals(Buffer.from(w as Uint8Array)), l);
  });
  for (const opts of [{ wal: false }, {}] as OpenOptions[]) {
    const { db } = memDb({ ...opts, encoding: "binary" });
    await db.put("s", Buffer.from("small"));
    await db.put("b", big(9000));
    for (const read of [(k: string) => db.get(k) as Buffer, (k: string) => db.getBinary(k)!, (k: string) => db.getRange({ start: k }).asArray[0]!.value as Buffer]) {
      const s = read("s");
      s.fill(0);
      const b = read("b");
      b.fill(0);
      assert.equal((db.get("s") as Buffer).toString(), "small", "mutating a read value changed the stored one");
      assert.ok((db.get("b") as Buffer).equals(big(9000)), "mutating a read overflow value changed the stored one");
    }
    await db.transaction((tx) => {
      (tx.get("b") as Buffer).fill(1);
      (tx.get("s") as Buffer).fill(1);
    });
    assert.ok((db.get("b") as Buffer).equals(big(9000)));
    assert.equal((db.get("s") as Buffer).toString(), "small");
    // The buffer given to put is copied: changing it before the write is applied changes nothing.
    const src = Buffer.from("original");
    const bigSrc = big(80000, 3);
    const p1 = db.put("m", src);
    const p2 = db.put("mb", bigSrc);
    src.fill(0x21);
    bigSrc.fill(0x21);
    await Promise.all([p1, p2]);
    assert.equal((db.get("m") as Buffer).toString(), "original");
    assert.ok((db.get("mb") as Buffer).equals(big(80000, 3)));
    const tsrc = Buffer.from("in-txn");
    db.transactionSync((tx) => tx.put("t", tsrc));
    tsrc.fill(0);
    assert.equal((db.get("t") as Buffer).toString(), "in-txn");
    for (const bad of ["str", 5, { a: 1 }, null]) await rejectsKeel(db.put("k", bad), "INVALID_ARGUMENT", `binary value ${String(bad)}`);
    await db.close();
  }
});

test("a Buffer given to tx.put may be reused by the caller at once: the log keeps what was put", async () => {
  // WriteTxn.put copies a binary value into the tree but records the caller's own Buffer in its
  // log ops; the log record is encoded at commit, after the callback has run, so a callback that
  // reuses one Buffer for several puts logs the last content for all of them. Replay (after a
  // crash, before a checkpoint) then restores wrong values.
  const fs = new CrashFileSystem();
  const db = openSync(DIR, { fs, encoding: "binary" });
  const expected = new Map<number, string>();
  await db.transaction((tx) => {
    const buf = Buffer.alloc(8);
    for (let i = 0; i < 10; i++) {
      buf.writeUInt32BE(i * 1000 + 7, 0);
      buf.writeUInt32BE(0xabcdef00 + i, 4);
      tx.put(i, buf);
      expected.set(i, buf.toString("hex"));
    }
  });
  db.transactionSync((tx) => {
    const buf = Buffer.alloc(3);
    for (let i = 10; i < 15; i++) {
      buf.fill(i);
      tx.put(i, buf);
      expected.set(i, buf.toString("hex"));
    }
  });
  for (const [k, hex] of expected) assert.equal((db.get(k) as Buffer).toString("hex"), hex, `live value of ${k}`);
  // What the log holds:
  const logged = new Map<number, string>();
  for (const rec of db.openTxLog(1)) for (const op of rec.ops) if (op.type === "put") logged.set(op.key as number, (op.value as Buffer).toString("hex"));
  // What a crash before any checkpoint recovers (the process dies; the page cache survives):
  const after = fs.crashedCopy(1, { model: "keepAll" });
  after.remove(DIR + "/LOCK");
  const rec = openSync(DIR, { fs: after, encoding: "binary" });
  const recovered = new Map<number, string>();
  for (const k of expected.keys()) recovered.set(k, (rec.get(k) as Buffer).toString("hex"));
  await rec.close();
  await db.close();
  assert.deepEqual({ logged, recovered }, { logged: expected, recovered: expected }, "the log and the recovered database hold what was put");
});

test("undefined is not a value (INVALID_ARGUMENT); use remove", async () => {
  const { db } = memDb({ wal: false });
  await rejectsKeel(db.put("k", undefined), "INVALID_ARGUMENT");
  throwsKeel(() => db.putSync("k", undefined), "INVALID_ARGUMENT");
  await rejectsKeel(db.transaction((tx) => tx.put("k", undefined)), "INVALID_ARGUMENT");
  assert.equal(db.doesExist("k"), false);
  await db.close();
});

test("values an encoding cannot represent are INVALID_ARGUMENT, not untyped exceptions", async () => {
  // ValueCodec.encodeValue lets the encoders' own exceptions escape: JSON.stringify throws a
  // TypeError on a bigint or a cycle, msgpackr throws RangeError on a cycle and Error on a symbol.
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  const j = memDb({ wal: false, encoding: "json" }).db;
  await rejectsKeel(j.put("k", { n: 10n }), "INVALID_ARGUMENT", "json bigint");
  await rejectsKeel(j.put("k", cyclic), "INVALID_ARGUMENT", "json cycle");
  await j.close();
  const m = memDb({ wal: false }).db;
  await rejectsKeel(m.put("k", cyclic), "INVALID_ARGUMENT", "msgpack cycle");
  await rejectsKeel(m.put("k", Symbol("s")), "INVALID_ARGUMENT", "msgpack symbol");
  await m.close();
});

test("values over maxValueSize are INVALID_ARGUMENT with details.limit, on every write path", async () => {
  const { db } = memDb({ wal: false, encoding: "binary", maxValueSize: 5000 });
  await db.put("ok", Buffer.alloc(5000));
  assert.equal((db.get("ok") as Buffer).length, 5000);
  const e = await rejectsKeel(db.put("no", Buffer.alloc(5001)), "INVALID_ARGUMENT");
  assert.equal(e.details.limit, "maxValueSize");
  assert.equal(e.details.max, 5000);
  assert.equal(throwsKeel(() => db.putSync("no", Buffer.alloc(5001)), "INVALID_ARGUMENT").details.limit, "maxValueSize");
  assert.equal((await rejectsKeel(db.transaction((tx) => tx.put("no", Buffer.alloc(9000))), "INVALID_ARGUMENT")).details.limit, "maxValueSize");
  assert.equal(db.doesExist("no"), false);
  // Encoded size counts: a msgpack value whose encoding passes the limit.
  const m = memDb({ wal: false, maxValueSize: 100 }).db;
  await m.put("s", "x".repeat(90));
  assert.equal((await rejectsKeel(m.put("t", "x".repeat(99)), "INVALID_ARGUMENT")).details.limit, "maxValueSize");
  await m.close();
  await db.close();
});

test("a stored value that does not decode under the encoding is INVALID_ARGUMENT naming it", () => {
  const e = throwsKeel(() => decodeValue(Buffer.from("{not json"), "json"), "INVALID_ARGUMENT");
  assert.equal(e.details.encoding, "json");
  assert.deepEqual(decodeValue(Buffer.from(encodeValue({ a: [1] }, "msgpack")), "msgpack"), { a: [1] });
});

test("a lone surrogate: refused by the string encoding, kept exactly by json, documented as U+FFFD under msgpack", async () => {
  const lone = "a\uD800b";
  throwsKeel(() => encodeValue(lone, "string"), "INVALID_ARGUMENT", "string encoding");
  assert.equal(decodeValue(Buffer.from(encodeValue("a\uD83D\uDE00b", "string")), "string"), "a\uD83D\uDE00b", "a surrogate pair is fine");
  assert.deepEqual(decodeValue(Buffer.from(encodeValue({ s: lone }, "json")), "json"), { s: lone });
  const viaMsgpack = (decodeValue(Buffer.from(encodeValue({ s: lone }, "msgpack")), "msgpack") as { s: string }).s;
  assert.ok(viaMsgpack !== lone && /^a\uFFFD+b$/.test(viaMsgpack), `as README says: ${JSON.stringify(viaMsgpack)}`);
  const { db } = memDb({ wal: false, encoding: "string" });
  await rejectsKeel(db.put("k", lone), "INVALID_ARGUMENT", "put");
  assert.equal(db.get("k"), undefined);
  await db.close();
});

test("msgpack refuses a Map anywhere in a value (it would read back as a plain object, or not at all); one stored before reads back as a Map", async () => {
  const { Packr } = await import("msgpackr");
  for (const v of [new Map([[1, "a"]]), { a: [1, { m: new Map() }] }, new Set([new Map()]), [new Map([[{ id: 7 }, "x"]])]]) {
    throwsKeel(() => encodeValue(v, "msgpack"), "INVALID_ARGUMENT", "a value holding a Map");
  }
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  cyclic.list = [cyclic, cyclic];
  throwsKeel(() => encodeValue(cyclic, "msgpack"), "INVALID_ARGUMENT", "a cycle: the walk ends, msgpackr refuses it");
  // Bytes an earlier version stored for a Map with an object key: readable (as a Map), not an
  // error that also stopped every range over the key.
  const old = new Packr({ useRecords: false, moreTypes: true }).pack(new Map<unknown, unknown>([[{ id: 7 }, "object key"]]));
  const back = decodeValue(Buffer.from(old), "msgpack");
  assert.ok(back instanceof Map);
  assert.deepEqual([...(back as Map<unknown, unknown>).values()], ["object key"], "its maps all come back as Maps (the key too)");
  // Everything else still reads as before: objects as objects.
  assert.deepEqual(decodeValue(Buffer.from(encodeValue({ a: [1, { b: "c" }] }, "msgpack")), "msgpack"), { a: [1, { b: "c" }] });
});
