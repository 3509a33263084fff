#!/usr/bin/env node
/**
 * keel: the command-line tool. The commands (stat, copy, dump, verify, serve, ...) arrive with
 * their issues; until then it says so plainly and exits with the documented usage code.
 *
 * Exit codes: 0 ok, 1 problems found, 2 usage error, 3 database in use, 4 not implemented yet.
 */
const [command] = process.argv.slice(2);

if (command === "serve") {
  console.log("keel serve: the Redis-compatible server arrives with the server issue; the embedded library (import { open } from \"keeldb\") is ready.");
  process.exit(0);
} else if (command === "--version" || command === "-V") {
  console.log("0.1.0");
} else {
  console.error(`keel: ${command ? `unknown command "${command}"` : "no command given"}. Commands arrive with the tooling issue; today: keel serve, keel --version.`);
  process.exit(2);
}
