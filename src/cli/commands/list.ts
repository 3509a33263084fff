/** keel list <dir>: the sub-databases, with their encodings and entry counts. */
import type { Command } from "commander";
import { action } from "../context.js";
import { withDatabase } from "../database.js";
import { columns } from "../output.js";
import { dbLabel } from "./stat.js";

export function registerList(program: Command): void {
  program
    .command("list")
    .description("list the sub-databases with their key and value encodings and entry counts")
    .argument("<dir>", "database directory")
    .action(
      action(async (ctx, dir: string) => {
        const dbs = await withDatabase(dir, { readOnly: true }, (db) => {
          const s = db.getStats();
          return ["", ...db.listDBs()].map((name) => {
            const t = s.dbs[name];
            return { name, keyEncoding: t?.keyEncoding, encoding: t?.encoding, entries: t?.entries ?? 0 };
          });
        });
        await ctx.out.result({ path: dir, dbs }, () =>
          columns(
            ["name", "keys", "values", "entries"],
            dbs.map((d) => [dbLabel(d.name), d.keyEncoding ?? "", d.encoding ?? "", String(d.entries)]),
          ),
        );
      }),
    );
}
