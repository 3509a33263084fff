/**
 * WriteAheadLog tests on real files: LSN assignment, reopen, rolling by size and age, rotate,
 * reading (ranges, across segments, beside appends), watermarks, closed state, options.
 *
 * Invariants checked: I3 (contiguous LSNs within and across segments, readers return a prefix in
 * order); sealed segments hold exactly their records.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { readdirSync, statSync } from "node:fs";
import { KeelError } from "../../src/errors.js";
import { nodeFileSystem } from "../../src/io/NodeFileSystem.js";
import { WriteAheadLog } from "../../src/wal/WriteAheadLog.js";
import { parseSegmentName, segmentName } from "../../src/wal/SegmentName.js";
import { SEGMENT_HEADER_SIZE } from "../../src/wal/SegmentHeader.js";
import { cleanup, plain, randomRecord, Rng, tempDir } from "./helpers.js";

const small = { walPreallocBytes: 16 * 1024, walSegmentMaxBytes: 4096 };

test("segment names: 20 digits, sortable, round trip", () => {
  assert.equal(segmentName(1), "00000000000000000001.wal");
  assert.equal(parseSegmentName(segmentName(Number.MAX_SAFE_INTEGER)), Number.MAX_SAFE_INTEGER);
  assert.equal(parseSegmentName("1.wal"), undefined);
  assert.equal(parseSegmentName("00000000000000000000.wal"), undefined);
  const names = [5, 40, 100000, 9].map(segmentName).sort();
  assert.deepEqual(names.map(parseSegmentName), [5, 9, 40, 100000]);
});

test("open creates wal/ with one segment; append assigns contiguous LSNs; reopen recovers them", async () => {
  const dir = tempDir();
  try {
    const rng = new Rng(1);
    const wal = WriteAheadLog.open(nodeFileSystem, dir);
    assert.deepEqual(readdirSync(join(dir, "wal")), ["00000000000000000001.wal"]);
    assert.equal(wal.lastCommittedLsn, 0);
    const recs = Array.from({ length: 50 }, () => randomRecord(rng));
    const lsns = recs.map((r) => wal.append(r));
    assert.deepEqual(lsns, Array.from({ length: 50 }, (_, i) => i + 1));
    await wal.waitDurable(50);
    assert.equal(wal.lastDurableLsn, 50);
    await wal.close();
    const again = WriteAheadLog.open(nodeFileSystem, dir);
    assert.equal(again.lastCommittedLsn, 50);
    assert.equal(again.lastDurableLsn, 50);
    assert.equal(again.recovery.truncated, undefined);
    const read = [...again.readRecords(1)];
    assert.deepEqual(read.map(plain), recs.map((r, i) => plain({ ...r, lsn: i + 1 })));
    assert.equal(again.append(randomRecord(rng)), 51);
    again.closeSync();
  } finally {
    cleanup(dir);
  }
});

test("startLsn places the first segment of an empty log", () => {
  const dir = tempDir();
  try {
    const wal = WriteAheadLog.open(nodeFileSystem, dir, { startLsn: 1000 });
    assert.equal(wal.watermarks().activeSegment, segmentName(1000));
    assert.equal(wal.append({ ops: [] }), 1000);
    wal.closeSync();
    // startLsn is ignored once the log holds segments.
    const again = WriteAheadLog.open(nodeFileSystem, dir, { startLsn: 5 });
    assert.equal(again.lastCommittedLsn, 1000);
    again.closeSync();
  } finally {
    cleanup(dir);
  }
});

test("segments roll by size, stay contiguous, sealed ones are truncated to their records", async () => {
  const dir = tempDir();
  try {
    const rng = new Rng(2);
    const wal = WriteAheadLog.open(nodeFileSystem, dir, small);
    for (let i = 0; i < 300; i++) wal.append(randomRecord(rng));
    await wal.syncNow();
    const segs = wal.segments();
    assert.ok(segs.length > 5, `only ${segs.length} segments`);
    for (let i = 0; i < segs.length; i++) {
      const s = segs[i]!;
      assert.equal(s.name, segmentName(s.firstLsn));
      assert.ok(s.bytes <= small.walSegmentMaxBytes || s.records === 1);
      if (i > 0) assert.equal(s.firstLsn, segs[i - 1]!.lastLsn + 1);
      assert.equal(s.sealed, i < segs.length - 1);
      if (s.sealed) assert.equal(statSync(s.path).size, s.bytes);
    }
    assert.equal(segs[segs.length - 1]!.lastLsn, 300);
    const w = wal.watermarks();
    assert.equal(w.segmentCount, segs.length);
    assert.equal(w.oldestLsn, 1);
    assert.equal(w.totalBytes, segs.reduce((n, s) => n + s.bytes, 0));
    await wal.close();
    const again = WriteAheadLog.open(nodeFileSystem, dir, small);
    assert.equal(again.lastCommittedLsn, 300);
    assert.deepEqual(
      again.segments().map((s) => [s.name, s.firstLsn, s.lastLsn]),
      segs.map((s) => [s.name, s.firstLsn, s.lastLsn]),
    );
    assert.equal([...again.readRecords(1)].length, 300);
    again.closeSync();
  } finally {
    cleanup(dir);
  }
});

test("a record larger than the segment limit gets a segment of its own", () => {
  const dir = tempDir();
  try {
    const wal = WriteAheadLog.open(nodeFileSystem, dir, small);
    wal.append({ ops: [{ type: "put", db: "", key: new Uint8Array(1), value: new Uint8Array(1000) }] });
    wal.append({ ops: [{ type: "put", db: "", key: new Uint8Array(1), value: new Uint8Array(10000) }] });
    wal.append({ ops: [] });
    const segs = wal.segments();
    assert.deepEqual(segs.map((s) => s.records), [1, 1, 1]);
    wal.closeSync();
    const again = WriteAheadLog.open(nodeFileSystem, dir, small);
    assert.equal([...again.readRecords(1)][1]!.ops[0]!.value!.length, 10000);
    again.closeSync();
  } finally {
    cleanup(dir);
  }
});

test("segments roll by age, checked on append; an empty segment never rolls", () => {
  const dir = tempDir();
  try {
    let now = 1_000_000;
    const wal = WriteAheadLog.open(nodeFileSystem, dir, { walSegmentMaxMs: 60_000, now: () => now });
    now += 30_000;
    wal.append({ ops: [] });
    wal.append({ ops: [] });
    assert.equal(wal.segments().length, 1);
    now += 30_000; // the segment is now 60 s old: the next append rolls first
    wal.append({ ops: [] });
    assert.deepEqual(wal.segments().map((s) => s.firstLsn), [1, 3]);
    wal.rotate();
    now += 600_000; // an old but empty segment does not roll
    wal.append({ ops: [] });
    assert.deepEqual(wal.segments().map((s) => s.firstLsn), [1, 3, 4]);
    assert.equal(wal.segments()[1]!.createdAt, 1_060_000);
    wal.closeSync();
  } finally {
    cleanup(dir);
  }
});

test("a segment created in the future (the clock stepped back since, across a reopen) rolls on the next append, not when the clock catches up", () => {
  const dir = tempDir();
  try {
    let now = 1_000_000 + 86_400_000;
    const first = WriteAheadLog.open(nodeFileSystem, dir, { walSegmentMaxMs: 1000, now: () => now });
    first.append({ ops: [] }); // the segment's header says "a day from now"
    first.closeSync();
    now -= 86_400_000;
    const wal = WriteAheadLog.open(nodeFileSystem, dir, { walSegmentMaxMs: 1000, now: () => now });
    wal.append({ ops: [] });
    assert.deepEqual(wal.segments().map((s) => s.firstLsn), [1, 2], "rolled at once");
    now += 500;
    wal.append({ ops: [] });
    assert.deepEqual(wal.segments().map((s) => s.firstLsn), [1, 2], "the new segment ages from the present");
    now += 600;
    wal.append({ ops: [] });
    assert.deepEqual(wal.segments().map((s) => s.firstLsn), [1, 2, 4], "and rolls after walSegmentMaxMs");
    wal.closeSync();
  } finally {
    cleanup(dir);
  }
});

test("rotate seals the active segment; a no-op on an empty one", () => {
  const dir = tempDir();
  try {
    const wal = WriteAheadLog.open(nodeFileSystem, dir);
    const r0 = wal.rotate();
    assert.equal(r0.sealed, undefined);
    wal.append({ ops: [] });
    wal.append({ ops: [] });
    const r1 = wal.rotate();
    assert.equal(r1.sealed, segmentName(1));
    assert.equal(r1.active, segmentName(3));
    assert.equal(r1.firstLsn, 3);
    // Rolling syncs the sealed segment: everything appended is durable.
    assert.equal(wal.lastDurableLsn, 2);
    assert.equal(wal.append({ ops: [] }), 3);
    wal.closeSync();
  } finally {
    cleanup(dir);
  }
});

test("readRecords: ranges, across segments, NOT_FOUND before the oldest, while appending", async () => {
  const dir = tempDir();
  try {
    const rng = new Rng(3);
    const wal = WriteAheadLog.open(nodeFileSystem, dir, small);
    const recs = Array.from({ length: 200 }, () => randomRecord(rng));
    for (const r of recs) wal.append(r);
    const expect = (from: number, to: number) => recs.slice(from - 1, to).map((r, i) => plain({ ...r, lsn: from + i }));
    assert.deepEqual([...wal.readRecords(1, 200)].map(plain), expect(1, 200));
    assert.deepEqual([...wal.readRecords(57, 140)].map(plain), expect(57, 140));
    assert.deepEqual([...wal.readRecords(200)].map(plain), expect(200, 200));
    assert.deepEqual([...wal.readRecords(150, 10_000)].map(plain), expect(150, 200));
    assert.deepEqual([...wal.readRecords(201)], []);
    assert.deepEqual([...wal.readRecords(10, 9)], []);
    assert.throws(() => wal.readRecords(0), (e: unknown) => e instanceof KeelError && e.code === "INVALID_ARGUMENT");

    // A reader sees what was committed when it was asked, even as appends go on beside it.
    const it = wal.readRecords(190)[Symbol.iterator]();
    const first = it.next();
    for (let i = 0; i < 100; i++) wal.append(randomRecord(rng));
    const rest: number[] = [first.value!.lsn];
    for (let r = it.next(); !r.done; r = it.next()) rest.push(r.value.lsn);
    assert.deepEqual(rest, Array.from({ length: 11 }, (_, i) => 190 + i));
    assert.equal([...wal.readRecords(1)].length, 300);

    // Interleaved appends and reads in the same (active) segment.
    for (let i = 0; i < 50; i++) {
      const lsn = wal.append(randomRecord(rng));
      const got = [...wal.readRecords(lsn)];
      assert.deepEqual(got.map((r) => r.lsn), [lsn]);
    }
    await wal.syncNow();
    const segs = wal.segments();
    wal.gc({ floorLsn: segs[3]!.firstLsn });
    assert.throws(
      () => wal.readRecords(1),
      (e: unknown) => e instanceof KeelError && e.code === "NOT_FOUND" && e.details.oldestLsn === segs[3]!.firstLsn,
    );
    assert.equal([...wal.readRecords(segs[3]!.firstLsn)].at(-1)!.lsn, 350);
    await wal.close();
  } finally {
    cleanup(dir);
  }
});

test("watermarks report committed, durable, pending, segments", async () => {
  const dir = tempDir();
  try {
    const wal = WriteAheadLog.open(nodeFileSystem, dir, { durability: "none" });
    let w = wal.watermarks();
    assert.equal(w.oldestLsn, undefined);
    assert.equal(w.lastSyncAt, undefined);
    for (let i = 0; i < 5; i++) wal.append({ ops: [] });
    w = wal.watermarks();
    assert.deepEqual([w.lastCommittedLsn, w.lastDurableLsn, w.pendingSyncCount, w.oldestLsn, w.segmentCount], [5, 0, 5, 1, 1]);
    assert.equal(w.activeSegment, segmentName(1));
    assert.ok(w.diskBytes >= w.totalBytes && w.totalBytes > SEGMENT_HEADER_SIZE);
    await wal.syncNow();
    w = wal.watermarks();
    assert.deepEqual([w.lastDurableLsn, w.pendingSyncCount], [5, 0]);
    assert.equal(typeof w.lastSyncAt, "number");
    await wal.close();
  } finally {
    cleanup(dir);
  }
});

test("closed log: append, rotate and read throw CLOSED; close is idempotent", async () => {
  const dir = tempDir();
  try {
    const wal = WriteAheadLog.open(nodeFileSystem, dir);
    wal.append({ ops: [] });
    await wal.close();
    await wal.close();
    const closed = (e: unknown) => e instanceof KeelError && e.code === "CLOSED";
    assert.throws(() => wal.append({ ops: [] }), closed);
    assert.throws(() => wal.rotate(), closed);
    assert.throws(() => wal.readRecords(1), closed);
    await wal.waitDurable(1); // already durable: resolves
  } finally {
    cleanup(dir);
  }
});

test("bad options are INVALID_ARGUMENT", () => {
  const dir = tempDir();
  try {
    for (const o of [{ durability: "sometimes" }, { groupCommit: 0 }, { walSegmentMaxBytes: 10 }, { walPreallocBytes: -1 }, { startLsn: 0 }]) {
      assert.throws(
        () => WriteAheadLog.open(nodeFileSystem, dir, o as never),
        (e: unknown) => e instanceof KeelError && e.code === "INVALID_ARGUMENT",
      );
    }
  } finally {
    cleanup(dir);
  }
});
