/**
 * onlineCopy: how an open Database pins the state it copies for db.backup and db.compact, then hands
 * the copy to maintenance/ (copySnapshot: compacting; backupPages: page by page).
 *
 * A page backup copies the last checkpoint and replays the log after it into the copy. Replaying
 * costs far more per commit than the checkpoint that writes the same commits (a descent and a leaf
 * rewrite per operation, in time slices that step back while writers commit), so when more than
 * `maxReplayBytes` of commits are not checkpointed yet, the source is checkpointed first: the
 * checkpoint the policy would run soon anyway, instead of a backup that takes minutes under load.
 * That checkpoint runs concurrently (Engine.runConcurrently), paced like the copy (TimeSlicer:
 * stepping back to a small share of the event loop while writers commit), so writers do not stall
 * behind it; the backup is then of the state it froze, and has no log to replay.
 *
 * Invariants:
 * - The pin is taken in one write-queue task, between transactions, so the copied state is one
 *   whole committed (or durable) snapshot, never part of a transaction.
 * - The pinned snapshot is a registered reader for the whole copy (I2: none of its pages is reused
 *   meanwhile), and a page backup's log floor keeps the records it still has to apply from gc.
 *   Both are released on every path, success, failure or abort, and also when the task itself fails.
 */
import type { BackupLogTail, BackupPagesResult } from "../maintenance/backupPages.js";
import { TimeSlicer } from "../maintenance/TimeSlicer.js";
import type { Meta } from "../pager/Meta.js";
import type { RunningCheckpoint } from "../txn/Engine.js";
import { backupPages } from "../maintenance/backupPages.js";
import { copySnapshot, type CopyResult } from "../maintenance/copyDatabase.js";
import type { Snapshot } from "../txn/Snapshot.js";
import { invalidArgument } from "../errors.js";
import { methodOptions } from "./options.js";
import type { Database } from "./Database.js";
import { LogDurability } from "./LogDurability.js";

export interface OnlineCopyOptions {
  signal?: AbortSignal;
  onProgress?: (p: { entries: number; totalEntries: number }) => void;
}

export interface PageBackupOptions extends OnlineCopyOptions {
  /**
   * Most bytes of commits not yet checkpointed (WriteTxn.dirtyBytes: key + value + 64 per write,
   * plus a page per node copied on write)
   * that the copy replays from the log; above it, the source checkpoints first. Default 256 KiB.
   * 0: always checkpoint first; Infinity: never.
   */
  maxReplayBytes?: number;
}

export const DEFAULT_MAX_REPLAY_BYTES = 256 << 10;

/** db.backup's options (methodOptions), and its maxReplayBytes checked whichever copy is made. */
export function backupOptions(options: (PageBackupOptions & { compact?: boolean }) | undefined): PageBackupOptions & { compact?: boolean } {
  const opts = methodOptions(options, "backup", { compact: "boolean", signal: "signal", onProgress: "function", maxReplayBytes: "any" });
  const mr = opts.maxReplayBytes;
  if (mr !== undefined && (typeof mr !== "number" || !(mr >= 0))) {
    throw invalidArgument("backup: option maxReplayBytes must be a number >= 0 (Infinity: never checkpoint first)", { option: "maxReplayBytes", method: "backup", value: mr });
  }
  return opts;
}

/** Names the log floor of each running page backup. */
let backupSeq = 0;

/**
 * Compacting copy of the last commit queued before the call: the head when the task runs (the
 * transactions of the task's own group before it included; `published` would lag them until the
 * group ends). The task's promise resolves once that state is durable, and rejects if its group
 * failed, which releases the pin. `flags`: the copy's meta flags (undefined keeps the source's; a
 * backup passes 0).
 */
export async function copyHead(db: Database, dest: string, opts: OnlineCopyOptions, flags: number | undefined): Promise<CopyResult> {
  const engine = db.engine;
  let pinned: Snapshot | null = null;
  const snap = await db
    .task(() => {
      const s = engine.head;
      engine.readers.acquire(s.txn);
      pinned = s;
      return s;
    })
    .catch((e: unknown) => {
      if (pinned) engine.readers.release(pinned.txn);
      throw e;
    });
  try {
    return await copySnapshot(engine, snap, db.fs, dest, { signal: opts.signal, onProgress: opts.onProgress, flags });
  } finally {
    engine.readers.release(snap.txn);
  }
}

