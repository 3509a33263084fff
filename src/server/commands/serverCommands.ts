/**
 * serverCommands: connection and administration commands: PING ECHO HELLO SELECT AUTH CLIENT INFO
 * CONFIG COMMAND TIME SHUTDOWN SAVE BGSAVE LASTSAVE BACKUP BGREWRITEAOF.
 * (QUIT, MULTI, EXEC, DISCARD, WATCH and UNWATCH are handled by the connection itself.)
 *
 * Invariants: password checks compare in constant time (timingSafeEqual over SHA-256 digests);
 * whether a client must authenticate is decided at each command from the current requirepass
 * (authRequired).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { isKeelError } from "../../errors.js";
import { arr, bulk, cText, int, map, NULL, OK, simple, strMap, type Reply } from "../resp/Reply.js";
import { RespError, SYNTAX } from "../resp/RespError.js";
import type { Command } from "./Command.js";
import type { ClientState, CommandContext } from "./CommandContext.js";
import { connCmd } from "./define.js";
import { infoText } from "./info.js";
import { configGet, configSet } from "./config.js";
import { toInt64, upper } from "./args.js";
import { globMatch } from "../keyspace/globMatch.js";

import { SERVER_VERSION_INFO as SERVER_VERSION } from "./version.js";

function digest(s: string | Buffer): Buffer {
  return createHash("sha256").update(s).digest();
}

/**
 * Whether the client must authenticate before this command: a password is configured NOW and the
 * client has not authenticated. Checked at every command against the current requirepass (as Redis
 * 7 does), so CONFIG SET requirepass "" serves every connection at once, and a client that connected
 * without a password keeps being served after one is set.
 */
export function authRequired(client: ClientState, requirepass: string | null): boolean {
  return !client.authenticated && requirepass !== null && requirepass !== "";
}

/** Whether `pass` is the configured password (null password: anything is accepted). */
export function checkPassword(ctx: CommandContext, user: string | null, pass: Buffer): boolean {
  if (user !== null && user !== "default") return false;
  const want = ctx.server.options.config.requirepass;
  if (want === null || want === "") return true;
  return timingSafeEqual(digest(want), digest(pass));
}

const WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled.";

