/**
 * Recovery tests on real files: torn tails cut at every offset, flipped bytes, gaps, out-of-order
 * LSNs, holes left by unsynced writes, torn newest headers, versions, names, idempotence, and a fuzz
 * of whole segment files.
 *
 * Invariants checked: I3, I5 (torn tail truncated; damage before valid synced data or in a sealed
 * segment is CORRUPT and nothing on disk changes), I6 (only coded errors, with segment and offset).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { KeelError } from "../../src/errors.js";
import { nodeFileSystem } from "../../src/io/NodeFileSystem.js";
import { WriteAheadLog, type WalOptions } from "../../src/wal/index.js";
import { decodeLogRecord, encodeLogRecord } from "../../src/wal/LogRecord.js";
import { encodeSegmentHeader, SEGMENT_HEADER_SIZE } from "../../src/wal/SegmentHeader.js";
import { segmentName } from "../../src/wal/SegmentName.js";
import { cleanup, plain, randomRecord, Rng, tempDir } from "./helpers.js";

const opts: WalOptions = { walPreallocBytes: 8192, walSegmentMaxBytes: 2048 };

/** Write n records, each awaited durable (strict), so later records carry syncedThrough = the previous LSN. */
async function buildLog(dir: string, n: number, o: WalOptions = opts, seed = 1) {
  const rng = new Rng(seed);
  const wal = WriteAheadLog.open(nodeFileSystem, dir, o);
  const recs = [];
  for (let i = 0; i < n; i++) {
    const r = randomRecord(rng);
    recs.push(plain({ ...r, lsn: wal.append(r) }));
    if (o.durability !== "none") await wal.waitDurable(i + 1);
  }
  await wal.close();
  return recs;
}

/** Offsets and sizes of the records in a segment file. */
function recordsIn(path: string): { offset: number; size: number; length: number; lsn: number }[] {
  const bytes = new Uint8Array(readFileSync(path));
  const out = [];
  for (let pos = SEGMENT_HEADER_SIZE; ; ) {
    const d = decodeLogRecord(bytes, pos);
    if (d === undefined) break;
    out.push({ offset: pos, size: d.size, length: new DataView(bytes.buffer).getUint32(pos + 4, true), lsn: d.record.lsn });
    pos += d.size;
  }
  return out;
}

function walFiles(dir: string): string[] {
  return readdirSync(join(dir, "wal")).sort();
}

function snapshot(dir: string): Map<string, string> {
  return new Map(walFiles(dir).map((n) => [n, readFileSync(join(dir, "wal", n)).toString("hex")]));
}

function expectCorrupt(dir: string, check: (e: KeelError) => void, o: WalOptions = opts): void {
  const before = snapshot(dir);
  assert.throws(
    () => WriteAheadLog.open(nodeFileSystem, dir, o),
    (e: unknown) => {
      assert.ok(e instanceof KeelError, String(e));
      assert.equal(e.code, "CORRUPT", e.message);
      check(e);
      return true;
    },
  );
  assert.deepEqual(snapshot(dir), before, "a corrupt log must not be changed");
}

test("torn tail: the last record cut at every offset is truncated; the prefix survives", async () => {
  const dir = tempDir();
  try {
    const recs = await buildLog(dir, 30);
    const files = walFiles(dir);
    const last = join(dir, "wal", files.at(-1)!);
    const original = readFileSync(last);
    const tail = recordsIn(last).at(-1)!;
    assert.equal(tail.lsn, 30);
    for (const mode of ["cut", "zero", "garbage"] as const) {
      for (let at = tail.offset; at < tail.offset + tail.length; at++) {
        const b = Buffer.from(original);
        if (mode === "cut") {
          writeFileSync(last, b.subarray(0, at));
        } else {
          const rng = new Rng(at);
          for (let i = at; i < tail.offset + tail.size; i++) b[i] = mode === "zero" ? 0 : rng.int(256);
          writeFileSync(last, b);
        }
        if (mode !== "garbage" && at === tail.offset) {
          // Nothing of the record reached the disk: a clean end of log, nothing to repair.
          const wal = WriteAheadLog.open(nodeFileSystem, dir, opts);
          assert.equal(wal.lastCommittedLsn, 29);
          wal.closeSync();
          continue;
        }
        const wal = WriteAheadLog.open(nodeFileSystem, dir, opts);
        assert.equal(wal.lastCommittedLsn, 29, `${mode} at ${at}`);
        assert.equal(wal.recovery.truncated?.offset, tail.offset, `${mode} at ${at}`);
        assert.equal(wal.recovery.truncated?.segment, files.at(-1));
        wal.closeSync();
        // Recovery is idempotent: the second open finds a clean log ending at the same LSN.
        const again = WriteAheadLog.open(nodeFileSystem, dir, opts);
        assert.equal(again.lastCommittedLsn, 29);
        assert.equal(again.recovery.truncated, undefined);
        again.closeSync();
      }
    }
    writeFileSync(last, original.subarray(0, tail.offset + 10));
    const wal = WriteAheadLog.open(nodeFileSystem, dir, opts);
    assert.deepEqual([...wal.readRecords(1)].map(plain), recs.slice(0, 29));
    assert.equal(wal.append({ ops: [] }), 30);
    wal.closeSync();
    const reopened = WriteAheadLog.open(nodeFileSystem, dir, opts);
    assert.equal(reopened.lastCommittedLsn, 30);
    reopened.closeSync();
  } finally {
    cleanup(dir);
  }
});

