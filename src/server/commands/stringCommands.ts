/**
 * stringCommands: GET SET SETNX GETSET GETDEL GETEX MGET MSET MSETNX INCR INCRBY DECR DECRBY
 * INCRBYFLOAT APPEND STRLEN GETRANGE SETRANGE, with Redis 7 semantics and error replies.
 * Invariant: a write handler validates every argument and type before its first write.
 */
import type { KeyView } from "../keyspace/KeyView.js";
import { arr, bulk, bulkOrNull, bytesOrNull, int, NULL, OK, type Reply } from "../resp/Reply.js";
import { RespError, SYNTAX } from "../resp/RespError.js";
import { int64Arg, INT64_MAX, INT64_MIN, intArg, ldArg, toInt64, upper } from "./args.js";
import { incrLd, ZERO } from "./longDouble.js";
import type { Command } from "./Command.js";
import type { CommandContext } from "./CommandContext.js";
import { expireOption, type ExpireUnit } from "./expireArgs.js";
import { readCmd, withValues, writeCmd } from "./define.js";

function a(args: Buffer[], i: number): Buffer {
  const b = args[i];
  if (b === undefined) throw new RespError(SYNTAX);
  return b;
}

function set(v: KeyView, args: Buffer[]): Reply {
  const key = a(args, 1);
  const value = a(args, 2);
  let nx = false;
  let xx = false;
  let get = false;
  let keepTtl = false;
  let unit: ExpireUnit | null = null;
  let expireArg: Buffer | undefined;
  for (let i = 3; i < args.length; i++) {
    const o = upper(args[i]);
    if (o === "NX" && !xx) nx = true;
    else if (o === "XX" && !nx) xx = true;
    else if (o === "GET") get = true;
    else if (o === "KEEPTTL" && unit === null) keepTtl = true;
    // The same expiry option again replaces the first (Redis: the last wins); another one clashes.
    else if ((o === "EX" || o === "PX" || o === "EXAT" || o === "PXAT") && (unit === null || unit === o) && !keepTtl && i + 1 < args.length) {
      unit = o;
      expireArg = args[++i];
    } else throw new RespError(SYNTAX);
  }
  const expireAt = unit !== null && expireArg !== undefined ? expireOption(unit, expireArg, "set", v.now) : 0;
  // A plain SET needs nothing of the old value: setString looks at it once, to drop what it leaves.
  if (!nx && !xx && !get && !keepTtl) {
    v.setString(key, value, expireAt);
    return OK;
  }
  const old = get ? v.getString(key) : undefined;
  const oldCopy = old === undefined ? undefined : Buffer.from(old);
  const exists = v.exists(key);
  if ((nx && exists) || (xx && !exists)) return get ? bulkOrNull(oldCopy) : NULL;
  const at = keepTtl ? Math.max(0, v.expireAtOf(key)) : expireAt;
  v.setString(key, value, at);
  return get ? bulkOrNull(oldCopy) : OK;
}

function setnx(v: KeyView, args: Buffer[]): Reply {
  const key = a(args, 1);
  if (v.exists(key)) return int(0);
  v.setString(key, a(args, 2), 0);
  return int(1);
}

function getset(v: KeyView, args: Buffer[]): Reply {
  const key = a(args, 1);
  const old = v.getString(key);
  const copy = old === undefined ? undefined : Buffer.from(old);
  v.setString(key, a(args, 2), 0);
  return bulkOrNull(copy);
}

function getdel(v: KeyView, args: Buffer[]): Reply {
  const key = a(args, 1);
  const old = v.getString(key);
  if (old === undefined) return NULL;
  const copy = Buffer.from(old);
  v.del(key);
  return bulk(copy);
}

