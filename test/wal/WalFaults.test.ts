/**
 * Fault injection: fail the N-th I/O call of a WAL workload, for every N, with EIO and ENOSPC (and
 * partial writes). Checked: every error the log raises is a coded KeelError; after the fault the log
 * is either still usable or in the failed state; a reopened log recovers with no human help, holds
 * every acknowledged record, and is an exact prefix of what was appended.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { KeelError } from "../../src/errors.js";
import { CrashFileSystem } from "../../src/io/CrashFileSystem.js";
import { FaultFileSystem } from "../../src/io/FaultFileSystem.js";
import { WriteAheadLog, type WalOptions } from "../../src/wal/index.js";
import { plain, randomRecord, Rng } from "./helpers.js";

const opts: WalOptions = { walSegmentMaxBytes: 1500, walPreallocBytes: 1024 };

function assertCoded(e: unknown): asserts e is KeelError {
  assert.ok(e instanceof KeelError, `not a KeelError: ${String(e)}`);
  assert.ok(e.code === "IO" || e.code === "FULL", `unexpected code ${e.code}: ${e.message}`);
}

async function workload(fs: FaultFileSystem, rng: Rng, appended: unknown[], ack: (lsn: number) => void): Promise<void> {
  const wal = WriteAheadLog.open(fs, "/db", opts);
  try {
    for (let i = 0; i < 40; i++) {
      const r = randomRecord(rng);
      const lsn0 = wal.lastCommittedLsn + 1;
      try {
        const lsn = wal.append(r);
        assert.equal(lsn, lsn0);
        appended[lsn - 1] = plain({ ...r, lsn });
      } catch (e) {
        assertCoded(e);
        // A failed append consumed no LSN; the record may still be on disk in part (never valid
        // at a committed LSN, since the next append writes over it).
        assert.equal(wal.lastCommittedLsn, lsn0 - 1);
        appended[lsn0 - 1] = undefined;
        if (wal.failed) return;
        continue;
      }
      if (i % 4 === 3) {
        try {
          await wal.waitDurable(wal.lastCommittedLsn);
          ack(wal.lastCommittedLsn);
        } catch (e) {
          assertCoded(e);
          assert.ok(wal.failed, "a failed group sync must leave the log failed");
          return;
        }
      }
      if (i % 13 === 12) {
        try {
          wal.rotate();
        } catch (e) {
          assertCoded(e);
        }
      }
      if (i % 17 === 16) {
        try {
          wal.gc({ floorLsn: Math.max(1, wal.lastDurableLsn - 5) });
        } catch (e) {
          assertCoded(e);
        }
      }
    }
  } finally {
    try {
      await wal.close();
    } catch (e) {
      assertCoded(e);
    }
  }
}

test("fail the N-th I/O call, for every N: coded errors, then a clean recovery of a prefix", async () => {
  let n = 1;
  let ranOut = false;
  while (!ranOut) {
    for (const errno of ["EIO", "ENOSPC"] as const) {
      const disk = new CrashFileSystem();
      disk.mkdir("/db");
      disk.syncDir("/");
      const fs = new FaultFileSystem(disk);
      fs.failAt(n, { errno, partialWrite: n % 3 === 0 });
      const appended: unknown[] = [];
      let acked = 0;
      try {
        await workload(fs, new Rng(n), appended, (l) => (acked = Math.max(acked, l)));
      } catch (e) {
        assertCoded(e); // open itself failed
      }
      if (fs.faultsInjected === 0) ranOut = true;
      // Restart the process, then also lose power: what was acknowledged must survive both.
      for (const crashed of [disk.clone(), disk.crashedCopy(n, { model: "dropAll" })]) {
        const wal = WriteAheadLog.open(crashed, "/db", opts);
        assert.ok(wal.lastCommittedLsn >= acked, `N=${n} ${errno}: acknowledged LSN ${acked} lost`);
        const oldest = wal.watermarks().oldestLsn;
        if (oldest !== undefined) {
          for (const r of wal.readRecords(oldest)) {
            assert.deepEqual(plain(r), appended[r.lsn - 1], `N=${n} ${errno}: LSN ${r.lsn} is not what was appended`);
          }
        }
        wal.closeSync();
      }
    }
    n++;
  }
  assert.ok(n > 100, `only ${n} calls in the workload`);
});

test("a record larger than the write buffer whose own write fails (ENOSPC, EIO, with a partial write) is taken back: the log stays usable, the next record takes its LSN and place, and nothing of it is read back after a restart or a power cut", async () => {
  const big = (byte: number, bytes: number) => ({ txTime: 1_700_000_000_000, ops: [{ type: "put" as const, db: "", key: Buffer.from("big"), value: Buffer.alloc(bytes, byte) }] });
  const o: WalOptions = { walSegmentMaxBytes: 64 << 20, walPreallocBytes: 256 << 10 };
  for (const errno of ["ENOSPC", "EIO"] as const) {
    // 100 KiB starts and ends inside the preallocated chunk (the zeros come back); 300 KiB ends
    // less than a chunk past it, so the failing write is the preallocation's zero-fill (whatever
    // zeros landed are cut off: they would hold the space of a full disk); 600 KiB runs more than
    // a chunk past it, so it skips preallocation (the file is cut back to the chunk too).
    for (const bytes of [100 << 10, 300 << 10, 600 << 10]) {
      for (const partialWrite of [true, 1, false]) {
        const what = `${errno} ${bytes} bytes partial=${String(partialWrite)}`;
        const disk = new CrashFileSystem();
        disk.mkdir("/db");
        disk.syncDir("/");
        const fs = new FaultFileSystem(disk);
        const wal = WriteAheadLog.open(fs, "/db", o);
        const appended: unknown[] = [];
        const add = (r: ReturnType<typeof big> | ReturnType<typeof randomRecord>) => {
          const lsn = wal.append(r);
          appended[lsn - 1] = plain({ ...r, lsn });
        };
        const rng = new Rng(bytes);
        for (let i = 0; i < 5; i++) add(randomRecord(rng));
        wal.syncSync();
        const sizeBefore = wal.segments().at(-1)!.fileBytes;
        fs.failAt(1, { errno, kinds: ["write"], partialWrite });
        const e = (() => {
          try {
            wal.append(big(0xab, bytes));
          } catch (err) {
            return err;
          }
          return undefined;
        })();
        assert.ok(e instanceof KeelError && e.code === (errno === "ENOSPC" ? "FULL" : "IO"), `${what}: ${String(e)}`);
        assert.equal(wal.failed, undefined, `${what}: the log must stay usable`);
        assert.equal(wal.lastCommittedLsn, 5, `${what}: no LSN used`);
        const seg = wal.segments().at(-1)!;
        assert.equal(seg.fileBytes, sizeBefore, `${what}: the file is back to its allocated size`);
        // Zeros again after the last record: a value's bytes left there could read as a record
        // (a stored log segment, say) once shorter records are written over its start.
        const file = disk.readFile(seg.path);
        assert.equal(file.length, sizeBefore);
        assert.ok(file.subarray(seg.bytes).every((b) => b === 0), `${what}: bytes of the failed record are left after the log's end`);
        fs.clearFaults();
        add(randomRecord(rng)); // LSN 6, where the failed record began
        wal.syncSync();
        add(big(0xcd, 1000)); // LSN 7, unsynced: may be lost in the power cut
        for (const [label, copy] of [["restart", disk.clone()], ["power cut", disk.crashedCopy(bytes, { model: "dropAll" })]] as const) {
          const again = WriteAheadLog.open(copy, "/db", o);
          assert.ok(again.lastCommittedLsn >= 6, `${what} ${label}: the acknowledged LSN 6 is lost`);
          const got = [...again.readRecords(1)].map(plain);
          assert.deepEqual(got, appended.slice(0, got.length), `${what} ${label}: records differ`);
          for (const r of got) assert.ok(!JSON.stringify(r).includes("abab"), `${what} ${label}: the failed record was read back`);
          again.closeSync();
        }
        wal.closeSync();
      }
    }
  }
});
