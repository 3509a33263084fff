/**
 * Meta unit tests: encode/probe round trip, and every way probe refuses a page (it never throws).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { encodeMeta, probeMeta, versionError, type Meta } from "../../src/pager/Meta.js";
import { seal } from "../../src/pager/PageCodec.js";
import { FORMAT_VERSION, OFF_CHECKSUM } from "../../src/pager/PageLayout.js";

function sample(pageSize = 4096): Meta {
  return {
    version: FORMAT_VERSION,
    pageSize,
    txn: 2 ** 40 + 17, // the header txn is 64-bit
    bootTag: 0xfedcba98,
    appliedLsn: 2 ** 45 + 3,
    highWater: 123456,
    catalogRoot: 77,
    catalogRootTxn: 4000000000,
    catalogDepth: 3,
    catalogEntries: 12,
    catalogBranchPages: 2,
    catalogLeafPages: 9,
    catalogOverflowPages: 0,
    freelistPage: 500,
    freelistPages: 2,
    freelistTxn: 3999999999,
    flags: 1,
    createdAt: 1700000000123.5,
    checkpointAt: 1700000009999,
  };
}

test("encodeMeta/probeMeta round trip every field, in both slots and at every page size", () => {
  for (const pageSize of [1024, 2048, 4096, 8192, 16384, 32768, 65536]) {
    for (const slot of [0, 1] as const) {
      const m = sample(pageSize);
      const buf = encodeMeta(m, slot);
      assert.equal(buf.length, pageSize);
      const p = probeMeta(buf, slot);
      assert.ok(p.ok, `probe failed: ${JSON.stringify(p)}`);
      assert.deepEqual(p.meta, m);
    }
  }
});

test("probe reads a meta from a longer buffer (the page after it does not matter)", () => {
  const buf = Buffer.concat([encodeMeta(sample(1024), 0), Buffer.alloc(1024, 0xaa)]);
  const p = probeMeta(buf, 0);
  assert.ok(p.ok);
  assert.equal(p.meta.txn, sample().txn);
});

test("a damaged byte anywhere in the page gives reason checksum", () => {
  const good = encodeMeta(sample(1024), 1);
  for (const off of [0, 8, 20, 33, 40, 47, 60, 90, 116, 500, 1023]) {
    const buf = Buffer.from(good);
    buf[off]! ^= 0x10;
    const p = probeMeta(buf, 1);
    assert.equal(p.ok, false, `offset ${off}`);
    // Damage to the magic or the page size is caught before the checksum is looked at.
    if (off >= 32 && off < 36) assert.equal(!p.ok && p.reason, "magic");
    else if (off >= 40 && off < 44) assert.ok(!p.ok && (p.reason === "page-size" || p.reason === "checksum"));
    else assert.equal(!p.ok && p.reason, "checksum", `offset ${off}`);
  }
  const buf = Buffer.from(good);
  buf.writeUInt32LE((buf.readUInt32LE(OFF_CHECKSUM) ^ 1) >>> 0, OFF_CHECKSUM);
  const p = probeMeta(buf, 1);
  assert.equal(!p.ok && p.reason, "checksum", "a damaged stored checksum");
});

test("another format version with a valid checksum gives reason version naming it", () => {
  for (const v of [0, FORMAT_VERSION + 1, 999]) {
    const buf = encodeMeta({ ...sample(2048), version: v }, 0);
    const p = probeMeta(buf, 0);
    assert.equal(p.ok, false);
    assert.ok(!p.ok && p.reason === "version");
    assert.equal(!p.ok && p.version, v);
    assert.equal(!p.ok && p.pageSize, 2048);
  }
});

test("a version field changed without resealing is reason checksum, not version", () => {
  const buf = encodeMeta(sample(1024), 0);
  buf.writeUInt16LE(FORMAT_VERSION + 1, 36);
  const p = probeMeta(buf, 0);
  assert.equal(!p.ok && p.reason, "checksum");
});

test("a meta probed in the other slot gives reason page-number", () => {
  const p = probeMeta(encodeMeta(sample(1024), 0), 1);
  assert.equal(!p.ok && p.reason, "page-number");
});

test("a sealed page of another type gives reason page-number", () => {
  const buf = encodeMeta(sample(1024), 0);
  buf[0] = 3; // leaf
  seal(buf);
  const p = probeMeta(buf, 0);
  assert.equal(!p.ok && p.reason, "page-number");
});

test("short buffers, zeroed pages and bad page sizes are refused, never thrown", () => {
  assert.equal(probeMeta(Buffer.alloc(100), 0).ok, false);
  const short = probeMeta(Buffer.alloc(100), 0);
  assert.equal(!short.ok && short.reason, "short");
  const zero = probeMeta(Buffer.alloc(4096), 0);
  assert.equal(!zero.ok && zero.reason, "magic");
  for (const ps of [0, 1000, 3000, 131072, 0xffffffff]) {
    const buf = encodeMeta(sample(1024), 0);
    buf.writeUInt32LE(ps, 40);
    const p = probeMeta(buf, 0);
    assert.equal(!p.ok && p.reason, "page-size", `page size ${ps}`);
  }
  // A valid meta cut short of its page size.
  const cut = encodeMeta(sample(4096), 0).subarray(0, 2048);
  const p = probeMeta(Buffer.from(cut), 0);
  assert.equal(!p.ok && p.reason, "page-size");
});

test("versionError is VERSION and names both versions", () => {
  const e = versionError("/x/data.keel", FORMAT_VERSION + 1, 4096);
  assert.equal(e.code, "VERSION");
  assert.equal(e.details.found, FORMAT_VERSION + 1);
  assert.equal(e.details.supported, FORMAT_VERSION);
  assert.equal(e.details.file, "/x/data.keel");
});
