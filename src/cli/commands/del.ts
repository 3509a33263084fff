/**
 * keel del <dir> <key> [--db NAME] [--key-type T]: remove one key (durable when the command
 * returns). Removing a key that is not there is not an error: it says so and exits 0.
 */
import type { Command } from "commander";
import { dbOption, keyTypeOption } from "../args.js";
import { action } from "../context.js";
import { subDatabase, withDatabase } from "../database.js";
import { keyJson, parseKey, type KeyType } from "../values.js";

export function registerDel(program: Command): void {
  program
    .command("del")
    .description("remove a key")
    .argument("<dir>", "database directory")
    .argument("<key>", "the key")
    .addOption(dbOption())
    .addOption(keyTypeOption())
    .action(
      action(async (ctx, dir: string, keyText: string, opts: { db?: string; keyType: KeyType }) => {
        let closeError: unknown;
        const r = await withDatabase(dir, { readOnly: false }, async (db) => {
          const sub = subDatabase(db, opts.db, { mustExist: true });
          const key = parseKey(keyText, opts.keyType, sub.keyEncoding);
          const removed = await sub.remove(key);
          return { key: keyJson(key, sub.keyEncoding), db: sub.name, removed };
        }, (e) => (closeError = e));
        const warning = closeError === undefined ? {} : ctx.out.closeFailedAfterWrite(closeError);
        await ctx.out.result({ ...r, ...warning }, () => (r.removed ? "removed" : `key ${JSON.stringify(keyText)} was not there; nothing removed`));
      }),
    );
}
