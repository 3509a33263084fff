/**
 * keel dump <dir> [--db NAME]... [--format jsonl|binary] [-f FILE]: write one consistent snapshot
 * of the database as a dump (JSON Lines by default, or binary), to FILE (a new file, written
 * atomically: temp name, fsync, link; an existing FILE is refused, also one that appears
 * meanwhile) or to stdout. Opens the database read-only. With --json the summary
 * goes to stderr when the dump itself goes to stdout.
 */
import { Option, type Command } from "commander";
import { dump, type DumpReport } from "../../maintenance/dump.js";
import { dumpToFile } from "../../maintenance/dumpFile.js";
import { outputPath } from "../args.js";
import { usage } from "../CliError.js";
import { action } from "../context.js";
import { withDatabase } from "../database.js";
import { formatBytes } from "../output.js";

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

interface DumpCliOptions {
  db: string[];
  format: "jsonl" | "binary";
  file?: string;
}

export function registerDump(program: Command): void {
  program
    .command("dump")
    .description("write a dump of the database (JSON Lines or binary) to a file or stdout")
    .argument("<dir>", "database directory")
    .option("--db <name>", 'a sub-database to dump ("" for the default one); repeat for more (default: all)', collect, [])
    .addOption(new Option("--format <format>", "dump format").choices(["jsonl", "binary"]).default("jsonl"))
    .option("-f, --file <file>", "write to this file (default: stdout)", outputPath)
    .action(
      action(async (ctx, dir: string, opts: DumpCliOptions) => {
        const out = ctx.out;
        if (opts.file === undefined) {
          if (opts.format === "binary" && out.stdout.isTTY) throw usage("refusing to write a binary dump to a terminal: use -f FILE or a pipe");
          out.stdoutIsData = true;
        }
        const progress = ctx.progress("dump");
        const options = { format: opts.format, dbs: opts.db.length ? opts.db : undefined, signal: ctx.signal, onProgress: progress.update };
        const report: DumpReport = await withDatabase(dir, { readOnly: true }, (db) => {
          if (opts.file !== undefined) return dumpToFile(db, opts.file, options);
          return dump(db, out.stdout, options);
        });
        progress.stop();
        const target = opts.file ?? "stdout";
        await out.result({ ...report, file: opts.file ?? null }, () =>
          opts.file === undefined ? [] : `dumped ${report.entries} entries of ${dir} (lsn ${report.lsn}) to ${target}: ${formatBytes(report.bytes)}, ${report.format}`,
        );
      }),
    );
}
