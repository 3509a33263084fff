/**
 * keel restore <snapshot> <dest> [--to-lsn N] [--wal-dir DIR]: rebuild a database from a snapshot
 * plus the log after it, up to LSN N (default: the end of the log) (restore()). <snapshot> is a
 * snapshot directory (<db>/snapshots/current or previous) or a database directory, meaning its
 * newest snapshot (current; previous if current is missing). Only reads the source; `dest` must not exist.
 * A source database a live process has open is refused (LOCKED, exit 3).
 */
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { Command } from "commander";
import { restore } from "../../index.js";
import { nonNegativeInt, outputPath } from "../args.js";
import { action } from "../context.js";
import { refuseIfLocked } from "../database.js";

export function resolveSnapshotDir(path: string): string {
  if (existsSync(join(path, "snapshot.json"))) return path;
  // The newest snapshot: current, or previous where a rotation was cut off between its renames.
  for (const name of ["current", "previous"]) {
    const dir = join(path, "snapshots", name);
    if (existsSync(join(dir, "snapshot.json"))) return dir;
  }
  return path;
}

export function registerRestore(program: Command): void {
  program
    .command("restore")
    .description("restore a snapshot plus the log after it into a new database directory")
    .argument("<snapshot>", "snapshot directory (<db>/snapshots/current|previous), or a database directory for its newest snapshot (current, else previous)")
    .argument("<dest>", "new database directory (must not exist)", outputPath)
    .option("--to-lsn <lsn>", "restore up to and including this LSN (default: the end of the log)", nonNegativeInt)
    .option("--wal-dir <dir>", "the log to replay (default: the wal/ of the snapshot's database)")
    .action(
      action(async (ctx, snapshot: string, dest: string, opts: { toLsn?: number; walDir?: string }) => {
        const from = resolveSnapshotDir(snapshot);
        // The snapshot's database and the database whose log is replayed (--wal-dir's parent):
        // while a process has either open, its snapshots rotate and its log grows and is collected
        // under the copy. Refused as every command refuses a database in use (exit 3).
        refuseIfLocked(dirname(dirname(resolve(from))));
        if (opts.walDir !== undefined) refuseIfLocked(dirname(resolve(opts.walDir)));
        const r = await restore(from, dest, { toLsn: opts.toLsn, walDir: opts.walDir, signal: ctx.signal });
        await ctx.out.result({ snapshot: from, ...r }, () => `restored ${from} (lsn ${r.snapshotLsn}) + ${r.records} log records to ${r.target}, now at lsn ${r.lsn}`);
      }),
    );
}
