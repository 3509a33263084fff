/**
 * Record codec tests: round trip of every field, and fuzz (random bytes, every bit flip, every
 * truncation, mutations with a recomputed checksum).
 *
 * Invariants checked: I6 (decoding yields a valid record, end of log, or KeelError CORRUPT with
 * segment and offset; nothing else, and it always terminates); records are 8-byte aligned.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { KeelError } from "../../src/errors.js";
import { crc32, crc32Fallback } from "../../src/wal/Crc32.js";
import {
  alignRecord,
  decodeLogRecord,
  encodeLogRecord,
  measureLogRecord,
  probeLogRecord,
  RECORD_HEADER_SIZE,
  type LogRecord,
} from "../../src/wal/LogRecord.js";
import { plain, randomOps, Rng } from "./helpers.js";

function sample(rng: Rng, lsn: number): LogRecord {
  return { lsn, txTime: 1_700_000_000_000 + rng.int(1e6), kind: rng.int(4) === 0 ? "snapshot-marker" : "txn", ops: randomOps(rng, 5, 60) as LogRecord["ops"] };
}

/** decode must return a valid record, undefined (end of log), or throw CORRUPT: nothing else. */
function decodeOnlyCorrupt(bytes: Uint8Array): ReturnType<typeof decodeLogRecord> | "corrupt" {
  try {
    return decodeLogRecord(bytes, 0, { segment: "fuzz", offset: 0 });
  } catch (e) {
    assert.ok(e instanceof KeelError, `non-KeelError thrown: ${String(e)}`);
    assert.equal(e.code, "CORRUPT");
    assert.equal(e.details.segment, "fuzz");
    assert.equal(typeof e.details.offset, "number");
    return "corrupt";
  }
}

test("crc32: native and fallback agree", () => {
  const rng = new Rng(1);
  for (let i = 0; i < 200; i++) {
    const b = rng.bytes(rng.int(300));
    const seed = rng.int(2 ** 32);
    assert.equal(crc32(b, seed), crc32Fallback(b, seed));
  }
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
});

test("record round trip: every field, 8-byte aligned, zero padded", () => {
  const rng = new Rng(7);
  for (let i = 1; i <= 300; i++) {
    const r = sample(rng, i * 977);
    const bytes = encodeLogRecord(r, i * 977 - 1 - rng.int(5));
    assert.equal(bytes.length % 8, 0);
    assert.equal(bytes.length, measureLogRecord(r));
    const d = decodeLogRecord(bytes);
    assert.ok(d);
    assert.deepEqual(plain(d.record), plain(r));
    assert.equal(d.size, bytes.length);
  }
});

test("record: empty ops list and a large LSN round trip", () => {
  const r: LogRecord = { lsn: Number.MAX_SAFE_INTEGER, txTime: 0, kind: "k", ops: [] };
  const d = decodeLogRecord(encodeLogRecord(r, 5));
  assert.deepEqual(plain(d!.record), plain(r));
  assert.equal(d!.syncedThrough, 5);
});

test("record: all-zero bytes are the end of the log", () => {
  assert.equal(decodeLogRecord(new Uint8Array(64)), undefined);
  assert.equal(decodeLogRecord(new Uint8Array(0)), undefined);
});

test("encode refuses bad input with INVALID_ARGUMENT", () => {
  const bad: unknown[] = [
    { lsn: 0, txTime: 1, kind: "txn", ops: [] },
    { lsn: 1.5, txTime: 1, kind: "txn", ops: [] },
    { lsn: 1, txTime: -1, kind: "txn", ops: [] },
    { lsn: 1, txTime: 1, kind: "", ops: [] },
    { lsn: 1, txTime: 1, kind: "x".repeat(300), ops: [] },
    { lsn: 1, txTime: 1, kind: "txn", ops: [{ type: "put", db: "a", key: new Uint8Array(1) }] },
    { lsn: 1, txTime: 1, kind: "txn", ops: [{ type: "remove", db: "a" }] },
    { lsn: 1, txTime: 1, kind: "txn", ops: [{ type: "nope", db: "a" }] },
    { lsn: 1, txTime: 1, kind: "txn", ops: [{ type: "put", db: "a", key: 42, value: new Uint8Array(1) }] },
  ];
  for (const r of bad) {
    assert.throws(() => encodeLogRecord(r as LogRecord), (e: unknown) => e instanceof KeelError && e.code === "INVALID_ARGUMENT");
  }
});

test("fuzz: random bytes decode only to CORRUPT or end, never another exception", () => {
  const rng = new Rng(99);
  for (let i = 0; i < 3000; i++) {
    const b = rng.bytes(rng.int(200));
    if (rng.int(2) === 0 && b.length >= 8) {
      // Give most inputs a valid magic and a plausible length, so the deeper checks run.
      new DataView(b.buffer).setUint32(0, 0x31524c4b, true);
      new DataView(b.buffer).setUint32(4, Math.min(b.length, RECORD_HEADER_SIZE + rng.int(150)), true);
    }
    const r = decodeOnlyCorrupt(b);
    assert.ok(r === "corrupt" || r === undefined, "random bytes decoded as a record");
  }
});

