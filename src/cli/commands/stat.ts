/** keel stat <dir> [--all]: the database's statistics (getStats); --all adds each sub-database. */
import type { Command } from "commander";
import type { Stats } from "../../index.js";
import { action } from "../context.js";
import { withDatabase } from "../database.js";
import { columns, formatBytes, formatTime, table } from "../output.js";

export function dbLabel(name: string): string {
  return name === "" ? "(default)" : name;
}

function percent(part: number, whole: number): string {
  return whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : "0%";
}

export function statLines(dir: string, s: Stats, all: boolean): string[] {
  const named = Object.keys(s.dbs).filter((n) => n !== "").length;
  const lines = table([
    ["database", dir],
    ["page size", `${s.pageSize} bytes`],
    ["txn", String(s.txnId)],
    ["lsn", String(s.lsn)],
    ["entries", String(s.entries)],
    ["depth", String(s.depth)],
    ["pages", `${s.totalPages} total: ${s.branchPages} branch, ${s.leafPages} leaf, ${s.overflowPages} overflow, ${s.freePages} free (${percent(s.freePages, s.totalPages)})`],
    ["file size", `${formatBytes(s.fileBytes)} (${s.fileBytes} bytes)`],
    ["last checkpoint", formatTime(s.lastCheckpointAt)],
    ["sub-databases", all ? String(named) : `${named} named${named ? " (keel stat --all shows each)" : ""}`],
  ]);
  if (s.metaFallback) lines.push(`WARNING: the newest meta page (slot ${s.metaFallback.slot}) is damaged (${s.metaFallback.reason}); the previous one was used`);
  if (all) {
    lines.push("");
    const rows = Object.entries(s.dbs)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, t]) => [dbLabel(name), t.keyEncoding ?? "", t.encoding ?? "", String(t.entries), String(t.depth), String(t.branchPages), String(t.leafPages), String(t.overflowPages)]);
    lines.push(...columns(["name", "keys", "values", "entries", "depth", "branch", "leaf", "overflow"], rows));
  }
  return lines;
}

export function registerStat(program: Command): void {
  program
    .command("stat")
    .description("statistics of a database: entries, pages, free pages, file size")
    .argument("<dir>", "database directory")
    .option("--all", "also show each sub-database")
    .action(
      action(async (ctx, dir: string, opts: { all?: boolean }) => {
        const stats = await withDatabase(dir, { readOnly: true }, (db) => db.getStats());
        const { dbs, ...rest } = stats;
        const doc = opts.all ? { path: dir, ...rest, dbs } : { path: dir, ...rest };
        await ctx.out.result(doc, () => statLines(dir, stats, !!opts.all));
      }),
    );
}
