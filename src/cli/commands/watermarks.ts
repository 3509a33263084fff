/**
 * keel watermarks <dir>: the log's positions (committed, durable, applied LSNs), lag, size and
 * floors (db.txlogWatermarks). The log is only open in a writable open, so this command takes the
 * LOCK for the moment it runs (and, like any open, replays and checkpoints a log left unapplied).
 */
import type { Command } from "commander";
import type { TxLogWatermarks } from "../../index.js";
import { action } from "../context.js";
import { requireLog, withDatabase } from "../database.js";
import { formatBytes, formatTime, table } from "../output.js";

export function watermarkLines(w: TxLogWatermarks): string[] {
  const floors = Object.entries(w.floors).map(([k, v]) => `${k}=${v}`);
  const lines = table([
    ["last committed lsn", String(w.lastCommittedLsn)],
    ["last durable lsn", String(w.lastDurableLsn)],
    ["last applied lsn", String(w.lastAppliedLsn)],
    ["oldest lsn", w.oldestLsn === undefined ? "(log holds no record)" : String(w.oldestLsn)],
    ["lag", `durable ${w.lag.durable}, applied ${w.lag.applied}`],
    ["segments", `${w.segmentCount} (active ${w.activeSegment})`],
    ["log size", `${formatBytes(w.logBytes)} (${formatBytes(w.logDiskBytes)} on disk)`],
    ["pending sync", String(w.pendingSyncCount)],
    ["last sync", formatTime(w.lastSyncAt)],
    ["last checkpoint", formatTime(w.lastCheckpointAt)],
    ["floors", floors.length ? floors.join(", ") : "(none)"],
    ["replayed at open", `${w.replay.records} records${w.replay.records ? ` (lsn ${w.replay.fromLsn}..${w.replay.toLsn}, ${Math.round(w.replay.ms)} ms)` : ""}`],
  ]);
  for (const h of w.heldByFloor) lines.push(`held by floor ${h.floor} (lsn ${h.floorLsn}): segment ${h.segment}`);
  if (w.failed) lines.push(`FAILED: ${w.failed.message}`);
  return lines;
}

export function registerWatermarks(program: Command): void {
  program
    .command("watermarks")
    .description("positions of the write-ahead log: committed, durable and applied LSNs, lag, size, floors")
    .argument("<dir>", "database directory")
    .action(
      action(async (ctx, dir: string) => {
        requireLog(dir, "watermarks");
        const w = await withDatabase(dir, { readOnly: false }, (db) => db.txlogWatermarks());
        await ctx.out.result({ path: dir, ...w }, () => watermarkLines(w));
      }),
    );
}