test("fuzz: every single bit flip of an encoded record is CORRUPT", () => {
  const rng = new Rng(5);
  for (let n = 0; n < 6; n++) {
    const r = sample(rng, 1 + rng.int(1000));
    const bytes = encodeLogRecord(r, 0);
    for (let bit = 0; bit < bytes.length * 8; bit++) {
      const b = bytes.slice();
      b[bit >> 3]! ^= 1 << (bit & 7);
      const out = decodeOnlyCorrupt(b);
      // A flip in the first 8 bytes may turn the header all-zero only if it was one bit: never here.
      assert.equal(out, "corrupt", `bit ${bit} flip not detected`);
    }
  }
});

test("fuzz: every truncation of an encoded record is CORRUPT (or end, when only zeros remain)", () => {
  const rng = new Rng(6);
  for (let n = 0; n < 10; n++) {
    const bytes = encodeLogRecord(sample(rng, 10), 3);
    const d = decodeLogRecord(bytes)!;
    const realLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4, true);
    for (let cut = 0; cut < realLength; cut++) {
      const out = decodeOnlyCorrupt(bytes.slice(0, cut));
      assert.ok(out === "corrupt" || (out === undefined && cut === 0), `cut at ${cut} gave a record`);
    }
    assert.equal(alignRecord(realLength), d.size);
  }
});

test("fuzz: mutated bodies with a recomputed checksum decode to a valid record or CORRUPT", () => {
  const rng = new Rng(8);
  for (let n = 0; n < 3000; n++) {
    const bytes = encodeLogRecord(sample(rng, 1 + rng.int(100)), 0);
    const len = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4, true);
    for (let k = 0; k < 1 + rng.int(4); k++) bytes[12 + rng.int(len - 12)] = rng.int(256);
    new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).setUint32(8, crc32(bytes.subarray(12, len), crc32(bytes.subarray(0, 8))), true);
    const out = decodeOnlyCorrupt(bytes);
    if (out !== "corrupt") {
      assert.ok(out !== undefined);
      // Whatever decoded must re-encode to the same bytes: no field was silently misread.
      assert.deepEqual(encodeLogRecord(out.record, out.syncedThrough), bytes);
    }
  }
});

test("probe never throws and reports truncation", () => {
  const bytes = encodeLogRecord({ lsn: 3, txTime: 1, kind: "txn", ops: [{ type: "put", db: "d", key: new Uint8Array([1]), value: new Uint8Array(100) }] }, 2);
  const p = probeLogRecord(bytes, 0, 50);
  assert.equal(p.status, "bad");
  assert.equal(p.status === "bad" && p.truncated, true);
});

test("probe without ops (recovery's scan) gives the same verdict, LSN, time and size as the full probe", () => {
  const rng = new Rng(9);
  let bad = 0;
  for (let n = 0; n < 3000; n++) {
    const rec = sample(rng, 1 + rng.int(100));
    // Several ops on the same sub-database, so the "name unchanged" shortcut is exercised too.
    if (rng.int(2) === 0) rec.ops = rec.ops.map((op) => ({ ...op, db: "same" }));
    const bytes = encodeLogRecord(rec, 0);
    const len = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4, true);
    const mutate = rng.int(3);
    if (mutate > 0) {
      for (let k = 0; k < 1 + rng.int(4); k++) bytes[12 + rng.int(len - 12)] = rng.int(256);
      if (mutate === 2) new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).setUint32(8, crc32(bytes.subarray(12, len), crc32(bytes.subarray(0, 8))), true);
    }
    const full = probeLogRecord(bytes, 0, bytes.length, true);
    const lean = probeLogRecord(bytes, 0, bytes.length, false);
    assert.equal(lean.status, full.status, `trial ${n}`);
    if (full.status === "ok" && lean.status === "ok") {
      assert.equal(lean.record.lsn, full.record.lsn);
      assert.equal(lean.record.txTime, full.record.txTime);
      assert.equal(lean.size, full.size);
      assert.equal(lean.syncedThrough, full.syncedThrough);
      assert.equal(lean.record.ops.length, 0, "no ops copied out");
    } else if (full.status === "bad" && lean.status === "bad") {
      bad++;
      assert.equal(lean.reason, full.reason, `trial ${n}`);
    }
  }
  assert.ok(bad > 500, `the mutations produced bad records (${bad})`);
});

test("encoding writes every byte: records encoded over dirty pooled memory are the same bytes and decode", () => {
  // encodeLogRecord takes its buffer from Node's Buffer pool, uninitialized: fill the pool with
  // 0xff, 0x00 and 0xa5 in turn and encode the same records each time; any byte the encoder
  // forgets (reserved header bytes, op header fields, padding) would differ or fail to decode.
  const rng = new Rng(11);
  const records = Array.from({ length: 40 }, (_, i) => sample(rng, i + 1));
  const runs = [0xff, 0x00, 0xa5].map((fill) =>
    records.map((r) => {
      for (let k = 0; k < 8; k++) Buffer.allocUnsafe(512).fill(fill);
      return Buffer.from(encodeLogRecord(r, 0));
    }),
  );
  for (let i = 0; i < records.length; i++) {
    assert.deepEqual(runs[1]![i], runs[0]![i]);
    assert.deepEqual(runs[2]![i], runs[0]![i]);
    const d = decodeLogRecord(runs[0]![i]!);
    assert.ok(d);
    assert.deepEqual(plain(d.record), plain(records[i]!));
  }
});
