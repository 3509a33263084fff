/**
 * CheckpointDurability: the `wal: false` mode. Each group of commits is one checkpoint:
 * data pages, fdatasync, meta page, fdatasync (two syncs, as LMDB). Open needs no replay.
 *
 * A group that writes at most ONE_SYNC_MAX_BYTES of pages syncs pages and meta together, once
 * (Checkpoint.ts, "One sync"; open checks such a checkpoint's pages: txn/checkpointIntact.ts).
 *
 * Invariant I4 (for this mode): a commit resolves only after its checkpoint's syncs returned
 * (unless noSync/noMetaSync say otherwise), and readers see it only then.
 *
 * Read-only (a process reading beside a writer, or a tool): nothing commits, and the log records
 * a read-only open replayed stay in memory; no call here writes (the file is open read-only).
 */
import type { Engine } from "../txn/Engine.js";
import type { Snapshot } from "../txn/Snapshot.js";
import type { WriteTxn } from "../txn/WriteTxn.js";
import type { Database } from "./Database.js";
import type { Durability } from "./Durability.js";

/**
 * Bound of a one-sync checkpoint. Open reads every page of the newest one-sync checkpoint, so
 * this bounds that check (about a millisecond per MiB from the page cache); a commit group
 * above it pays the second sync, which is small beside writing that much.
 */
export const ONE_SYNC_MAX_BYTES = 4 << 20;

export class CheckpointDurability implements Durability {
  #engine: Engine;
  #db: Database | null = null;
  get groupsShareSyncs(): boolean {
    return !this.#engine.noSync;
  }

  readonly #readOnly: boolean;

  constructor(engine: Engine, opts: { readOnly?: boolean } = {}) {
    this.#engine = engine;
    this.#readOnly = !!opts.readOnly;
    engine.oneSyncMaxPages = Math.floor(ONE_SYNC_MAX_BYTES / engine.limits.pageSize);
  }

  attach(db: Database): void {
    this.#db = db;
  }

  commit(w: WriteTxn): void {
    this.#engine.commitWrite(w, 0);
  }

  makeDurable(): void {
    // A read-only group holds only tasks (a backup's pin, a verify): nothing to make durable.
    if (!this.#readOnly) this.#engine.checkpoint();
  }

  makeDurableSync(): void {
    if (!this.#readOnly) this.#engine.checkpoint();
  }

  rollback(_base: Snapshot): void {
    this.#engine.rollbackTo(this.#engine.durable);
  }

  published(txns: WriteTxn[]): void {
    const e = this.#engine;
    e.publish(e.head);
    this.#db?.emitCommits(txns);
  }

  syncAll(): void {
    if (!this.#readOnly) this.#engine.sync();
  }

  checkpoint(_force: boolean): void {
    if (!this.#readOnly) this.#engine.checkpoint();
  }

  close(): void {
    if (!this.#readOnly) this.#engine.supersedeFailedMeta();
    if (!this.#readOnly && (this.#engine.noSync || this.#engine.noMetaSync)) this.#engine.sync();
  }
}
