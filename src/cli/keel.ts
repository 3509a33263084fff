#!/usr/bin/env node
/**
 * keel: the KeelDB command-line tool (the package's bin). `keel --help` lists the commands and
 * the exit codes (exitCodes.ts); each command lives in commands/<name>.ts.
 */
import { main } from "./program.js";
import { installStdioErrorHandlers } from "./stdoutErrors.js";

installStdioErrorHandlers();

const status = await main(process.argv.slice(2));
process.exitCode = status;
// Flush what is written, then end even if a library left a timer behind. Nothing pending: no write
// at all (an empty write still reaches the device, and /dev/full refuses even that: exit 6).
const flushed = (s: NodeJS.WriteStream) => new Promise<void>((r) => (s.writableLength === 0 ? r() : void s.write("", () => r())));
await flushed(process.stdout);
await flushed(process.stderr);
process.exit(status);
