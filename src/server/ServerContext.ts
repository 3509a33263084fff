/**
 * The contract between the RESP server (server/resp, server/commands, server/keyspace) and the
 * operations side (config, persistence, HTTP, metrics, logging, `keel serve`). Both sides code
 * against these types only; neither reaches into the other's files.
 *
 * Invariant kept by every implementation: a write command is replied to only after the commit that
 * holds it is as durable as `appendfsync` says (always = WAL strict: the reply waits for the sync).
 */
import type { Logger } from "pino";
import type { Database } from "../db/Database.js";
import type { KeelError } from "../errors.js";

export type AppendFsync = "always" | "everysec" | "no";

export interface SaveRule {
  /** Seconds since the last successful save… */
  readonly seconds: number;
  /** …and at least this many changed keys since then: a snapshot is taken. */
  readonly changes: number;
}

/** The whole server configuration, after TOML parsing, defaults and validation (server/config/). */
export interface ServerConfig {
  readonly dir: string;
  readonly bind: string;
  readonly port: number;
  requirepass: string | null;
  maxclients: number;
  /** Largest bulk string a client may send (bytes). */
  protoMaxBulkLen: number;
  /** Largest multibulk (array) length a client may send. */
  readonly protoMaxMultibulkLen: number;
  /** Number of logical databases for SELECT (0..databases-1). */
  readonly databases: number;
  readonly appendfsync: AppendFsync;
  saveRules: SaveRule[];
  autoAofRewritePercentage: number;
  autoAofRewriteMinSize: number;
  /** A dump file (keel dump, jsonl or binary) loaded when the data directory is empty at start. */
  readonly restoreFrom: string | null;
  readonly httpBind: string;
  /** 0 disables the HTTP listener. */
  readonly httpPort: number;
  readonly logLevel: string;
}

/**
 * The ranges of the settable parameters, shared by the TOML file (server/config) and CONFIG SET
 * (server/commands/config.ts), so both accept exactly the same values.
 */
export const CONFIG_LIMITS = {
  maxclients: { min: 1, max: 1_000_000 },
  /** RespParser and the value checks keep bulk lengths within a 32-bit signed int. */
  protoMaxBulkLen: { min: 1024 * 1024, max: 2 ** 31 - 1 },
  autoAofRewritePercentage: { min: 0, max: 1_000_000 },
  autoAofRewriteMinSize: { min: 0, max: Number.MAX_SAFE_INTEGER },
  saveSeconds: { min: 1, max: 10 * 365 * 86400 },
  saveChanges: { min: 1, max: Number.MAX_SAFE_INTEGER },
} as const;

/** SAVE / BGSAVE / BACKUP / LASTSAVE / BGREWRITEAOF and save rules (server/persistence/). */
export interface Persistence {
  /** Called by the command layer once a write is acknowledged, with the number of keys it changed. */
  noteChanges(count: number): void;
  /**
   * Called by the command layer with the reason of every write (command, EXEC, expiry sweep) that
   * failed; a failure to write or sync (FULL, IO) counts until a later commit succeeds.
   */
  noteWriteError(e: unknown): void;
  /** The failure of the last commit, or null once a commit after it succeeded (or none failed). */
  lastWriteError(): KeelError | null;
  /** SAVE: a snapshot now (db.createSnapshot); rejects with a KeelError on failure. */
  save(): Promise<void>;
  /** BGSAVE: starts a snapshot without blocking; false if one is already running. */
  bgsave(): boolean;
  /** Unix time (seconds) of the last successful save (or of start-up). */
  lastSave(): number;
  /** BACKUP <path>: a consistent, fsynced copy made atomically (db.backup). */
  backup(path: string): Promise<void>;
  /** BGREWRITEAOF: checkpoint + log GC without blocking; false if one is already running. */
  bgrewriteaof(): boolean;
  /** The `# Persistence` section of INFO as ordered name/value pairs (Redis field names + LSNs). */
  info(): Array<[string, string | number]>;
}

/** What the RESP server reports about itself (INFO clients/stats, /metrics, /stats). */
export interface RespServerStats {
  readonly connectedClients: number;
  readonly totalConnectionsReceived: number;
  readonly totalCommandsProcessed: number;
  readonly rejectedConnections: number;
  readonly protocolErrors: number;
  /**
   * Incremented by each CONFIG RESETSTAT: the counters above restarted from 0 then. A reader that
   * turns them into ever-growing counters (/metrics) needs it: a counter that grew past its old
   * value again between two reads would look like it never went back.
   */
  readonly statsEpoch: number;
  /** Per logical database: keys (and keys with an expiry). */
  readonly keyspace: ReadonlyArray<{ readonly db: number; readonly keys: number; readonly expires: number }>;
}

export type ShutdownMode = "default" | "save" | "nosave";

export interface RespServerOptions {
  readonly db: Database;
  readonly config: ServerConfig;
  readonly persistence: Persistence;
  readonly logger: Logger;
  /** SHUTDOWN [SAVE|NOSAVE] asks the process to shut down; serve.ts runs the sequence. */
  readonly onShutdown: (mode: ShutdownMode) => void;
  /** Extra INFO sections supplied by the operations side (e.g. "memory"), by section name. */
  readonly infoSections?: Readonly<Record<string, () => Array<[string, string | number]>>>;
}

export interface RespServer {
  /** The port actually bound (config.port may be 0 in tests). */
  readonly port: number;
  stats(): RespServerStats;
  /** Stop accepting, let in-flight commands finish and reply, then close every connection. */
  close(): Promise<void>;
}
