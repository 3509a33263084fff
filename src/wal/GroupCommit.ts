/**
 * GroupCommit: decides when the log is synced and tells waiters when their LSN is durable.
 *
 * Invariants kept:
 * - I4 (strict): waitDurable(lsn) resolves only after a sync that started after record `lsn` was
 *   written has completed. One sync is started per group: after the first unsynced append it is
 *   scheduled with setImmediate, so every append of the current turn of the event loop (including
 *   ones made by I/O callbacks of the same poll phase) shares it; a sync covers everything appended
 *   before it started; appends made while it runs form the next group.
 * - I4 (relaxed): a sync starts when `groupCommit` records are unsynced or `groupCommitMs` after
 *   the first unsynced append, whichever comes first, driven by a timer so it happens with no
 *   further write. The timer is unref'd unless someone awaits waitDurable: a background flush does
 *   not keep the process alive (a clean close syncs), a caller waiting for durability does.
 * - "none": no automatic sync; only rolls, close, syncNow/syncSync, or a waitDurable call (an
 *   explicit request for durability) start one.
 * - A failed sync puts the log in the failed state for good: every waiter is rejected with the
 *   coded error (IO or FULL) and nothing is acknowledged again until the log is reopened. Retrying
 *   fsync is not safe: after a failed fsync Linux may drop the dirty pages and report success on the
 *   next call, so a retry could "succeed" over lost data (PostgreSQL's "fsyncgate", 2018).
 * - Durable never runs ahead of committed, and waiters resolve in LSN order.
 */
import { performance } from "node:perf_hooks";
import { invalidArgument, KeelError } from "../errors.js";
import { walSyncChannel, type WalSyncMessage } from "../util/instrumentation.js";

export type DurabilityProfile = "strict" | "relaxed" | "none";

export interface GroupCommitOptions {
  profile: DurabilityProfile;
  /** relaxed: sync when this many records are unsynced. */
  groupCommit: number;
  /** relaxed: sync this many ms after the first unsynced append. */
  groupCommitMs: number;
  /** fdatasync everything appended so far (the active segment); rejects with a KeelError. */
  syncAsync: () => Promise<void>;
  /** The blocking variant; throws a KeelError. */
  syncSync: () => void;
  /** Wall clock for `lastSyncAt`. */
  clock: () => number;
  onPhase?: (name: string) => void;
}

interface Waiter {
  lsn: number;
  resolve: () => void;
  reject: (e: KeelError) => void;
}

export class GroupCommit {
  readonly #o: GroupCommitOptions;
  #committed: number;
  #durable: number;
  /** The highest LSN a started (running or finished) sync covers. */
  #covered: number;
  /** The highest LSN someone explicitly asked to make durable now. */
  #wanted = 0;
  #waiters: Waiter[] = [];
  #inflight: Promise<void> | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #timer: NodeJS.Timeout | undefined;
  #groupStartedAt = 0;
  #failed: KeelError | undefined;
  #closed = false;
  #lastSyncAt: number | undefined;
  #syncs = 0;

  constructor(opts: GroupCommitOptions, durableLsn: number) {
    this.#o = opts;
    this.#committed = durableLsn;
    this.#durable = durableLsn;
    this.#covered = durableLsn;
  }

  get committed(): number {
    return this.#committed;
  }
  get durable(): number {
    return this.#durable;
  }
  get failed(): KeelError | undefined {
    return this.#failed;
  }
  get syncing(): boolean {
    return this.#inflight !== undefined;
  }
  get lastSyncAt(): number | undefined {
    return this.#lastSyncAt;
  }
  /** Syncs started by the group-commit scheduler and synchronous syncs reported to it. */
  get syncCount(): number {
    return this.#syncs;
  }
  get waiterCount(): number {
    return this.#waiters.length;
  }

