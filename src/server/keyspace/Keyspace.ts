/**
 * Keyspace: the logical databases of the RESP server, stored in KeelDB sub-databases, plus what lives
 * beside the data: WATCH versions and the active expiry sweep.
 *
 * Storage, per logical db N (all keyEncoding/encoding "binary"):
 *   resp:N:keys  key -> ValueHeader + payload
 *   resp:N:hash  u32 len ++ key ++ field -> field value
 *   resp:N:ttl   u64 BE expireAt ++ key -> empty (the expiry index, in time order)
 *
 * Invariants:
 * - Every key with expireAt != 0 has exactly one index entry (expireAt, key); KeyView keeps both in
 *   the same transaction.
 * - WATCH versions exist only for watched keys (memory bounded by what clients watch). A write bumps
 *   the version inside its transaction callback, that is in commit order, so EXEC (itself a
 *   transaction callback) sees every write serialized before it. A bump by a write that then fails
 *   only aborts an EXEC needlessly, never lets one through wrongly.
 * - Expiry and WATCH follow Redis 7 (changedSince): a key that expires after WATCH counts as
 *   changed at EXEC even while the sweep has not deleted it yet; a key already expired (but still
 *   stored) at WATCH may be deleted once, by a read-write command, the sweep or a flush, without
 *   counting, since it did not logically change.
 * - Key counts inside transactions: `#heads[i]` is the number of keys of db i in the engine's head
 *   state (every commit executed so far, published or not). Transaction callbacks run one at a
 *   time, so the callback running now accumulates its changes in `#open`, added to the heads only
 *   if the callback returns (a throw discards the transaction and its count). A commit that fails
 *   after its callback returned (a failed log, an oversized record) leaves the heads off until the
 *   keyspace's transactions drain: whenever none is in flight, the heads are reset from the
 *   published counts, which then equal the head state. Outside transactions the published count
 *   is used.
 * - Batching: the write commands (and the reads that must see a connection's queued writes) that
 *   all connections dispatch before the write queue runs share one GroupItem (`batched`): one
 *   transaction, one log record, one sync, where running them one by one could not be told apart
 *   (WriteQueue#runGroupItem). A command joins the open batch only while nothing else was queued
 *   through the keyspace after it (`transaction` closes it), so each connection's commands run in
 *   the order it sent them. If the shared attempt is undone and retried one by one, the heads are
 *   reset to what they were when the batch started; the WATCH versions its first attempt bumped
 *   stay bumped (an EXEC may abort needlessly, never wrongly).
 * - A sweep deletes at most SWEEP_BATCH expired keys per db, in one transaction per db; one sweep
 *   runs at a time. A tick repeats sweeps while one comes back full, for at most SWEEPS_PER_TICK
 *   sweeps and SWEEP_TICK_MS, so a backlog drains without starving clients.
 */
import type { Database } from "../../db/Database.js";
import type { Transaction } from "../../db/Transaction.js";
import type { Settled } from "../../db/WriteQueue.js";
import { KeelError } from "../../errors.js";
import type { SubDatabase } from "../../db/SubDatabase.js";
import { KeyView } from "./KeyView.js";
import { ReadStore, TxStore, type Store } from "./Store.js";
import { expiryKey, readExpireAt } from "./ValueHeader.js";

export interface LogicalDb {
  readonly index: number;
  readonly keys: SubDatabase;
  readonly hash: SubDatabase;
  readonly ttl: SubDatabase;
}

interface WatchEntry {
  version: number;
  refs: number;
}

/** What WATCH records of a key, for EXEC to compare (changedSince). */
export interface WatchMark {
  version: number;
  /** The key was stored but already expired (Redis 7 keeps the same flag). */
  expired: boolean;
}

interface Batch {
  readonly fns: Array<(tx: Transaction) => unknown>;
  readonly result: Promise<Settled[]>;
}

const SWEEP_BATCH = 200;
const SWEEPS_PER_TICK = 10;
const SWEEP_TICK_MS = 25;
const READ_STORE = new ReadStore();

export class Keyspace {
  readonly dbs: readonly LogicalDb[];
  readonly #watches = new Map<string, WatchEntry>();
  #sweepTimer: NodeJS.Timeout | null = null;
  #sweeping: Promise<void> | null = null;
  /** Largest key the keyspace accepts (the hash field prefix and the expiry prefix must fit too). */
  readonly maxKeyLen: number;
  /** Largest value the engine stores (a string's value header counts against it). */
  readonly maxValueSize: number;
  expiredKeys = 0;
  readonly #heads: number[];
  #open: number[] | null = null;
  #inflight = 0;
  /** The GroupItem later commands may still join (see top). */
  #batch: Batch | null = null;
  /** Told the reason of every keyspace transaction that failed (the operations side tracks write failures). */
  onWriteError: ((e: unknown) => void) | null = null;

