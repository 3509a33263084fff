/**
 * keel get <dir> <key> [--db NAME] [--key-type T]: print the value of one key, by the
 * sub-database's encoding (JSON for msgpack/json, text for string, hex for binary). Exit 4 when
 * the key is not there. Opens the database read-only.
 */
import type { Command } from "commander";
import { dbOption, keyTypeOption } from "../args.js";
import { CliError } from "../CliError.js";
import { action } from "../context.js";
import { subDatabase, withDatabase } from "../database.js";
import { ExitCode } from "../exitCodes.js";
import { keyJson, parseKey, valueJson, valueText, type KeyType } from "../values.js";

export function registerGet(program: Command): void {
  program
    .command("get")
    .description("print the value of a key")
    .argument("<dir>", "database directory")
    .argument("<key>", "the key")
    .addOption(dbOption())
    .addOption(keyTypeOption())
    .action(
      action(async (ctx, dir: string, keyText: string, opts: { db?: string; keyType: KeyType }) => {
        const found = await withDatabase(dir, { readOnly: true }, (db) => {
          const sub = subDatabase(db, opts.db, { mustExist: true });
          const key = parseKey(keyText, opts.keyType, sub.keyEncoding);
          const value = sub.get(key);
          return { key, value, keyEncoding: sub.keyEncoding, encoding: sub.valueEncoding };
        });
        if (found.value === undefined) {
          throw new CliError(ExitCode.NOT_FOUND, "NOT_FOUND", `key ${JSON.stringify(keyText)} not found${opts.db ? ` in sub-database "${opts.db}"` : ""}`, { key: keyText, db: opts.db ?? "" });
        }
        await ctx.out.result(
          { key: keyJson(found.key, found.keyEncoding), value: valueJson(found.value, found.encoding), encoding: found.encoding },
          () => valueText(found.value, found.encoding),
        );
      }),
    );
}
