/**
 * dump / load (DESIGN.md section 5; docs/DUMP-FORMAT.md).
 *
 * - Round trips: dump A -> load into B -> dump B is byte-identical (reproducible dumps), for every
 *   key encoding x value encoding in named sub-databases, the default database with non-default
 *   encodings, binary keys of every byte value, empty keys and values, values over the overflow
 *   threshold (up to 3 MB), an emptied sub-database and an empty database; in both formats and
 *   across formats. Without `reproducible` the dumps differ only in the header's
 *   lsn/txn/createdAt/crc32 and the trailer's crc32. The loaded database holds the same stored
 *   bytes and reads back the same values, and the dump's content is checked against a model of
 *   what was written (not only against itself).
 * - Damage: every single-byte flip (two masks) of a small dump, a truncation at every 7th offset
 *   and at every line boundary, and bad headers (unknown version, bad checksum, bad members) are
 *   CORRUPT with details.line (JSON Lines) or details.offset (binary) at or after the damage, and
 *   leave the target untouched.
 * - Mid-stream damage with small batches: the committed prefix is what details.committedEntries
 *   says (binary: intact entries only; JSON Lines: as the doc comment of load.ts says), and
 *   batch: Infinity is all or nothing.
 * - Targets: a non-empty target sub-database, other encodings, or a read-only database are refused
 *   (INVALID_ARGUMENT naming it, READ_ONLY) and nothing is written; sub-databases not in the dump
 *   are left alone.
 * - Consistency: a dump taken while writers, removes and checkpoints go on (paced so that they do)
 *   equals the source at the dump's LSN, rebuilt from the log (openTxLog), and differs from the
 *   final state. (Without the dump's reader registration, freed pages are reused under it and
 *   this test fails.)
 * - Bounded memory: in a child process with a 24 MiB heap, a 200,000-entry dump (65-86 MB)
 *   through a slow counting stream, the same dump while a writer moves the database on (the
 *   dumped snapshot is then out of the memory sweep's reach: a cursor that kept what it loads
 *   dies of "heap out of memory" here), and the load of it, succeed; a dump's rss growth stays
 *   under a third of its size and the stream's buffer stays small (backpressure).
 * - Options and failures: dbs, readable keys, abort (dump and load), an output stream that fails
 *   (IO, FULL) or is destroyed, dumpToFile / loadFromFile (atomic, EXISTS, NOT_FOUND).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { constants as bufferConstants } from "node:buffer";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Readable, Writable } from "node:stream";
import { open, openSync, KeelError, type Database, type SubDatabase } from "../../src/index.js";
import { CrashFileSystem } from "../../src/io/CrashFileSystem.js";
import { powerCutSweep } from "../helpers/powerCutSweep.js";
import type { OpenOptions } from "../../src/db/options.js";
import { encodeKey } from "../../src/db/KeyCodec.js";
import { encodeValue } from "../../src/db/ValueCodec.js";
import type { KeyEncodingName, ValueEncodingName } from "../../src/txn/Snapshot.js";
import { dump, type DumpOptions, type DumpReport } from "../../src/maintenance/dump.js";
import { load, type LoadOptions } from "../../src/maintenance/load.js";
import { dumpToFile, loadFromFile } from "../../src/maintenance/dumpFile.js";
import { crc32 } from "../../src/util/crc32.js";
import { TreeCursor } from "../../src/btree/TreeCursor.js";

/** A slow consumer: small buffer, each write completes on a later turn of the event loop. */
class SlowSink extends Writable {
  chunks: Buffer[] = [];
  maxBuffered = 0;
  constructor(hwm: number, keep: boolean) {
    super({ highWaterMark: hwm });
    this.keep = keep;
  }
  keep: boolean;
  bytes = 0;
  crc = 0;
  writes = 0;
  /** When set (by the hook), a write completes only once it resolves. */
  gate: Promise<void> | null = null;
  /** Called before each write with its 1-based number (to abort or fail at a known point). */
  hook: ((n: number) => void) | null = null;
  override _write(chunk: Buffer, _e: BufferEncoding, cb: () => void): void {
    this.hook?.(++this.writes);
    if (this.destroyed) return;
    this.maxBuffered = Math.max(this.maxBuffered, this.writableLength);
    this.bytes += chunk.length;
    this.crc = crc32(chunk, this.crc);
    if (this.keep) this.chunks.push(Buffer.from(chunk));
    if (this.gate) void this.gate.then(() => cb());
    else setImmediate(cb);
  }
}

const CHILD = process.env.KEEL_DUMP_MEMORY_CHILD;
if (CHILD) {
  await memoryChild(JSON.parse(CHILD));
  process.exit(0);
}

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "keel-dump-"));
  dirs.push(d);
  return d;
}
test.after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function fresh(opts: OpenOptions = {}): Promise<Database> {
  return open(join(tmp(), "db"), { wal: false, ...opts });
}

/** A Writable that keeps everything. */
class Collect extends Writable {
  chunks: Buffer[] = [];
  override _write(chunk: Buffer, _e: BufferEncoding, cb: () => void): void {
    this.chunks.push(Buffer.from(chunk));
    cb();
  }
  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

async function dumpBytes(db: Database, opts: DumpOptions = {}): Promise<{ bytes: Buffer; report: DumpReport }> {
  const out = new Collect();
  const report = await dump(db, out, opts);
  assert.equal(out.bytes.length, report.bytes, "report.bytes counts what was written");
  return { bytes: out.bytes, report };
}

/** The bytes as a stream of chunks of `chunk` bytes (copies, as a file stream would give). */
function streamOf(b: Buffer, chunk = 1000): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < b.length; i += chunk) yield Buffer.from(b.subarray(i, i + chunk));
    })(),
    { objectMode: false },
  );
}

function loadBytes(db: Database, b: Buffer, opts: LoadOptions = {}, chunk?: number) {
  return load(db, streamOf(b, chunk), opts);
}

async function rejectsCode(p: Promise<unknown>, code: string): Promise<KeelError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof KeelError, `expected a KeelError ${code}, got ${(e as Error)?.stack ?? e}`);
    assert.equal(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    return e;
  }
  assert.fail(`expected ${code}, but it succeeded`);
}

function lines(b: Buffer): string[] {
  const s = b.toString("utf8");
  assert.ok(s.endsWith("\n"));
  return s.slice(0, -1).split("\n");
}

/**
 * Every (key bytes, value bytes) of every sub-database, walked straight from the published tree
 * (an ordered-binary Buffer key is stored raw and does not decode back to itself, so the public
 * API cannot list raw keys).
 */
function rawContent(db: Database): Map<string, Array<[string, string]>> {
  const out = new Map<string, Array<[string, string]>>();
  const snap = db.engine.published;
  for (const name of ["", ...db.listDBs()]) {
    const e = snap.dbs.get(name)!;
    const rows: Array<[string, string]> = [];
    const cur = new TreeCursor(db.engine.pager, e.tree);
    for (cur.seekGE(null); cur.valid; cur.next()) rows.push([Buffer.from(cur.key, "latin1").toString("hex"), db.engine.readValue(cur.value).toString("hex")]);
    out.set(name, rows);
  }
  return out;
}

// ---- the source database of the round trips ----

const KEY_ENCODINGS: KeyEncodingName[] = ["ordered-binary", "binary", "string"];
const VALUE_ENCODINGS: ValueEncodingName[] = ["msgpack", "json", "string", "binary"];

