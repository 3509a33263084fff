/**
 * define: constructors for command table entries, so each command file lists its commands in one
 * line each, with the flags COMMAND reports derived from the kind.
 */
import type { KeyView } from "../keyspace/KeyView.js";
import type { Reply } from "../resp/Reply.js";
import type { Command } from "./Command.js";
import type { CommandContext } from "./CommandContext.js";

type Run = (v: KeyView, args: Buffer[], ctx: CommandContext) => Reply;
type Conn = (ctx: CommandContext, args: Buffer[]) => Reply | Promise<Reply>;

export function readCmd(name: string, arity: number, run: Run, keys: [number, number, number], flags: string[] = []): Command {
  return { name, arity, kind: "read", run, keys, flags: ["readonly", ...flags] };
}

export function writeCmd(name: string, arity: number, run: Run, keys: [number, number, number], flags: string[] = []): Command {
  return { name, arity, kind: "write", run, keys, flags: ["write", "denyoom", ...flags] };
}

/** `cmd` with Command.values set. */
export function withValues(cmd: Command, values: (args: readonly Buffer[]) => number): Command {
  return { ...cmd, values };
}

/** For Command.values: a reply of unbounded count (a whole hash, the keyspace). */
export const UNBOUNDED = (): number => Infinity;

export function connCmd(name: string, arity: number, conn: Conn, flags: string[] = [], extra: Partial<Command> = {}): Command {
  return { name, arity, kind: "conn", conn, keys: [0, 0, 0], flags, ...extra };
}
