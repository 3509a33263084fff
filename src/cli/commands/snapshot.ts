/**
 * keel snapshot <dir>: checkpoint, start a new log segment and write a consistent copy to
 * <dir>/snapshots/current (the old one becomes previous) (db.createSnapshot; needs the log).
 * keel snapshots <dir>: the snapshots kept (db.listSnapshots).
 */
import type { Command } from "commander";
import type { SnapshotInfo } from "../../index.js";
import { action } from "../context.js";
import { requireLog, withDatabase } from "../database.js";
import { columns, formatBytes, formatTime } from "../output.js";

export function snapshotRows(list: SnapshotInfo[]): string[] {
  return columns(
    ["name", "lsn", "txn", "entries", "size", "created", "path"],
    list.map((s) => [s.name, String(s.lsn), String(s.txn), String(s.entries), formatBytes(s.bytes), formatTime(s.createdAt), s.path]),
  );
}

export function registerSnapshot(program: Command): void {
  program
    .command("snapshot")
    .description("write a consistent snapshot to <dir>/snapshots/current (needs the write-ahead log)")
    .argument("<dir>", "database directory")
    .action(
      action(async (ctx, dir: string) => {
        requireLog(dir, "snapshot");
        const signal = ctx.signal; // before the open, which may take seconds (it replays the log)
        const info = await withDatabase(dir, { readOnly: false }, (db) => db.createSnapshot({ signal }));
        await ctx.out.result(info, () => `snapshot ${info.name} at lsn ${info.lsn} (txn ${info.txn}): ${info.entries} entries, ${formatBytes(info.bytes)}, in ${info.path}`);
      }),
    );

  program
    .command("snapshots")
    .description("list the snapshots kept in <dir>/snapshots")
    .argument("<dir>", "database directory")
    .action(
      action(async (ctx, dir: string) => {
        const list = await withDatabase(dir, { readOnly: true }, (db) => db.listSnapshots());
        await ctx.out.result({ path: dir, snapshots: list }, () => (list.length ? snapshotRows(list) : `no snapshots in ${dir} (keel snapshot ${dir} makes one)`));
      }),
    );
}
