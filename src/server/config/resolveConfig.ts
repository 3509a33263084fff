/**
 * resolveConfig: TOML text (smol-toml) + command-line flags -> a validated ServeConfig.
 *
 * Invariants:
 * - Every key the file may hold is in the tables below (and in the sample keel.toml at the repo
 *   root); any other key, at any level, is refused: KeelError INVALID_ARGUMENT, details.key names
 *   it (e.g. `engine.cache_sise`), details.file the file. Nothing is silently ignored.
 * - Every value is checked before the server touches the disk; the first bad one is refused with
 *   its key named. A TOML syntax error names the file, line and column.
 * - Precedence: defaults < file < flags. Relative paths in the file are relative to the file's
 *   directory; relative paths from flags or defaults are relative to the working directory.
 */
import { dirname, resolve } from "node:path";
import { parse, TomlError } from "smol-toml";
import { KeelError } from "../../errors.js";
import { validateOptions } from "../../db/options.js";
import { CONFIG_LIMITS as L, type AppendFsync, type SaveRule, type ServerConfig } from "../ServerContext.js";
import { badValue, enumValue, hostValue, intValue, sizeValue, stringValue, type KeyRef } from "./configValues.js";
import type { EngineSettings, HealthSettings, ServeConfig } from "./ServeConfig.js";

export const APPENDFSYNC: readonly AppendFsync[] = ["always", "everysec", "no"];
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

const MAX_SIZE = Number.MAX_SAFE_INTEGER;

/** The defaults (documented, one by one, in keel.toml). */
export const DEFAULTS = {
  dir: "./keel-data",
  bind: "127.0.0.1",
  port: 7878,
  requirepass: null as string | null,
  maxclients: 10_000,
  protoMaxBulkLen: 256 * 1024 * 1024,
  protoMaxMultibulkLen: 1024 * 1024,
  databases: 16,
  appendfsync: "always" as AppendFsync,
  saveRules: [
    { seconds: 3600, changes: 1 },
    { seconds: 300, changes: 100 },
    { seconds: 60, changes: 10_000 },
  ] as SaveRule[],
  autoAofRewritePercentage: 100,
  autoAofRewriteMinSize: 64 * 1024 * 1024,
  restoreFrom: null as string | null,
  httpBind: "127.0.0.1",
  httpPort: 7879,
  logLevel: "info",
  health: { minFreeBytes: 64 * 1024 * 1024, maxDurableLag: 100_000, maxAppliedLag: 0 } as HealthSettings,
  /**
   * The server keeps less log for point-in-time restore than the embedded default (8 GiB, 7 days),
   * so that BGREWRITEAOF and the automatic rewrite actually shrink the log of a busy server.
   */
  engine: { walRetentionBytes: 1024 ** 3, walRetentionMs: 86_400_000 } as EngineSettings,
} as const;

/** Top-level keys of the file. */
export const TOP_KEYS = [
  "dir",
  "bind",
  "port",
  "requirepass",
  "maxclients",
  "proto_max_bulk_len",
  "proto_max_multibulk_len",
  "databases",
  "appendfsync",
  "save_rules",
  "auto_aof_rewrite_percentage",
  "auto_aof_rewrite_min_size",
  "restore_from",
  "http_bind",
  "http_port",
  "log_level",
  "engine",
  "health",
] as const;

/** `[engine]` keys -> open() option, with the range the server accepts. */
const ENGINE_KEYS: Record<string, { option: keyof EngineSettings; min: number; max: number; size: boolean }> = {
  cache_size: { option: "cacheSize", min: 0, max: MAX_SIZE, size: true },
  max_readers: { option: "maxReaders", min: 1, max: 1 << 20, size: false },
  max_value_size: { option: "maxValueSize", min: 1, max: 2 ** 31 - 1, size: true },
  page_size: { option: "pageSize", min: 1024, max: 65536, size: true },
  wal_segment_max_bytes: { option: "walSegmentMaxBytes", min: 64 * 1024, max: MAX_SIZE, size: true },
  wal_segment_max_ms: { option: "walSegmentMaxMs", min: 1, max: MAX_SIZE, size: false },
  wal_retention_bytes: { option: "walRetentionBytes", min: 0, max: MAX_SIZE, size: true },
  wal_retention_ms: { option: "walRetentionMs", min: 0, max: MAX_SIZE, size: false },
  checkpoint_log_bytes: { option: "checkpointLogBytes", min: 1, max: MAX_SIZE, size: true },
  checkpoint_dirty_bytes: { option: "checkpointDirtyBytes", min: 1, max: MAX_SIZE, size: true },
  checkpoint_ms: { option: "checkpointMs", min: 1, max: MAX_SIZE, size: false },
};

const HEALTH_KEYS = ["min_free_bytes", "max_durable_lag", "max_applied_lag"] as const;

/** What the command line may override (strings as commander gives them). */
export interface ConfigFlags {
  dir?: string | undefined;
  bind?: string | undefined;
  port?: string | number | undefined;
  httpPort?: string | number | undefined;
  appendfsync?: string | undefined;
  logLevel?: string | undefined;
}

