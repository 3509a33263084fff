/**
 * Fuzz of the page decoders: NodeCodec.decodeNode (leaf and branch pages), Meta.probeMeta and
 * FreeList.decode, with random buffers and with mutated valid encodings.
 *
 * These decoders run after the checksum passed, so what they see is either what the engine wrote
 * or a forged page; either way (I6) they must return a well-formed result or throw KeelError
 * CORRUPT naming the page, never another exception (a RangeError from reading past the buffer, a
 * TypeError), never a hang, never a malformed result (keys out of order, a child page out of range,
 * a value past the page). probeMeta never throws at all.
 *
 * Valid pages are built here from the byte layout documented in NodeCodec.ts and PageLayout.ts
 * (not from the engine's in-memory node classes), and decoding them must give them back.
 *
 * Iterations: KEEL_FUZZ_ITERS (default 20000 per decoder). Replay: KEEL_SEED=<n>.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { KeelError } from "../../src/index.js";
import { decodeNode } from "../../src/btree/NodeCodec.js";
import { FreeList } from "../../src/pager/FreeList.js";
import { encodeMeta, probeMeta, type Meta } from "../../src/pager/Meta.js";
import { readHeader, seal, writeHeader } from "../../src/pager/PageCodec.js";
import { FORMAT_VERSION, PAGE_HEADER, PageType, isValidPageSize } from "../../src/pager/PageLayout.js";
import { Rng, seedList } from "../helpers/rng.js";

const ITERS = Number(process.env.KEEL_FUZZ_ITERS ?? 20_000);
const SEED = seedList(1)[0]!;
const replay = `(replay: KEEL_SEED=${SEED} node --test dist/test/fuzz/decoders.test.js)`;

function expectCorrupt(e: unknown, page: number | undefined, what: string): void {
  if (!(e instanceof KeelError)) throw new Error(`${what}: threw a non-KeelError ${replay}: ${e instanceof Error ? e.stack : String(e)}`);
  assert.equal(e.code, "CORRUPT", `${what}: KeelError ${e.code}, not CORRUPT ${replay}: ${e.message}`);
  if (page !== undefined) assert.equal(e.details.page, page, `${what}: CORRUPT names page ${String(e.details.page)}, not ${page} ${replay}`);
}

// ---- pages built from the documented byte layout -----------------------------------------------

interface LeafSpec {
  keys: Buffer[];
  vals: Array<{ inline: Buffer } | { length: number; page: number; txn: number }>;
}

function randomKeys(rng: Rng, n: number, maxLen: number): Buffer[] {
  const set = new Map<string, Buffer>();
  while (set.size < n) {
    const k = rng.bytes(rng.int(maxLen + 1));
    set.set(k.toString("latin1"), k);
  }
  return [...set.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map((e) => e[1]);
}

function encodeLeafPage(spec: LeafSpec, pageSize: number, pageNo: number, txn: number): Buffer | null {
  const buf = Buffer.alloc(pageSize);
  writeHeader(buf, { type: PageType.Leaf, flags: 0, count: spec.keys.length, pageNo, txn, aux1: 0, aux2: 0 });
  let off = PAGE_HEADER;
  for (let i = 0; i < spec.keys.length; i++) {
    const k = spec.keys[i]!;
    const v = spec.vals[i]!;
    const vlen = "inline" in v ? v.inline.length : 8;
    if (off + 7 + k.length + vlen > pageSize) return null;
    buf.writeUInt16LE(k.length, off);
    buf[off + 2] = "inline" in v ? 0 : 1;
    buf.writeUInt32LE("inline" in v ? v.inline.length : v.length, off + 3);
    off += 7;
    k.copy(buf, off);
    off += k.length;
    if ("inline" in v) {
      v.inline.copy(buf, off);
      off += v.inline.length;
    } else {
      buf.writeUInt32LE(v.page, off);
      buf.writeUInt32LE(v.txn, off + 4);
      off += 8;
    }
  }
  seal(buf);
  return buf;
}

function encodeBranchPage(keys: Buffer[], children: Array<[number, number]>, pageSize: number, pageNo: number, txn: number): Buffer | null {
  const buf = Buffer.alloc(pageSize);
  writeHeader(buf, { type: PageType.Branch, flags: 0, count: children.length, pageNo, txn, aux1: 0, aux2: 0 });
  let off = PAGE_HEADER;
  buf.writeUInt32LE(children[0]![0], off);
  buf.writeUInt32LE(children[0]![1], off + 4);
  off += 8;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    if (off + 2 + k.length + 8 > pageSize) return null;
    buf.writeUInt16LE(k.length, off);
    off += 2;
    k.copy(buf, off);
    off += k.length;
    buf.writeUInt32LE(children[i + 1]![0], off);
    buf.writeUInt32LE(children[i + 1]![1], off + 4);
    off += 8;
  }
  seal(buf);
  return buf;
}

function randomValidPage(rng: Rng, highWater: number): { buf: Buffer; leaf: boolean; keys: Buffer[] } {
  const pageSize = rng.pick([1024, 4096]);
  const pageNo = 2 + rng.int(highWater - 2);
  const txn = 1 + rng.int(1_000_000);
  for (;;) {
    if (rng.bool()) {
      const n = rng.int(30);
      const keys = randomKeys(rng, n, 24);
      const vals: LeafSpec["vals"] = keys.map(() => (rng.bool(0.8) ? { inline: rng.bytes(rng.int(40)) } : { length: 600 + rng.int(5000), page: 2 + rng.int(highWater - 2), txn: 1 + rng.int(txn) }));
      const buf = encodeLeafPage({ keys, vals }, pageSize, pageNo, txn);
      if (buf) return { buf, leaf: true, keys };
    } else {
      const n = 1 + rng.int(30);
      const keys = randomKeys(rng, n - 1, 24);
      const children = Array.from({ length: n }, (): [number, number] => [2 + rng.int(highWater - 2), 1 + rng.int(txn)]);
      const buf = encodeBranchPage(keys, children, pageSize, pageNo, txn);
      if (buf) return { buf, leaf: false, keys };
    }
  }
}

/** A decoded node must be well formed: keys ascending, children in range, values in the page. */
function checkNode(node: unknown, leaf: boolean, highWater: number, pageSize: number, what: string): void {
  const n = node as { leaf: boolean; keys: string[]; vals?: unknown[]; children?: unknown[] };
  assert.equal(n.leaf, leaf, `${what}: node kind`);
  for (let i = 1; i < n.keys.length; i++) assert.ok(n.keys[i - 1]! < n.keys[i]!, `${what}: keys out of order at ${i}`);
  for (const k of n.keys) assert.ok(k.length <= pageSize, `${what}: a key longer than the page`);
  if (leaf) {
    assert.equal(n.vals!.length, n.keys.length, `${what}: values and keys`);
    for (const v of n.vals!) {
      const page = (v as { page?: unknown }).page;
      if (typeof page === "number" && (v as { length?: unknown }).length !== undefined && !(v instanceof Uint8Array) && typeof v !== "string") {
        assert.ok(page >= 2 && page < highWater, `${what}: an overflow page ${page} out of range`);
      } else {
        const len = typeof v === "string" ? v.length : (v as Uint8Array).length;
        assert.ok(len <= pageSize, `${what}: an inline value longer than the page`);
      }
    }
  } else {
    const ch = n.children!;
    assert.equal(ch.length, n.keys.length + 1, `${what}: children and separators`);
    for (const c of ch) assert.ok(typeof c === "number" && c >= 2 && c < highWater, `${what}: child ${String(c)} out of range`);
  }
}

