/**
 * ServerMetrics: the Prometheus registry of `keel serve` (prom-client), served on /metrics.
 *
 * Sources, and how each is read:
 * - events, counted as they happen: db.on("commit") (commits, ops, bytes; commits reported in
 *   the same synchronous burst form one group: the group-size histogram), the engine's
 *   diagnostics channels (util/instrumentation.ts: log sync latency, checkpoint duration, write
 *   group wait = writer lock wait), and the persistence jobs (snapshot, backup, rewrite);
 * - state, read at scrape time: db.getStats() (entries, pages, cache, readers), db.txlogWatermarks()
 *   (LSNs, lag, log bytes, segments), RespServer.stats() (clients, commands).
 *
 * Invariants: a scrape never writes to the database and never throws because the database is
 * closing (state gauges then keep their last values); cumulative engine and server counts are
 * exported as counters that only go up (the delta since the last scrape is added; a source that
 * went down was reset, by CONFIG RESETSTAT, and all of its new value is the delta).
 * detach() unsubscribes everything attach() subscribed.
 */
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { CommitReport, Database } from "../../db/Database.js";
import type { CheckpointMessage, WalSyncMessage, WriteGroupDoneMessage, WriteGroupMessage } from "../../util/instrumentation.js";
import type { PersistenceEvent } from "../persistence/KeelPersistence.js";
import type { RespServerStats } from "../ServerContext.js";

const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const SLOW_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300];
const GROUP_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/** Names every scrape contains (the /metrics test checks them). */
export const METRIC_NAMES = [
  "keel_commits_total",
  "keel_commit_ops_total",
  "keel_commit_bytes_total",
  "keel_commit_group_size",
  "keel_commit_group_writers",
  "keel_wal_syncs_total",
  "keel_wal_sync_seconds",
  "keel_write_group_wait_seconds",
  "keel_checkpoints_total",
  "keel_checkpoint_seconds",
  "keel_snapshot_seconds",
  "keel_backup_seconds",
  "keel_log_rewrite_seconds",
  "keel_persistence_failures_total",
  "keel_page_cache_misses_total",
  "keel_page_cache_evictions_total",
  "keel_page_cache_pages",
  "keel_page_cache_capacity_pages",
  "keel_readers",
  "keel_max_readers",
  "keel_entries",
  "keel_data_file_bytes",
  "keel_free_pages",
  "keel_lsn",
  "keel_log_lag_records",
  "keel_log_bytes",
  "keel_log_disk_bytes",
  "keel_log_segments",
  "keel_log_failed",
  "keel_connected_clients",
  "keel_connections_received_total",
  "keel_commands_processed_total",
  "keel_rejected_connections_total",
  "keel_protocol_errors_total",
  "keel_keys",
] as const;

/**
 * A counter fed from a cumulative number read at scrape time. `epoch` changes when the source was
 * reset (CONFIG RESETSTAT): all of its value then counts, even if it grew past the last one read.
 */
function cumulative(registry: Registry, name: string, help: string, read: () => { value: number; epoch: number } | undefined): Counter {
  let last = 0;
  let lastEpoch = 0;
  return new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      const r = read();
      if (r === undefined) return;
      const { value: v, epoch } = r;
      // Reset since the last scrape (or a source that went down, which only a reset does): it
      // counted v since, add v.
      const delta = epoch === lastEpoch && v >= last ? v - last : v;
      if (delta > 0) this.inc(delta);
      last = v;
      lastEpoch = epoch;
    },
  });
}

/** A count of a source that is never reset. */
const never = (v: number | undefined) => (v === undefined ? undefined : { value: v, epoch: 0 });