  /** Record `lsn` was written (not yet synced). */
  appended(lsn: number): void {
    // The first append no started sync covers opens a group: relaxed's timer counts from it.
    if (this.#committed === this.#covered) this.#groupStartedAt = performance.now();
    this.#committed = lsn;
    this.#plan();
  }

  /**
   * relaxed, before each append: when groupCommit records are covered by no started sync, start
   * one now (off the event loop); if one is still running, sync here, blocking, so that appends
   * outrunning the disk never grow the loss window past the setting (I4).
   */
  beforeAppend(): void {
    if (this.#o.profile !== "relaxed" || this.#failed !== undefined) return;
    if (this.#committed - this.#covered < this.#o.groupCommit) return;
    if (!this.startNow()) this.syncSync();
  }

  /** A synchronous sync outside the scheduler (roll, preallocation) made everything <= lsn durable. */
  synced(lsn: number): void {
    this.#syncs++;
    this.#noteDurable(lsn);
  }

  waitDurable(lsn: number): Promise<void> {
    if (!Number.isSafeInteger(lsn) || lsn < 0) return Promise.reject(invalidArgument("lsn must be a non-negative integer", { argument: "lsn", value: lsn }));
    if (lsn <= this.#durable) return Promise.resolve();
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    if (this.#closed) return Promise.reject(new KeelError("CLOSED", "the write-ahead log is closed", { lsn }));
    if (lsn > this.#committed) {
      return Promise.reject(invalidArgument(`LSN ${lsn} has not been appended (last is ${this.#committed})`, { argument: "lsn", value: lsn, lastCommittedLsn: this.#committed }));
    }
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { lsn, resolve, reject };
      const ws = this.#waiters;
      // Waiters almost always arrive in LSN order: scan from the end.
      let i = ws.length;
      while (i > 0 && ws[i - 1]!.lsn > lsn) i--;
      ws.splice(i, 0, w);
      if (this.#o.profile === "none") this.#wanted = Math.max(this.#wanted, lsn);
      this.#plan();
    });
  }

  /** Start a sync of everything appended so far (now, not at the group's time); resolves when durable. */
  syncNow(): Promise<void> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    if (this.#committed <= this.#durable) return Promise.resolve();
    this.#wanted = Math.max(this.#wanted, this.#committed);
    return this.waitDurable(this.#committed);
  }

  /** Sync everything appended so far, blocking. Throws the failure (and enters the failed state) on error. */
  syncSync(): void {
    if (this.#failed !== undefined) throw this.#failed;
    const target = this.#committed;
    if (target <= this.#durable) return;
    // This sync covers everything appended: a planned asynchronous one for the same records
    // would be a second fdatasync per commit for nothing.
    if (target > this.#covered) this.#covered = target;
    if (this.#immediate !== undefined) {
      clearImmediate(this.#immediate);
      this.#immediate = undefined;
    }
    const t0 = walSyncChannel.hasSubscribers ? performance.now() : -1;
    try {
      this.#o.syncSync();
    } catch (e) {
      if (t0 >= 0) walSyncChannel.publish({ ms: performance.now() - t0, ok: false, background: false } satisfies WalSyncMessage);
      this.fail(asKeel(e));
      throw this.#failed ?? e;
    }
    if (t0 >= 0) walSyncChannel.publish({ ms: performance.now() - t0, ok: true, background: false } satisfies WalSyncMessage);
    this.synced(target);
  }

  /** Enter the failed state: reject every waiter; refuse to acknowledge anything again. */
  fail(err: KeelError): void {
    if (this.#failed !== undefined) return;
    this.#failed = err;
    this.#clearTimers();
    const ws = this.#waiters;
    this.#waiters = [];
    for (const w of ws) w.reject(err);
  }

  /** Stop scheduling. Waiters not yet durable are rejected with CLOSED (close syncs first, so normally none). */
  close(): void {
    this.#closed = true;
    this.#clearTimers();
    const ws = this.#waiters;
    this.#waiters = [];
    for (const w of ws) w.reject(new KeelError("CLOSED", "the write-ahead log was closed before this LSN was synced", { lsn: w.lsn }));
  }

  /** Resolves when no asynchronous sync is running. */
  async idle(): Promise<void> {
    while (this.#inflight !== undefined) {
      try {
        await this.#inflight;
      } catch {
        // The failure is recorded in #failed; idle only waits.
      }
    }
  }

  #plan(): void {
    if (this.#failed !== undefined || this.#closed) return;
    const uncovered = this.#committed - this.#covered;
    if (uncovered <= 0) {
      this.#clearTimers();
      return;
    }
    if (this.#inflight !== undefined || this.#immediate !== undefined) return; // completion re-plans
    if (this.#o.profile === "strict" || this.#wanted > this.#covered) {
      this.#startSoon();
      return;
    }
    if (this.#o.profile === "relaxed") {
      if (uncovered >= this.#o.groupCommit) {
        this.#startSoon();
      } else if (this.#timer === undefined) {
        const delay = Math.max(0, this.#groupStartedAt + this.#o.groupCommitMs - performance.now());
        this.#timer = setTimeout(() => {
          this.#timer = undefined;
          this.#start();
        }, delay);
        // Unref'd while nobody waits: a background flush must not keep the process alive. A caller
        // awaiting waitDurable does: the timer is ref'd for it (else node would exit under its await).
        if (this.#waiters.length === 0) this.#timer.unref();
      } else if (this.#waiters.length > 0) {
        this.#timer.ref();
      }
    }
  }

  /** The last LSN a started sync covers. */
  get covered(): number {
    return this.#covered;
  }

  /**
   * Start a sync of everything appended, now rather than on the next turn of the event loop.
   * Returns false (and starts nothing) when one is already running.
   */
  startNow(): boolean {
    if (this.#failed !== undefined || this.#closed || this.#inflight !== undefined) return false;
    if (this.#immediate !== undefined) {
      clearImmediate(this.#immediate);
      this.#immediate = undefined;
    }
    this.#start();
    return true;
  }

  #startSoon(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#immediate = setImmediate(() => {
      this.#immediate = undefined;
      this.#start();
    });
  }

  #start(): void {
    if (this.#failed !== undefined || this.#closed || this.#inflight !== undefined) return;
    const target = this.#committed;
    if (target <= this.#covered) return this.#plan();
    this.#clearTimers();
    this.#covered = target;
    this.#syncs++;
    try {
      this.#o.onPhase?.("wal-sync:before");
    } catch (e) {
      this.fail(new KeelError("INTERNAL", "phase hook wal-sync:before threw", { phase: "wal-sync:before" }, { cause: e }));
      return;
    }
    let p: Promise<void>;
    const t0 = walSyncChannel.hasSubscribers ? performance.now() : -1;
    try {
      p = this.#o.syncAsync();
    } catch (e) {
      p = Promise.reject(e);
    }
    this.#inflight = p.then(
      () => {
        this.#inflight = undefined;
        if (t0 >= 0) walSyncChannel.publish({ ms: performance.now() - t0, ok: true, background: true } satisfies WalSyncMessage);
        try {
          this.#o.onPhase?.("wal-sync:after");
        } catch (e) {
          // A hook that throws stands for a crash here: synced, but never acknowledged.
          this.fail(new KeelError("INTERNAL", "phase hook wal-sync:after threw", { phase: "wal-sync:after" }, { cause: e }));
          return;
        }
        this.#noteDurable(target);
      },
      (e: unknown) => {
        this.#inflight = undefined;
        if (t0 >= 0) walSyncChannel.publish({ ms: performance.now() - t0, ok: false, background: true } satisfies WalSyncMessage);
        this.fail(asKeel(e));
      },
    );
  }

  #noteDurable(lsn: number): void {
    if (lsn > this.#durable) {
      this.#durable = Math.min(lsn, this.#committed);
      this.#lastSyncAt = this.#o.clock();
      if (this.#covered < this.#durable) this.#covered = this.#durable;
      const ws = this.#waiters;
      let n = 0;
      while (n < ws.length && ws[n]!.lsn <= this.#durable) n++;
      if (n > 0) for (const w of ws.splice(0, n)) w.resolve();
    }
    this.#plan();
  }

  #clearTimers(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#immediate !== undefined && (this.#failed !== undefined || this.#closed)) {
      clearImmediate(this.#immediate);
      this.#immediate = undefined;
    }
  }
}

function asKeel(e: unknown): KeelError {
  return e instanceof KeelError ? e : new KeelError("IO", `sync failed: ${String(e)}`, {}, { cause: e });
}