function tryDecode(buf: Buffer, highWater: number, what: string): unknown {
  const h = readHeader(buf);
  try {
    const node = decodeNode(buf, h, { file: "fuzz.keel", highWater });
    checkNode(node, h.type === PageType.Leaf, highWater, buf.length, what);
    return node;
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    expectCorrupt(e, h.pageNo, what);
    return undefined;
  }
}

test("decodeNode: random buffers give a well-formed node or CORRUPT naming the page", () => {
  const rng = new Rng(SEED);
  let decoded = 0;
  for (let i = 0; i < ITERS; i++) {
    const buf = rng.bytes(rng.pick([1024, 4096]));
    buf[0] = rng.bool() ? PageType.Leaf : PageType.Branch;
    // Small entry counts too, so that some random pages get past the first entries.
    if (rng.bool(0.9)) buf.writeUInt16LE(rng.int(8), 2);
    if (rng.bool(0.3)) buf.fill(0, PAGE_HEADER + rng.int(64));
    const highWater = rng.bool(0.5) ? 2 + rng.int(100) : 0xffffffff;
    if (tryDecode(buf, highWater, `iteration ${i}`)) decoded++;
  }
  assert.ok(decoded > 0, "no random page decoded at all: the fuzz never reaches the success path");
});

test("decodeNode: valid pages decode to their keys; mutated ones give a well-formed node or CORRUPT", () => {
  const rng = new Rng(SEED + 1);
  let rejected = 0;
  for (let i = 0; i < ITERS; i++) {
    const highWater = 50 + rng.int(5000);
    const { buf, leaf, keys } = randomValidPage(rng, highWater);
    const node = tryDecode(buf, highWater, `valid page ${i}`) as { keys: string[] } | undefined;
    assert.ok(node, `iteration ${i}: a valid page was refused ${replay}`);
    assert.deepEqual(node.keys, keys.map((k) => k.toString("latin1")), `iteration ${i}: decoded keys ${replay}`);
    assert.equal((node as unknown as { leaf: boolean }).leaf, leaf);
    const m = Buffer.from(buf);
    const n = rng.range(1, 10);
    for (let j = 0; j < n; j++) {
      const off = rng.bool(0.7) ? PAGE_HEADER + rng.int(Math.min(200, m.length - PAGE_HEADER)) : rng.int(m.length);
      m[off] = rng.bool() ? rng.int(256) : m[off]! ^ (1 << rng.int(8));
    }
    if (m[0] !== PageType.Leaf && m[0] !== PageType.Branch) m[0] = buf[0]!;
    if (!tryDecode(m, highWater, `mutated page ${i}`)) rejected++;
  }
  assert.ok(rejected > 0);
});

