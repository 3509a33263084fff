/**
 * keel txlog <dir> [--from N] [--to N]: the committed log records in LSN order (db.openTxLog),
 * from the oldest one kept (or --from) to the last durable one (or --to). Records are streamed:
 * one block per record in text, or one JSON document {"path","records":[...],"count"} with --json
 * (an error after it began is its last field, "error": output.ts).
 * Keys and values are printed by the encodings each record was decoded with (a sub-database dropped
 * or re-created since keeps its own); bytes left raw (encodings no longer known) print as binary.
 * The log is only open in a writable open, so this command takes the LOCK while it runs.
 */
import type { Command } from "commander";
import { nonNegativeInt } from "../args.js";
import { usage } from "../CliError.js";
import { action } from "../context.js";
import { requireLog, withDatabase } from "../database.js";
import { formatTime, toJson } from "../output.js";
import { keyJson, keyText, valueJson, valueText } from "../values.js";
import { dbLabel } from "./stat.js";

export function registerTxlog(program: Command): void {
  program
    .command("txlog")
    .description("print the committed records of the write-ahead log")
    .argument("<dir>", "database directory")
    .option("--from <lsn>", "first LSN (default: the oldest record kept)", nonNegativeInt)
    .option("--to <lsn>", "last LSN, inclusive (default: the last durable one)", nonNegativeInt)
    .action(
      action(async (ctx, dir: string, opts: { from?: number; to?: number }) => {
        if (opts.from !== undefined && opts.to !== undefined && opts.to < opts.from) throw usage(`--to ${opts.to} is before --from ${opts.from}`);
        const out = ctx.out;
        requireLog(dir, "txlog");
        let count = 0;
        await withDatabase(dir, { readOnly: false }, async (db) => {
          const w = db.txlogWatermarks();
          const from = opts.from ?? w.oldestLsn;
          const to = Math.min(opts.to ?? w.lastDurableLsn, w.lastDurableLsn);
          if (out.json) await out.beginDocument(`{"path":${toJson(dir)},"from":${toJson(from ?? null)},"to":${to},"records":[`, () => `],"count":${count}`);
          if (from !== undefined && from <= to) {
            for (const rec of db.openTxLog(Math.max(from, 1), to)) {
              if (out.json) {
                const doc = {
                  lsn: rec.lsn,
                  txTime: rec.txTime,
                  kind: rec.kind,
                  ops: rec.ops.map((op) => ({
                    db: op.db,
                    type: op.type,
                    ...(op.key !== undefined ? { key: keyJson(op.key, op.keyEncoding ?? "binary") } : {}),
                    ...(op.value !== undefined ? { value: valueJson(op.value, op.encoding ?? "binary") } : {}),
                  })),
                };
                await out.write((count ? "," : "") + toJson(doc));
              } else {
                const lines = [`lsn ${rec.lsn}  ${formatTime(rec.txTime)}  ${rec.kind}`];
                for (const op of rec.ops) {
                  let line = `  ${op.type.padEnd(8)} ${dbLabel(op.db)}`;
                  if (op.key !== undefined) line += `  ${keyText(op.key, op.keyEncoding ?? "binary")}`;
                  if (op.value !== undefined) line += ` = ${valueText(op.value, op.encoding ?? "binary")}`;
                  lines.push(line);
                }
                await out.write(lines.join("\n") + "\n");
              }
              count++;
            }
          }
          if (!out.json && count === 0) await out.write(`no log records${from === undefined ? " (the log holds none)" : ` in ${from}..${to}`}\n`);
        });
        // After the close, so that an error closing the database is inside the document too.
        await out.endDocument();
      }),
    );
}
