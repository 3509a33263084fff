/**
 * WriteQueue: the write path of a Database, as numbered steps.
 *   1. put/remove/transaction calls are queued (the Database validated them: bad input never enters).
 *   2. On the next turn of the event loop the queue is drained in groups of at most
 *      MAX_GROUP_ITEMS calls: consecutive put/remove calls form one transaction, each
 *      transaction() callback its own, and the callbacks of a GroupItem one shared transaction
 *      where that is safe (#runGroupItem).
 *   3. Each transaction commits to the engine's head (and, with a log, appends one record).
 *   4. The group is made durable once (one checkpoint, or one log sync): group commit.
 *   5. Then the group is published to readers and every promise of the group resolves.
 * If step 4 fails, every transaction of the group is rolled back and rejected with the coded
 * error (IO, FULL); the database stays open at its last good state.
 *
 * Invariant: one group runs at a time, and a transaction callback runs with the write lock; a
 * write issued from inside a callback's synchronous part is refused (TXN) instead of deadlocking.
 */
import { KeelError, invalidArgument } from "../errors.js";
import type { Engine } from "../txn/Engine.js";
import type { WriteTxn } from "../txn/WriteTxn.js";
import type { Durability } from "./Durability.js";
import type { SubDatabase } from "./SubDatabase.js";
import { Transaction } from "./Transaction.js";
import { writeGroupChannel, writeGroupDoneChannel, type WriteGroupDoneMessage, type WriteGroupMessage } from "../util/instrumentation.js";

export type QueueItem =
  | { kind: "put"; db: SubDatabase; key: string; value: string | Buffer }
  | { kind: "remove"; db: SubDatabase; key: string }
  | { kind: "txn"; db: SubDatabase; fn: (tx: Transaction) => unknown }
  | GroupItem
  /** Maintenance that must run between transactions (checkpoint, snapshot preparation). */
  | { kind: "task"; fn: () => unknown };

/**
 * Synchronous callbacks that share one transaction where that cannot be told apart from running
 * each in a transaction of its own, in order (see #runGroupItem). The promise resolves to one
 * settled result per callback. `fns` may still grow until the item starts: `onStart` is called
 * first, so the owner can stop adding. `onRetry` is called when the shared attempt is undone and
 * the callbacks are about to run again one transaction each: state the owner keeps beside the
 * callbacks' writes must be reset then.
 */
export interface GroupItem {
  kind: "group";
  db: SubDatabase;
  fns: Array<(tx: Transaction) => unknown>;
  onStart?: () => void;
  onRetry?: () => void;
}

/**
 * Calls drained as one group at most. Every transaction of a group keeps the tree nodes it copied
 * until the group is published (a few KB for a one-put transaction), and no checkpoint can run
 * inside a group: without a bound, a burst of transaction() calls in one turn held memory without
 * limit (hundreds of thousands ran the heap out) and the event loop for seconds.
 */
export const MAX_GROUP_ITEMS = 4096;

export type Settled = { status: "fulfilled"; value: unknown } | { status: "rejected"; reason: unknown };

interface Pending {
  item: QueueItem;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  /** What the writer's promise resolves to, once its group is durable. */
  result: unknown;
  /** Position in the queue, from 1: flushed() waits for the items up to a position. */
  seq: number;
}

/** What the queue needs from its Database. */
export interface QueueHost {
  readonly engine: Engine;
  readonly durability: Durability;
  readonly isClosed: boolean;
  readonly path: string;
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return !!v && typeof (v as { then?: unknown }).then === "function";
}

function syncResult(r: unknown): unknown {
  if (isThenable(r)) throw invalidArgument("a grouped transaction callback must be synchronous", { argument: "fn" });
  return r;
}

/** The callers a settled group answers (see WriteGroupDoneMessage). */
function writersOf(done: readonly Pending[]): number {
  let n = 0;
  for (const p of done) {
    if (p.item.kind === "group") n += (p.result as Settled[]).length;
    else if (p.item.kind !== "task") n++;
  }
  return n;
}

export class WriteQueue {
  readonly #host: QueueHost;
  #queue: Pending[] = [];
  #scheduled = false;
  #draining: Promise<void> | null = null;
  /** The transaction whose callback is running synchronously right now. */
  #inCallback: WriteTxn | null = null;
  /** When the first write of the queued group was queued (instrumentation: writer wait). */
  #firstQueuedAt = 0;
  /** Items queued so far, and the position up to which every item has settled. */
  #queued = 0;
  #settledThrough = 0;
  /** flushed() calls waiting for a position to settle. */
  #flushWaiters: Array<{ seq: number; resolve: () => void }> = [];

  constructor(host: QueueHost) {
    this.#host = host;
  }

  /**
   * Throw TXN if a transaction callback is running synchronously right now: `what` would wait for
   * that transaction, which waits for the callback: a deadlock. (Only the synchronous part of a
   * callback is watched: AsyncLocalStorage would slow every promise of the whole process on Node 20.)
   */
  refuseInCallback(what: string): void {
    const open = this.#inCallback;
    if (open && !open.ended) {
      throw new KeelError("TXN", `${what} called inside a transaction callback would wait forever for that transaction; use tx.put/tx.remove (or tx.for(subDb)) inside it, and call ${what} after it`, {
        txn: open.txn,
      });
    }
  }