function keysFor(enc: KeyEncodingName): unknown[] {
  switch (enc) {
    case "ordered-binary":
      return ["", "a", "user:1", "ünïcødé ☃ 🙂", -1.5, 0, 42, 1e20, true, false, null, ["a", 1], ["a", ["b", 2]], Buffer.from([0, 1, 2, 255]), Buffer.from([0xfe])];
    case "binary": {
      const ks: unknown[] = [];
      for (let b = 0; b < 256; b++) ks.push(Buffer.from([b]));
      ks.push(Buffer.from([0, 0]), Buffer.from([255, 255, 255]), Buffer.from(randomBytes(400)), Buffer.alloc(0));
      return ks;
    }
    case "string":
      return ["", "a", "b", "A", "ünïcødé", "🙂", "a\nb", "\u0000x", "x".repeat(300), "日本語"];
  }
}

function valuesFor(enc: ValueEncodingName, i: number): unknown {
  const big = i % 7 === 3; // some over the overflow threshold
  switch (enc) {
    case "msgpack":
      return big ? { blob: randomBytes(20_000), n: i } : [{ a: i, f: 1.5, s: "x", nested: { arr: [1, "2", null] } }, i, null, "s", -0.25, Buffer.from([i & 255])][i % 6];
    case "json":
      return big ? { text: "j".repeat(30_000) } : [{ x: [1, 2, { y: "z" }] }, "str", 1.5, null, true, []][i % 6];
    case "string":
      return big ? "s".repeat(50_000) + "é" : ["", "hello", "ünïcødé", "a\u0000b"][i % 4];
    case "binary":
      return big ? randomBytes(i % 2 ? 70_000 : 300_000) : [Buffer.alloc(0), Buffer.from([0]), randomBytes(100)][i % 3];
  }
}

/** Every key x value encoding as a named sub-database, the default one, an empty one. */
async function buildSource(db: Database): Promise<void> {
  await db.transaction((tx) => {
    for (const ke of KEY_ENCODINGS) {
      for (const ve of VALUE_ENCODINGS) {
        const sub = db.openDB(`${ke}/${ve}`, { keyEncoding: ke, encoding: ve });
        const t = tx.for(sub);
        keysFor(ke).forEach((k, i) => t.put(k as never, valuesFor(ve, i)));
      }
    }
    for (let i = 0; i < 50; i++) tx.put(`d${i}`, valuesFor("msgpack", i));
    tx.put(["big"], randomBytes(1_500_000));
    const gone = tx.for(db.openDB("emptied", { keyEncoding: "string", encoding: "json" }));
    gone.put("x", 1);
  });
  await db.openDB("emptied").remove("x");
  await db.openDB("zz-huge", { keyEncoding: "binary", encoding: "binary" }).put(Buffer.from("h"), randomBytes(3_000_000));
}

test("round trip: dump -> load -> dump is byte-identical, every encoding, both formats and across formats", async () => {
  const src = await fresh();
  await buildSource(src);
  const srcContent = rawContent(src);
  assert.ok(srcContent.get("emptied")!.length === 0 && src.listDBs().includes("emptied"), "an empty sub-database exists in the source");
  const dumps: Record<string, Buffer> = {};
  for (const format of ["jsonl", "binary"] as const) {
    const a = await dumpBytes(src, { format, reproducible: true });
    dumps[format] = a.bytes;
    assert.equal(a.report.format, format);
    assert.equal(a.report.entries, src.getStats().entries);
    assert.equal(a.report.perDb["emptied"], 0);
    assert.equal(a.report.lsn, src.getStats().lsn);
    assert.equal(a.report.txn, src.getStats().txnId);
    const b = await fresh();
    const r = await loadBytes(b, a.bytes, {}, 4093);
    assert.equal(r.format, format, "format detected by its first bytes");
    assert.equal(r.entries, a.report.entries);
    assert.deepEqual(r.perDb, a.report.perDb);
    // A reproducible dump has no lsn, txn or createdAt: the report has no such keys (not undefined ones).
    assert.deepEqual(Object.keys(r).sort(), ["entries", "format", "perDb"]);
    const again = await dumpBytes(b, { format, reproducible: true });
    assert.ok(again.bytes.equals(a.bytes), `${format}: the dump of the loaded database equals the original dump`);
    assert.deepEqual(rawContent(b), srcContent, `${format}: the loaded database stores the same bytes`);
    assert.deepEqual(b.listDBs(), src.listDBs());
    // Decoded values read back equal too.
    for (const name of src.listDBs()) {
      assert.deepEqual(b.openDB(name).getRange().asArray, src.openDB(name).getRange().asArray, `sub-database ${name}`);
    }
    assert.deepEqual(b.getRange().asArray, src.getRange().asArray);
    await b.close();
  }
  // Across formats: JSON Lines -> load -> binary dump equals the source's binary dump.
  const c = await fresh();
  await loadBytes(c, dumps.jsonl!);
  assert.ok((await dumpBytes(c, { format: "binary", reproducible: true })).bytes.equals(dumps.binary!));
  const d = await fresh();
  await loadBytes(d, dumps.binary!, { format: "binary" });
  assert.ok((await dumpBytes(d, { format: "jsonl", reproducible: true })).bytes.equals(dumps.jsonl!));
  await Promise.all([c.close(), d.close(), src.close()]);
});

test("without reproducible, two dumps of equal content differ only in lsn/txn/createdAt and the checksums", async () => {
  const src = await fresh();
  await buildSource(src);
  const a = await dumpBytes(src);
  const b = await fresh();
  for (let i = 0; i < 5; i++) await b.put("pad", i); // so B's txn differs from A's
  await b.remove("pad");
  await loadBytes(b, a.bytes);
  const bb = await dumpBytes(b);
  const la = lines(a.bytes);
  const lb = lines(bb.bytes);
  assert.equal(la.length, lb.length);
  assert.deepEqual(la.slice(1, -1), lb.slice(1, -1), "every line but the header and the trailer is identical");
  const ha = JSON.parse(la[0]!);
  const hb = JSON.parse(lb[0]!);
  assert.notEqual(ha.txn, hb.txn);
  for (const k of ["lsn", "txn", "createdAt", "crc32"]) {
    assert.equal(typeof ha[k], "number", `header has ${k}`);
    delete ha[k];
    delete hb[k];
  }
  assert.deepEqual(ha, hb);
  const ta = JSON.parse(la.at(-1)!);
  const tb = JSON.parse(lb.at(-1)!);
  assert.equal(ta.entries, tb.entries);
  // The header's crc32 covers its text before `,"crc32":`; the trailer's covers all bytes before it.
  const headerText = la[0]!.slice(0, la[0]!.lastIndexOf(',"crc32":'));
  assert.equal(JSON.parse(la[0]!).crc32, crc32(Buffer.from(headerText)));
  assert.equal(ta.crc32, crc32(a.bytes.subarray(0, a.bytes.length - Buffer.byteLength(la.at(-1)!) - 1)));
  // Binary: the same, past the header.
  const ab = await dumpBytes(src, { format: "binary" });
  const bbin = await dumpBytes(b, { format: "binary" });
  const bodyA = ab.bytes.subarray(20 + ab.bytes.readUInt32LE(12), ab.bytes.length - 4);
  const bodyB = bbin.bytes.subarray(20 + bbin.bytes.readUInt32LE(12), bbin.bytes.length - 4);
  assert.ok(bodyA.equals(bodyB));
  await Promise.all([src.close(), b.close()]);
});

