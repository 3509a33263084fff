/**
 * WalOptions: the write-ahead log's settings, their defaults, and their validation.
 *
 * Invariants kept:
 * - Every option is checked at open: a bad value is INVALID_ARGUMENT naming the option and the
 *   limit, never a log that half-works.
 */
import { invalidArgument } from "../errors.js";
import type { DurabilityProfile } from "./GroupCommit.js";

export interface WalOptions {
  /** "strict" (default): waitDurable after every commit's group sync; "relaxed": batched; "none": the OS flushes. */
  durability?: DurabilityProfile;
  /** relaxed: sync when this many records are unsynced (default 100). */
  groupCommit?: number;
  /** relaxed: sync at most this many ms after the first unsynced append (default 100). */
  groupCommitMs?: number;
  /** Roll to a new segment before a record would make the active one larger than this (default 64 MiB). */
  walSegmentMaxBytes?: number;
  /** Roll, on the next append, a segment older than this (default 1 hour). */
  walSegmentMaxMs?: number;
  /** Preallocate segments in chunks of this many bytes, zero-filled and synced once (default 4 MiB; 0 = off). */
  walPreallocBytes?: number;
  /** The first LSN of a log that holds no segment yet (default 1): the db layer passes appliedLsn + 1. */
  startLsn?: number;
  /** Wall clock in ms (default Date.now): txTime defaults, segment ages, retention. */
  now?: () => number;
  /** Called at the named points of WAL_PHASES (crash tests, KEEL_CRASH_AT). */
  onPhase?: (name: string) => void;
}

export interface ResolvedWalOptions {
  durability: DurabilityProfile;
  groupCommit: number;
  groupCommitMs: number;
  walSegmentMaxBytes: number;
  walSegmentMaxMs: number;
  walPreallocBytes: number;
  startLsn: number;
  now: () => number;
  onPhase: ((name: string) => void) | undefined;
}

export const WAL_DEFAULTS = {
  durability: "strict" as DurabilityProfile,
  groupCommit: 100,
  groupCommitMs: 100,
  walSegmentMaxBytes: 64 * 1024 * 1024,
  walSegmentMaxMs: 60 * 60 * 1000,
  walPreallocBytes: 4 * 1024 * 1024,
  startLsn: 1,
};

function int(name: string, v: unknown, min: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) {
    throw invalidArgument(`${name} must be an integer >= ${min}`, { argument: name, value: v, limit: min });
  }
  return v;
}

function num(name: string, v: unknown, min: number, dflt: number, max = Infinity): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || Number.isNaN(v) || v < min || v > max) {
    throw invalidArgument(`${name} must be a number from ${min} to ${max}`, { argument: name, value: v, limit: min, min, max });
  }
  return v;
}

export function resolveWalOptions(o: WalOptions = {}): ResolvedWalOptions {
  const durability = o.durability ?? WAL_DEFAULTS.durability;
  if (durability !== "strict" && durability !== "relaxed" && durability !== "none") {
    throw invalidArgument(`durability must be "strict", "relaxed" or "none"`, { argument: "durability", value: durability });
  }
  if (o.now !== undefined && typeof o.now !== "function") throw invalidArgument("now must be a function", { argument: "now" });
  if (o.onPhase !== undefined && typeof o.onPhase !== "function") throw invalidArgument("onPhase must be a function", { argument: "onPhase" });
  return {
    durability,
    groupCommit: int("groupCommit", o.groupCommit, 1, WAL_DEFAULTS.groupCommit),
    // A timer delay: setTimeout turns anything above 2^31 - 1 ms into 1 ms.
    groupCommitMs: num("groupCommitMs", o.groupCommitMs, 0, WAL_DEFAULTS.groupCommitMs, 2 ** 31 - 1),
    walSegmentMaxBytes: int("walSegmentMaxBytes", o.walSegmentMaxBytes, 256, WAL_DEFAULTS.walSegmentMaxBytes),
    walSegmentMaxMs: num("walSegmentMaxMs", o.walSegmentMaxMs, 0, WAL_DEFAULTS.walSegmentMaxMs),
    walPreallocBytes: int("walPreallocBytes", o.walPreallocBytes, 0, WAL_DEFAULTS.walPreallocBytes),
    startLsn: int("startLsn", o.startLsn, 1, WAL_DEFAULTS.startLsn),
    now: o.now ?? Date.now,
    onPhase: o.onPhase,
  };
}
