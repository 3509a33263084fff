/**
 * ServeConfig: everything `keel serve` runs with: the contract's ServerConfig (what the RESP side
 * reads) plus the operations-only settings (engine pass-through, health thresholds).
 *
 * Invariants: a ServeConfig is only ever built by resolveConfig (validated, defaults applied);
 * every key of the TOML file maps to exactly one field here, listed in CONFIG_KEYS.
 */
import type { OpenOptions } from "../../db/options.js";
import type { ServerConfig } from "../ServerContext.js";

/** Engine options exposed in the `[engine]` table (names are the open() option names). */
export type EngineSettings = Pick<
  OpenOptions,
  | "cacheSize"
  | "maxReaders"
  | "maxValueSize"
  | "pageSize"
  | "walSegmentMaxBytes"
  | "walSegmentMaxMs"
  | "walRetentionBytes"
  | "walRetentionMs"
  | "checkpointLogBytes"
  | "checkpointDirtyBytes"
  | "checkpointMs"
>;

export interface HealthSettings {
  /** /health is 503 when the data directory's file system has less free space than this. */
  readonly minFreeBytes: number;
  /** /health is 503 when more records than this are committed but not yet durable. */
  readonly maxDurableLag: number;
  /** /health is 503 when more records than this are durable but not yet checkpointed. */
  readonly maxAppliedLag: number;
}

export interface ServeConfig {
  readonly server: ServerConfig;
  readonly engine: EngineSettings;
  readonly health: HealthSettings;
  /** The TOML file read (null: defaults and flags only). */
  readonly configFile: string | null;
}
