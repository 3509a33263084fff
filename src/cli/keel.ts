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
// Flush what is written, then end even if a library left a timer behind.
await new Promise<void>((r) => process.stdout.write("", () => r()));
await new Promise<void>((r) => process.stderr.write("", () => r()));
process.exit(status);