/**
 * Page backup. One queue task, in order (its promise resolves once the commits queued before this
 * call are durable):
 *   1. With the log, if more than `maxReplayBytes` of commits are not checkpointed: sync the log,
 *      freeze the head for a checkpoint, and pin the head's snapshot (a reader keeps its pages, I2).
 *      After the task, run that checkpoint to its end in paced slices while writers go on; the
 *      backup is of the frozen head, at the meta that checkpoint wrote, with no log tail.
 *   2. Else pin the durable meta and its snapshot. Without the log every group checkpoints, so the
 *      head is checkpointed already, or is by this task (the group would do it next anyway).
 *   3. With the log, capture the records after it up to the head and keep them from gc by a floor.
 */
export async function backupPagesOnline(db: Database, dest: string, opts: PageBackupOptions): Promise<BackupPagesResult> {
  const maxReplay = backupOptions(opts).maxReplayBytes ?? DEFAULT_MAX_REPLAY_BYTES;
  const engine = db.engine;
  const d = db.durability;
  const floor = `backup:${++backupSeq}`;
  let pinned: Snapshot | null = null;
  const unpin = () => {
    if (pinned) engine.readers.release(pinned.txn);
    pinned = null;
    if (d instanceof LogDurability) d.setFloor(floor, undefined);
  };
  const pin = await db
    .task((): Pin => {
      if (d instanceof LogDurability) {
        if (!db.readOnly && engine.dirtyBytes > maxReplay && engine.head.lsn > engine.durable.lsn) {
          // The slot first: READERS_FULL after beginCheckpoint left a frozen checkpoint that no one
          // ran, and while one is frozen no policy checkpoint starts.
          const head = engine.head;
          engine.readers.acquire(head.txn);
          pinned = head; // a throwing beginCheckpoint (its log sync) releases it in the catch below
          const run = d.beginCheckpoint(); // freezes `head` (nothing commits inside a task)
          if (run) return { run };
          engine.readers.release(head.txn);
          pinned = null;
        }
        const s = engine.durable;
        const head = engine.head;
        const records = head.lsn > s.lsn ? d.wal.readRecords(s.lsn + 1, head.lsn) : [];
        engine.readers.acquire(s.txn);
        pinned = s;
        d.setFloor(floor, s.lsn + 1);
        return { snap: s, meta: engine.durableMeta, log: { records, toLsn: head.lsn, toTxn: head.txn } };
      }
      if (!db.readOnly && engine.needsCheckpoint) d.checkpoint(true);
      const s = engine.head;
      engine.readers.acquire(s.txn);
      pinned = s;
      return { snap: s, meta: engine.durableMeta, log: undefined };
    })
    .catch((e: unknown) => {
      unpin(); // the group of the task failed: nothing stays pinned
      throw e;
    });
  try {
    let copy: Exclude<Pin, { run: unknown }>;
    if ("run" in pin) {
      const run = pin.run;
      const slicer = new TimeSlicer({ signal: opts.signal, isClosed: () => engine.closed, what: "the backup's checkpoint", activity: () => engine.head.txn });
      await (d as LogDurability).runCheckpoint(run, slicer);
      copy = { snap: run.head, meta: run.meta!, log: { records: [], toLsn: run.head.lsn, toTxn: run.head.txn } };
    } else copy = pin;
    return await backupPages(engine, copy.snap, db.fs, dest, { signal: opts.signal, onProgress: opts.onProgress, meta: copy.meta, log: copy.log });
  } finally {
    unpin();
  }
}

/** What the pin task hands over: the state to copy, or the checkpoint to run first (step 1). */
type Pin = { snap: Snapshot; meta: Meta; log: BackupLogTail | undefined } | { run: RunningCheckpoint };
