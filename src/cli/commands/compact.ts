/**
 * keel compact <dir> <dest>: rewrite a database that no process has open into a new directory,
 * without free pages (compactTo). The source is only read. Ctrl-C stops it and removes the partial
 * destination. `dest` must not exist. Afterwards, replace <dir> with <dest> while it is stopped.
 */
import type { Command } from "commander";
import { compactTo } from "../../maintenance/compactTo.js";
import { outputPath } from "../args.js";
import { action } from "../context.js";
import { hasDatabase, notFound } from "../database.js";
import { formatBytes } from "../output.js";

export function registerCompact(program: Command): void {
  program
    .command("compact")
    .description("rewrite a stopped database into a new directory without free pages")
    .argument("<dir>", "database directory (no process may have it open)")
    .argument("<dest>", "destination directory (must not exist)", outputPath)
    .action(
      action(async (ctx, dir: string, dest: string) => {
        if (!hasDatabase(dir)) throw notFound(dir);
        const progress = ctx.progress("compact");
        const r = await compactTo(dir, dest, { signal: ctx.signal, onProgress: progress.update });
        progress.stop();
        await ctx.out.result(r, () => {
          const saved = r.srcBytes - r.bytes;
          return `compacted ${dir} (${formatBytes(r.srcBytes)}) into ${r.dest} (${formatBytes(r.bytes)}${saved > 0 ? `, ${formatBytes(saved)} smaller` : ""}): ${r.entries} entries at lsn ${r.lsn}, in ${Math.round(r.ms)} ms`;
        });
      }),
    );
}
