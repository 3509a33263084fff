/**
 * Key encodings: ordered-binary (numbers numerically, negative and fractional included; strings by
 * code point; arrays element-wise; mixed types in the library's type order), binary (bytewise) and
 * string (UTF-8 bytewise). Checked on the codec and through a database (getKeys order, get).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { inspect, isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import { readKey } from "ordered-binary";
import { decodeKey, encodeKey, type Key } from "../../src/db/KeyCodec.js";
import { KeelError } from "../../src/index.js";
import { Rng } from "../helpers/rng.js";
import { memDb, rejectsKeel, throwsKeel } from "./dbUtil.js";

const MAX = 1004; // maxKeySize at 4096-byte pages

function shuffled<T>(a: T[], seed: number): T[] {
  const rng = new Rng(seed);
  const out = a.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const NUMBERS = [-Infinity, -1e300, -(2 ** 53), -1e6, -1000.5, -10, -1.1, -1, -0.5, -1e-300, 0, 1e-300, 0.5, 1, 1.1, 2, 10, 400, 1000.5, 3e10, 2 ** 53, 1e21, 1e300, Infinity];

test("ordered-binary: numbers sort numerically, negatives and fractions included", async () => {
  const enc = NUMBERS.map((n) => encodeKey(n, "ordered-binary", MAX));
  for (let i = 1; i < enc.length; i++) assert.ok(enc[i - 1]! < enc[i]!, `${NUMBERS[i - 1]} must sort before ${NUMBERS[i]}`);
  for (let i = 0; i < NUMBERS.length; i++) assert.equal(decodeKey(enc[i]!, "ordered-binary"), NUMBERS[i]);

  const { db } = memDb({ wal: false });
  for (const n of shuffled(NUMBERS, 1)) db.put(n, `v${n}`);
  await db.flushed();
  assert.deepEqual(db.getKeys().asArray, NUMBERS);
  for (const n of NUMBERS) assert.equal(db.get(n), `v${n}`);
  assert.deepEqual(db.getKeys({ start: -1, end: 1 }).asArray, [-1, -0.5, -1e-300, 0, 1e-300, 0.5]);
  assert.deepEqual(db.getKeys({ start: 1, end: -1, reverse: true }).asArray, [1, 0.5, 1e-300, 0, -1e-300, -0.5]);
  await db.close();
});

test("ordered-binary: random integers and doubles come back in numeric order", async () => {
  const rng = new Rng(5);
  const set = new Set<number>();
  while (set.size < 400) {
    const r = rng.next();
    set.add(r < 0.3 ? rng.int(2000) - 1000 : r < 0.6 ? (rng.next() - 0.5) * 1e9 : r < 0.8 ? (rng.next() - 0.5) * 2 : Math.round((rng.next() - 0.5) * 2 ** 52));
  }
  const nums = [...set];
  const { db } = memDb({ wal: false });
  await db.transaction((tx) => {
    for (const n of nums) tx.put(n, n);
  });
  const sorted = nums.slice().sort((a, b) => a - b);
  assert.deepEqual(db.getKeys().asArray, sorted);
  assert.deepEqual(
    db.getRange().asArray.map((e) => e.value),
    sorted,
  );
  await db.close();
});

test("ordered-binary: -0 is the key 0 (same key, same place, reads back as a number)", async () => {
  // ordered-binary encodes -0 as bytes that sort after +Infinity and decode as ["\x18", null];
  // KeyCodec passes -0 through unnormalized.
  assert.equal(encodeKey(-0, "ordered-binary", MAX), encodeKey(0, "ordered-binary", MAX), "-0 and 0 must be one key");
  const { db } = memDb({ wal: false });
  await db.put(-0, "zero");
  await db.put(1, "one");
  assert.equal(db.get(0), "zero");
  assert.deepEqual(db.getKeys().asArray, [0, 1]);
  await db.close();
});

test("ordered-binary: strings sort by code point (UTF-8 byte order), not by UTF-16 unit", async () => {
  const strings = ["", " ", "A", "Z", "a", "aa", "ab", "b", "z", "\u00e9", "\u0101", "\u4e2d", "\uffee", "\u{1F600}", "\u{1F600}a"];
  const enc = strings.map((s) => encodeKey(s, "ordered-binary", MAX));
  for (let i = 1; i < enc.length; i++) assert.ok(enc[i - 1]! < enc[i]!, `${JSON.stringify(strings[i - 1])} < ${JSON.stringify(strings[i])}`);
  const { db } = memDb({ wal: false });
  for (const s of shuffled(strings, 2)) db.put(s, s.length);
  await db.flushed();
  assert.deepEqual(db.getKeys().asArray, strings);
  for (const s of strings) assert.equal(db.get(s), s.length);
  await db.close();
});

test("ordered-binary: arrays sort element-wise, after their prefix, and mixed types keep the type order", async () => {
  // null < booleans < numbers < strings; an array sorts with its first element, then the rest.
  const ordered: Key[] = [
    null,
    false,
    true,
    -5,
    0,
    7,
    "a",
    ["a", -1],
    ["a", 0],
    ["a", 2],
    ["a", 10],
    ["a", "a"],
    ["a", "b"],
    ["a", "b", 1],
    "ab",
    ["ab", 0],
    "b",
    ["b", null],
  ];
  const enc = ordered.map((k) => encodeKey(k, "ordered-binary", MAX));
  for (let i = 1; i < enc.length; i++) assert.ok(enc[i - 1]! < enc[i]!, `${JSON.stringify(ordered[i - 1])} < ${JSON.stringify(ordered[i])}`);
  const { db } = memDb({ wal: false });
  for (const k of shuffled(ordered, 3)) db.put(k, JSON.stringify(k));
  await db.flushed();
  assert.deepEqual(db.getKeys().asArray, ordered);
  for (const k of ordered) assert.equal(db.get(k), JSON.stringify(k), `get ${JSON.stringify(k)}`);
  // Range over an array prefix: every ["a", x] and nothing else.
  assert.deepEqual(db.getKeys({ start: ["a", -Infinity], end: "ab" }).asArray, ordered.slice(7, 14));
  await db.close();
});

test("ordered-binary: a key that cannot be encoded is INVALID_ARGUMENT; undefined is refused", async () => {
  const { db } = memDb({ wal: false });
  // ordered-binary itself would take a BigInt (5n as the key 5), a Symbol and undefined inside an
  // array (as null): each a silent collision with another key.
  await db.put(5, "five");
  await db.put([1, null], "pair");
  for (const bad of [undefined, { a: 1 }, () => 1, 5n, 2n ** 70n, Symbol("x"), [1, undefined], [1, 5n], new Date(5), [1, , 2], new Array(2)] as unknown[]) {
    const what = typeof bad === "symbol" ? "a symbol" : Array.isArray(bad) ? `[${bad.map(String).join(",")}]` : String(bad);
    await rejectsKeel(db.put(bad as Key, 1), "INVALID_ARGUMENT", what);
    throwsKeel(() => db.get(bad as Key), "INVALID_ARGUMENT", what);
    if (bad !== undefined) throwsKeel(() => db.getRange({ start: bad as Key }), "INVALID_ARGUMENT", `${what} as a range bound`); // undefined: no bound
  }
  assert.deepEqual([db.get(5), db.get([1, null]), db.getCount()], ["five", "pair", 2], "nothing overwritten");
  await db.close();
});

test("binary keys: stored and ordered bytewise, returned as Buffers", async () => {
  const rng = new Rng(9);
  const keys: Buffer[] = [Buffer.alloc(0), Buffer.from([0]), Buffer.from([0, 0]), Buffer.from([0, 1]), Buffer.from([1]), Buffer.from([0x7f]), Buffer.from([0x80]), Buffer.from([0xff]), Buffer.from([0xff, 0])];
  for (let i = 0; i < 200; i++) keys.push(rng.bytes(1 + rng.int(20)));
  const uniq = [...new Map(keys.map((k) => [k.toString("hex"), k])).values()];
  const sorted = uniq.slice().sort(Buffer.compare);
  const { db } = memDb({ wal: false, keyEncoding: "binary" });
  await db.transaction((tx) => {
    for (const k of uniq) tx.put(k, k.toString("hex"));
  });
  const got = db.getKeys().asArray;
  assert.ok(got.every((k) => Buffer.isBuffer(k)));
  assert.deepEqual(
    got.map((k) => (k as Buffer).toString("hex")),
    sorted.map((k) => k.toString("hex")),
  );
  for (const k of uniq) assert.equal(db.get(new Uint8Array(k)), k.toString("hex"), "a Uint8Array finds the same key");
  // Range bounds are bytes too.
  const lo = Buffer.from([0x40]);
  const hi = Buffer.from([0xc0]);
  assert.deepEqual(
    db.getKeys({ start: lo, end: hi }).asArray.map((k) => (k as Buffer).toString("hex")),
    sorted.filter((k) => Buffer.compare(k, lo) >= 0 && Buffer.compare(k, hi) < 0).map((k) => k.toString("hex")),
  );
  // A key given as a Buffer is copied: changing it after put changes nothing.
  const k = Buffer.from("mutable");
  const p = db.put(k, "m");
  k[0] = 0x4d;
  await p;
  assert.equal(db.get(Buffer.from("mutable")), "m");
  assert.equal(db.get(Buffer.from("Mutable")), undefined);
  // Anything but bytes is refused.
  for (const bad of ["str", 5, null, ["a"]]) await rejectsKeel(db.put(bad as Key, 1), "INVALID_ARGUMENT", `binary key ${String(bad)}`);
  await db.close();
});

test("string keys: UTF-8, ordered bytewise, returned as strings", async () => {
  const strings = ["", "a", "a\u0000", "a\u0000b", "ab", "b", "\u00e9", "\u4e2d\u6587", "\uffee", "\u{1F600}"];
  const { db } = memDb({ wal: false, keyEncoding: "string" });
  for (const s of shuffled(strings, 4)) db.put(s, s);
  await db.flushed();
  assert.deepEqual(db.getKeys().asArray, strings);
  for (const s of strings) assert.equal(db.get(s), s);
  assert.equal(encodeKey("\u00e9", "string", MAX), Buffer.from("\u00e9", "utf8").toString("latin1"));
  for (const bad of [1, null, Buffer.from("x")]) await rejectsKeel(db.put(bad as Key, 1), "INVALID_ARGUMENT", `string key ${String(bad)}`);
  await db.close();
});

test("keys over maxKeySize are INVALID_ARGUMENT with details.limit, in every key encoding", async () => {
  const { db } = memDb({ wal: false, keyEncoding: "binary" });
  const max = db.engine.limits.maxKeySize;
  assert.equal(max, MAX);
  await db.put(Buffer.alloc(max, 1), "fits");
  assert.equal(db.get(Buffer.alloc(max, 1)), "fits");
  const e = await rejectsKeel(db.put(Buffer.alloc(max + 1, 1), "no"), "INVALID_ARGUMENT");
  assert.equal(e.details.limit, "maxKeySize");
  assert.equal(e.details.max, max);
  throwsKeel(() => db.get(Buffer.alloc(max + 1)), "INVALID_ARGUMENT");
  await db.close();

  const s = memDb({ wal: false, keyEncoding: "string" }).db;
  await s.put("x".repeat(max), 1);
  assert.equal((await rejectsKeel(s.put("x".repeat(max + 1), 1), "INVALID_ARGUMENT")).details.limit, "maxKeySize");
  // Multi-byte characters count in bytes.
  assert.equal((await rejectsKeel(s.put("\u00e9".repeat(max / 2 + 1), 1), "INVALID_ARGUMENT")).details.limit, "maxKeySize");
  assert.equal((await rejectsKeel(s.put("y".repeat(100_000), 1), "INVALID_ARGUMENT")).details.limit, "maxKeySize");
  await s.close();

  const o = memDb({ wal: false }).db;
  assert.equal((await rejectsKeel(o.put("z".repeat(max + 1), 1), "INVALID_ARGUMENT")).details.limit, "maxKeySize");
  assert.equal((await rejectsKeel(o.put(["a", "z".repeat(max)], 1), "INVALID_ARGUMENT")).details.limit, "maxKeySize");
  assert.equal((await rejectsKeel(o.put(Buffer.alloc(max + 1), 1), "INVALID_ARGUMENT")).details.limit, "maxKeySize");
  await o.close();
});

test("ordered-binary: a very long key is INVALID_ARGUMENT with details.limit like any other too-long key", async () => {
  // A string key past the 70 KiB scratch buffer makes ordered-binary throw "does not fit"; KeyCodec
  // reports that as a generic encoding failure, without details.limit.
  const { db } = memDb({ wal: false });
  for (const k of ["q".repeat(100_000), "\u00e9".repeat(40_000), ["a", "q".repeat(80_000)]] as Key[]) {
    const e = await rejectsKeel(db.put(k, 1), "INVALID_ARGUMENT");
    assert.equal(e.details.limit, "maxKeySize", `key of ${JSON.stringify(k).length} chars`);
  }
  await db.close();
});

test("encodeKey/decodeKey round trip the documented key types", () => {
  const keys: Key[] = [null, true, false, 0, -7.25, 1e100, "", "text", "\u{1F600}", ["a", 1, true, null], [1, 2, 3]];
  for (const k of keys) assert.deepEqual(decodeKey(encodeKey(k, "ordered-binary", MAX), "ordered-binary"), k, JSON.stringify(k));
  const b = Buffer.from([0, 255, 7]);
  const back = decodeKey(encodeKey(b, "binary", MAX), "binary");
  assert.ok(Buffer.isBuffer(back) && back.equals(b));
  assert.equal(decodeKey(encodeKey("\u4e2d", "string", MAX), "string"), "\u4e2d");
  assert.ok(throwsKeel(() => encodeKey(undefined, "ordered-binary", MAX), "INVALID_ARGUMENT") instanceof KeelError);
});

test("a lone surrogate: refused as a string-encoded key and as a sub-database name (UTF-8 would make it U+FFFD: two keys or names one)", async () => {
  throwsKeel(() => encodeKey("\uD800", "string", 1000), "INVALID_ARGUMENT", "string key \\uD800");
  throwsKeel(() => encodeKey("a\uDC00", "string", 1000), "INVALID_ARGUMENT", "string key a\\uDC00");
  assert.equal(decodeKey(encodeKey("😀", "string", 1000), "string"), "😀", "a surrogate pair is fine");
  const { db } = memDb();
  throwsKeel(() => db.openDB("\uD800"), "INVALID_ARGUMENT", "sub-database name \\uD800");
  db.openDB("ok😀");
  await db.close();
});

test("ordered-binary: the empty key ([] or an empty Buffer) reads back as an empty Buffer, whatever was encoded before", () => {
  const empty = encodeKey([], "ordered-binary", 1000);
  assert.equal(empty, encodeKey(Buffer.alloc(0), "ordered-binary", 1000), "one key");
  for (const before of [true, 12345, null, "str"] as Key[]) {
    encodeKey(before, "ordered-binary", 1000); // leaves its bytes in the codec's scratch buffer
    assert.deepEqual(decodeKey(empty, "ordered-binary"), Buffer.alloc(0), `after ${JSON.stringify(before)}`);
  }
});

test("ordered-binary: a key far over the limit is refused naming maxKeySize and its real size, even past the codec's buffer", () => {
  // Past the codec's buffer by its size bound, yet within the limit: accepted (7000 nulls: 14 KB).
  const nulls = encodeKey(new Array(7000).fill(null), "ordered-binary", 16364);
  assert.ok(nulls.length <= 16364);
  assert.equal(nulls, encodeKey(new Array(7000).fill(null), "ordered-binary", 65536), "the same bytes as when it fits the buffer's bound");
  for (const n of [2000, 8000, 20000]) {
    const e = throwsKeel(() => encodeKey(Array.from({ length: n }, (_, i) => i), "ordered-binary", 16364), "INVALID_ARGUMENT", `${n} numbers`);
    assert.equal(e.details.limit, "maxKeySize", `${n} numbers: ${e.message}`);
    assert.ok((e.details.size as number) > 16364);
  }
});

test("ordered-binary: an array key ending in null reads back the same whatever key was encoded before it", () => {
  for (const key of [["x", "y", null], ["", "", null]] as Key[]) {
    const s = encodeKey(key, "ordered-binary", 1024);
    const fresh = decodeKey(s, "ordered-binary");
    assert.deepEqual(fresh, key);
    for (const before of ["z".repeat(20), "\u0000".repeat(8), [1, "zzzzzzzz"]] as Key[]) {
      encodeKey(before, "ordered-binary", 1024); // leaves its bytes in the codec's scratch buffer
      assert.deepEqual(decodeKey(s, "ordered-binary"), key, `after encoding ${JSON.stringify(before)}`);
    }
  }
});

test("ordered-binary: flat arrays holding nulls side by side read back as themselves, not as the key one null shorter", async () => {
  const keys: Key[] = [["x", "y", null, null], ["user", 7, null, null], ["t", 1, null, null, "z"], ["a", null, null, null, null], [true, null, null], ["\u0004\u0000", null, null, "\u0000"]];
  for (const k of keys) assert.deepEqual(decodeKey(encodeKey(k, "ordered-binary", MAX), "ordered-binary"), k, JSON.stringify(k));
  // Through a database: the key a range returns names its own entry, so removing by it removes that one.
  const { db } = await memDb();
  try {
    await db.put(["user", 7, null], "row A");
    await db.put(["user", 7, null, null], "row B");
    const b = [...db.getRange()].find((e) => e.value === "row B")!;
    assert.deepEqual(b.key, ["user", 7, null, null]);
    assert.equal(await db.remove(b.key), true);
    assert.deepEqual([...db.getRange()].map((e) => e.value), ["row A"]);
  } finally {
    await db.close();
  }
});

test("ordered-binary: every flat array of two or more scalars (strings under 64 units, or free of U+0000-U+0004) round-trips; other keys read back as the package reads them, or as their raw bytes where it throws", () => {
  const scalar = fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.double().map((d) => (d === 0 ? 0 : d)),
    fc.integer(),
    fc.string({ maxLength: 63, unit: "binary" }),
    fc.constantFrom("", "\u0000", "\u0004", "\u001b", "\u0000\u0000", "a\u0004\u0000"),
    fc.string({ minLength: 64, maxLength: 80, unit: fc.constantFrom("a", "\u0005", "\u001b", "é", "\u{1F600}") }),
  );
  fc.assert(
    fc.property(fc.array(scalar, { minLength: 2, maxLength: 6 }), (k) => {
      assert.deepEqual(decodeKey(encodeKey(k, "ordered-binary", 4096), "ordered-binary"), k);
    }),
    { numRuns: 3000, seed: 20261122 },
  );
  // Keys outside that set (long strings with control characters, nested arrays, Buffers in arrays,
  // single values) may not read back as written (README), but never worse than readKey reads them:
  // what it got right stays right, and a key that named its own entry (encodes back to the same
  // bytes) still does.
  const any = fc.oneof(scalar, fc.string({ minLength: 60, maxLength: 90, unit: fc.constantFrom("a", "\u0000", "\u0001", "\u0004", "é") }), fc.uint8Array({ maxLength: 6 }).map((u) => Buffer.from(u)));
  const key = fc.oneof(any, fc.array(fc.oneof(any, fc.array(any, { maxLength: 3 })), { minLength: 1, maxLength: 4 }));
  const names = (back: unknown, s: string): boolean => {
    try {
      return encodeKey(back, "ordered-binary", 4096) === s;
    } catch {
      return false;
    }
  };
  fc.assert(
    fc.property(key, (k) => {
      const s = encodeKey(k, "ordered-binary", 4096);
      const bytes = Buffer.alloc(s.length + 16);
      const n = bytes.latin1Write(s, 0);
      if (n === 0) return; // the empty key: its own rule (an empty Buffer), tested above
      let before: unknown;
      try {
        before = readKey(bytes, 0, n);
      } catch {
        before = undefined; // readKey cannot parse it: decodeKey returns the raw bytes, which name the entry
        assert.ok(names(decodeKey(s, "ordered-binary"), s), inspect(k));
      }
      const now = decodeKey(s, "ordered-binary");
      if (isDeepStrictEqual(before, k)) assert.deepEqual(now, k);
      if (names(before, s)) assert.ok(names(now, s), `${inspect(k)}: ${inspect(now)} vs ${inspect(before)}`);
    }),
    { numRuns: 3000, seed: 7 },
  );
});