test("a flipped byte in an earlier (synced) record of the last segment is CORRUPT with segment and offset", async () => {
  const dir = tempDir();
  try {
    await buildLog(dir, 12, { walPreallocBytes: 8192 });
    const name = walFiles(dir).at(-1)!;
    const path = join(dir, "wal", name);
    const original = readFileSync(path);
    const victim = recordsIn(path)[4]!;
    for (let i = 0; i < victim.size; i++) {
      const b = Buffer.from(original);
      b[victim.offset + i]! ^= 0x20;
      writeFileSync(path, b);
      expectCorrupt(dir, (e) => {
        assert.equal(e.details.segment, name);
        assert.equal(e.details.offset, victim.offset, `flip at +${i}`);
      }, { walPreallocBytes: 8192 });
    }
  } finally {
    cleanup(dir);
  }
});

test("a flipped byte in an earlier segment is CORRUPT naming it", async () => {
  const dir = tempDir();
  try {
    await buildLog(dir, 60);
    const files = walFiles(dir);
    assert.ok(files.length >= 3);
    const path = join(dir, "wal", files[1]!);
    const recs = recordsIn(path);
    const victim = recs.at(-1)!; // even the last record of a sealed segment
    const b = readFileSync(path);
    b[victim.offset + 20]! ^= 1;
    writeFileSync(path, b);
    expectCorrupt(dir, (e) => {
      assert.equal(e.details.segment, files[1]);
      assert.equal(e.details.offset, victim.offset);
    });
  } finally {
    cleanup(dir);
  }
});

test("a sealed segment cut short at a record boundary is a gap: CORRUPT", async () => {
  const dir = tempDir();
  try {
    await buildLog(dir, 60);
    const files = walFiles(dir);
    const path = join(dir, "wal", files[0]!);
    truncateSync(path, recordsIn(path).at(-1)!.offset);
    expectCorrupt(dir, (e) => {
      assert.equal(e.details.segment, files[1]);
      assert.equal(e.details.offset, 0);
    });
  } finally {
    cleanup(dir);
  }
});

test("a deleted middle segment is a gap: CORRUPT naming the segment after it", async () => {
  const dir = tempDir();
  try {
    await buildLog(dir, 60);
    const files = walFiles(dir);
    rmSync(join(dir, "wal", files[1]!));
    expectCorrupt(dir, (e) => {
      assert.equal(e.details.segment, files[2]);
      assert.equal(typeof e.details.expectedLsn, "number");
    });
  } finally {
    cleanup(dir);
  }
});

test("an out-of-order LSN inside a segment is CORRUPT at its offset", () => {
  const dir = tempDir();
  try {
    const walDir = join(dir, "wal");
    nodeFileSystem.mkdir(walDir);
    const parts = [encodeSegmentHeader(1, 0)];
    for (const lsn of [1, 2, 4, 5]) parts.push(encodeLogRecord({ lsn, txTime: 0, kind: "txn", ops: [] }, lsn - 1));
    writeFileSync(join(walDir, segmentName(1)), Buffer.concat(parts));
    const offset4 = SEGMENT_HEADER_SIZE + parts[1]!.length * 2;
    expectCorrupt(dir, (e) => {
      assert.equal(e.details.offset, offset4);
      assert.equal(e.details.expectedLsn, 3);
      assert.equal(e.details.foundLsn, 4);
    });
  } finally {
    cleanup(dir);
  }
});

test("unsynced writes lost out of order (a hole, then complete records) are a torn tail, not corruption", async () => {
  const dir = tempDir();
  try {
    // durability none: nothing synced, so every record carries syncedThrough 0.
    await buildLog(dir, 10, { durability: "none", walPreallocBytes: 8192 }); // close() syncs, but no record saw it
    const path = join(dir, "wal", walFiles(dir)[0]!);
    const recs = recordsIn(path);
    const b = readFileSync(path);
    b.fill(0, recs[4]!.offset, recs[4]!.offset + recs[4]!.size); // record 5's sector never reached the disk
    writeFileSync(path, b);
    const wal = WriteAheadLog.open(nodeFileSystem, dir, { walPreallocBytes: 8192 });
    assert.equal(wal.lastCommittedLsn, 4);
    assert.equal(wal.recovery.truncated?.droppedRecords, 5);
    wal.closeSync();
  } finally {
    cleanup(dir);
  }
});