function getex(v: KeyView, args: Buffer[]): Reply {
  const key = a(args, 1);
  let persist = false;
  let unit: ExpireUnit | null = null;
  let expireArg: Buffer | undefined;
  // As SET's options: the same one again replaces the first, two different ones clash.
  for (let i = 2; i < args.length; i++) {
    const o = upper(args[i]);
    if (o === "PERSIST" && unit === null) persist = true;
    else if ((o === "EX" || o === "PX" || o === "EXAT" || o === "PXAT") && (unit === null || unit === o) && !persist && i + 1 < args.length) {
      unit = o;
      expireArg = args[++i];
    } else throw new RespError(SYNTAX);
  }
  // As in Redis: the syntax first, then the key (nil, WRONGTYPE), then the time's validity.
  const val = v.getString(key);
  if (val === undefined) return NULL;
  const copy = Buffer.from(val);
  const expireAt = persist ? 0 : unit !== null && expireArg !== undefined ? expireOption(unit, expireArg, "getex", v.now) : null;
  if (expireAt !== null && (expireAt !== 0 || v.expireAtOf(key) > 0)) v.setExpireAt(key, expireAt);
  return bulk(copy);
}

function mget(v: KeyView, args: Buffer[]): Reply {
  const out: Reply[] = [];
  for (let i = 1; i < args.length; i++) {
    // As GET: the bytes are never written to, so no defensive copy.
    out.push(bytesOrNull(v.getStringBytesOrNone(args[i]!)));
  }
  return arr(out);
}

function mset(v: KeyView, args: Buffer[], name: string): Reply {
  if (args.length % 2 !== 1) throw new RespError(`ERR wrong number of arguments for '${name}' command`);
  // Every key and value is checked before the first is written: a refusal fails MSET whole.
  for (let i = 1; i < args.length; i += 2) {
    v.checkKey(args[i]!);
    v.checkString(args[i + 1]!.length);
  }
  if (name === "msetnx") {
    for (let i = 1; i < args.length; i += 2) if (v.exists(args[i]!)) return int(0);
  }
  for (let i = 1; i < args.length; i += 2) v.setString(args[i]!, args[i + 1]!, 0);
  return name === "msetnx" ? int(1) : OK;
}

function incrBy(v: KeyView, key: Buffer, by: bigint): Reply {
  const cur = v.getString(key);
  let n = 0n;
  if (cur !== undefined) {
    const p = toInt64(cur);
    if (p === null) throw new RespError("ERR value is not an integer or out of range");
    n = p;
  }
  const r = n + by;
  if (r > INT64_MAX || r < INT64_MIN) throw new RespError("ERR increment or decrement would overflow");
  v.setString(key, Buffer.from(r.toString()), Math.max(0, v.expireAtOf(key)));
  return int(r);
}

function incrbyfloat(v: KeyView, args: Buffer[]): Reply {
  const key = a(args, 1);
  // Redis's order here: the type, the current value, then the increment.
  const cur = v.getString(key);
  const base = cur === undefined ? ZERO : ldArg(cur);
  const sum = incrLd(base, ldArg(a(args, 2)));
  if (sum === null) throw new RespError("ERR increment would produce NaN or Infinity");
  const s = Buffer.from(sum);
  v.setString(key, s, Math.max(0, v.expireAtOf(key)));
  return bulk(s);
}