function randomMeta(rng: Rng): Meta {
  const pageSize = rng.pick([1024, 2048, 4096, 65536]);
  const u32 = () => rng.int(0x100000000);
  return {
    version: FORMAT_VERSION,
    pageSize,
    txn: rng.int(2 ** 40),
    appliedLsn: rng.int(2 ** 45),
    bootTag: u32(),
    highWater: 2 + rng.int(1_000_000),
    catalogRoot: u32(),
    catalogRootTxn: u32(),
    catalogDepth: rng.int(10),
    catalogEntries: rng.int(1000),
    catalogBranchPages: rng.int(1000),
    catalogLeafPages: rng.int(1000),
    catalogOverflowPages: rng.int(1000),
    freelistPage: u32(),
    freelistPages: rng.int(100),
    freelistTxn: u32(),
    flags: rng.int(4),
    createdAt: 1_700_000_000_000 + rng.int(1e9),
    checkpointAt: 1_700_000_000_000 + rng.int(1e9),
  };
}

test("probeMeta: never throws; a valid meta round-trips; a damaged one is never valid; a forged one is sane", () => {
  const rng = new Rng(SEED + 2);
  for (let i = 0; i < ITERS; i++) {
    const what = `iteration ${i} ${replay}`;
    // Random bytes, of any length (short ones included), sometimes with our magic in place.
    const junk = rng.bytes(rng.int(rng.bool(0.5) ? 200 : rng.bool(0.99) ? 5000 : 70_000));
    if (junk.length >= 44 && rng.bool(0.5)) {
      junk.writeUInt32LE(0x4b45454c, 32);
      if (rng.bool(0.5)) junk.writeUInt32LE(rng.pick([1024, 4096, 65536, 0, 3000]), 40);
    }
    const slot = rng.pick([0, 1] as const);
    let p;
    try {
      p = probeMeta(junk, slot);
    } catch (e) {
      throw new Error(`${what}: probeMeta threw on random bytes: ${String(e)}`);
    }
    if (p.ok) assert.ok(isValidPageSize(p.meta.pageSize), what);

    const m = randomMeta(rng);
    const buf = encodeMeta(m, slot);
    const good = probeMeta(buf, slot);
    assert.ok(good.ok, `${what}: a valid meta was refused (${good.ok ? "" : good.reason})`);
    assert.deepEqual(good.meta, m, `${what}: the meta does not round-trip`);
    assert.equal(probeMeta(buf, slot === 0 ? 1 : 0).ok, false, `${what}: a meta accepted in the other slot`);
    const bad = Buffer.from(buf);
    const off = rng.int(bad.length);
    bad[off]! ^= 1 << rng.int(8);
    const pb = probeMeta(bad, slot);
    assert.equal(pb.ok, false, `${what}: a meta with a flipped bit at ${off} was accepted`);
    // Forged: mutated and resealed. Whatever it says, probeMeta must not throw, and what it
    // accepts must carry our version and a valid page size.
    const forged = Buffer.from(buf);
    for (let j = rng.range(1, 6); j > 0; j--) forged[rng.int(rng.bool(0.8) ? 128 : forged.length)] = rng.int(256);
    seal(forged.subarray(0, Math.min(forged.length, isValidPageSize(forged.readUInt32LE(40)) ? forged.readUInt32LE(40) : forged.length)));
    const pf = probeMeta(forged, slot);
    if (pf.ok) {
      assert.equal(pf.meta.version, FORMAT_VERSION, what);
      assert.ok(isValidPageSize(pf.meta.pageSize), what);
    } else if (pf.reason === "version") assert.notEqual(pf.version, FORMAT_VERSION, what);
  }
});