test("the same hole after records that had seen it durable is CORRUPT", async () => {
  const dir = tempDir();
  try {
    await buildLog(dir, 10, { walPreallocBytes: 8192 });
    const name = walFiles(dir)[0]!;
    const path = join(dir, "wal", name);
    const recs = recordsIn(path);
    const b = readFileSync(path);
    b.fill(0, recs[4]!.offset, recs[4]!.offset + recs[4]!.size);
    writeFileSync(path, b);
    expectCorrupt(dir, (e) => {
      assert.equal(e.details.offset, recs[4]!.offset);
      assert.equal(e.details.laterValidLsn, 6);
    }, { walPreallocBytes: 8192 });
  } finally {
    cleanup(dir);
  }
});

test("a torn header of the newest segment holding no record is an interrupted roll: removed", async () => {
  const dir = tempDir();
  try {
    const recs = await buildLog(dir, 40);
    const files = walFiles(dir);
    const next = segmentName(41);
    const header = encodeSegmentHeader(41, Date.now());
    for (const torn of [new Uint8Array(0), header.subarray(0, 30), new Uint8Array(4096), Buffer.concat([header.subarray(0, 60), Buffer.alloc(4)])]) {
      writeFileSync(join(dir, "wal", next), torn);
      const wal = WriteAheadLog.open(nodeFileSystem, dir, opts);
      assert.deepEqual(wal.recovery.removedSegments, [next]);
      assert.equal(wal.lastCommittedLsn, 40);
      assert.deepEqual(walFiles(dir), files);
      assert.deepEqual([...wal.readRecords(1)].map(plain), recs);
      wal.closeSync();
    }
  } finally {
    cleanup(dir);
  }
});

test("the only segment torn: removed and recreated at the LSN its name gives", () => {
  const dir = tempDir();
  try {
    nodeFileSystem.mkdir(join(dir, "wal"));
    writeFileSync(join(dir, "wal", segmentName(77)), encodeSegmentHeader(77, 0).subarray(0, 10));
    const wal = WriteAheadLog.open(nodeFileSystem, dir, opts);
    assert.equal(wal.lastCommittedLsn, 76);
    assert.equal(wal.append({ ops: [] }), 77);
    wal.closeSync();
  } finally {
    cleanup(dir);
  }
});

test("a damaged header over records is CORRUPT, in the newest segment and in a sealed one", async () => {
  const dir = tempDir();
  try {
    await buildLog(dir, 60);
    const files = walFiles(dir);
    for (const victim of [files.at(-1)!, files[0]!]) {
      const path = join(dir, "wal", victim);
      const original = readFileSync(path);
      const b = Buffer.from(original);
      b[9]! ^= 0xff;
      writeFileSync(path, b);
      expectCorrupt(dir, (e) => {
        assert.equal(e.details.segment, victim);
        assert.equal(e.details.offset, 0);
      });
      writeFileSync(path, original);
    }
  } finally {
    cleanup(dir);
  }
});

test("a segment of a newer format version is refused with VERSION naming both", async () => {
  const dir = tempDir();
  try {
    await buildLog(dir, 3);
    const path = join(dir, "wal", walFiles(dir)[0]!);
    const b = readFileSync(path);
    b.writeUInt16LE(2, 4);
    const { crc32 } = await import("../../src/wal/Crc32.js");
    b.writeUInt32LE(crc32(b.subarray(0, 60)), 60);
    writeFileSync(path, b);
    assert.throws(
      () => WriteAheadLog.open(nodeFileSystem, dir, opts),
      (e: unknown) => e instanceof KeelError && e.code === "VERSION" && e.details.fileVersion === 2 && e.details.supportedVersion === 1,
    );
  } finally {
    cleanup(dir);
  }
});

test("a .wal file with a bad name, or a header naming another LSN, is CORRUPT", async () => {
  const dir = tempDir();
  try {
    await buildLog(dir, 3);
    writeFileSync(join(dir, "wal", "backup.wal"), "x");
    expectCorrupt(dir, (e) => assert.equal(e.details.segment, "backup.wal"));
    rmSync(join(dir, "wal", "backup.wal"));
    writeFileSync(join(dir, "wal", "notes.txt"), "ignored"); // not a segment: ignored
    const first = walFiles(dir).find((n) => n.endsWith(".wal"))!;
    const b = readFileSync(join(dir, "wal", first));
    b.set(encodeSegmentHeader(2, 0), 0);
    writeFileSync(join(dir, "wal", first), b);
    expectCorrupt(dir, (e) => assert.equal(e.details.segment, first));
  } finally {
    cleanup(dir);
  }
});

