/**
 * program: the `keel` command tree (commander). Every command registers itself from
 * commands/<name>.ts; this file adds the global --json option, the help epilogue with the exit
 * codes, and turns commander's own errors (unknown command or option, missing argument, bad
 * value) into usage errors: exit 2, reported as JSON with --json.
 */
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { usage } from "./CliError.js";
import { getExitStatus, setExitStatus } from "./context.js";
import { EXIT_CODES_HELP, ExitCode } from "./exitCodes.js";
import { Output } from "./output.js";
import { registerCompact } from "./commands/compact.js";
import { registerCopy } from "./commands/copy.js";
import { registerDump } from "./commands/dump.js";
import { registerLoad } from "./commands/load.js";
import { registerDel } from "./commands/del.js";
import { registerDoctor } from "./commands/doctor.js";
import { registerGc } from "./commands/gc.js";
import { registerGet } from "./commands/get.js";
import { registerList } from "./commands/list.js";
import { registerPut } from "./commands/put.js";
import { registerRestore } from "./commands/restore.js";
import { registerSalvage } from "./commands/salvage.js";
import { registerScan } from "./commands/scan.js";
import { registerServe } from "./commands/serve.js";
import { registerSnapshot } from "./commands/snapshot.js";
import { registerStat } from "./commands/stat.js";
import { registerTxlog } from "./commands/txlog.js";
import { registerVerify } from "./commands/verify.js";
import { registerWatermarks } from "./commands/watermarks.js";

export function packageVersion(): string {
  try {
    // dist/src/cli/program.js -> package.json at the package root
    const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version?: string };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
}

const EPILOGUE = `
Every command prints text for a person, or with --json one JSON document on stdout (errors too:
{"error":{"code","message","details"}}; scan and txlog, which stream theirs, close it with the
error as its last field, "error"). Progress bars appear on a terminal for work longer than a
second. Commands that only read open the database read-only; none of them may run while another
process (a server) has the database open.

${EXIT_CODES_HELP}`;

export function buildProgram(json: boolean): Command {
  const program = new Command("keel");
  program
    .description("keel: the KeelDB command-line tool (inspect, back up, repair and edit a database directory)")
    .version(packageVersion(), "-V, --version", "print the version")
    .option("--json", "print one JSON document (for scripts)")
    .helpOption("-h, --help", "show help")
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      // With --json the error is printed as a JSON document instead (main below).
      outputError: (str, write) => {
        if (!json) write(str);
      },
    })
    .addHelpText("after", EPILOGUE);
  // Subcommands copy the settings above when they are created, so these come after them.
  registerStat(program);
  registerList(program);
  registerCopy(program);
  registerCompact(program);
  registerDump(program);
  registerLoad(program);
  registerSnapshot(program);
  registerRestore(program);
  registerTxlog(program);
  registerWatermarks(program);
  registerGc(program);
  registerGet(program);
  registerPut(program);
  registerDel(program);
  registerScan(program);
  registerVerify(program);
  registerSalvage(program);
  registerDoctor(program);
  registerServe(program);
  return program;
}

/** Run keel with `argv` (without node and the script); resolves to the exit status. */
export async function main(argv: string[]): Promise<number> {
  // An argument after `--` is an operand (a key may be "--json"), never the option.
  const end = argv.indexOf("--");
  const json = (end < 0 ? argv : argv.slice(0, end)).includes("--json");
  const program = buildProgram(json);
  setExitStatus(ExitCode.OK);
  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version") return ExitCode.OK;
      // commander.help: `keel help` (exit code 0), or help printed because no command was given,
      // whose message is only commander's placeholder.
      if (e.code === "commander.help" && e.exitCode === 0) return ExitCode.OK;
      const message = e.code === "commander.help" ? "a command is required (keel --help lists them)" : e.message.replace(/^error: /, "");
      if (json) new Output(true).error(usage(message, { commander: e.code }));
      return ExitCode.USAGE;
    }
    new Output(json).error(e);
    return ExitCode.INTERNAL;
  }
  return getExitStatus();
}
