/**
 * keel salvage <dir> <dest>: build a new database in <dest> from whatever valid leaf pages and
 * log records the damaged database in <dir> still holds (salvage()). The source is only read and
 * must not be open in another process (exit 3). `dest` must not exist. Entries of leaf pages that
 * no tree reaches go to the sub-database "salvaged-orphans"; the report says what may be lost.
 */
import type { Command } from "commander";
import { salvage, type SalvageReport } from "../../maintenance/salvage.js";
import { action } from "../context.js";
import { hasDatabase, notFound, refuseIfLocked } from "../database.js";
import { table } from "../output.js";
import { dbLabel } from "./stat.js";

export function salvageLines(dir: string, dest: string, r: SalvageReport): string[] {
  const bad = r.badPages.length ? `${r.badPages.length} (${r.badPages.slice(0, 20).join(", ")}${r.badPages.length > 20 ? ", ..." : ""})` : "0";
  const lines = [
    `salvaged ${dir} into ${dest}: ${r.entries} entries`,
    ...table(
      [
        ["per sub-database", Object.entries(r.perDb).map(([n, c]) => `${dbLabel(n)} ${c}`).join(", ") || "(none)"],
        ["leaf pages read", String(r.leafPagesRead)],
        ["bad pages", bad],
        ["orphan entries", `${r.orphanEntries}${r.orphanEntries ? ' (in sub-database "salvaged-orphans", raw bytes)' : ""}`],
        ["log records replayed", `${r.logRecordsReplayed}${r.lostLogFrom !== undefined ? `; lost from lsn ${r.lostLogFrom} (gap or damage)` : ""}`],
        ["values lost", String(r.lostValues)],
        ["stale entries dropped", String(r.staleEntries)],
        ["entries missing", String(r.missingEntries)],
      ],
      "  ",
    ),
  ];
  for (const n of r.notes) lines.push(`  note: ${n}`);
  return lines;
}

export function registerSalvage(program: Command): void {
  program
    .command("salvage")
    .description("rebuild a new database from the valid pages and log records of a damaged one")
    .argument("<dir>", "damaged database directory (no process may have it open)")
    .argument("<dest>", "new database directory (must not exist)")
    .action(
      action(async (ctx, dir: string, dest: string) => {
        if (!hasDatabase(dir)) throw notFound(dir);
        refuseIfLocked(dir);
        const progress = ctx.progress("salvage");
        const r = await salvage(dir, dest, { signal: ctx.signal, onProgress: progress.update });
        progress.stop();
        await ctx.out.result({ path: dir, dest, ...r }, () => salvageLines(dir, dest, r));
      }),
    );
}
