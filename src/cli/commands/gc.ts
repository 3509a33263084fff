/**
 * keel gc <dir> [--keep-from N]: delete sealed log segments that no floor needs and retention lets
 * go (db.gcTxlogSegments). --keep-from keeps the log from LSN N on for this run.
 */
import type { Command } from "commander";
import { nonNegativeInt } from "../args.js";
import { action } from "../context.js";
import { requireLog, withDatabase } from "../database.js";
import { formatBytes } from "../output.js";

export function registerGc(program: Command): void {
  program
    .command("gc")
    .description("delete write-ahead log segments that nothing needs any more")
    .argument("<dir>", "database directory")
    .option("--keep-from <lsn>", "keep the log from this LSN on", nonNegativeInt)
    .action(
      action(async (ctx, dir: string, opts: { keepFrom?: number }) => {
        requireLog(dir, "gc");
        const r = await withDatabase(dir, { readOnly: false }, (db) => db.gcTxlogSegments(opts.keepFrom));
        await ctx.out.result({ path: dir, ...r }, () => {
          const lines = [r.deleted.length ? `deleted ${r.deleted.length} segment(s), freed ${formatBytes(r.freedBytes)}: ${r.deleted.join(", ")}` : "deleted no segment"];
          for (const h of r.heldByFloor) lines.push(`kept ${h.segment}: needed by floor ${h.floor} (lsn ${h.floorLsn})`);
          return lines;
        });
      }),
    );
}
