/**
 * Retention and gc tests.
 *
 * Invariants checked: floors always win; retention is bytes OR age; only a prefix of sealed
 * segments is deleted (never the active one); each deletion syncs the directory; running readers
 * hold the segments they still need.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { KeelError } from "../../src/errors.js";
import { nodeFileSystem } from "../../src/io/NodeFileSystem.js";
import { READER_FLOOR, WriteAheadLog } from "../../src/wal/WriteAheadLog.js";
import { planRetention } from "../../src/wal/WalRetention.js";
import type { SegmentInfo } from "../../src/wal/LogSegment.js";
import { cleanup, CountingFileSystem, tempDir } from "./helpers.js";

const op = { ops: [{ type: "put" as const, db: "d", key: new Uint8Array([1]), value: new Uint8Array(100) }] };

function seg(firstLsn: number, lastLsn: number, bytes: number, lastTxTime: number, sealed = true): SegmentInfo {
  return { name: String(firstLsn), path: "", firstLsn, lastLsn, records: lastLsn - firstLsn + 1, bytes, fileBytes: bytes, sealed, createdAt: 0, lastTxTime };
}

test("planRetention: floors win, retention is bytes OR age, only a prefix, never the active segment", () => {
  const segs = [seg(1, 10, 100, 1000), seg(11, 20, 100, 2000), seg(21, 30, 100, 3000), seg(31, 40, 100, 4000, false)];
  // No policy: floors alone decide.
  assert.deepEqual(planRetention(segs, { floorLsn: 21 }, 0).delete, ["1", "11"]);
  assert.deepEqual(planRetention(segs, { floorLsn: 1e9 }, 0).delete, ["1", "11", "21"]);
  // Bytes: a segment may go when the log newer than it exceeds 150 bytes.
  assert.deepEqual(planRetention(segs, { floorLsn: 1e9, retentionBytes: 150 }, 0).delete, ["1", "11"]);
  // Age: newest record older than 1500 ms.
  assert.deepEqual(planRetention(segs, { floorLsn: 1e9, retentionMs: 1500 }, 3000).delete, ["1"]);
  // Either suffices.
  assert.deepEqual(planRetention(segs, { floorLsn: 1e9, retentionMs: 1500, retentionBytes: 150 }, 3000).delete, ["1", "11"]);
  // Neither lets go: nothing.
  assert.deepEqual(planRetention(segs, { floorLsn: 1e9, retentionMs: 1e9, retentionBytes: 1e9 }, 3000).delete, []);
  // A floor holds what retention would delete, and says so.
  const p = planRetention(segs, { floors: { checkpoint: 25, snapshot: 15 }, retentionBytes: 0 }, 0);
  assert.deepEqual(p.delete, ["1"]);
  assert.deepEqual(
    p.heldByFloor.map((h) => [h.segment, h.floor, h.floorLsn]),
    [
      ["11", "snapshot", 15],
      ["21", "snapshot", 15],
    ],
  );
  // Age not monotone: a younger-looking old segment stops the prefix.
  const odd = [seg(1, 10, 100, 5000), seg(11, 20, 100, 1000), seg(21, 30, 100, 9000, false)];
  assert.deepEqual(planRetention(odd, { floorLsn: 1e9, retentionMs: 2000 }, 6000).delete, []);
  assert.throws(() => planRetention(segs, {}, 0), (e: unknown) => e instanceof KeelError && e.code === "INVALID_ARGUMENT");
});

test("gc deletes sealed segments below the floor, syncs the directory per file, keeps the log readable", async () => {
  const dir = tempDir();
  try {
    const fs = new CountingFileSystem();
    const phases: string[] = [];
    const wal = WriteAheadLog.open(fs, dir, { walSegmentMaxBytes: 1024, walPreallocBytes: 4096, onPhase: (p) => phases.push(p) });
    for (let i = 0; i < 60; i++) wal.append(op);
    await wal.syncNow();
    const segs = wal.segments();
    assert.ok(segs.length >= 6);
    const floor = segs[4]!.firstLsn + 1; // segment 4 holds the floor: keep it and everything after
    const dirSyncs = fs.ctl.syncDirs;
    const r = wal.gc({ floorLsn: floor });
    assert.deepEqual(r.deleted.map((s) => s.name), segs.slice(0, 4).map((s) => s.name));
    assert.equal(fs.ctl.syncDirs - dirSyncs, 4);
    assert.equal(phases.filter((p) => p === "wal-gc:after-delete").length, 4);
    for (const s of segs.slice(0, 4)) assert.equal(existsSync(s.path), false);
    assert.equal(wal.watermarks().oldestLsn, segs[4]!.firstLsn);
    assert.equal(r.freedBytes, segs.slice(0, 4).reduce((n, s) => n + s.fileBytes, 0));
    assert.equal([...wal.readRecords(segs[4]!.firstLsn)].length, 60 - segs[4]!.firstLsn + 1);
    // The active segment never goes, whatever the floor.
    wal.gc({ floorLsn: Number.MAX_SAFE_INTEGER });
    assert.equal(wal.segments().length, 1);
    assert.equal(wal.segments()[0]!.sealed, false);
    await wal.close();
    const again = WriteAheadLog.open(fs, dir);
    assert.equal(again.lastCommittedLsn, 60);
    again.closeSync();
  } finally {
    cleanup(dir);
  }
});

test("gc enforces retention bytes and age, and reports which floor held the rest", async () => {
  const dir = tempDir();
  try {
    let now = 1_000_000;
    const wal = WriteAheadLog.open(nodeFileSystem, dir, { walSegmentMaxBytes: 1024, walPreallocBytes: 4096, now: () => now });
    for (let i = 0; i < 60; i++) {
      wal.append(op);
      now += 1000;
    }
    const segs = wal.segments();
    const total = segs.reduce((n, s) => n + s.bytes, 0);
    // A segment goes when the log newer than it exceeds retentionBytes: just under the newest 3 segments.
    const keepBytes = segs.slice(-3).reduce((n, s) => n + s.bytes, 0) - 1;
    let r = wal.gc({ floorLsn: Number.MAX_SAFE_INTEGER, retentionBytes: keepBytes, retentionMs: 1e12 });
    assert.deepEqual(r.deleted.map((s) => s.name), segs.slice(0, segs.length - 3).map((s) => s.name));
    assert.ok(wal.watermarks().totalBytes <= keepBytes + segs.at(-4)!.bytes && wal.watermarks().totalBytes < total);
    // Age: everything older than 5 s may go, but a checkpoint floor at the second segment holds it.
    const left = wal.segments();
    r = wal.gc({ floors: { checkpoint: left[1]!.firstLsn }, retentionMs: 5000 });
    assert.deepEqual(r.deleted.map((s) => s.name), [left[0]!.name]);
    assert.deepEqual(r.heldByFloor.map((h) => [h.segment, h.floor]), [[left[1]!.name, "checkpoint"]]);
    wal.closeSync();
  } finally {
    cleanup(dir);
  }
});

test("a running reader holds the segments it still needs", async () => {
  const dir = tempDir();
  try {
    const wal = WriteAheadLog.open(nodeFileSystem, dir, { walSegmentMaxBytes: 1024, walPreallocBytes: 4096 });
    for (let i = 0; i < 60; i++) wal.append(op);
    const it = wal.readRecords(1)[Symbol.iterator]();
    assert.equal(it.next().value!.lsn, 1);
    const r = wal.gc({ floorLsn: Number.MAX_SAFE_INTEGER });
    assert.deepEqual(r.deleted, []);
    assert.equal(r.heldByFloor[0]!.floor, READER_FLOOR);
    const lsns = [1];
    for (let x = it.next(); !x.done; x = it.next()) lsns.push(x.value.lsn);
    assert.equal(lsns.length, 60);
    // Done reading: the pin is gone.
    assert.ok(wal.gc({ floorLsn: Number.MAX_SAFE_INTEGER }).deleted.length > 0);
    // A reader that breaks early releases its pin too.
    for (let i = 0; i < 30; i++) wal.append(op);
    const first = wal.watermarks().oldestLsn!;
    for (const rec of wal.readRecords(first)) if (rec.lsn > first) break;
    wal.rotate();
    assert.ok(wal.gc({ floorLsn: Number.MAX_SAFE_INTEGER }).deleted.length > 0);
    wal.closeSync();
  } finally {
    cleanup(dir);
  }
});