function append(v: KeyView, args: Buffer[], ctx: CommandContext): Reply {
  const key = a(args, 1);
  const cur = v.getString(key);
  const next = cur === undefined ? a(args, 2) : Buffer.concat([cur, a(args, 2)]);
  if (next.length > ctx.server.options.config.protoMaxBulkLen) throw new RespError("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
  v.setString(key, next, cur === undefined ? 0 : Math.max(0, v.expireAtOf(key)));
  return int(next.length);
}

function getrange(v: KeyView, args: Buffer[]): Reply {
  let start = intArg(a(args, 2));
  let end = intArg(a(args, 3));
  const s = v.getString(a(args, 1)) ?? Buffer.alloc(0);
  const len = s.length;
  if (start < 0 && end < 0 && start > end) return bulk("");
  if (start < 0) start = len + start;
  if (end < 0) end = len + end;
  if (start < 0) start = 0;
  if (end < 0) end = 0;
  if (end >= len) end = len - 1;
  if (len === 0 || start > end) return bulk("");
  return bulk(Buffer.from(s.subarray(start, end + 1)));
}

function setrange(v: KeyView, args: Buffer[], ctx: CommandContext): Reply {
  const key = a(args, 1);
  const offset = intArg(a(args, 2));
  const value = a(args, 3);
  if (offset < 0) throw new RespError("ERR offset is out of range");
  const cur = v.getString(key);
  if (value.length === 0) return int(cur?.length ?? 0);
  if (offset + value.length > ctx.server.options.config.protoMaxBulkLen) throw new RespError("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
  const len = Math.max(cur?.length ?? 0, offset + value.length);
  const next = Buffer.alloc(len);
  cur?.copy(next);
  value.copy(next, offset);
  v.setString(key, next, cur === undefined ? 0 : Math.max(0, v.expireAtOf(key)));
  return int(len);
}

function strlen(v: KeyView, args: Buffer[]): Reply {
  return int(v.getString(a(args, 1))?.length ?? 0);
}

function get(v: KeyView, args: Buffer[]): Reply {
  // The bytes are never written to (a fresh copy or an immutable string): no defensive copy.
  return bytesOrNull(v.getStringBytes(a(args, 1)));
}

/** SET ... GET replies with the old value (Command.values); options start after the value. */
function setReplyValues(args: readonly Buffer[]): number {
  for (let i = 3; i < args.length; i++) {
    const o = args[i]!;
    if (o.length === 3 && (o[0]! | 0x20) === 0x67 && (o[1]! | 0x20) === 0x65 && (o[2]! | 0x20) === 0x74) return 1;
  }
  return 0;
}

export const stringCommands: Command[] = [
  readCmd("get", 2, get, [1, 1, 1], ["fast"]),
  withValues(writeCmd("set", -3, set, [1, 1, 1]), setReplyValues),
  writeCmd("setnx", 3, setnx, [1, 1, 1], ["fast"]),
  withValues(writeCmd("getset", 3, getset, [1, 1, 1], ["fast"]), () => 1),
  withValues(writeCmd("getdel", 2, getdel, [1, 1, 1], ["fast"]), () => 1),
  withValues(writeCmd("getex", -2, getex, [1, 1, 1], ["fast"]), () => 1),
  withValues(readCmd("mget", -2, mget, [1, -1, 1], ["fast"]), (args) => args.length - 1),
  writeCmd("mset", -3, (v, args) => mset(v, args, "mset"), [1, -1, 2]),
  writeCmd("msetnx", -3, (v, args) => mset(v, args, "msetnx"), [1, -1, 2]),
  writeCmd("incr", 2, (v, args) => incrBy(v, a(args, 1), 1n), [1, 1, 1], ["fast"]),
  writeCmd("decr", 2, (v, args) => incrBy(v, a(args, 1), -1n), [1, 1, 1], ["fast"]),
  writeCmd("incrby", 3, (v, args) => incrBy(v, a(args, 1), int64Arg(a(args, 2))), [1, 1, 1], ["fast"]),
  writeCmd(
    "decrby",
    3,
    (v, args) => {
      const by = int64Arg(a(args, 2));
      if (by === INT64_MIN) throw new RespError("ERR decrement would overflow");
      return incrBy(v, a(args, 1), -by);
    },
    [1, 1, 1],
    ["fast"],
  ),
  writeCmd("incrbyfloat", 3, incrbyfloat, [1, 1, 1], ["fast"]),
  writeCmd("append", 3, append, [1, 1, 1], ["fast"]),
  readCmd("strlen", 2, strlen, [1, 1, 1], ["fast"]),
  readCmd("getrange", 4, getrange, [1, 1, 1]),
  readCmd("substr", 4, getrange, [1, 1, 1]),
  writeCmd("setrange", 4, setrange, [1, 1, 1]),
];