function auth(ctx: CommandContext, args: Buffer[]): Reply {
  if (args.length > 3) throw new RespError(SYNTAX);
  const want = ctx.server.options.config.requirepass;
  if (args.length === 2 && (want === null || want === "")) {
    throw new RespError("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
  }
  const user = args.length === 3 ? args[1]!.toString() : null;
  if (!checkPassword(ctx, user, args[args.length - 1]!)) throw new RespError(WRONGPASS);
  ctx.client.authenticated = true;
  return OK;
}

function hello(ctx: CommandContext, args: Buffer[]): Reply {
  let proto = ctx.client.proto;
  if (args.length >= 2) {
    const v = toInt64(args[1]!);
    if (v === null) throw new RespError("ERR Protocol version is not an integer or out of range");
    if (v !== 2n && v !== 3n) throw new RespError("NOPROTO unsupported protocol version");
    proto = v === 3n ? 3 : 2;
  }
  let name: string | null | undefined;
  for (let i = 2; i < args.length; i++) {
    const o = upper(args[i]);
    if (o === "AUTH" && i + 2 < args.length) {
      if (!checkPassword(ctx, args[i + 1]!.toString(), args[i + 2]!)) throw new RespError(WRONGPASS);
      ctx.client.authenticated = true;
      i += 2;
    } else if (o === "SETNAME" && i + 1 < args.length) {
      name = validName(args[++i]!);
    } else throw new RespError(`ERR Syntax error in HELLO option '${cText(args[i]!)}'`);
  }
  if (authRequired(ctx.client, ctx.server.options.config.requirepass)) {
    throw new RespError("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
  }
  if (name !== undefined) ctx.client.name = name;
  ctx.client.proto = proto;
  return strMap([
    ["server", "redis"],
    ["version", SERVER_VERSION],
    ["proto", proto],
    ["id", ctx.client.id],
    ["mode", "standalone"],
    ["role", "master"],
    ["modules", arr([])],
  ]);
}

function validName(b: Buffer): string | null {
  for (const c of b) if (c < 0x21 || c > 0x7e) throw new RespError("ERR Client names cannot contain spaces, newlines or special characters.");
  return b.length === 0 ? null : b.toString("latin1");
}

function select(ctx: CommandContext, args: Buffer[]): Reply {
  ctx.client.db = selectIndex(ctx, args[1]!);
  return OK;
}

export function selectIndex(ctx: CommandContext, arg: Buffer): number {
  const n = toInt64(arg);
  if (n === null) throw new RespError("ERR value is not an integer or out of range");
  // Redis reads the index as a C int first (getIntFromObjectOrReply), with its own message.
  if (n < -2147483648n || n > 2147483647n) throw new RespError("ERR value is out of range, value must between -2147483648 and 2147483647");
  if (n < 0n || n >= BigInt(ctx.server.options.config.databases)) throw new RespError("ERR DB index is out of range");
  return Number(n);
}

export function clientLine(c: ClientState, now: number): string {
  const age = Math.floor((now - c.createdAt) / 1000);
  const idle = Math.floor((now - c.lastCommandAt) / 1000);
  const flags = c.inMulti ? "x" : "N";
  return `id=${c.id} addr=${c.addr} laddr=${c.laddr} fd=-1 name=${c.name ?? ""} age=${age} idle=${idle} flags=${flags} db=${c.db} sub=0 psub=0 ssub=0 multi=${c.inMulti ? 0 : -1} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=${c.lastCommand} user=default redir=-1 resp=${c.proto}`;
}

/** CLIENT HELP: Redis's shape (one status line each), for the subcommands KeelDB serves. */
const CLIENT_HELP = [
  "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
  "GETNAME",
  "    Return the name of the current connection.",
  "ID",
  "    Return the ID of the current connection.",
  "INFO",
  "    Return information about the current client connection.",
  "LIST [options ...]",
  "    Return information about client connections. Options:",
  "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
  "      Return clients of specified type.",
  "    * ID <client-id> [<client-id> ...]",
  "      Return clients with the given IDs.",
  "SETNAME <name>",
  "    Assign the name <name> to the current connection.",
  "SETINFO <LIB-NAME|LIB-VER> <value>",
  "    Accepted and ignored.",
  "NO-EVICT (ON|OFF), NO-TOUCH (ON|OFF), REPLY (ON|OFF|SKIP)",
  "    Accepted and ignored.",
  "HELP",
  "    Print this help.",
];

/** CONFIG HELP, for the subcommands KeelDB serves (REWRITE is refused: the TOML file is the user's). */
const CONFIG_HELP = [
  "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
  "GET <pattern>",
  "    Return parameters matching the glob-like <pattern> and their values.",
  "SET <directive> <value>",
  "    Set the configuration <directive> to <value>.",
  "RESETSTAT",
  "    Reset statistics reported by the INFO command.",
  "HELP",
  "    Prints this help.",
];

/** COMMAND HELP, for the subcommands KeelDB serves. */
const COMMAND_HELP = [
  "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
  "(no subcommand)",
  "    Return details about all commands.",
  "COUNT",
  "    Return the total number of commands in this server.",
  "LIST [FILTERBY PATTERN <pattern>]",
  "    Return a list of all commands in this server.",
  "INFO [<command-name> ...]",
  "    Return details about multiple commands.",
  "DOCS [<command-name> ...]",
  "    Answered with an empty map (clients fall back to their built-in hints).",
  "HELP",
  "    Prints this help.",
];

/**
 * CLIENT LIST [TYPE type | ID id...], parsed as Redis 7 parses it: TYPE takes exactly one type (every
 * KeelDB client is "normal": there are no replicas, masters or subscribers); ID lists the given ids
 * in argument order (repeated ones repeated, unknown ones skipped), and any argument that is not an
 * integer fails the whole call; anything else is a syntax error.
 */
function clientList(ctx: CommandContext, args: Buffer[]): string {
  const now = Date.now();
  const opt = args.length > 2 ? upper(args[2]) : "";
  let text = "";
  if (args.length === 4 && opt === "TYPE") {
    const type = upper(args[3]);
    if (!["NORMAL", "MASTER", "REPLICA", "SLAVE", "PUBSUB"].includes(type)) throw new RespError(`ERR Unknown client type '${cText(args[3]!)}'`);
    if (type !== "NORMAL") return "";
  } else if (args.length > 3 && opt === "ID") {
    const byId = new Map<bigint, ClientState>();
    for (const c of ctx.server.clients()) byId.set(BigInt(c.id), c);
    for (let i = 3; i < args.length; i++) {
      const id = toInt64(args[i]!);
      if (id === null) throw new RespError("ERR Invalid client ID");
      const c = byId.get(id);
      if (c) text += clientLine(c, now) + "\n";
    }
    return text;
  } else if (args.length !== 2) throw new RespError(SYNTAX);
  for (const c of ctx.server.clients()) text += clientLine(c, now) + "\n";
  return text;
}

function client(ctx: CommandContext, args: Buffer[]): Reply {
  const sub = upper(args[1]);
  const arity = (n: number) => {
    if (args.length !== n) throw new RespError(`ERR wrong number of arguments for 'client|${sub.toLowerCase()}' command`);
  };
  switch (sub) {
    case "SETNAME":
      arity(3);
      ctx.client.name = validName(args[2]!);
      return OK;
    case "GETNAME":
      arity(2);
      return ctx.client.name === null ? NULL : bulk(ctx.client.name);
    case "ID":
      arity(2);
      return int(ctx.client.id);
    case "LIST":
      return { t: "verbatim", s: clientList(ctx, args) };
    case "INFO":
      arity(2);
      return { t: "verbatim", s: clientLine(ctx.client, Date.now()) + "\n" };
    case "SETINFO":
      arity(4);
      return OK;
    case "HELP":
      arity(2);
      return arr(CLIENT_HELP.map((l) => simple(l)));
    case "NO-EVICT":
    case "NO-TOUCH":
    case "REPLY":
      return OK;
    default:
      throw new RespError(`ERR unknown subcommand '${cText(args[1]!)}'. Try CLIENT HELP.`);
  }
}

function config(ctx: CommandContext, args: Buffer[]): Reply {
  const sub = upper(args[1]);
  if (sub === "GET") {
    if (args.length < 3) throw new RespError("ERR wrong number of arguments for 'config|get' command");
    return configGet(ctx.server.options.config, args.slice(2).map((a) => a.toString()), { port: ctx.server.port });
  }
  if (sub === "SET") {
    if (args.length < 4) throw new RespError("ERR wrong number of arguments for 'config|set' command");
    if (args.length % 2 !== 0) throw new RespError(SYNTAX); // a name without its value: Redis's text
    // Names as redis-server reads them (C strings: up to a NUL), values as text.
    configSet(ctx.server.options.config, args.slice(2).map((a, i) => (i % 2 === 0 ? cText(a) : a.toString())));
    return OK;
  }
  if (sub === "RESETSTAT") {
    if (args.length !== 2) throw new RespError("ERR wrong number of arguments for 'config|resetstat' command");
    ctx.server.resetStats();
    return OK;
  }
  if (sub === "REWRITE") throw new RespError("ERR CONFIG REWRITE is not supported by KeelDB: edit the TOML configuration file");
  if (sub === "HELP") {
    if (args.length !== 2) throw new RespError("ERR wrong number of arguments for 'config|help' command");
    return arr(CONFIG_HELP.map((l) => simple(l)));
  }
  throw new RespError(`ERR unknown subcommand '${cText(args[1]!)}'. Try CONFIG HELP.`);
}

function commandInfo(c: Command): Reply {
  return arr([
    bulk(c.name),
    int(c.arity),
    { t: "set", items: c.flags.map((f) => simple(f)) },
    int(c.keys[0]),
    int(c.keys[1]),
    int(c.keys[2]),
    { t: "set", items: [] },
    { t: "set", items: [] },
    arr([]),
    arr([]),
  ]);
}

function command(ctx: CommandContext, args: Buffer[]): Reply {
  const table = ctx.server.commands;
  const sub = upper(args[1]);
  if (args.length === 1) return arr([...table.values()].map(commandInfo));
  switch (sub) {
    case "COUNT":
      if (args.length !== 2) throw new RespError("ERR wrong number of arguments for 'command|count' command");
      return int(table.size);
    case "LIST": {
      // FILTERBY PATTERN is served; MODULE and ACLCAT name things KeelDB does not have.
      if (args.length !== 2 && (args.length !== 5 || upper(args[2]) !== "FILTERBY" || upper(args[3]) !== "PATTERN")) throw new RespError(SYNTAX);
      // Case-insensitive, as Redis's (stringmatchlen with nocase): the names are lower case.
      const pattern = args.length === 2 ? null : Buffer.from(args[4]!.map((b) => (b >= 0x41 && b <= 0x5a ? b + 0x20 : b)));
      const names = [...table.keys()].filter((n) => pattern === null || globMatch(pattern, Buffer.from(n)));
      return arr(names.map((n) => bulk(n)));
    }
    case "INFO": {
      const names = args.length > 2 ? args.slice(2).map((a) => a.toString().toLowerCase()) : [...table.keys()];
      return arr(names.map((n) => (table.has(n) ? commandInfo(table.get(n)!) : NULL)));
    }
    case "DOCS":
      // No documentation is served: redis-cli then falls back to its built-in hints.
      return map([]);
    case "HELP":
      if (args.length !== 2) throw new RespError("ERR wrong number of arguments for 'command|help' command");
      return arr(COMMAND_HELP.map((l) => simple(l)));
    default:
      throw new RespError(`ERR unknown subcommand '${cText(args[1]!)}'. Try COMMAND HELP.`);
  }
}

function time(): Reply {
  const us = BigInt(Date.now()) * 1000n + BigInt(Math.floor((performance.now() % 1) * 1000));
  return arr([bulk(String(us / 1000000n)), bulk(String(us % 1000000n))]);
}

/** A failed persistence job as an error reply, the way errorReply (resp/errorReply.ts) words engine errors. */
function keelErr(e: unknown): never {
  if (isKeelError(e)) throw new RespError(`ERR KeelDB ${e.code}: ${e.message}`);
  throw e;
}

async function save(ctx: CommandContext): Promise<Reply> {
  try {
    await ctx.server.options.persistence.save();
    return OK;
  } catch (e) {
    return keelErr(e);
  }
}

async function backup(ctx: CommandContext, args: Buffer[]): Promise<Reply> {
  try {
    await ctx.server.options.persistence.backup(args[1]!.toString());
    return OK;
  } catch (e) {
    return keelErr(e);
  }
}

function bgsave(ctx: CommandContext, args: Buffer[]): Reply {
  if (args.length > 2 || (args.length === 2 && upper(args[1]) !== "SCHEDULE")) throw new RespError(SYNTAX);
  if (!ctx.server.options.persistence.bgsave()) throw new RespError("ERR Background save already in progress");
  return simple("Background saving started");
}

function bgrewriteaof(ctx: CommandContext): Reply {
  if (!ctx.server.options.persistence.bgrewriteaof()) throw new RespError("ERR Background append only file rewriting already in progress");
  return simple("Background append only file rewriting started");
}

function info(ctx: CommandContext, args: Buffer[]): Reply {
  return { t: "verbatim", s: infoText(ctx, args.slice(1).map((a) => a.toString().toLowerCase())) };
}

function ping(ctx: CommandContext, args: Buffer[]): Reply {
  if (args.length > 2) throw new RespError("ERR wrong number of arguments for 'ping' command");
  return args.length === 2 ? bulk(args[1]!) : simple("PONG");
}

export const serverCommands: Command[] = [
  connCmd("ping", -1, ping, ["fast", "stale"], { immediate: true }),
  connCmd("echo", 2, (_c, args) => bulk(args[1]!), ["fast"], { immediate: true }),
  connCmd("hello", -1, hello, ["noscript", "loading", "stale", "fast", "no_auth"], { noauth: true, immediate: true }),
  connCmd("auth", -2, auth, ["noscript", "loading", "stale", "fast", "no_auth"], { noauth: true, immediate: true }),
  connCmd("select", 2, select, ["loading", "stale", "fast"], { immediate: true }),
  // subArity: Redis 7.0's arities (COMMAND INFO container|sub) of the subcommands served here.
  connCmd("client", -2, client, ["admin", "noscript", "loading", "stale"], {
    immediate: true,
    subArity: { id: 2, getname: 2, setname: 3, list: -2, info: 2, help: 2, reply: 3, "no-evict": 3 },
  }),
  connCmd("config", -2, config, ["admin", "noscript", "loading", "stale"], { subArity: { get: -3, set: -4, resetstat: 2, rewrite: 2, help: 2 } }),
  connCmd("command", -1, command, ["loading", "stale"], { subArity: { count: 2, list: -2, info: -2, docs: -2, help: 2 } }),
  connCmd("info", -1, info, ["loading", "stale"]),
  connCmd("time", 1, time, ["loading", "stale", "fast"]),
  connCmd("lastsave", 1, (ctx) => int(ctx.server.options.persistence.lastSave()), ["loading", "stale", "fast"]),
  connCmd("save", 1, save, ["admin", "noscript"], { noMulti: true }),
  connCmd("bgsave", -1, bgsave, ["admin", "noscript"], { noMulti: true }),
  connCmd("backup", 2, backup, ["admin", "noscript"], { noMulti: true }),
  connCmd("bgrewriteaof", 1, bgrewriteaof, ["admin", "noscript"], { noMulti: true }),
];