type Table = Record<string, unknown>;

function isTable(v: unknown): v is Table {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** Parse TOML text; a syntax error is INVALID_ARGUMENT naming the file, line and column. */
export function parseToml(text: string, file: string | null): Table {
  try {
    return parse(text) as Table;
  } catch (e) {
    if (e instanceof TomlError) {
      const first = e.message.split("\n")[0] ?? "syntax error";
      throw new KeelError("INVALID_ARGUMENT", `${file ?? "configuration"}:${e.line}:${e.column}: ${first}`, { file, line: e.line, column: e.column, reason: "toml-syntax" });
    }
    throw e;
  }
}

function unknownKey(file: string | null, key: string, known: readonly string[]): KeelError {
  return new KeelError("INVALID_ARGUMENT", `${file ? `${file}: ` : ""}unknown configuration key ${key} (known keys: ${known.join(", ")})`, {
    key,
    file,
    reason: "unknown-key",
  });
}

function saveRules(ref: KeyRef, v: unknown): SaveRule[] {
  if (!Array.isArray(v)) throw badValue(ref, v, "must be an array of { seconds = N, changes = M } tables (an empty array disables automatic saves)");
  return v.map((r, i) => {
    const at = (k: string): KeyRef => ({ key: `${ref.key}[${i}]${k}`, file: ref.file });
    if (!isTable(r)) throw badValue(at(""), r, "must be a table { seconds = N, changes = M }");
    for (const k of Object.keys(r)) if (k !== "seconds" && k !== "changes") throw unknownKey(ref.file, `${ref.key}[${i}].${k}`, ["seconds", "changes"]);
    if (r.seconds === undefined) throw badValue(at(".seconds"), undefined, "is required");
    if (r.changes === undefined) throw badValue(at(".changes"), undefined, "is required");
    return { seconds: intValue(at(".seconds"), r.seconds, L.saveSeconds.min, L.saveSeconds.max), changes: intValue(at(".changes"), r.changes, L.saveChanges.min, L.saveChanges.max) };
  });
}

/**
 * Build the configuration from the file's text (null: no file) and the flags.
 * `file` names the file in errors and anchors its relative paths.
 */
export function resolveConfig(text: string | null, file: string | null, flags: ConfigFlags = {}, cwd = process.cwd()): ServeConfig {
  const t: Table = text === null ? {} : parseToml(text, file);
  const base = file ? dirname(resolve(cwd, file)) : cwd;
  const ref = (key: string): KeyRef => ({ key, file });
  for (const k of Object.keys(t)) if (!(TOP_KEYS as readonly string[]).includes(k)) throw unknownKey(file, k, TOP_KEYS);
  const has = (k: string) => t[k] !== undefined;

  let dir = has("dir") ? resolve(base, stringValue(ref("dir"), t.dir, { nonEmpty: true })) : resolve(cwd, DEFAULTS.dir);
  let bind = has("bind") ? hostValue(ref("bind"), t.bind) : DEFAULTS.bind;
  let port = has("port") ? intValue(ref("port"), t.port, 0, 65535) : DEFAULTS.port;
  const requirepassRaw = has("requirepass") ? stringValue(ref("requirepass"), t.requirepass) : null;
  const requirepass = requirepassRaw === "" ? null : requirepassRaw;
  const maxclients = has("maxclients") ? intValue(ref("maxclients"), t.maxclients, L.maxclients.min, L.maxclients.max) : DEFAULTS.maxclients;
  const protoMaxBulkLen = has("proto_max_bulk_len") ? sizeValue(ref("proto_max_bulk_len"), t.proto_max_bulk_len, L.protoMaxBulkLen.min, L.protoMaxBulkLen.max) : DEFAULTS.protoMaxBulkLen;
  const protoMaxMultibulkLen = has("proto_max_multibulk_len") ? intValue(ref("proto_max_multibulk_len"), t.proto_max_multibulk_len, 1, 2 ** 31 - 1) : DEFAULTS.protoMaxMultibulkLen;
  const databases = has("databases") ? intValue(ref("databases"), t.databases, 1, 1_000_000) : DEFAULTS.databases;
  let appendfsync = has("appendfsync") ? enumValue(ref("appendfsync"), t.appendfsync, APPENDFSYNC) : DEFAULTS.appendfsync;
  const rules = has("save_rules") ? saveRules(ref("save_rules"), t.save_rules) : DEFAULTS.saveRules.map((r) => ({ ...r }));
  const pct = has("auto_aof_rewrite_percentage") ? intValue(ref("auto_aof_rewrite_percentage"), t.auto_aof_rewrite_percentage, L.autoAofRewritePercentage.min, L.autoAofRewritePercentage.max) : DEFAULTS.autoAofRewritePercentage;
  const minSize = has("auto_aof_rewrite_min_size") ? sizeValue(ref("auto_aof_rewrite_min_size"), t.auto_aof_rewrite_min_size, L.autoAofRewriteMinSize.min, L.autoAofRewriteMinSize.max) : DEFAULTS.autoAofRewriteMinSize;
  const restoreFrom = has("restore_from") ? resolve(base, stringValue(ref("restore_from"), t.restore_from, { nonEmpty: true })) : null;
  const httpBind = has("http_bind") ? hostValue(ref("http_bind"), t.http_bind) : DEFAULTS.httpBind;
  let httpPort = has("http_port") ? intValue(ref("http_port"), t.http_port, 0, 65535) : DEFAULTS.httpPort;
  let logLevel: string = has("log_level") ? enumValue(ref("log_level"), t.log_level, LOG_LEVELS) : DEFAULTS.logLevel;

  // [engine]
  const engine: EngineSettings = { ...DEFAULTS.engine };
  if (has("engine")) {
    if (!isTable(t.engine)) throw badValue(ref("engine"), t.engine, "must be a table ([engine])");
    for (const [k, v] of Object.entries(t.engine)) {
      // Own keys only: "constructor" or "toString" would find Object.prototype's members.
      const spec = Object.hasOwn(ENGINE_KEYS, k) ? ENGINE_KEYS[k] : undefined;
      if (!spec) throw unknownKey(file, `engine.${k}`, Object.keys(ENGINE_KEYS).map((x) => `engine.${x}`));
      const r = ref(`engine.${k}`);
      const n = spec.size ? sizeValue(r, v, spec.min, spec.max) : intValue(r, v, spec.min, spec.max);
      if (spec.option === "pageSize" && (n & (n - 1)) !== 0) throw badValue(r, v, "must be a power of two from 1024 to 65536");
      engine[spec.option] = n;
    }
    // The engine's own check, as a second guard; its option name is mapped back to the key.
    try {
      validateOptions({ ...engine });
    } catch (e) {
      const opt = e instanceof KeelError ? (e.details.option as string | undefined) : undefined;
      const key = Object.entries(ENGINE_KEYS).find(([, s]) => s.option === opt)?.[0];
      if (key) throw badValue(ref(`engine.${key}`), engine[ENGINE_KEYS[key]!.option], e instanceof Error ? e.message : "is out of range");
      throw e;
    }
  }

  // [health]
  let health: HealthSettings = { ...DEFAULTS.health };
  if (has("health")) {
    if (!isTable(t.health)) throw badValue(ref("health"), t.health, "must be a table ([health])");
    const h = t.health;
    for (const k of Object.keys(h)) if (!(HEALTH_KEYS as readonly string[]).includes(k)) throw unknownKey(file, `health.${k}`, HEALTH_KEYS.map((x) => `health.${x}`));
    health = {
      minFreeBytes: h.min_free_bytes !== undefined ? sizeValue(ref("health.min_free_bytes"), h.min_free_bytes, 0, MAX_SIZE) : health.minFreeBytes,
      maxDurableLag: h.max_durable_lag !== undefined ? intValue(ref("health.max_durable_lag"), h.max_durable_lag, 0, Number.MAX_SAFE_INTEGER) : health.maxDurableLag,
      maxAppliedLag: h.max_applied_lag !== undefined ? intValue(ref("health.max_applied_lag"), h.max_applied_lag, 0, Number.MAX_SAFE_INTEGER) : health.maxAppliedLag,
    };
  }

  // Flags win over the file.
  const flag = (key: string): KeyRef => ({ key, file: null });
  if (flags.dir !== undefined) dir = resolve(cwd, stringValue(flag("--dir"), flags.dir, { nonEmpty: true }));
  if (flags.bind !== undefined) bind = hostValue(flag("--bind"), flags.bind);
  if (flags.port !== undefined) port = intValue(flag("--port"), flags.port, 0, 65535);
  if (flags.httpPort !== undefined) httpPort = intValue(flag("--http-port"), flags.httpPort, 0, 65535);
  if (flags.appendfsync !== undefined) appendfsync = enumValue(flag("--appendfsync"), flags.appendfsync, APPENDFSYNC);
  if (flags.logLevel !== undefined) logLevel = enumValue(flag("--log-level"), flags.logLevel, LOG_LEVELS);

  const server: ServerConfig = {
    dir,
    bind,
    port,
    requirepass,
    maxclients,
    protoMaxBulkLen,
    protoMaxMultibulkLen,
    databases,
    appendfsync,
    saveRules: rules,
    autoAofRewritePercentage: pct,
    autoAofRewriteMinSize: minSize,
    restoreFrom,
    httpBind,
    httpPort,
    logLevel,
  };
  return { server, engine, health, configFile: file ? resolve(cwd, file) : null };
}

/** Exposed for the sample-file test: every documented key. */
export const ALL_KEYS: readonly string[] = [
  ...TOP_KEYS.filter((k) => k !== "engine" && k !== "health"),
  ...Object.keys(ENGINE_KEYS).map((k) => `engine.${k}`),
  ...HEALTH_KEYS.map((k) => `health.${k}`),
];