export class ServerMetrics {
  readonly registry = new Registry();
  readonly #db: Database;
  #resp: (() => RespServerStats) | null = null;
  readonly #commits: Counter;
  readonly #ops: Counter;
  readonly #bytes: Counter;
  readonly #groupSize: Histogram;
  readonly #groupWriters: Histogram;
  readonly #syncs: Counter<"mode">;
  readonly #syncSeconds: Histogram<"mode">;
  readonly #groupWait: Histogram;
  readonly #checkpointSeconds: Histogram;
  readonly #snapshotSeconds: Histogram<"job">;
  readonly #backupSeconds: Histogram;
  readonly #rewriteSeconds: Histogram<"job">;
  readonly #failures: Counter<"job">;
  #burst = 0;
  readonly #onCommit = (r: CommitReport) => this.#commit(r);
  readonly #onSync = (m: unknown) => {
    const s = m as WalSyncMessage;
    const mode = s.background ? "background" : "inline";
    this.#syncs.inc({ mode });
    this.#syncSeconds.observe({ mode }, s.ms / 1000);
  };
  readonly #onCheckpoint = (m: unknown) => this.#checkpointSeconds.observe((m as CheckpointMessage).ms / 1000);
  readonly #onGroup = (m: unknown) => this.#groupWait.observe((m as WriteGroupMessage).waitMs / 1000);
  readonly #onGroupDone = (m: unknown) => {
    const g = m as WriteGroupDoneMessage;
    if (g.ok && g.writers > 0) this.#groupWriters.observe(g.writers);
  };

  constructor(db: Database) {
    this.#db = db;
    const r = this.registry;
    collectDefaultMetrics({ register: r });
    this.#commits = new Counter({ name: "keel_commits_total", help: "Committed transactions", registers: [r] });
    this.#ops = new Counter({ name: "keel_commit_ops_total", help: "Operations (puts, removes, clears, drops) in committed transactions", registers: [r] });
    this.#bytes = new Counter({ name: "keel_commit_bytes_total", help: "Key and value bytes of committed transactions", registers: [r] });
    this.#groupSize = new Histogram({ name: "keel_commit_group_size", help: "Transactions made durable together by one group commit", buckets: GROUP_BUCKETS, registers: [r] });
    this.#groupWriters = new Histogram({ name: "keel_commit_group_writers", help: "Writes made durable together by one group commit: server commands (one transaction per group) or put/remove/transaction calls", buckets: GROUP_BUCKETS, registers: [r] });
    this.#syncs = new Counter({ name: "keel_wal_syncs_total", help: "Log fdatasyncs (inline: on the event loop, strict; background: relaxed)", labelNames: ["mode"], registers: [r] });
    this.#syncSeconds = new Histogram({ name: "keel_wal_sync_seconds", help: "Log fdatasync latency", labelNames: ["mode"], buckets: LATENCY_BUCKETS, registers: [r] });
    this.#groupWait = new Histogram({ name: "keel_write_group_wait_seconds", help: "How long the first write of a group waited for the writer (queue + previous group)", buckets: LATENCY_BUCKETS, registers: [r] });
    this.#checkpointSeconds = new Histogram({ name: "keel_checkpoint_seconds", help: "Checkpoint duration (pages written, data.keel synced, meta written)", buckets: SLOW_BUCKETS, registers: [r] });
    this.#snapshotSeconds = new Histogram({ name: "keel_snapshot_seconds", help: "Snapshot (SAVE, BGSAVE, save rule, shutdown) duration", labelNames: ["job"], buckets: SLOW_BUCKETS, registers: [r] });
    this.#backupSeconds = new Histogram({ name: "keel_backup_seconds", help: "BACKUP duration", buckets: SLOW_BUCKETS, registers: [r] });
    this.#rewriteSeconds = new Histogram({ name: "keel_log_rewrite_seconds", help: "Log rewrite (checkpoint + segment gc) duration", labelNames: ["job"], buckets: SLOW_BUCKETS, registers: [r] });
    this.#failures = new Counter({ name: "keel_persistence_failures_total", help: "Failed snapshots, backups and log rewrites", labelNames: ["job"], registers: [r] });

    const stats = () => this.#stats();
    const marks = () => this.#marks();
    cumulative(r, "keel_checkpoints_total", "Checkpoints since the database was opened", () => never(stats()?.checkpoints));
    cumulative(r, "keel_page_cache_misses_total", "Pages read from disk into the page cache (misses)", () => never(stats()?.cache.loads));
    cumulative(r, "keel_page_cache_evictions_total", "Pages evicted from the page cache", () => never(stats()?.cache.evictions));
    const gauge = (name: string, help: string, read: () => number | undefined) =>
      new Gauge({
        name,
        help,
        registers: [r],
        collect() {
          const v = read();
          if (v !== undefined) this.set(v);
        },
      });
    gauge("keel_page_cache_pages", "Clean decoded pages held in memory", () => stats()?.cache.pages);
    gauge("keel_page_cache_capacity_pages", "Page cache budget in pages", () => stats()?.cache.capacityPages);
    gauge("keel_readers", "Read snapshots held now", () => stats()?.readers);
    gauge("keel_max_readers", "Read snapshot limit", () => stats()?.maxReaders);
    gauge("keel_entries", "Entries over all sub-databases", () => stats()?.entries);
    gauge("keel_data_file_bytes", "Size of data.keel", () => stats()?.fileBytes);
    gauge("keel_free_pages", "Pages in the free list", () => stats()?.freePages);
    gauge("keel_log_bytes", "Bytes of log headers and records", () => marks()?.logBytes);
    gauge("keel_log_disk_bytes", "Bytes of log on disk, preallocation included", () => marks()?.logDiskBytes);
    gauge("keel_log_segments", "Log segments", () => marks()?.segmentCount);
    gauge("keel_log_failed", "1 when the log failed (a sync failed): writes are refused until a restart", () => {
      const m = marks();
      return m ? (m.failed ? 1 : 0) : undefined;
    });
    new Gauge({
      name: "keel_lsn",
      help: "Log positions: committed, durable, applied (checkpointed)",
      labelNames: ["kind"],
      registers: [r],
      collect() {
        const m = marks();
        if (!m) return;
        this.set({ kind: "committed" }, m.lastCommittedLsn);
        this.set({ kind: "durable" }, m.lastDurableLsn);
        this.set({ kind: "applied" }, m.lastAppliedLsn);
      },
    });
    new Gauge({
      name: "keel_log_lag_records",
      help: "durable: committed but not yet synced; applied: synced but not yet checkpointed",
      labelNames: ["kind"],
      registers: [r],
      collect() {
        const m = marks();
        if (!m) return;
        this.set({ kind: "durable" }, m.lag.durable);
        this.set({ kind: "applied" }, m.lag.applied);
      },
    });
    const resp = () => this.#respStats();
    const since = (pick: (s: RespServerStats) => number) => () => {
      const s = resp();
      return s && { value: pick(s), epoch: s.statsEpoch };
    };
    gauge("keel_connected_clients", "Connected RESP clients", () => resp()?.connectedClients);
    cumulative(r, "keel_connections_received_total", "RESP connections accepted", since((s) => s.totalConnectionsReceived));
    cumulative(r, "keel_commands_processed_total", "RESP commands processed", since((s) => s.totalCommandsProcessed));
    cumulative(r, "keel_rejected_connections_total", "RESP connections refused (maxclients)", since((s) => s.rejectedConnections));
    cumulative(r, "keel_protocol_errors_total", "RESP protocol errors", since((s) => s.protocolErrors));
    const seenKeyDbs = new Set<string>();
    new Gauge({
      name: "keel_keys",
      help: "Keys per logical database",
      labelNames: ["db"],
      registers: [r],
      collect() {
        const s = resp();
        if (!s) return;
        // The keyspace lists only databases that hold keys: one emptied since an earlier scrape
        // reads 0 (its series goes on), never its last count.
        const now = new Set<string>();
        for (const k of s.keyspace) {
          now.add(String(k.db));
          this.set({ db: String(k.db) }, k.keys);
        }
        for (const db of seenKeyDbs) if (!now.has(db)) this.set({ db }, 0);
        for (const db of now) seenKeyDbs.add(db);
      },
    });
  }

  /** Subscribe to the database's commit events and the engine's channels. */
  attach(): void {
    this.#db.on("commit", this.#onCommit);
    subscribe("keeldb:wal-sync", this.#onSync);
    subscribe("keeldb:checkpoint", this.#onCheckpoint);
    subscribe("keeldb:write-group", this.#onGroup);
    subscribe("keeldb:write-group-done", this.#onGroupDone);
  }

  detach(): void {
    this.#db.off("commit", this.#onCommit);
    unsubscribe("keeldb:wal-sync", this.#onSync);
    unsubscribe("keeldb:checkpoint", this.#onCheckpoint);
    unsubscribe("keeldb:write-group", this.#onGroup);
    unsubscribe("keeldb:write-group-done", this.#onGroupDone);
  }

  /** The RESP server's stats, or undefined while they cannot be read (its keyspace counts read a closed database). */
  #respStats(): RespServerStats | undefined {
    try {
      return this.#resp?.();
    } catch {
      return undefined;
    }
  }

  /** The RESP server's stats(), read at each scrape. */
  setRespStats(read: () => RespServerStats): void {
    this.#resp = read;
  }

  /** Persistence jobs report here (KeelPersistence's observe option). */
  observePersistence = (e: PersistenceEvent): void => {
    const s = e.ms / 1000;
    if (e.job === "backup") this.#backupSeconds.observe(s);
    else if (e.job === "rewrite" || e.job === "auto-rewrite") this.#rewriteSeconds.observe({ job: e.job }, s);
    else this.#snapshotSeconds.observe({ job: e.job }, s);
    if (!e.ok) this.#failures.inc({ job: e.job });
  };

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  #commit(r: CommitReport): void {
    this.#commits.inc();
    this.#ops.inc(r.ops);
    this.#bytes.inc(r.bytes);
    // A group's commit events are emitted in one synchronous loop: count them until the
    // microtask after it.
    if (this.#burst++ === 0) {
      queueMicrotask(() => {
        this.#groupSize.observe(this.#burst);
        this.#burst = 0;
      });
    }
  }

  #stats(): ReturnType<Database["getStats"]> | undefined {
    try {
      return this.#db.getStats();
    } catch {
      return undefined;
    }
  }

  #marks(): ReturnType<Database["txlogWatermarks"]> | undefined {
    try {
      return this.#db.txlogWatermarks();
    } catch {
      return undefined;
    }
  }
}
