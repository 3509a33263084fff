/**
 * keel put <dir> <key> <value> [--db NAME] [--key-type T] [--value-type T]: write one entry and
 * wait until it is durable. A value of "-" is read from stdin, as bytes (values.ts says how they
 * become the value). The database must exist unless --create is given; a put that fails leaves
 * no database it created behind (created.ts). A sub-database named with --db is created by its
 * first write, with the encodings --key-encoding and --encoding (defaults: ordered-binary, msgpack);
 * given for a database that exists, they must match its encodings (else a usage error, exit 2).
 */
import { Option, type Command } from "commander";
import type { KeyEncodingName, ValueEncodingName } from "../../index.js";
import { dbOption, keyTypeOption, valueTypeOption } from "../args.js";
import { usage } from "../CliError.js";
import { action } from "../context.js";
import { withDatabase } from "../database.js";
import { fitKey, fitValue, keyJson, readKey, readValue, type KeyType, type ValueType } from "../values.js";

export async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

interface PutOptions {
  db?: string;
  keyType: KeyType;
  valueType: ValueType;
  create?: boolean;
  keyEncoding?: KeyEncodingName;
  encoding?: ValueEncodingName;
}

export function registerPut(program: Command): void {
  program
    .command("put")
    .description("write a key and its value (durable when the command returns)")
    .argument("<dir>", "database directory")
    .argument("<key>", "the key")
    .argument("<value>", 'the value ("-" reads it from stdin)')
    .addOption(dbOption())
    .addOption(keyTypeOption())
    .addOption(valueTypeOption())
    .option("--create", "create the database if the directory holds none")
    .addOption(new Option("--key-encoding <enc>", "key encoding of a sub-database this write creates").choices(["ordered-binary", "binary", "string"]))
    .addOption(new Option("--encoding <enc>", "value encoding of a sub-database this write creates").choices(["msgpack", "json", "string", "binary"]))
    .action(
      action(async (ctx, dir: string, keyText: string, valueText: string, opts: PutOptions) => {
        // Read before the database is opened, so that one that does not parse creates nothing; the
        // encodings they are fitted to are known only once it is open.
        const givenKey = readKey(keyText, opts.keyType);
        const givenValue = readValue(valueText === "-" ? await readStdin() : valueText, opts.valueType);
        let closeError: unknown;
        const r = await withDatabase(dir, { readOnly: false, create: !!opts.create }, async (db) => {
          const named = opts.db !== undefined && opts.db !== "";
          const exists = named && db.listDBs().includes(opts.db!);
          const sub = named ? db.openDB(opts.db!, exists ? {} : { keyEncoding: opts.keyEncoding, encoding: opts.encoding }) : db;
          // An encoding given for a database this write does not create would be dropped silently.
          if (!named || exists) {
            for (const [flag, given, stored] of [
              ["--key-encoding", opts.keyEncoding, sub.keyEncoding],
              ["--encoding", opts.encoding, sub.valueEncoding],
            ] as const) {
              if (given !== undefined && given !== stored) {
                const which = named ? `sub-database ${opts.db} exists with ${stored}` : `the default database has ${stored} (set when a database is made, --create included)`;
                throw usage(`${flag} ${given} applies only to a sub-database this write creates (--db NAME); ${which}`, { flag, given, stored, db: sub.name });
              }
            }
          }
          const key = fitKey(givenKey, sub.keyEncoding);
          const value = fitValue(givenValue, opts.valueType, sub.valueEncoding);
          const existed = await sub.transaction((tx) => tx.put(key, value));
          return { key: keyJson(key, sub.keyEncoding), db: sub.name, existed };
        }, (e) => (closeError = e));
        const warning = closeError === undefined ? {} : ctx.out.closeFailedAfterWrite(closeError);
        await ctx.out.result({ ok: true, ...r, ...warning }, () => (r.existed ? "replaced" : "added"));
      }),
    );
}
