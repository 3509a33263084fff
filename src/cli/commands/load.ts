/**
 * keel load <dir> [-f FILE] [--format jsonl|binary]: read a dump (from FILE or stdin) into the
 * database. The sub-databases the dump holds must be missing or empty there. When <dir> holds no
 * database, one is created whose default database has the dump's encodings (read from the dump's
 * header before anything is written). A load commits in batches: see the error's
 * details.committedEntries when it fails halfway. A database the load creates is built in a
 * staging directory and appears under <dir> only once complete (loadStaging.ts), so a killed load
 * leaves none; one that fails or is interrupted is undone: its staging directory is removed, and
 * <dir> too if this load made it and nothing else is in it now. Nothing else is touched: another
 * load into <dir> may have published its database meanwhile. A database that was there keeps
 * the batches committed.
 */
import { createReadStream, existsSync, rmdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Option, type Command } from "commander";
import type { KeyEncodingName, ValueEncodingName } from "../../index.js";
import { KeelError, open } from "../../index.js";
import { ioError } from "../../errors.js";
import { load, type LoadReport } from "../../maintenance/load.js";
import { BINARY_MAGIC } from "../../maintenance/dumpFormat.js";
import { BinaryParser, JsonlParser } from "../../maintenance/loadParsers.js";
import { LoadSource } from "../../maintenance/loadSource.js";
import { CliError } from "../CliError.js";
import { publishStaged, removeStaleStaging, stagingDir } from "../loadStaging.js";
import { HolderSocket } from "../../io/HolderSocket.js";
import { NodeFileSystem } from "../../io/NodeFileSystem.js";
import { action } from "../context.js";
import { ExitCode } from "../exitCodes.js";
import { hasDatabase, openDatabase, refuseFileAsDirectory } from "../database.js";

/** Undo a load that created no database: its staging directory, and <dir> if it made it and <dir> is empty now. */
function undoStaged(staging: string, dir: string, madeDir: boolean): void {
  try {
    rmSync(staging, { recursive: true, force: true });
    if (madeDir) rmdirSync(dir);
  } catch {
    // ENOTEMPTY: something else is in <dir> now (another load's database): it stays. Otherwise
    // the command's own error is the one to report; a rerun meets whatever is left.
  }
}

/**
 * An input that can be read twice from the start: the header is parsed from the chunks seen so
 * far, then `replay()` yields those chunks again followed by the rest of the input.
 */
class Rewindable {
  readonly #it: AsyncIterator<unknown>;
  readonly #seen: unknown[] = [];

  constructor(input: AsyncIterable<unknown>) {
    this.#it = input[Symbol.asyncIterator]();
  }

  /** Reads the input, remembering every chunk. */
  recording(): AsyncIterable<unknown> {
    const it = this.#it;
    const seen = this.#seen;
    return {
      [Symbol.asyncIterator]: () => ({
        async next() {
          const r = await it.next();
          if (!r.done) seen.push(r.value);
          return r;
        },
        // Stopping the header read must not end the input.
        async return() {
          return { done: true, value: undefined };
        },
      }),
    };
  }

  /** Every chunk from the start, then the rest of the input. */
  replay(): AsyncIterable<unknown> {
    const it = this.#it;
    const seen = this.#seen;
    return {
      async *[Symbol.asyncIterator]() {
        yield* seen;
        for (;;) {
          const r = await it.next();
          if (r.done) return;
          yield r.value;
        }
      },
    };
  }
}

/** The encodings of the dump's default database, read from its header (undefined when it has none). */
async function defaultEncodings(input: AsyncIterable<unknown>, format: "jsonl" | "binary" | undefined, signal: AbortSignal): Promise<{ keyEncoding: KeyEncodingName; encoding: ValueEncodingName } | undefined> {
  const src = new LoadSource(input, signal);
  const first = await src.peek(BINARY_MAGIC.length);
  const f = format ?? (first.equals(BINARY_MAGIC) ? "binary" : "jsonl");
  // Limits only bound entry lines, which the header read does not reach.
  const limits = { maxKeySize: 65536, maxValueSize: 2 ** 31 - 1 };
  const parser = f === "binary" ? new BinaryParser(src, limits) : new JsonlParser(src, limits);
  const header = await parser.header();
  const d = header.dbs.find((x) => x.name === "");
  return d ? { keyEncoding: d.keyEncoding, encoding: d.encoding } : undefined;
}