  /** Queue a write (the caller checked that the database is open and writable). */
  enqueue(item: QueueItem): Promise<unknown> {
    this.refuseInCallback(item.kind === "task" ? "a maintenance call (sync, checkpoint, snapshot, backup...)" : "db.put/remove/transaction");
    return new Promise((resolve, reject) => {
      if (this.#queue.length === 0) this.#firstQueuedAt = performance.now();
      this.#queue.push({ item, resolve, reject, result: undefined, seq: ++this.#queued });
      if (!this.#scheduled && !this.#draining) {
        this.#scheduled = true;
        setImmediate(() => this.#startDrain());
      }
    });
  }

  #startDrain(): void {
    this.#scheduled = false;
    if (this.#draining) return;
    this.#draining = this.#drain().finally(() => {
      this.#draining = null;
      if (this.#queue.length && !this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#startDrain());
      }
    });
  }

  async #drain(): Promise<void> {
    let lastYield = performance.now();
    while (this.#queue.length) {
      let group = this.#queue;
      if (group.length <= MAX_GROUP_ITEMS) this.#queue = [];
      else group = this.#queue.splice(0, MAX_GROUP_ITEMS);
      if (writeGroupChannel.hasSubscribers) writeGroupChannel.publish({ items: group.length, waitMs: performance.now() - this.#firstQueuedAt } satisfies WriteGroupMessage);
      try {
        await this.#runGroup(group);
      } finally {
        // Every item of the group has settled (#runGroup answers each before it returns).
        this.#settled(group[group.length - 1]!.seq);
      }
      // Awaiting writers re-enqueue from promise continuations, which would keep this loop in
      // microtasks forever: give timers, I/O and the log's sync scheduling a turn. Where a group
      // pays for a sync, yield after every group, so that every writer's next write (however
      // deep its await chain) joins the next group and shares its sync; otherwise at least
      // every millisecond.
      if (this.#queue.length && (this.#host.durability.groupsShareSyncs || performance.now() - lastYield >= 1)) {
        await new Promise<void>((r) => setImmediate(r));
        lastYield = performance.now();
      }
    }
  }

  async #runGroup(group: Pending[]): Promise<void> {
    const engine = this.#host.engine;
    const base = engine.head;
    // Writers whose transactions are committed (their results in Pending.result), and those
    // of the open batch of plain puts and removes.
    const done: Pending[] = [];
    const txns: WriteTxn[] = [];
    let batch: WriteTxn | null = null;
    let batchItems: Pending[] = [];
    const commitBatch = (): boolean => {
      if (!batch) return true;
      const w = batch;
      batch = null;
      try {
        this.#host.durability.commit(w);
      } catch (e) {
        engine.abortWrite(w);
        for (const p of batchItems) p.reject(e);
        batchItems = [];
        return true;
      }
      // Committed (its record is in the log): from here on nothing may reject these writers.
      // A loop, not push(...): a batch can hold more items than a call has argument slots.
      txns.push(w);
      for (const d of batchItems) done.push(d);
      batchItems = [];
      return true;
    };
    for (const p of group) {
      const it = p.item;
      if (this.#host.isClosed) {
        p.reject(new KeelError("CLOSED", `the database at ${this.#host.path} is closed`, { path: this.#host.path }));
        continue;
      }
      if (it.kind === "put" || it.kind === "remove") {
        try {
          if (!batch) batch = engine.beginWrite();
          if (it.kind === "put") {
            it.db.ensureExists(batch);
            batch.put(it.db.name, it.key, it.value);
            p.result = true;
          } else p.result = batch.remove(it.db.name, it.key);
          batchItems.push(p);
        } catch (e) {
          // A failure inside a tree operation may leave the batch half-applied: drop all of it.
          if (batch) engine.abortWrite(batch);
          batch = null;
          for (const q of batchItems) q.reject(e);
          batchItems = [];
          p.reject(e);
        }
        continue;
      }
      commitBatch();
      if (it.kind === "group") {
        p.result = this.#runGroupItem(it, txns);
        done.push(p);
        continue;
      }
      if (it.kind === "task") {
        try {
          p.result = it.fn();
          done.push(p);
        } catch (e) {
          p.reject(e);
        }
        continue;
      }
      let w: WriteTxn;
      try {
        w = engine.beginWrite();
      } catch (e) {
        p.reject(e);
        continue;
      }
      try {
        let r: unknown;
        this.#inCallback = w;
        try {
          r = it.fn(new Transaction(it.db, w));
        } finally {
          this.#inCallback = null;
        }
        if (isThenable(r)) r = await r;
        this.#host.durability.commit(w);
        txns.push(w);
        p.result = r;
        done.push(p);
      } catch (e) {
        engine.abortWrite(w);
        p.reject(e);
      }
    }
    commitBatch();
    if (done.length === 0) return;
    try {
      // Awaited only when it is a promise: an await of nothing still costs every group a turn.
      const durable = this.#host.durability.makeDurable();
      if (durable !== undefined) await durable;
    } catch (e) {
      this.#host.durability.rollback(base);
      for (const p of done) p.reject(e);
      if (writeGroupDoneChannel.hasSubscribers) writeGroupDoneChannel.publish({ writers: writersOf(done), ok: false } satisfies WriteGroupDoneMessage);
      return;
    }
    this.#host.durability.published(txns);
    for (const p of done) p.resolve(p.result);
    if (writeGroupDoneChannel.hasSubscribers) writeGroupDoneChannel.publish({ writers: writersOf(done), ok: true } satisfies WriteGroupDoneMessage);
  }

  /**
   * A GroupItem, as numbered steps:
   *   1. Run every callback in order on one transaction. A callback that throws without having
   *      started a change (WriteTxn.modCount unchanged) left the transaction as it was: its
   *      error is its result and the others go on.
   *   2. Commit that transaction (one log record): done.
   *   3. If a callback threw after starting a change (its partial change cannot be taken out),
   *      returned a promise, or the commit failed, undo the shared attempt and run the callbacks
   *      again, each in a transaction of its own, in the same place of the queue: results and
   *      order are exactly those of one transaction per callback.
   * Returns the results; the caller makes them durable with the rest of the group.
   */
  #runGroupItem(it: GroupItem, txns: WriteTxn[]): Settled[] {
    const engine = this.#host.engine;
    it.onStart?.();
    const fns = it.fns;
    const n = fns.length; // what a callback might add to `fns` is not this item's
    const out: Settled[] = new Array(n);
    let w: WriteTxn;
    try {
      w = engine.beginWrite();
    } catch (e) {
      return out.fill({ status: "rejected", reason: e });
    }
    // 1. One transaction for all.
    let shared = true;
    const tx = new Transaction(it.db, w);
    this.#inCallback = w;
    try {
      for (let i = 0; i < n; i++) {
        const mark = w.modCount;
        try {
          out[i] = { status: "fulfilled", value: syncResult(fns[i]!(tx)) };
        } catch (e) {
          if (w.modCount !== mark) {
            shared = false;
            break;
          }
          out[i] = { status: "rejected", reason: e };
        }
      }
    } finally {
      this.#inCallback = null;
    }
    // 2. Commit it.
    if (shared) {
      try {
        this.#host.durability.commit(w);
        txns.push(w);
        return out;
      } catch {
        // 3. below: alone, each callback meets the failure that is its own.
      }
    }
    // 3. Undo, then one transaction per callback.
    engine.abortWrite(w);
    it.onRetry?.();
    for (let i = 0; i < n; i++) {
      let wi: WriteTxn | null = null;
      try {
        wi = engine.beginWrite();
        this.#inCallback = wi;
        let r: unknown;
        try {
          r = syncResult(fns[i]!(new Transaction(it.db, wi)));
        } finally {
          this.#inCallback = null;
        }
        this.#host.durability.commit(wi);
        txns.push(wi);
        out[i] = { status: "fulfilled", value: r };
      } catch (e) {
        if (wi) engine.abortWrite(wi);
        out[i] = { status: "rejected", reason: e };
      }
    }
    return out;
  }

  /** transactionSync: commit and make durable before returning. */
  runSync<T>(db: SubDatabase, fn: (tx: Transaction) => T): T {
    const engine = this.#host.engine;
    if (engine.writing) {
      throw new KeelError("TXN", "transactionSync cannot run while an asynchronous transaction holds the write lock", {});
    }
    const base = engine.head;
    const w = engine.beginWrite();
    let r: T;
    try {
      r = fn(new Transaction(db, w));
      if (isThenable(r)) throw invalidArgument("a transactionSync callback must be synchronous; use transaction() for async work", { argument: "fn" });
      this.#host.durability.commit(w);
    } catch (e) {
      engine.abortWrite(w);
      throw e;
    }
    try {
      this.#host.durability.makeDurableSync();
    } catch (e) {
      this.#host.durability.rollback(base);
      throw e;
    }
    this.#host.durability.published([w]);
    return r;
  }

  #settled(seq: number): void {
    this.#settledThrough = seq;
    if (!this.#flushWaiters.length) return;
    const still: Array<{ seq: number; resolve: () => void }> = [];
    for (const w of this.#flushWaiters) {
      if (w.seq <= seq) w.resolve();
      else still.push(w);
    }
    this.#flushWaiters = still;
  }

  /**
   * Resolves when every write queued so far has settled; writes queued after the call are not
   * waited for (a writer that never stops must not hold it up).
   */
  flushed(): Promise<void> {
    const seq = this.#queued;
    if (this.#settledThrough >= seq) return Promise.resolve();
    return new Promise((resolve) => this.#flushWaiters.push({ seq, resolve }));
  }
}
