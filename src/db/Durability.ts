/**
 * Durability: how a committed transaction becomes safe, and when readers may see it.
 * One implementation per mode (DESIGN.md section 4):
 *   CheckpointDurability: no log; every group of commits is one checkpoint (LMDB's model).
 *   LogDurability (db/LogDurability.ts): one log record per commit, periodic checkpoints.
 */
import type { Snapshot } from "../txn/Snapshot.js";
import type { WriteTxn } from "../txn/WriteTxn.js";
import type { Database } from "./Database.js";

export interface Durability {
  /** True when making a group durable costs a sync (so bigger groups are worth waiting for). */
  readonly groupsShareSyncs: boolean;
  /** Called once by open() with the Database the durability serves (for commit events). */
  attach(db: Database): void;
  /** Commit `w` to the engine head (and log it). May throw; then nothing of `w` is kept. */
  commit(w: WriteTxn): void;
  /** Make every commit so far durable as the settings promise. */
  makeDurable(): Promise<void> | void;
  makeDurableSync(): void;
  /** Undo the commits after `base` (their durability failed). */
  rollback(base: Snapshot): void;
  /** The group is durable: publish it to readers and report it. */
  published(txns: WriteTxn[]): void;
  /** db.sync(): everything committed is durable when it returns. */
  syncAll(): void;
  /** Write the committed state into the data file (`force`: even if the policy would wait). */
  checkpoint(force: boolean): void;
  /** Clean shutdown: checkpoint, sync, close files. */
  close(): void;
}
