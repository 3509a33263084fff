/**
 * CommandTable: every command the RESP server knows, by lower-case name. The connection-level
 * commands (QUIT, MULTI, EXEC, DISCARD, WATCH, UNWATCH, SHUTDOWN, RESET) are listed here for arity
 * checks and COMMAND, and are run by Connection itself.
 */
import type { Command } from "./commands/Command.js";
import { OK } from "./resp/Reply.js";
import { hashCommands } from "./commands/hashCommands.js";
import { keyCommands } from "./commands/keyCommands.js";
import { serverCommands } from "./commands/serverCommands.js";
import { stringCommands } from "./commands/stringCommands.js";

function special(name: string, arity: number, flags: string[], extra: Partial<Command> = {}): Command {
  return { name, arity, kind: "conn", keys: [0, 0, 0], flags, ...extra };
}

export const CONNECTION_COMMANDS: Command[] = [
  special("quit", -1, ["noscript", "loading", "stale", "fast", "no_auth"], { noauth: true, txControl: true }),
  special("multi", 1, ["noscript", "loading", "stale", "fast"], { txControl: true }),
  special("exec", 1, ["noscript", "loading", "stale"], { txControl: true }),
  special("discard", 1, ["noscript", "loading", "stale", "fast"], { txControl: true }),
  special("watch", -2, ["noscript", "loading", "stale", "fast"], { keys: [1, -1, 1], txControl: true }),
  // Queued inside MULTI, UNWATCH answers OK at EXEC (which releases the watches anyway).
  special("unwatch", 1, ["noscript", "loading", "stale", "fast"], { conn: () => OK }),
  special("shutdown", -1, ["admin", "noscript", "loading", "stale"], { noMulti: true }),
];

export function buildCommandTable(): Map<string, Command> {
  const m = new Map<string, Command>();
  for (const c of [...stringCommands, ...keyCommands, ...hashCommands, ...serverCommands, ...CONNECTION_COMMANDS]) m.set(c.name, c);
  return m;
}