test("the dump holds exactly the bytes that were written (checked against a model)", async () => {
  const db = await fresh();
  const model = new Map<string, Map<string, Buffer>>();
  await db.transaction((tx) => {
    for (const ke of KEY_ENCODINGS) {
      for (const ve of VALUE_ENCODINGS) {
        const name = `${ke}/${ve}`;
        const m = new Map<string, Buffer>();
        model.set(name, m);
        const t = tx.for(db.openDB(name, { keyEncoding: ke, encoding: ve }));
        keysFor(ke).forEach((k, i) => {
          const v = valuesFor(ve, i);
          t.put(k as never, v);
          m.set(Buffer.from(encodeKey(k, ke, 4000), "latin1").toString("base64"), Buffer.from(encodeValue(v, ve)));
        });
      }
    }
  });
  const { bytes } = await dumpBytes(db, { dbs: [...model.keys()] });
  const ls = lines(bytes);
  const header = JSON.parse(ls[0]!);
  assert.deepEqual(
    header.dbs.map((d: { name: string }) => d.name),
    [...model.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
  );
  let cur: Map<string, Buffer> | undefined;
  let seen = 0;
  let prevKey: Buffer | null = null;
  for (const line of ls.slice(1, -1)) {
    const o = JSON.parse(line);
    if ("db" in o) {
      cur = model.get(o.db);
      assert.ok(cur, `section ${o.db}`);
      const d = header.dbs.find((x: { name: string }) => x.name === o.db);
      assert.equal(d.entries, cur.size);
      assert.equal(d.keyEncoding + "/" + d.encoding, o.db);
      prevKey = null;
      continue;
    }
    const key = Buffer.from(o.k, "base64");
    if (prevKey) assert.ok(Buffer.compare(prevKey, key) < 0, "keys ascend in byte order");
    prevKey = key;
    assert.ok(cur!.has(o.k), `key ${o.k} was written`);
    assert.ok(Buffer.from(o.v, "base64").equals(cur!.get(o.k)!), `value of ${o.k}`);
    seen++;
  }
  assert.equal(seen, [...model.values()].reduce((n, m) => n + m.size, 0));
  await db.close();
});

test("the default database with other encodings; a target with other encodings is refused", async () => {
  const src = await fresh({ keyEncoding: "binary", encoding: "binary" });
  for (let b = 0; b < 256; b++) await src.put(Buffer.from([b, b]), Buffer.alloc(b));
  const { bytes } = await dumpBytes(src, { reproducible: true });
  assert.equal(JSON.parse(lines(bytes)[0]!).dbs[0].keyEncoding, "binary");
  const ok = await fresh({ keyEncoding: "binary", encoding: "binary" });
  await loadBytes(ok, bytes);
  assert.ok((await dumpBytes(ok, { reproducible: true })).bytes.equals(bytes));
  const other = await fresh();
  const e = await rejectsCode(loadBytes(other, bytes), "INVALID_ARGUMENT");
  assert.equal(e.details.name, "");
  assert.equal(other.getStats().entries, 0);
  await Promise.all([src.close(), ok.close(), other.close()]);
});

test("an empty database dumps to header, one section and trailer, and round-trips", async () => {
  for (const format of ["jsonl", "binary"] as const) {
    const a = await fresh();
    const d1 = await dumpBytes(a, { format, reproducible: true });
    assert.equal(d1.report.entries, 0);
    assert.deepEqual(d1.report.perDb, { "": 0 });
    if (format === "jsonl") {
      const ls = lines(d1.bytes);
      assert.equal(ls.length, 3);
      assert.ok(ls[0]!.startsWith('{"keeldb":"dump","format":1,"dbs":[{"name":"","keyEncoding":"ordered-binary","encoding":"msgpack","entries":0}],"crc32":'));
      assert.equal(ls[1], '{"db":""}');
      assert.equal(ls[2], `{"end":true,"entries":0,"crc32":${crc32(d1.bytes.subarray(0, d1.bytes.length - ls[2]!.length - 1))}}`);
    } else {
      assert.equal(d1.bytes.subarray(0, 8).toString("latin1"), "KEELDUMP");
    }
    const b = await fresh();
    const r = await loadBytes(b, d1.bytes);
    assert.equal(r.entries, 0);
    assert.ok((await dumpBytes(b, { format, reproducible: true })).bytes.equals(d1.bytes));
    await Promise.all([a.close(), b.close()]);
  }
});

/** A small dump with a few sub-databases and one overflow value. */
async function smallDump(format: "jsonl" | "binary"): Promise<Buffer> {
  const db = await fresh();
  await db.transaction((tx) => {
    for (let i = 0; i < 6; i++) tx.put(`k${i}`, { i });
    const t = tx.for(db.openDB("bin", { keyEncoding: "binary", encoding: "binary" }));
    for (let i = 0; i < 5; i++) t.put(Buffer.from([i * 50]), Buffer.from([i, 255 - i]));
    tx.for(db.openDB("str", { keyEncoding: "string", encoding: "string" })).put("s", "é");
  });
  const { bytes } = await dumpBytes(db, { format });
  await db.close();
  return bytes;
}

function assertUntouched(db: Database): void {
  assert.equal(db.getStats().entries, 0, "nothing was committed");
  assert.deepEqual(db.listDBs(), []);
}

/** The 1-based line that holds byte `pos`. */
function lineAt(b: Buffer, pos: number): number {
  let n = 1;
  for (let i = 0; i < pos; i++) if (b[i] === 10) n++;
  return n;
}

test("damage: every single-byte flip is CORRUPT at or after its line/offset, and nothing is committed", async () => {
  for (const format of ["jsonl", "binary"] as const) {
    const good = await smallDump(format);
    const target = await fresh();
    const total = format === "jsonl" ? lines(good).length : 0;
    let checked = 0;
    for (const mask of [0x01, 0x80]) {
      for (let pos = 0; pos < good.length; pos++) {
        const bad = Buffer.from(good);
        bad[pos]! ^= mask;
        const e = await rejectsCode(loadBytes(target, bad, {}, 97), "CORRUPT");
        if (format === "jsonl" && pos >= 8) {
          // (A flip in the first bytes may make it look binary: then offset is given.)
          const line = e.details.line as number;
          assert.ok(Number.isInteger(line) && line >= lineAt(good, pos) && line <= total + 1, `flip at ${pos}: line ${line} (damage on line ${lineAt(good, pos)})`);
        } else if (format === "binary") {
          const off = e.details.offset as number;
          assert.ok(Number.isInteger(off) && off <= pos, `flip at ${pos}: offset ${off}`);
        }
        checked++;
      }
      assertUntouched(target);
    }
    assert.equal(checked, good.length * 2);
    await target.close();
  }
});

test("damage: truncation at every 7th offset and at every line boundary is CORRUPT; nothing is committed", async () => {
  for (const format of ["jsonl", "binary"] as const) {
    const good = await smallDump(format);
    const target = await fresh();
    const cuts = new Set<number>([good.length - 1]);
    for (let n = 0; n < good.length; n += 7) cuts.add(n);
    if (format === "jsonl") for (let i = 0; i < good.length; i++) if (good[i] === 10 && i + 1 < good.length) cuts.add(i + 1);
    for (const n of cuts) {
      const e = await rejectsCode(loadBytes(target, good.subarray(0, n), format === "binary" && n < 8 ? { format } : {}), "CORRUPT");
      if (format === "jsonl") assert.equal(e.details.line, lineAt(good, n), `cut at ${n}`);
      else assert.ok((e.details.offset as number) <= n, `cut at ${n}: offset ${e.details.offset}`);
      assert.ok(["truncated"].includes(e.details.reason as string), `cut at ${n}: ${e.message}`);
    }
    assertUntouched(target);
    // Bytes after the trailer.
    const e = await rejectsCode(loadBytes(target, Buffer.concat([good, Buffer.from("\n")])), "CORRUPT");
    assert.equal(e.details.reason, "trailing-data");
    assertUntouched(target);
    // The untouched dump loads.
    await loadBytes(target, good);
    assert.equal(target.getStats().entries, 12);
    await target.close();
  }
});

/** A JSON Lines header with a correct crc32 over `text`. */
function jsonlHeader(text: string): string {
  return `${text},"crc32":${crc32(Buffer.from(text))}}\n`;
}

test("damage: bad headers, unknown versions, empty input", async () => {
  const target = await fresh();
  const cases: Array<[string, Buffer, string]> = [
    ["empty", Buffer.alloc(0), "truncated"],
    ["text", Buffer.from("hello world\n"), "json"],
    ["array", Buffer.from("[1,2]\n"), "shape"],
    ["other object", Buffer.from('{"a":1}\n'), "not-a-dump"],
    ["version 2", Buffer.from(jsonlHeader('{"keeldb":"dump","format":2,"dbs":[]') + '{"end":true,"entries":0,"crc32":0}\n'), "version"],
    ["no crc", Buffer.from('{"keeldb":"dump","format":1,"dbs":[]}\n'), "shape"],
    ["bad crc", Buffer.from('{"keeldb":"dump","format":1,"dbs":[],"crc32":1}\n'), "checksum"],
    ["unknown encoding", Buffer.from(jsonlHeader('{"keeldb":"dump","format":1,"dbs":[{"name":"","keyEncoding":"utf16","encoding":"msgpack","entries":0}]')), "shape"],
    ["unknown member", Buffer.from(jsonlHeader('{"keeldb":"dump","format":1,"dbs":[],"x":1')), "shape"],
    ["names out of order", Buffer.from(jsonlHeader('{"keeldb":"dump","format":1,"dbs":[{"name":"b","keyEncoding":"binary","encoding":"binary","entries":0},{"name":"a","keyEncoding":"binary","encoding":"binary","entries":0}]')), "shape"],
    ["negative count", Buffer.from(jsonlHeader('{"keeldb":"dump","format":1,"dbs":[{"name":"","keyEncoding":"binary","encoding":"binary","entries":-1}]')), "shape"],
  ];
  for (const [what, bytes, reason] of cases) {
    const e = await rejectsCode(loadBytes(target, bytes), "CORRUPT");
    assert.equal(e.details.reason, reason, `${what}: ${e.message}`);
    assert.equal(e.details.line, 1, what);
  }
  const v2 = await rejectsCode(loadBytes(target, cases[4]![1]), "CORRUPT");
  assert.deepEqual([v2.details.found, v2.details.supported], [2, 1]);
  // Binary: version 2, flags, a header length of 4 GiB.
  const good = await smallDump("binary");
  for (const [at, value, reason] of [
    [8, 2, "version"],
    [10, 1, "flags"],
    [12, 0xffffffff, "length"],
  ] as const) {
    const bad = Buffer.from(good);
    if (at === 12) bad.writeUInt32LE(value, at);
    else bad.writeUInt16LE(value, at);
    const e = await rejectsCode(loadBytes(target, bad), "CORRUPT");
    assert.equal(e.details.reason, reason);
    assert.equal(e.details.offset, 0);
  }
  // A binary dump read as JSON Lines, and the reverse.
  await rejectsCode(loadBytes(target, good, { format: "jsonl" }), "CORRUPT");
  const e = await rejectsCode(loadBytes(target, await smallDump("jsonl"), { format: "binary" }), "CORRUPT");
  assert.equal(e.details.reason, "magic");
  assertUntouched(target);
  await target.close();
});

/** A dump of `n` entries in the default database (binary values) and their keys. */
async function numberedDump(format: "jsonl" | "binary", n: number): Promise<Buffer> {
  const db = await fresh({ keyEncoding: "binary", encoding: "binary" });
  await db.transaction((tx) => {
    for (let i = 0; i < n; i++) tx.put(Buffer.from([i >> 8, i & 255]), Buffer.alloc(30, i));
  });
  const { bytes } = await dumpBytes(db, { format });
  await db.close();
  return bytes;
}

test("mid-stream damage with small batches: the committed prefix is reported and is what the target holds", async () => {
  const n = 100;
  const damaged = 47;
  // Binary: a flipped value byte of entry 47 fails its record's CRC before it joins a batch.
  {
    const good = await numberedDump("binary", n);
    const at = good.indexOf(Buffer.concat([Buffer.from([0x02, 2, 0, 0, 0, 30, 0, 0, 0, 0, damaged])]));
    assert.ok(at > 0);
    const bad = Buffer.from(good);
    bad[at + 9 + 2 + 5]! ^= 0x10;
    const target = await fresh({ keyEncoding: "binary", encoding: "binary" });
    const progress: number[] = [];
    const e = await rejectsCode(loadBytes(target, bad, { batch: 10, onProgress: (p) => progress.push(p.entries) }), "CORRUPT");
    assert.equal(e.details.offset, at);
    assert.equal(e.details.reason, "checksum");
    assert.equal(e.details.committedEntries, 40);
    assert.deepEqual(e.details.committedPerDb, { "": 40 });
    assert.deepEqual(progress, [10, 20, 30, 40]);
    const keys = target.getKeys().asArray as Buffer[];
    assert.equal(keys.length, 40);
    keys.forEach((k, i) => assert.deepEqual([...k], [0, i]));
    await target.close();
  }
  // JSON Lines, damage that breaks the line: found at that line, before its batch commits.
  const good = await numberedDump("jsonl", n);
  const ls = lines(good);
  {
    const bad = [...ls];
    bad[2 + damaged] = bad[2 + damaged]!.replace('"v":"', '"v":"!');
    const target = await fresh({ keyEncoding: "binary", encoding: "binary" });
    const e = await rejectsCode(loadBytes(target, Buffer.from(bad.join("\n") + "\n"), { batch: 10 }), "CORRUPT");
    assert.equal(e.details.line, 3 + damaged);
    assert.equal(e.details.reason, "base64");
    assert.equal(e.details.committedEntries, 40);
    assert.equal(target.getStats().entries, 40);
    await target.close();
  }
  // JSON Lines, damage that keeps the line well-formed: found only at the trailer's CRC. As
  // documented, the full batches before the last are committed, the damaged entry among them;
  // the last (entries 90-99, full on the dump's last entry) waits for the trailer.
  {
    const bad = [...ls];
    const o = JSON.parse(bad[2 + damaged]!);
    const v = Buffer.from(o.v, "base64");
    v[3]! ^= 1;
    bad[2 + damaged] = JSON.stringify({ k: o.k, v: v.toString("base64") });
    const target = await fresh({ keyEncoding: "binary", encoding: "binary" });
    const e = await rejectsCode(loadBytes(target, Buffer.from(bad.join("\n") + "\n"), { batch: 10 }), "CORRUPT");
    assert.equal(e.details.line, ls.length);
    assert.equal(e.details.reason, "checksum");
    assert.equal(e.details.committedEntries, 90);
    assert.equal(target.getStats().entries, 90);
    await target.close();
    // With batch: Infinity the same load is all or nothing.
    const atomic = await fresh({ keyEncoding: "binary", encoding: "binary" });
    const e2 = await rejectsCode(loadBytes(atomic, Buffer.from(bad.join("\n") + "\n"), { batch: Infinity }), "CORRUPT");
    assert.equal(e2.details.committedEntries, 0);
    assert.equal(atomic.getStats().entries, 0);
    await atomic.close();
  }
  // The good dump in batches of 7 loads everything.
  const ok = await fresh({ keyEncoding: "binary", encoding: "binary" });
  const r = await loadBytes(ok, good, { batch: 7 });
  assert.equal(r.entries, n);
  assert.deepEqual(rawContent(ok).get(""), (() => {
    const rows: Array<[string, string]> = [];
    for (let i = 0; i < n; i++) rows.push([Buffer.from([i >> 8, i & 255]).toString("hex"), Buffer.alloc(30, i).toString("hex")]);
    return rows;
  })());
  await ok.close();
});

test("a dump of exactly one batch (or ending on a batch boundary) commits its last batch only after the trailer checks out", async () => {
  for (const format of ["jsonl", "binary"] as const) {
    const good = await numberedDump(format, 20);
    // The trailer's CRC is the last 4 bytes (binary) or inside the last line (JSON Lines).
    const badCrc = Buffer.from(good);
    badCrc[good.length - (format === "binary" ? 1 : 3)]! ^= 0x01;
    const damaged: Array<[string, Buffer, string]> = [
      ["trailer checksum", badCrc, "checksum"],
      ["bytes after the trailer", Buffer.concat([good, format === "binary" ? Buffer.from([0xff]) : Buffer.from('{"end":true}\n')]), "trailing-data"],
      ["no trailer", good.subarray(0, format === "binary" ? good.length - 13 : good.lastIndexOf('{"end"')), "truncated"],
    ];
    for (const [what, bad, reason] of damaged) {
      for (const batch of [20, 10]) {
        const target = await fresh({ keyEncoding: "binary", encoding: "binary" });
        const e = await rejectsCode(loadBytes(target, bad, { batch }), "CORRUPT");
        assert.equal(e.details.reason, reason, `${format} ${what}`);
        // batch 20: the whole dump is one batch, so nothing; batch 10: the first batch only.
        const expected = batch === 20 ? 0 : 10;
        assert.equal(e.details.committedEntries, expected, `${format} ${what} batch ${batch}`);
        assert.equal(target.getStats().entries, expected, `${format} ${what} batch ${batch}: the target holds what the error says`);
        await target.close();
      }
    }
    // The same batch sizes load the good dump whole.
    const ok = await fresh({ keyEncoding: "binary", encoding: "binary" });
    assert.equal((await loadBytes(ok, good, { batch: 10 })).entries, 20);
    await ok.close();
  }
});

test("load: an input stream that fails is IO with the committed prefix; a header longer than an entry line loads; CRLF line ends are refused at line 1", async () => {
  // A stream destroyed with EIO part-way: IO (not the raw error), and what stays committed.
  const good = await numberedDump("binary", 100);
  let sent = false;
  const failing = new Readable({
    read() {
      if (!sent) {
        sent = true;
        this.push(good.subarray(0, 2000));
      } else this.destroy(Object.assign(new Error("EIO: i/o error, read"), { code: "EIO", errno: -5, syscall: "read" }));
    },
  });
  const t1 = await fresh({ keyEncoding: "binary", encoding: "binary" });
  const e = await rejectsCode(load(t1, failing, { batch: 10 }), "IO");
  assert.equal(e.details.errno, "EIO");
  assert.ok(typeof e.details.committedEntries === "number" && e.details.committedEntries > 0);
  assert.equal(t1.getStats().entries, e.details.committedEntries);
  await t1.close();

  // 300 sub-databases with one tiny entry each: the header line (~20 KB) is longer than any
  // entry line a target with maxValueSize 1000 accepts, and it still loads.
  const src = await fresh({ keyEncoding: "binary", encoding: "binary" });
  for (let i = 0; i < 300; i++) {
    const d = src.openDB(`sub-database-with-a-long-name-${String(i).padStart(4, "0")}`, { keyEncoding: "binary", encoding: "binary" });
    await d.put(Buffer.from([1]), Buffer.from([2]));
  }
  const { bytes } = await dumpBytes(src, { format: "jsonl" });
  await src.close();
  assert.ok(lines(bytes)[0]!.length > 15_000);
  const small = await fresh({ keyEncoding: "binary", encoding: "binary", maxValueSize: 1000 });
  assert.equal((await loadBytes(small, bytes)).entries, 300);
  await small.close();

  // CRLF: refused at the first line, nothing committed (it used to load every line and fail at
  // the trailer's checksum after committing the full batches).
  const crlf = Buffer.from((await numberedDump("jsonl", 30)).toString("utf8").replaceAll("\n", "\r\n"));
  const t2 = await fresh({ keyEncoding: "binary", encoding: "binary" });
  const e2 = await rejectsCode(loadBytes(t2, crlf, { batch: 10 }), "CORRUPT");
  assert.equal(e2.details.reason, "line-end");
  assert.equal(e2.details.line, 1);
  assert.equal(t2.getStats().entries, 0);
  await t2.close();
});

test("load refuses a non-empty target and other encodings, naming the sub-database; other sub-databases are left alone", async () => {
  const src = await fresh();
  await src.put("a", 1);
  await src.openDB("named", { keyEncoding: "string", encoding: "json" }).put("x", { y: 1 });
  const { bytes } = await dumpBytes(src);
  // The default database holds an entry.
  const t1 = await fresh();
  await t1.put("other", 2);
  let e = await rejectsCode(loadBytes(t1, bytes), "INVALID_ARGUMENT");
  assert.equal(e.details.name, "");
  assert.deepEqual(t1.getRange().asArray, [{ key: "other", value: 2 }]);
  assert.deepEqual(t1.listDBs(), []);
  // A named one holds an entry.
  const t2 = await fresh();
  await t2.openDB("named", { keyEncoding: "string", encoding: "json" }).put("z", 0);
  e = await rejectsCode(loadBytes(t2, bytes), "INVALID_ARGUMENT");
  assert.equal(e.details.name, "named");
  assert.equal(t2.getStats().entries, 1);
  // A named one exists (emptied) with other encodings.
  const t3 = await fresh();
  await t3.openDB("named", { keyEncoding: "binary", encoding: "binary" }).put(Buffer.from("z"), Buffer.from("z"));
  await t3.openDB("named").remove(Buffer.from("z"));
  e = await rejectsCode(loadBytes(t3, bytes), "INVALID_ARGUMENT");
  assert.equal(e.details.name, "named");
  // Sub-databases the dump does not name are not touched.
  const t4 = await fresh();
  await t4.openDB("unrelated").put("u", 1);
  const r = await loadBytes(t4, bytes);
  assert.deepEqual(r.perDb, { "": 1, named: 1 });
  assert.deepEqual(t4.listDBs(), ["named", "unrelated"]);
  assert.equal(t4.openDB("unrelated").get("u"), 1);
  assert.deepEqual(t4.openDB("named").get("x"), { y: 1 });
  // Loading the same dump twice is refused the second time.
  e = await rejectsCode(loadBytes(t4, bytes), "INVALID_ARGUMENT");
  assert.equal(e.details.name, "");
  // Read-only target.
  const roPath = t1.path;
  await t1.close();
  const ro = await open(roPath, { readOnly: true, wal: false });
  await rejectsCode(loadBytes(ro, bytes), "READ_ONLY");
  await Promise.all([src.close(), t2.close(), t3.close(), t4.close(), ro.close()]);
});

test("a dump taken while writers go on equals the source at the dump's LSN (rebuilt from the log)", async () => {
  const db = await open(join(tmp(), "db"), { cacheSize: 256 * 1024 }); // log on; a small cache: pages are re-read from disk
  const subs: SubDatabase[] = [db, db.openDB("bin", { keyEncoding: "binary", encoding: "binary" }), db.openDB("str", { keyEncoding: "string", encoding: "string" })];
  const key = (s: SubDatabase, i: number) => (s.keyEncoding === "binary" ? Buffer.from(`k${i}`) : `k${i}`);
  const val = (s: SubDatabase, i: number, tag: string) =>
    s.valueEncoding === "binary" ? Buffer.from(`${tag}:${i};`.repeat(1 + (i % 30))) : s.valueEncoding === "string" ? `${tag}:${i}`.repeat(1 + (i % 20)) : { tag, i, pad: "p".repeat(i % 100) };
  const KEYS = 4000;
  await db.transaction((tx) => {
    for (const s of subs) for (let i = 0; i < KEYS; i++) tx.for(s).put(key(s, i) as never, val(s, i, "init"));
  });
  await db.checkpoint();
  let stop = false;
  let writes = 0;
  let rng = 12345;
  const rand = (n: number) => {
    rng = (rng * 1103515245 + 12345) & 0x7fffffff;
    return rng % n;
  };
  const writer = async (w: number) => {
    while (!stop) {
      const s = subs[rand(subs.length)]!;
      const i = rand(KEYS + 100);
      if (rand(5) === 0) await s.remove(key(s, i) as never);
      else if (rand(20) === 0) await db.transaction((tx) => {
        for (let j = 0; j < 20; j++) tx.for(s).put(key(s, (i + j) % (KEYS + 100)) as never, val(s, j, `t${w}.${writes}`));
      });
      else await s.put(key(s, i) as never, val(s, i, `w${w}.${writes}`));
      writes++;
      if (writes % 10 === 0) await db.checkpoint(); // frees pages the dump's snapshot still reaches
    }
  };
  const writers = [writer(0), writer(1), writer(2)];
  await new Promise((r) => setTimeout(r, 20));
  // Each chunk of the dump completes only after the writers made 10 more writes (so at least
  // one checkpoint): the overlap does not depend on timing.
  const sink = new SlowSink(512, true);
  sink.hook = () => {
    const target = writes + 10;
    sink.gate = new Promise<void>((resolve) => {
      const wait = () => (writes >= target || stop ? resolve() : setTimeout(wait, 1));
      wait();
    });
  };
  const before = writes;
  const checkpointsBefore = db.getStats().checkpoints;
  const report = await dump(db, sink, {});
  const during = writes - before;
  const checkpoints = db.getStats().checkpoints - checkpointsBefore;
  stop = true;
  await Promise.all(writers);
  console.log(`# concurrent dump: ${report.entries} entries, ${report.bytes} bytes; ${during} writes and ${checkpoints} checkpoints during it`);
  assert.ok(during > 100 && checkpoints > 10, `writers went on during the dump (${during} writes, ${checkpoints} checkpoints)`);
  assert.ok(db.getStats().lsn > report.lsn);
  // The state at report.lsn, from the log.
  const model = new Map<string, Map<string, string>>();
  for (const rec of db.openTxLog(1, report.lsn, { raw: true })) {
    for (const op of rec.ops) {
      if (op.type === "createDB") {
        if (!model.has(op.db)) model.set(op.db, new Map());
        continue;
      }
      if (op.type === "dropDB") {
        model.delete(op.db);
        continue;
      }
      if (!model.has(op.db)) model.set(op.db, new Map());
      const m = model.get(op.db)!;
      const k = (op.key as Buffer | undefined)?.toString("hex") ?? "";
      if (op.type === "put") m.set(k, (op.value as Buffer).toString("hex"));
      else if (op.type === "remove") m.delete(k);
      else if (op.type === "clearDB") m.clear();
    }
  }
  const dumped = new Map<string, Map<string, string>>();
  let cur: Map<string, string> | undefined;
  const all = Buffer.concat(sink.chunks);
  for (const line of lines(all).slice(1, -1)) {
    const o = JSON.parse(line);
    if ("db" in o) dumped.set(o.db, (cur = new Map()));
    else cur!.set(Buffer.from(o.k, "base64").toString("hex"), Buffer.from(o.v, "base64").toString("hex"));
  }
  assert.deepEqual(dumped, model, "the dump equals the log's state at its LSN");
  assert.notDeepEqual(rawContent(db).get("bin"), [...model.get("bin")!.entries()], "the final state moved on");
  // And it loads.
  const b = await fresh();
  assert.equal((await loadBytes(b, all)).entries, report.entries);
  await Promise.all([db.close(), b.close()]);
});

/**
 * The child side of the bounded-memory test: this file run by node directly (not under --test)
 * with KEEL_DUMP_MEMORY_CHILD set and a small heap. It dumps `db` through a slow counting stream,
 * or loads `file` into a new database at `db`, and prints what it measured as one JSON line.
 */
async function memoryChild(o: { mode: "dump" | "dump-writing" | "load"; db: string; format: "jsonl" | "binary"; file?: string }): Promise<void> {
  const base = process.memoryUsage().rss;
  let peak = base;
  const sample = () => (peak = Math.max(peak, process.memoryUsage().rss));
  const timer = setInterval(sample, 5);
  const t0 = performance.now();
  let out: Record<string, unknown>;
  if (o.mode === "dump" || o.mode === "dump-writing") {
    const db = await open(o.db, { wal: false, cacheSize: 2 * 1024 * 1024 });
    const sink = new SlowSink(64 * 1024, false);
    // dump-writing: a writer updates keys all over the tree while the dump runs, so the dumped
    // snapshot soon is neither the published nor the durable one.
    let writes = 0;
    let stop = false;
    const writer = (async () => {
      if (o.mode !== "dump-writing") return;
      while (!stop && writes < 100) {
        const n = (writes * 7919) % 200_000;
        await db.put(Buffer.from(`key:${String(n).padStart(8, "0")}`), randomBytes(300));
        writes++;
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    const report = await dump(db, sink, { format: o.format, onProgress: sample });
    const during = writes;
    stop = true;
    await writer;
    await new Promise<void>((r) => sink.end(r));
    out = { bytes: report.bytes, entries: report.entries, counted: sink.bytes, maxBuffered: sink.maxBuffered, readers: db.getStats().readers, writes: during };
    await db.close();
  } else {
    const db = await open(o.db, { wal: false, cacheSize: 2 * 1024 * 1024, keyEncoding: "binary", encoding: "binary" });
    const report = await loadFromFile(db, o.file!, { onProgress: sample });
    out = { entries: report.entries, stored: db.getStats().entries };
    await db.close();
  }
  clearInterval(timer);
  sample();
  process.stdout.write(JSON.stringify({ ...out, growth: peak - base, ms: Math.round(performance.now() - t0) }) + "\n");
}

function runMemoryChild(o: Parameters<typeof memoryChild>[0]): Record<string, number> {
  // A 24 MiB old generation and 1 MiB semi-spaces: a dump or load that kept what it read would
  // die of "heap out of memory"; rss then measures what the work itself holds.
  const r = spawnSync(process.execPath, ["--max-old-space-size=24", "--max-semi-space-size=1", fileURLToPath(import.meta.url)], {
    env: { ...process.env, KEEL_DUMP_MEMORY_CHILD: JSON.stringify(o) },
    encoding: "utf8",
    timeout: 120_000,
  });
  assert.equal(r.status, 0, `child ${o.mode} ${o.format} failed (status ${r.status}, signal ${r.signal}):\n${r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!);
}

test("bounded memory: 200,000 entries dump and load in a 24 MiB heap; a dump's rss growth stays well under its size", async () => {
  const dir = tmp();
  const path = join(dir, "db");
  {
    const db = await open(path, { wal: false, keyEncoding: "binary", encoding: "binary" });
    for (let b = 0; b < 10; b++) {
      const vals = randomBytes(20_000 * 300);
      await db.transaction((tx) => {
        for (let i = 0; i < 20_000; i++) {
          const n = b * 20_000 + i;
          tx.put(Buffer.from(`key:${String(n).padStart(8, "0")}`), vals.subarray(i * 300, i * 300 + 300));
        }
      });
    }
    await db.close();
  }
  for (const format of ["jsonl", "binary"] as const) {
    const d = runMemoryChild({ mode: "dump", db: path, format });
    console.log(`# dump ${format}: rss grew ${(d.growth! / 1e6).toFixed(1)} MB for a ${(d.bytes! / 1e6).toFixed(1)} MB dump in ${d.ms} ms; stream buffer peak ${d.maxBuffered} bytes`);
    assert.equal(d.entries, 200_000);
    assert.equal(d.counted, d.bytes, "the stream received every byte the report counts");
    assert.ok(d.bytes! > 60e6, `the dump is large (${d.bytes} bytes)`);
    assert.ok(d.growth! < d.bytes! / 3, `dump ${format}: rss grew ${d.growth} bytes for a ${d.bytes}-byte dump`);
    assert.ok(d.maxBuffered! <= 256 * 1024, `dump ${format}: backpressure kept the stream's buffer small (${d.maxBuffered})`);
    assert.equal(d.readers, 0, "the dump released its reader");
  }
  // The same while a writer moves the database on: the nodes the dump loads must not stay
  // reachable from its (no longer published) snapshot.
  const w = runMemoryChild({ mode: "dump-writing", db: path, format: "binary" });
  console.log(`# dump binary with a writer: rss grew ${(w.growth! / 1e6).toFixed(1)} MB for a ${(w.bytes! / 1e6).toFixed(1)} MB dump, ${w.writes} writes during it`);
  assert.equal(w.entries, 200_000);
  assert.ok(w.writes! >= 10, `the writer went on during the dump (${w.writes})`);
  assert.ok(w.growth! < w.bytes! / 3, `dump with a writer: rss grew ${w.growth} bytes for a ${w.bytes}-byte dump`);
  // Load: the binary dump from a file, into a new database, in the same small heap.
  const src = await open(path, { wal: false });
  const file = join(dir, "big.dump");
  const report = await dumpToFile(src, file, { format: "binary" });
  await src.close();
  const l = runMemoryChild({ mode: "load", db: join(dir, "loaded"), format: "binary", file });
  console.log(`# load binary: rss grew ${(l.growth! / 1e6).toFixed(1)} MB for a ${(report.bytes / 1e6).toFixed(1)} MB dump in ${l.ms} ms`);
  assert.deepEqual([l.entries, l.stored], [200_000, 200_000]);
  // The heap limit is the sharp check here (holding the dump would need 65 MB of it); rss also
  // counts the 1 MiB read chunks a batch points into and the checkpoint's page buffers. A load
  // keeping every chunk it read grows rss by about 95 MB; a correct one by 42-49 MB (so 0.75 of
  // the dump, 48.75 MB, failed now and then on a loaded machine).
  assert.ok(l.growth! < report.bytes * 0.9, `load: rss grew ${l.growth} bytes for a ${report.bytes}-byte dump`);
});

test("options: dbs selects sub-databases, readable adds keys, unknown names are NOT_FOUND", async () => {
  const db = await fresh();
  await db.put("a", 1);
  await db.put(["arr", 1], 2);
  await db.openDB("s", { keyEncoding: "string", encoding: "string" }).put("hé", "v");
  await db.openDB("b", { keyEncoding: "binary", encoding: "binary" }).put(Buffer.from([0]), Buffer.from([1]));
  const { bytes, report } = await dumpBytes(db, { dbs: ["s", ""], readable: true, reproducible: true });
  assert.deepEqual(report.perDb, { "": 2, s: 1 });
  const ls = lines(bytes);
  assert.deepEqual(JSON.parse(ls[0]!).dbs.map((d: { name: string }) => d.name), ["", "s"]);
  assert.equal(JSON.parse(ls[2]!).key, "a");
  assert.equal(JSON.parse(ls[3]!).key, undefined, "an array key is not a string");
  assert.equal(JSON.parse(ls[5]!).key, "hé");
  const b = await fresh();
  await loadBytes(b, bytes);
  assert.ok((await dumpBytes(b, { readable: true, reproducible: true })).bytes.equals(bytes));
  await rejectsCode(dump(db, new Collect(), { dbs: ["nope"] }), "NOT_FOUND");
  await rejectsCode(dump(db, new Collect(), { format: "xml" as never }), "INVALID_ARGUMENT");
  await rejectsCode(loadBytes(b, bytes, { batch: 0 }), "INVALID_ARGUMENT");
  assert.equal(db.getStats().readers, 0);
  await Promise.all([db.close(), b.close()]);
});

test("a stream destroyed with an error inside write(): the dump fails with that error's errno, and its late 'error' event crashes nothing", async () => {
  // Both orders of "the dump sees the stream destroyed" and "the stream emits 'error'" must give the
  // same verdict. Here the destroy happens synchronously inside out.write() (the first write of a
  // stream reaches _write at once), so the dump sees `destroyed` before Node emits 'error' on the
  // next tick: that error must still be the one reported, and must still find a listener after the
  // dump has returned, or it would be an uncaught exception in the user's process.
  const db = await fresh({ keyEncoding: "binary", encoding: "binary" });
  await db.transaction((tx) => {
    for (let i = 0; i < 2000; i++) tx.put(Buffer.from(`k${i}`), Buffer.alloc(100, i));
  });
  const uncaught: unknown[] = [];
  const onUncaught = (e: unknown) => uncaught.push(e);
  process.on("uncaughtException", onUncaught);
  try {
    for (const code of ["EIO", "ENOSPC"]) {
      const out = new Writable({
        highWaterMark: 16,
        write(_chunk, _enc, _cb) {
          out.destroy(Object.assign(new Error(`${code} from the test`), { code }));
        },
      });
      const e = await rejectsCode(dump(db, out), code === "EIO" ? "IO" : "FULL");
      assert.equal(e.details.errno, code);
      for (let k = 0; k < 3; k++) await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(uncaught, []);
    assert.equal(db.getStats().readers, 0);
  } finally {
    process.off("uncaughtException", onUncaught);
    await db.close();
  }
});

test("abort and stream failures: ABORTED, IO, FULL; the dump releases its reader", async () => {
  const db = await fresh({ keyEncoding: "binary", encoding: "binary" });
  await db.transaction((tx) => {
    for (let i = 0; i < 5000; i++) tx.put(Buffer.from(`k${i}`), Buffer.alloc(100, i));
  });
  const ac = new AbortController();
  const sink = new SlowSink(1024, true);
  sink.hook = (n) => n === 3 && ac.abort("enough");
  const e = await rejectsCode(dump(db, sink, { signal: ac.signal }), "ABORTED");
  assert.equal(e.details.reason, "enough");
  assert.equal(db.getStats().readers, 0);
  // The output stream fails, or is destroyed, during the dump.
  const failAt3 = (err?: Error) => {
    const s = new SlowSink(1024, false);
    s.hook = (n) => n === 3 && s.destroy(err);
    return s;
  };
  const e3 = await rejectsCode(dump(db, failAt3(Object.assign(new Error("disk on fire"), { code: "EIO" }))), "IO");
  assert.equal(e3.details.errno, "EIO");
  await rejectsCode(dump(db, failAt3()), "IO");
  await rejectsCode(dump(db, failAt3(Object.assign(new Error("no space"), { code: "ENOSPC" }))), "FULL");
  assert.equal(db.getStats().readers, 0);
  const { bytes } = await dumpBytes(db, { format: "binary" });
  const target = await fresh({ keyEncoding: "binary", encoding: "binary" });
  const ac2 = new AbortController();
  const e2 = await rejectsCode(
    loadBytes(target, bytes, { batch: 1000, signal: ac2.signal, onProgress: (p) => p.entries >= 2000 && ac2.abort() }, 4096),
    "ABORTED",
  );
  assert.equal(e2.details.committedEntries, 2000);
  assert.equal(target.getStats().entries, 2000);
  await Promise.all([db.close(), target.close()]);
});

test("dumpToFile / loadFromFile: atomic output, EXISTS, round trip", async () => {
  const db = await fresh();
  await buildSource(db);
  const dir = tmp();
  const file = join(dir, "out", "db.dump");
  const r = await dumpToFile(db, file, { format: "binary", reproducible: true });
  assert.deepEqual(readdirSync(join(dir, "out")), ["db.dump"], "no partial file is left");
  await rejectsCode(dumpToFile(db, file), "EXISTS");
  const ac = new AbortController();
  ac.abort();
  await rejectsCode(dumpToFile(db, join(dir, "out", "aborted.dump"), { signal: ac.signal }), "ABORTED");
  assert.deepEqual(readdirSync(join(dir, "out")), ["db.dump"], "an aborted dump leaves nothing");
  const b = await fresh();
  const lr = await loadFromFile(b, file);
  assert.equal(lr.entries, r.entries);
  assert.equal(lr.format, "binary");
  assert.ok((await dumpBytes(b, { format: "binary", reproducible: true })).bytes.equals((await dumpBytes(db, { format: "binary", reproducible: true })).bytes));
  await rejectsCode(loadFromFile(b, join(dir, "missing")), "NOT_FOUND");
  await Promise.all([db.close(), b.close()]);
});

test("report counts per sub-database keep a sub-database named __proto__ (an assignment would set the prototype)", async () => {
  const db = await fresh();
  await db.openDB("__proto__").put("k", "v");
  const { bytes, report } = await dumpBytes(db);
  assert.deepEqual({ ...report.perDb }, { "": 0, ["__proto__"]: 1 });
  assert.equal(Object.getPrototypeOf(report.perDb), Object.prototype);
  const target = await fresh();
  const r = await loadBytes(target, bytes);
  assert.equal(Object.getOwnPropertyDescriptor(r.perDb, "__proto__")?.value, 1);
  assert.equal(target.openDB("__proto__").get("k"), "v");
  await db.close();
  await target.close();
});

test("a dump the format cannot hold is refused with INVALID_ARGUMENT before it exists: a binary header past 64 MiB (thousands of maximal sub-database names); JSON Lines holds it", async () => {
  const dir = mkdtempSync(join(tmpdir(), "keel-dumphdr-"));
  try {
    const db = await open(join(dir, "db"), { wal: false, pageSize: 65536 });
    // 4200 names at the 16364-byte maximum of 64 KiB pages: a header of about 69 MB.
    const name = (i: number) => String(i).padStart(8, "0") + "n".repeat(16364 - 8);
    await db.transaction((tx) => {
      for (let i = 0; i < 4200; i++) tx.for(db.openDB(name(i))).put("k", i);
    });
    const out = join(dir, "d.bin");
    await assert.rejects(dumpToFile(db, out, { format: "binary" }), (e: unknown) => {
      assert.ok(e instanceof KeelError && e.code === "INVALID_ARGUMENT", String(e));
      assert.equal(e.details.argument, "format");
      assert.ok((e.details.size as number) > (e.details.max as number));
      return true;
    });
    assert.deepEqual(readdirSync(dir).sort(), ["db"], "no dump and no partial file");
    const r = await dumpToFile(db, join(dir, "d.jsonl"), { format: "jsonl" });
    assert.equal(r.entries, 4200);
    await db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("JSON Lines with readable keys: the line's length is counted with the key as JSON writes it (a control character is 6 characters), so a line just past the string limit is INVALID_ARGUMENT, not a RangeError", async () => {
  const dir = mkdtempSync(join(tmpdir(), "keel-dumpline-"));
  try {
    const db = await open(join(dir, "db"), { wal: false, maxValueSize: 2 ** 31 - 1 });
    const sub = db.openDB("s", { keyEncoding: "string", encoding: "binary" });
    const key = "\x01".repeat(1000); // readable: 6000 characters of JSON for 1000 bytes
    // base64 of the value: 5000 characters under the limit, so the line passes it only with the key counted.
    const b64 = Math.floor((bufferConstants.MAX_STRING_LENGTH - 5000) / 4) * 4;
    await sub.put(key, Buffer.alloc((b64 / 4) * 3, 0x5a));
    await assert.rejects(dumpToFile(db, join(dir, "d.jsonl"), { format: "jsonl", readable: true }), (e: unknown) => {
      assert.ok(e instanceof KeelError && e.code === "INVALID_ARGUMENT", String(e));
      assert.equal(e.details.argument, "format");
      return true;
    });
    assert.deepEqual(readdirSync(dir).sort(), ["db"], "no dump and no partial file");
    await db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("dumpToFile: a power cut at every I/O call leaves no dump or the complete one, and a dump that resolved survives it (I7)", async () => {
  const base = new CrashFileSystem();
  {
    const db = openSync("/db", { fs: base });
    const users = db.openDB("users");
    for (let i = 0; i < 150; i++) await (i % 2 ? users : db).put(`k${i}`, { i, pad: "x".repeat(60) });
    await db.close();
  }
  const durable = base.snapshotDurable();
  for (const format of ["jsonl", "binary"] as const) {
    const out = `/out/db.${format}`;
    let reference: Buffer | undefined;
    const job = async (fs: CrashFileSystem, resolved: () => void) => {
      const db = openSync("/db", { fs });
      await dumpToFile(db, out, { format, reproducible: true });
      resolved();
      reference ??= Buffer.from(fs.readFile(out)); // the uncut run comes first
      await db.close();
    };
    await powerCutSweep(durable, job, ({ after, resolved, label }) => {
      const there = !!after.stat(out);
      if (resolved) assert.ok(there, `${format}, ${label}: the dump resolved, then a power cut took it`);
      if (there) assert.ok(Buffer.from(after.readFile(out)).equals(reference!), `${format}, ${label}: a dump at its path that is not the complete one`);
    });
  }
});
