/**
 * WalRetention: which sealed segments gc may delete.
 *
 * Invariants kept:
 * - Floors always win: a segment holding any record with LSN >= some floor is kept, whatever the
 *   retention policy says (not yet checkpointed, needed by the oldest snapshot, a consumer, a reader).
 * - The active segment is never deleted.
 * - Only a prefix of the log (the oldest segments) is deleted, so the log stays contiguous (I3):
 *   deleting a middle segment would leave a gap that recovery must report as corruption.
 * - Retention is an OR: a segment may go when the log newer than it exceeds `retentionBytes`, or
 *   when its newest record is older than `retentionMs`. With neither given, floors alone decide.
 */
import { invalidArgument } from "../errors.js";
import type { SegmentInfo } from "./LogSegment.js";

export interface GcOptions {
  /** Keep every segment holding a record with LSN >= floorLsn (reported as floor "floorLsn"). */
  floorLsn?: number;
  /** Named floors, e.g. { checkpoint: appliedLsn + 1, snapshot: 5000, "consumer:replica": 812 }. */
  floors?: Record<string, number>;
  /** A segment may go when the bytes of the log newer than it exceed this. */
  retentionBytes?: number;
  /** A segment may go when its newest record's txTime is older than this many ms. */
  retentionMs?: number;
  /** ms since the epoch; defaults to the log's clock. */
  now?: number;
}

export interface HeldSegment {
  segment: string;
  firstLsn: number;
  lastLsn: number;
  /** The floor that keeps it (the lowest one at or below its last LSN). */
  floor: string;
  floorLsn: number;
}

export interface RetentionPlan {
  /** Names of the segments to delete, oldest first. */
  delete: string[];
  /** Segments retention alone would delete but a floor keeps. */
  heldByFloor: HeldSegment[];
}

function checkNumber(name: string, v: number | undefined, min: number): void {
  if (v !== undefined && (typeof v !== "number" || Number.isNaN(v) || v < min)) {
    throw invalidArgument(`${name} must be a number >= ${min}`, { argument: name, value: v });
  }
}

export function planRetention(segments: readonly SegmentInfo[], opts: GcOptions, now: number): RetentionPlan {
  checkNumber("floorLsn", opts.floorLsn, 0);
  checkNumber("retentionBytes", opts.retentionBytes, 0);
  checkNumber("retentionMs", opts.retentionMs, 0);
  const floors: { name: string; lsn: number }[] = [];
  if (opts.floorLsn !== undefined) floors.push({ name: "floorLsn", lsn: opts.floorLsn });
  for (const [name, lsn] of Object.entries(opts.floors ?? {})) {
    checkNumber(`floors.${name}`, lsn, 0);
    floors.push({ name, lsn });
  }
  if (floors.length === 0) {
    // Without a floor gc could delete records the data file does not yet hold.
    throw invalidArgument("gc needs at least one floor (floorLsn or floors)", { argument: "floorLsn" });
  }
  floors.sort((a, b) => a.lsn - b.lsn);

  const plan: RetentionPlan = { delete: [], heldByFloor: [] };
  const noPolicy = opts.retentionBytes === undefined && opts.retentionMs === undefined;
  let newerBytes = segments.reduce((n, s) => n + s.bytes, 0);
  let prefix = true;
  for (const s of segments) {
    newerBytes -= s.bytes;
    if (!s.sealed) break;
    const byBytes = opts.retentionBytes !== undefined && newerBytes > opts.retentionBytes;
    const byAge = opts.retentionMs !== undefined && s.lastTxTime !== undefined && now - s.lastTxTime > opts.retentionMs;
    const retentionLets = noPolicy || byBytes || byAge;
    const holder = floors.find((f) => s.lastLsn >= f.lsn);
    if (retentionLets && holder === undefined && prefix) {
      plan.delete.push(s.name);
      continue;
    }
    prefix = false;
    if (retentionLets && holder !== undefined) {
      plan.heldByFloor.push({ segment: s.name, firstLsn: s.firstLsn, lastLsn: s.lastLsn, floor: holder.name, floorLsn: holder.lsn });
    }
  }
  return plan;
}
