/**
 * keel copy <dir> <dest> [--compact]: a consistent backup of the database at one transaction
 * (db.backup). It reads only, so it opens the database read-only. Ctrl-C stops it and removes
 * the partial copy. `dest` must not exist.
 */
import type { Command } from "commander";
import type { CopyResult } from "../../index.js";
import { outputPath } from "../args.js";
import { action } from "../context.js";
import { withDatabase } from "../database.js";
import { formatBytes } from "../output.js";

export function registerCopy(program: Command): void {
  program
    .command("copy")
    .description("make a consistent backup copy of a database into a new directory")
    .argument("<dir>", "database directory")
    .argument("<dest>", "destination directory (must not exist)", outputPath)
    .option("--compact", "rewrite the copy without free pages (entries re-inserted in key order)")
    .action(
      action(async (ctx, dir: string, dest: string, opts: { compact?: boolean }) => {
        const signal = ctx.signal; // before the open, which may take seconds (it replays the log)
        const progress = ctx.progress("copy");
        const result: CopyResult = await withDatabase(dir, { readOnly: true }, (db) => {
          // Passed as a variable: `compact` is an option of backup() newer than some builds' types.
          const backupOptions = { compact: !!opts.compact, signal, onProgress: progress.update };
          return db.backup(dest, backupOptions);
        });
        progress.stop();
        // What was made: a read-only open holding replayed log records can only make the compacting copy.
        await ctx.out.result({ ...result, compact: !("pages" in result) }, () =>
          `copied ${result.entries} entries of ${dir} at txn ${result.txn} (lsn ${result.lsn}) to ${result.dest}: ${formatBytes(result.bytes)} in ${Math.round(result.ms)} ms`,
        );
      }),
    );
}
