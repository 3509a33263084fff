#!/usr/bin/env node
/**
 * keel: the KeelDB command-line tool (the package's bin). `keel --help` lists the commands and
 * the exit codes (exitCodes.ts); each command lives in commands/<name>.ts.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { ExitCode } from "./exitCodes.js";
import { installInterruptHandling } from "./interrupt.js";
import { installStdioErrorHandlers } from "./stdoutErrors.js";

// Before the commands' modules load (a few hundred ms): a signal from here on exits 130 (0 for
// `keel serve`, which has not served yet; its own handlers take over once it starts). The command
// is the first argument that is not an option (the only global option, --json, takes no value).
const command = process.argv.slice(2).find((a) => !a.startsWith("-"));
installInterruptHandling({ statusAlone: command === "serve" ? ExitCode.OK : ExitCode.INTERRUPTED });
installStdioErrorHandlers();
const { main } = await import("./program.js");

const status = await main(process.argv.slice(2));
process.exitCode = status;
// Flush what is written, then end even if a library left a timer behind. Nothing pending: no write
// at all (an empty write still reaches the device, and /dev/full refuses even that: exit 6).
const flushed = (s: NodeJS.WriteStream) => new Promise<void>((r) => (s.writableLength === 0 ? r() : void s.write("", () => r())));
// Interrupted: the output was cut short anyway, and a reader that stopped reading (a dump into a
// stalled pipe) must not hold the exit until a second signal.
const bounded = (p: Promise<void>) => (status === ExitCode.INTERRUPTED ? Promise.race([p, sleep(500, undefined, { ref: false })]) : p);
await bounded(flushed(process.stdout));
await bounded(flushed(process.stderr));
process.exit(status);
