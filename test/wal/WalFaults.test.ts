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
