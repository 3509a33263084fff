/**
 * Command: the shape of an entry of the command table. A command is one of three kinds, which
 * decides how the connection runs it:
 * - read:  run against the published state (after the connection's own pending writes settle);
 * - write: run inside one db.transaction; replied to only once that commit is durable;
 * - conn:  run by the connection itself (connection state, server administration).
 *
 * Invariant: read and write handlers are synchronous and touch the database only through the
 * KeyView they are given, so the same handler serves plain execution and EXEC.
 */
import type { KeyView } from "../keyspace/KeyView.js";
import type { Reply } from "../resp/Reply.js";
import type { CommandContext } from "./CommandContext.js";

export type CommandKind = "read" | "write" | "conn";

export interface Command {
  readonly name: string;
  /** Redis arity: n = exactly n arguments (name included), -n = at least n. */
  readonly arity: number;
  readonly kind: CommandKind;
  /** Flags COMMAND reports (write, readonly, fast, admin, noscript, loading, stale...). */
  readonly flags: readonly string[];
  /** First key, last key (-1 = last argument), step between keys (0 = no keys). */
  readonly keys: readonly [number, number, number];
  /** Allowed before AUTH when a password is set. */
  readonly noauth?: boolean;
  /** Allowed inside MULTI without queuing (EXEC, DISCARD, MULTI, WATCH, QUIT, RESET). */
  readonly txControl?: boolean;
  /**
   * Runs as soon as it is parsed even while this connection's writes are pending (it changes or
   * reads connection state only). Other conn commands (INFO, SAVE, CONFIG...) wait for them.
   */
  readonly immediate?: boolean;
  /** Refused inside MULTI (asynchronous administration: SAVE, BACKUP, SHUTDOWN). */
  readonly noMulti?: boolean;
  /**
   * Redis arity of subcommands (lower case, container name included in the count), checked when
   * MULTI queues the call: Redis refuses `CONFIG GET` there and fails the transaction at once.
   */
  readonly subArity?: Readonly<Record<string, number>>;
  /**
   * How many stored values its reply may hold, for a call whose reply is made in the write queue
   * (its size is known only then): Connection bounds those per connection. Infinity for a reply of
   * unbounded count (a whole hash, the keyspace). Default: 1 for a read, 0 for a write.
   */
  readonly values?: (args: readonly Buffer[]) => number;
  readonly run?: (v: KeyView, args: Buffer[], ctx: CommandContext) => Reply;
  readonly conn?: (ctx: CommandContext, args: Buffer[]) => Reply | Promise<Reply>;
}

/** Command.values with its default. */
export function replyValues(cmd: Command, args: readonly Buffer[]): number {
  return cmd.values ? cmd.values(args) : cmd.kind === "read" ? 1 : 0;
}

/** The arity error of a served subcommand called with the wrong number of arguments, if it is one. */
export function subcommandArityError(cmd: Command, args: readonly Buffer[]): string | undefined {
  if (!cmd.subArity || args.length < 2) return undefined;
  const sub = args[1]!.toString("latin1").toLowerCase();
  const a = cmd.subArity[sub];
  if (a === undefined || (a > 0 ? args.length === a : args.length >= -a)) return undefined;
  return `ERR wrong number of arguments for '${cmd.name}|${sub}' command`;
}