function checkFreeList(fl: FreeList, highWater: number, what: string): void {
  const seen = new Set<number>();
  for (const [p] of fl.allPages()) {
    assert.ok(Number.isInteger(p) && p >= 2 && p < highWater, `${what}: page ${p} out of range`);
    assert.ok(!seen.has(p), `${what}: page ${p} listed twice`);
    seen.add(p);
  }
}

function decodeFreeList(buf: Buffer, highWater: number, what: string): FreeList | undefined {
  try {
    const fl = FreeList.decode(buf, { file: "fuzz.keel", page: 7, highWater });
    checkFreeList(fl, highWater, what);
    return fl;
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    expectCorrupt(e, 7, what);
    return undefined;
  }
}

test("FreeList.decode: random and mutated lists decode to a sane list or CORRUPT", () => {
  const rng = new Rng(SEED + 3);
  let ok = 0;
  for (let i = 0; i < ITERS; i++) {
    const highWater = 3 + rng.int(rng.bool(0.5) ? 64 : 100_000);
    const what = `iteration ${i} ${replay}`;
    // Random entries, sometimes of whole 16-byte entries with small numbers (so some are valid).
    const n = rng.int(12);
    const buf = Buffer.alloc(n * 16 + (rng.bool(0.2) ? rng.int(16) : 0));
    for (let e = 0; e < n; e++) {
      buf.writeUInt32LE(rng.bool(0.8) ? rng.int(highWater + 4) : rng.int(0x100000000), e * 16);
      buf.writeUInt32LE(rng.bool(0.8) ? rng.int(6) : rng.int(0x100000000), e * 16 + 4);
      buf.writeUInt32LE(rng.int(50), e * 16 + 8);
      buf.writeUInt32LE(rng.bool(0.9) ? 0 : rng.int(0x100000000), e * 16 + 12);
    }
    if (decodeFreeList(buf, highWater, what)) ok++;
    // A valid list (built through the API), encoded, decoded back, then mutated.
    const fl = new FreeList();
    const pageSet = new Set<number>();
    for (let k = rng.int(Math.min(40, highWater - 2)); k > 0; k--) pageSet.add(2 + rng.int(highWater - 2));
    const pages = [...pageSet];
    for (const p of pages) fl.free(1 + rng.int(5), p, 1);
    fl.release(rng.int(6));
    const enc = fl.encode();
    const back = decodeFreeList(enc, highWater, what);
    assert.ok(back, `${what}: a valid list was refused`);
    assert.deepEqual([...back.allPages()].sort((a, b) => a[0] - b[0]), [...fl.allPages()].sort((a, b) => a[0] - b[0]), `${what}: round trip`);
    if (enc.length > 0) {
      const m = Buffer.from(enc);
      m[rng.int(m.length)] = rng.int(256);
      decodeFreeList(m, highWater, `${what} (mutated)`);
    }
  }
  assert.ok(ok > 0);
});

test("FreeList.decode (fast-check): any byte string decodes to a sane list or CORRUPT", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), fc.integer({ min: 0, max: 5000 }), (bytes, highWater) => {
      decodeFreeList(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length), highWater, "fast-check");
    }),
    { seed: SEED, numRuns: Math.min(ITERS, 5000) },
  );
});
