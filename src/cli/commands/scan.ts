/**
 * keel scan <dir> [--db NAME] [--start K] [--end K] [--limit N] [--reverse] [--key-type T]:
 * print entries in key order (getRange): "key<TAB>value" lines, keys and values printed by the
 * sub-database's encodings; with --json one document {"entries":[{"key","value"}],"count"},
 * streamed (an error after it began is its last field, "error": output.ts). --start is inclusive,
 * --end exclusive (with --reverse: from --start down to --end).
 */
import type { Command } from "commander";
import { dbOption, keyTypeOption, nonNegativeInt } from "../args.js";
import { action } from "../context.js";
import { subDatabase, withDatabase } from "../database.js";
import { toJson } from "../output.js";
import type { Key } from "../../db/KeyCodec.js";
import { keyJson, keyText, parseKey, valueJson, valueText, type KeyType } from "../values.js";

interface ScanOptions {
  db?: string;
  keyType: KeyType;
  start?: string;
  end?: string;
  limit?: number;
  reverse?: boolean;
  keysOnly?: boolean;
}

function* mapKeys(keys: Iterable<Key>): Generator<{ key: Key }> {
  for (const key of keys) yield { key };
}

export function registerScan(program: Command): void {
  program
    .command("scan")
    .description("print entries in key order")
    .argument("<dir>", "database directory")
    .addOption(dbOption())
    .addOption(keyTypeOption())
    .option("--start <key>", "first key (inclusive)")
    .option("--end <key>", "key to stop at (exclusive)")
    .option("--limit <n>", "at most this many entries", nonNegativeInt)
    .option("--reverse", "iterate downward")
    .option("--keys-only", "print keys only")
    .action(
      action(async (ctx, dir: string, opts: ScanOptions) => {
        const out = ctx.out;
        let count = 0;
        let batch = "";
        await withDatabase(dir, { readOnly: true }, async (db) => {
          const sub = subDatabase(db, opts.db, { mustExist: true });
          const ke = sub.keyEncoding;
          const ve = sub.valueEncoding;
          const range = {
            start: opts.start === undefined ? undefined : parseKey(opts.start, opts.keyType, ke, "--start"),
            end: opts.end === undefined ? undefined : parseKey(opts.end, opts.keyType, ke, "--end"),
            limit: opts.limit,
            reverse: !!opts.reverse,
          };
          // The entries still in `batch` when an error stops the scan are printed with it.
          if (out.json) await out.beginDocument(`{"path":${toJson(dir)},"db":${toJson(sub.name)},"keyEncoding":${toJson(ke)},"encoding":${toJson(ve)},"entries":[`, () => `${batch}],"count":${count}`);
          // Keys only: values are never decoded, so one that cannot be decoded does not stop the listing.
          const entries: Iterable<{ key: Key; value?: unknown }> = opts.keysOnly ? mapKeys(sub.getKeys(range)) : sub.getRange(range);
          try {
            for (const { key, value } of entries) {
              const item = out.json
                ? (count ? "," : "") + toJson(opts.keysOnly ? { key: keyJson(key, ke) } : { key: keyJson(key, ke), value: valueJson(value, ve) })
                : opts.keysOnly
                  ? `${keyText(key, ke)}\n`
                  : `${keyText(key, ke)}\t${valueText(value, ve)}\n`;
              count++;
              // Written before a large item joins it: the item alone fits a string (hexOf's margin), the batch and it may not.
              if (batch.length && batch.length + item.length > 65536) {
                await out.write(batch);
                batch = "";
              }
              batch += item;
              if (batch.length > 65536) {
                await out.write(batch);
                batch = "";
              }
            }
          } catch (e) {
            // As --json does (inside its document), the entries read before the error are printed.
            // (--json: its document's close callback prints `batch`, so it is kept.)
            if (!out.json) {
              if (batch) await out.write(batch).catch(() => {});
              batch = "";
            }
            throw e;
          }
          if (batch) await out.write(batch);
          batch = "";
        });
        // After the close, so that an error closing the database is inside the document too.
        await out.endDocument();
      }),
    );
}