interface LoadCliOptions {
  file?: string;
  format?: "jsonl" | "binary";
}

export function registerLoad(program: Command): void {
  program
    .command("load")
    .description("load a dump (from a file or stdin) into a database; creates the database if there is none")
    .argument("<dir>", "database directory")
    .option("-f, --file <file>", "read from this file (default: stdin)")
    .addOption(new Option("--format <format>", "dump format (default: detected from the first bytes)").choices(["jsonl", "binary"]))
    .action(
      action(async (ctx, dir: string, opts: LoadCliOptions) => {
        if (opts.file !== undefined && !existsSync(opts.file)) throw new CliError(ExitCode.NOT_FOUND, "NOT_FOUND", `no dump file ${opts.file}`, { path: opts.file });
        refuseFileAsDirectory(dir);
        // Ctrl-C is caught from here on, so that one during the open is undone like one during the load.
        const signal = ctx.signal;
        const progress = ctx.progress("load");
        const raw: AsyncIterable<unknown> = opts.file !== undefined ? createReadStream(opts.file) : process.stdin;
        let input: AsyncIterable<unknown> = raw;
        removeStaleStaging(dir);
        const exists = hasDatabase(dir);
        // A log without its data file: the new database would open on top of it. Not guessed at.
        if (!exists && existsSync(join(dir, "wal"))) {
          throw new CliError(ExitCode.USAGE, "INVALID_ARGUMENT", `${dir} holds a wal entry but no data.keel (a log without its data file); move it away first`, { path: join(dir, "wal") });
        }
        const staging = stagingDir(dir);
        const madeDir = !existsSync(dir);
        let working: HolderSocket | undefined;
        const undo = exists
          ? () => {}
          : () => {
              working?.close();
              undoStaged(staging, dir, madeDir);
            };
        let db;
        if (exists) {
          db = await openDatabase(dir, { readOnly: false });
        } else {
          const rw = new Rewindable(raw);
          const enc = await defaultEncodings(rw.recording(), opts.format, ctx.signal);
          input = rw.replay();
          const create = async () => {
            try {
              new NodeFileSystem().mkdir(dir);
            } catch (e) {
              throw ioError(e, "mkdir", dir);
            }
            return open(staging, { keyEncoding: enc?.keyEncoding, encoding: enc?.encoding });
          };
          try {
            db = await create();
          } catch (e) {
            // LOCKED: a load elsewhere (another pid namespace, the same pid number) stages there.
            if (!(e instanceof KeelError && e.code === "LOCKED")) undo();
            throw e;
          }
          // The staging database's LOCK socket says "at work" (removeStaleStaging) only while it is
          // open: this one says so until the database is published or undone.
          working = HolderSocket.listen(staging);
        }
        let report: LoadReport;
        try {
          report = await load(db, input as NodeJS.ReadableStream, { format: opts.format, signal, onProgress: progress.update });
        } catch (e) {
          await db.close().catch(() => {});
          // A database this command created holds nothing but the failed load.
          undo();
          throw e;
        }
        if (!exists) {
          try {
            await db.close();
            publishStaged(staging, dir);
            working?.close();
          } catch (e) {
            // Another load that published first: its database stays; only this one's staging goes.
            undo();
            throw e;
          }
        } else await db.close();
        progress.stop();
        await ctx.out.result({ path: dir, created: !exists, ...report }, () =>
          `loaded ${report.entries} entries into ${dir}${exists ? "" : " (new database)"} from ${opts.file ?? "stdin"} (${report.format}): ` +
          Object.entries(report.perDb)
            .map(([n, c]) => `${n === "" ? "(default)" : n} ${c}`)
            .join(", "),
        );
      }),
    );
}
