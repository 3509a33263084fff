/**
 * onlineSnapshot: db.createSnapshot() on an open database with the log, writers going on
 * (maintenance/Snapshots.ts writes and rotates the copy; this file keeps what it reads in place
 * and the log it needs).
 *
 * In order:
 *   1. The bulk of the checkpoint in slices (checkpointConcurrently), so step 2 has little left.
 *   2. One write-queue task, between transactions: checkpoint (log synced first), rotate the
 *      segment, pin the published snapshot as a registered reader (its pages stay intact during
 *      the copy: I2) and set the "snapshot-pending" floor at its LSN + 1.
 *   3. Copy and rotate (maintenance/Snapshots.ts), the pin released on every path.
 *   4. One task: the "snapshot" floor moves to 1 + the LSN of the oldest kept snapshot, the
 *      pending floor goes, and gc deletes what no floor needs.
 *
 * Invariants: the pending floor is set before any checkpoint or gc could drop the log the new
 * snapshot needs, and cleared on every path; Database runs one createSnapshot at a time (each
 * builds snapshots/incoming, and clears it first as a crash leftover).
 */
import { createSnapshot, listSnapshots, type SnapshotInfo } from "../maintenance/Snapshots.js";
import type { Database } from "./Database.js";
import { LogDurability } from "./LogDurability.js";

export async function snapshotOnline(db: Database, d: LogDurability, opts: { signal?: AbortSignal | undefined }): Promise<SnapshotInfo> {
  const engine = db.engine;
  // Step 1.
  await d.checkpointConcurrently(db);
  // Step 2. If the task's group fails after the pin was taken, the pin and the floor go with it.
  let pinned: number | null = null;
  const snap = await db
    .task(() => {
      d.checkpoint(true);
      engine.onPhase?.("snapshot:after-checkpoint");
      d.wal.rotate();
      const s = engine.published;
      engine.readers.acquire(s.txn);
      pinned = s.txn;
      // Checkpoints and gc go on during the copy: keep the log the new snapshot will need.
      d.setFloor("snapshot-pending", s.lsn + 1);
      return s;
    })
    .catch((e: unknown) => {
      if (pinned !== null) {
        engine.readers.release(pinned);
        d.setFloor("snapshot-pending", undefined);
      }
      throw e;
    });
  // Step 3.
  let info: SnapshotInfo;
  try {
    info = await createSnapshot(engine, db.fs, db.path, snap, { onPhase: engine.onPhase, signal: opts.signal });
  } catch (e) {
    if (!db.isClosed) await db.task(() => d.setFloor("snapshot-pending", undefined)).catch(() => {});
    throw e;
  } finally {
    engine.readers.release(snap.txn);
  }
  // Step 4.
  await db.task(() => {
    updateSnapshotFloor(db);
    d.setFloor("snapshot-pending", undefined);
    d.gc();
  });
  return info;
}

/** The log must keep everything after the oldest kept snapshot (a damaged snapshot.json: all of it). */
export function updateSnapshotFloor(db: Database): void {
  if (!(db.durability instanceof LogDurability)) return;
  let snaps: SnapshotInfo[];
  try {
    snaps = listSnapshots(db.fs, db.path);
  } catch {
    db.durability.setFloor("snapshot", 0);
    return;
  }
  const oldest = snaps.reduce((m, s) => Math.min(m, s.lsn), Infinity);
  db.durability.setFloor("snapshot", Number.isFinite(oldest) ? oldest + 1 : undefined);
}
