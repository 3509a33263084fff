/**
 * keel serve: the Redis-compatible server arrives with the server issue. Until then the command
 * says so and exits 0 (`npm start` runs it).
 */
import type { Command } from "commander";

export const SERVE_NOTICE =
  'keel serve: the Redis-compatible server arrives with the server issue; the embedded library (import { open } from "keeldb") is ready.';

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("run the Redis-compatible server (arrives with the server issue: for now it prints a notice)")
    .allowUnknownOption()
    .allowExcessArguments()
    .action(() => {
      console.log(SERVE_NOTICE);
    });
}