test("recovery is idempotent: a crash during the repair, then recovery again, gives the same log", async () => {
  const dir = tempDir();
  try {
    const recs = await buildLog(dir, 25);
    const last = join(dir, "wal", walFiles(dir).at(-1)!);
    const tail = recordsIn(last).at(-1)!;
    const b = readFileSync(last);
    b[tail.offset + 30]! ^= 4;
    writeFileSync(last, b);
    for (const phase of ["wal-recovery:before-truncate", "wal-recovery:after-truncate"]) {
      writeFileSync(last, b);
      assert.throws(() =>
        WriteAheadLog.open(nodeFileSystem, dir, {
          ...opts,
          onPhase: (p) => {
            if (p === phase) throw new Error("crash");
          },
        }),
      );
      const first = WriteAheadLog.open(nodeFileSystem, dir, opts);
      assert.equal(first.lastCommittedLsn, 24);
      first.closeSync();
      const state = snapshot(dir);
      const second = WriteAheadLog.open(nodeFileSystem, dir, opts);
      assert.equal(second.lastCommittedLsn, 24);
      assert.equal(second.recovery.truncated, undefined);
      assert.deepEqual([...second.readRecords(1)].map(plain), recs.slice(0, 24));
      second.closeSync();
      assert.deepEqual(snapshot(dir), state);
    }
  } finally {
    cleanup(dir);
  }
});

test("reading a damaged record raises CORRUPT with segment and offset", async () => {
  const dir = tempDir();
  try {
    await buildLog(dir, 60);
    const wal = WriteAheadLog.open(nodeFileSystem, dir, opts);
    const seg = wal.segments()[1]!;
    const recs = recordsIn(seg.path);
    const b = readFileSync(seg.path);
    b[recs[1]!.offset + 40]! ^= 8;
    writeFileSync(seg.path, b); // damage after open: found by the reader
    assert.throws(
      () => [...wal.readRecords(1)],
      (e: unknown) => e instanceof KeelError && e.code === "CORRUPT" && e.details.segment === seg.name && e.details.offset === recs[1]!.offset,
    );
    wal.closeSync();
  } finally {
    cleanup(dir);
  }
});

test("fuzz: damaged segment files give CORRUPT/VERSION or a log that is a prefix of the original", async () => {
  const dir = tempDir();
  try {
    const recs = await buildLog(dir, 40);
    const files = walFiles(dir);
    const originals = new Map(files.map((n) => [n, readFileSync(join(dir, "wal", n))]));
    const rng = new Rng(4242);
    let corruptSeen = 0;
    let opened = 0;
    for (let iter = 0; iter < 300; iter++) {
      for (const [n, b] of originals) writeFileSync(join(dir, "wal", n), b);
      const victim = files[rng.int(files.length)]!;
      const b = Buffer.from(originals.get(victim)!);
      let out: Buffer = b;
      switch (rng.int(4)) {
        case 0:
          for (let k = 0; k < 1 + rng.int(4); k++) b[rng.int(b.length)]! ^= 1 << rng.int(8);
          break;
        case 1:
          out = b.subarray(0, rng.int(b.length));
          break;
        case 2: {
          const at = rng.int(b.length);
          for (let i = at; i < Math.min(b.length, at + 1 + rng.int(600)); i++) b[i] = rng.int(256);
          break;
        }
        default: {
          const at = rng.int(b.length);
          b.fill(0, at, Math.min(b.length, at + 1 + rng.int(600)));
        }
      }
      writeFileSync(join(dir, "wal", victim), out);
      try {
        const wal = WriteAheadLog.open(nodeFileSystem, dir, opts);
        opened++;
        const oldest = wal.watermarks().oldestLsn ?? 1;
        const got = wal.lastCommittedLsn >= oldest ? [...wal.readRecords(oldest)].map(plain) : [];
        assert.deepEqual(got, recs.slice(oldest - 1, oldest - 1 + got.length));
        wal.closeSync();
      } catch (e) {
        assert.ok(e instanceof KeelError && (e.code === "CORRUPT" || e.code === "VERSION"), `iteration ${iter}: ${String(e)}`);
        if (e.code === "CORRUPT") {
          assert.equal(typeof e.details.segment, "string");
          assert.equal(typeof e.details.offset, "number");
        }
        corruptSeen++;
      }
      // Whatever an open repaired, put the next iteration back on the original files.
      for (const n of walFiles(dir)) if (!originals.has(n)) rmSync(join(dir, "wal", n));
    }
    assert.ok(corruptSeen > 50 && opened > 20, `corrupt ${corruptSeen}, opened ${opened}`);
  } finally {
    cleanup(dir);
  }
});