  constructor(
    readonly db: Database,
    databases: number,
  ) {
    const list: LogicalDb[] = [];
    for (let i = 0; i < databases; i++) {
      const o = { keyEncoding: "binary", encoding: "binary" } as const;
      list.push({ index: i, keys: db.openDB(`resp:${i}:keys`, o), hash: db.openDB(`resp:${i}:hash`, o), ttl: db.openDB(`resp:${i}:ttl`, o) });
    }
    this.dbs = list;
    this.#heads = list.map((d) => d.keys.getCount());
    const pageSize = db.getStats().pageSize;
    this.maxKeyLen = Math.floor((pageSize - 40) / 4) - 10 - 8;
    this.maxValueSize = db.engine.maxValueSize;
  }

  ldb(index: number): LogicalDb {
    const d = this.dbs[index];
    if (!d) throw new RangeError(`no logical db ${index}`);
    return d;
  }

  /** A view of the published state, for plain reads. */
  read(index: number, now = Date.now()): KeyView {
    return new KeyView(this, this.ldb(index), READ_STORE, now);
  }

  /** A view inside a write transaction. */
  write(index: number, store: Store, now = Date.now()): KeyView {
    return new KeyView(this, this.ldb(index), store, now);
  }

  // ---- transactions ----

  /** Run a transaction callback body, keeping the key counts of the head state (see top). */
  inTransaction<T>(fn: () => T): T {
    if (this.#open) throw new KeelError("INTERNAL", "nested keyspace transaction", {});
    const open = new Array<number>(this.dbs.length).fill(0);
    this.#open = open;
    try {
      const r = fn();
      for (let i = 0; i < open.length; i++) this.#heads[i]! += open[i]!;
      return r;
    } finally {
      this.#open = null;
    }
  }

  /** A key of db `index` was created (+1) or deleted (-1) by the running transaction. */
  countKeys(index: number, delta: number): void {
    if (!this.#open) throw new KeelError("INTERNAL", "key count changed outside a keyspace transaction", {});
    this.#open[index]! += delta;
  }

  keyCountInTransaction(index: number): number {
    return this.#heads[index]! + (this.#open?.[index] ?? 0);
  }

  /** db.transaction with the key counts kept: every keyspace transaction but `batched` goes through here. */
  transaction<T>(fn: (tx: Transaction) => T): Promise<T> {
    this.#batch = null; // what is queued after this must run after it
    this.#inflight++;
    const p = this.db.transaction((tx) => this.inTransaction(() => fn(tx)));
    p.then(this.#settled, (e: unknown) => {
      this.#settled();
      this.onWriteError?.(e);
    });
    return p;
  }

  readonly #settled = (): void => {
    if (--this.#inflight === 0 && !this.db.isClosed) for (const d of this.dbs) this.#heads[d.index] = d.keys.getCount();
  };

  /**
   * Run the synchronous `fn` as if in a transaction of its own, queued behind everything queued
   * through the keyspace before it, sharing the open batch's transaction where possible (see top).
   */
  batched<T>(fn: (tx: Transaction) => T): Promise<T> {
    const b = this.#batch ?? this.#openBatch();
    const i = b.fns.length;
    b.fns.push((tx) => this.inTransaction(() => fn(tx)));
    return b.result.then((out) => {
      const o = out[i]!;
      if (o.status === "rejected") {
        this.onWriteError?.(o.reason);
        throw o.reason;
      }
      return o.value as T;
    });
  }

  #openBatch(): Batch {
    const fns: Batch["fns"] = [];
    const heads = this.#heads;
    let atStart: number[] = [];
    let result: Promise<Settled[]>;
    try {
      result = this.db.enqueue({
        kind: "group",
        db: this.db,
        fns,
        onStart: () => {
          if (this.#batch === b) this.#batch = null;
          atStart = heads.slice();
        },
        onRetry: () => {
          for (let i = 0; i < heads.length; i++) heads[i] = atStart[i]!;
        },
      }) as Promise<Settled[]>;
    } catch (e) {
      // Closed or read-only: this command fails, and the next one tries again.
      result = Promise.reject(e);
      result.catch(() => undefined);
      return { fns, result };
    }
    const b: Batch = { fns, result };
    this.#batch = b;
    this.#inflight++;
    const settled = (): void => {
      if (this.#batch === b) this.#batch = null; // rejected before it started (closed)
      this.#settled();
    };
    // A rejection of the whole item (its commit could not be made durable) is reported once.
    result.then(settled, (e: unknown) => {
      settled();
      this.onWriteError?.(e);
    });
    return b;
  }

  // ---- WATCH ----

  static #wkey(index: number, key: Buffer): string {
    return `${index}:${key.toString("latin1")}`;
  }

  /** Start watching (until unwatch): returns the key's current version. */
  watch(index: number, key: Buffer): number {
    const k = Keyspace.#wkey(index, key);
    let e = this.#watches.get(k);
    if (!e) {
      e = { version: 0, refs: 0 };
      this.#watches.set(k, e);
    }
    e.refs++;
    return e.version;
  }

  /** The mark of a watched key of `view`'s db in the state `view` shows. */
  mark(key: Buffer, view: KeyView): WatchMark {
    return { version: this.version(view.ldb.index, key), expired: view.storedExpired(key) };
  }

  /**
   * EXEC's test, as Redis 7 decides it: whether the watched key changed since `mark`, judged on the
   * state `view` shows (the transaction's). Any write counts, and so does an expiry that happened
   * since, deleted or not. A key stored but already expired at the mark may be deleted once without
   * counting: Redis touches it then but clears its "expired" flag, so the first write that leaves
   * it absent is no change, and every other write is.
   */
  changedSince(key: Buffer, mark: WatchMark, view: KeyView): boolean {
    const writes = this.version(view.ldb.index, key) - mark.version;
    if (mark.expired) return writes >= 2 || (writes === 1 && view.stored(key) !== undefined);
    return writes !== 0 || view.storedExpired(key);
  }

  unwatch(index: number, key: Buffer): void {
    const k = Keyspace.#wkey(index, key);
    const e = this.#watches.get(k);
    if (e && --e.refs <= 0) this.#watches.delete(k);
  }

  version(index: number, key: Buffer): number {
    return this.#watches.get(Keyspace.#wkey(index, key))?.version ?? -1;
  }

  touch(index: number, key: Buffer): void {
    if (this.#watches.size === 0) return;
    const e = this.#watches.get(Keyspace.#wkey(index, key));
    if (e) e.version++;
  }

  /** The keys of db `index` that some client watches. */
  watchedKeys(index: number): Buffer[] {
    if (this.#watches.size === 0) return [];
    const prefix = `${index}:`;
    const out: Buffer[] = [];
    for (const k of this.#watches.keys()) if (k.startsWith(prefix)) out.push(Buffer.from(k.slice(prefix.length), "latin1"));
    return out;
  }

  // ---- stats ----

  stats(): Array<{ db: number; keys: number; expires: number }> {
    const out = [];
    for (const d of this.dbs) {
      const keys = d.keys.getCount();
      if (keys > 0) out.push({ db: d.index, keys, expires: d.ttl.getCount() });
    }
    return out;
  }

  // ---- active expiry ----

  startSweeper(intervalMs = 100): void {
    if (this.#sweepTimer) return;
    this.#sweepTimer = setInterval(() => {
      if (!this.#sweeping && !this.db.isClosed) {
        this.#sweeping = this.#tick()
          .catch(() => undefined)
          .finally(() => (this.#sweeping = null));
      }
    }, intervalMs);
    this.#sweepTimer.unref();
  }

  async stopSweeper(): Promise<void> {
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    this.#sweepTimer = null;
    await this.#sweeping;
  }

  async #tick(): Promise<void> {
    const t0 = Date.now();
    for (let i = 0; i < SWEEPS_PER_TICK && this.#sweepTimer && !this.db.isClosed; i++) {
      if ((await this.sweepOnce()) < SWEEP_BATCH || Date.now() - t0 >= SWEEP_TICK_MS) return;
    }
  }

  /** Delete up to SWEEP_BATCH expired keys of each logical db; resolves to how many were deleted. */
  async sweepOnce(now = Date.now()): Promise<number> {
    let total = 0;
    const end = expiryKey(now + 1, Buffer.alloc(0));
    for (const d of this.dbs) {
      if (d.ttl.getCount() === 0) continue;
      const due: Buffer[] = [];
      for (const e of d.ttl.getRange({ end, limit: SWEEP_BATCH })) due.push(e.key as Buffer);
      if (due.length === 0) continue;
      total += await this.transaction((tx) => {
        const view = this.write(d.index, new TxStore(tx), now);
        let n = 0;
        for (const ik of due) {
          const key = ik.subarray(8);
          const v = view.store.get(d.keys, key);
          if (v && readExpireAt(v) === ik.readUInt32BE(0) * 2 ** 32 + ik.readUInt32BE(4) && readExpireAt(v) <= now) {
            view.del(key);
            n++;
          } else view.store.remove(d.ttl, ik);
        }
        return n;
      });
    }
    this.expiredKeys += total;
    return total;
  }
}
