/**
 * hashCommands: HSET HMSET HSETNX HGET HMGET HDEL HGETALL HLEN HEXISTS HINCRBY HINCRBYFLOAT HKEYS
 * HVALS HSTRLEN. HGETALL answers a map under RESP3, a flat array under RESP2.
 */
import type { KeyView } from "../keyspace/KeyView.js";
import { arr, bulk, bulkOrNull, int, map, OK, type Reply } from "../resp/Reply.js";
import { RespError } from "../resp/RespError.js";
import { int64Arg, INT64_MAX, INT64_MIN, ldArg, toInt64 } from "./args.js";
import { incrLd, ZERO } from "./longDouble.js";
import type { Command } from "./Command.js";
import { readCmd, UNBOUNDED, withValues, writeCmd } from "./define.js";

function pairs(args: Buffer[], from: number, name: string): Array<[Buffer, Buffer]> {
  if ((args.length - from) % 2 !== 0) throw new RespError(`ERR wrong number of arguments for '${name}' command`);
  const out: Array<[Buffer, Buffer]> = [];
  for (let i = from; i < args.length; i += 2) out.push([args[i]!, args[i + 1]!]);
  return out;
}

function hincrby(v: KeyView, args: Buffer[]): Reply {
  const [key, field] = [args[1]!, args[2]!];
  const by = int64Arg(args[3]!);
  const cur = v.hget(key, field);
  let n = 0n;
  if (cur !== undefined) {
    const p = toInt64(cur);
    if (p === null) throw new RespError("ERR hash value is not an integer");
    n = p;
  }
  const r = n + by;
  if (r > INT64_MAX || r < INT64_MIN) throw new RespError("ERR increment or decrement would overflow");
  v.hset(key, [[field, Buffer.from(r.toString())]]);
  return int(r);
}

function hincrbyfloat(v: KeyView, args: Buffer[]): Reply {
  const [key, field] = [args[1]!, args[2]!];
  // Redis's order here: the increment (an infinite one refused), the type, then the current value.
  const by = ldArg(args[3]!);
  if (typeof by === "number") throw new RespError("ERR value is NaN or Infinity");
  const cur = v.hget(key, field);
  const sum = incrLd(cur === undefined ? ZERO : ldArg(cur, "ERR hash value is not a float"), by);
  if (sum === null) throw new RespError("ERR increment would produce NaN or Infinity");
  const s = Buffer.from(sum);
  v.hset(key, [[field, s]]);
  return bulk(s);
}

export const hashCommands: Command[] = [
  writeCmd("hset", -4, (v, args) => int(v.hset(args[1]!, pairs(args, 2, "hset"))), [1, 1, 1], ["fast"]),
  writeCmd(
    "hmset",
    -4,
    (v, args) => {
      v.hset(args[1]!, pairs(args, 2, "hmset"));
      return OK;
    },
    [1, 1, 1],
    ["fast"],
  ),
  writeCmd(
    "hsetnx",
    4,
    (v, args) => {
      if (v.hget(args[1]!, args[2]!) !== undefined) return int(0);
      v.hset(args[1]!, [[args[2]!, args[3]!]]);
      return int(1);
    },
    [1, 1, 1],
    ["fast"],
  ),
  readCmd("hget", 3, (v, args) => bulkOrNull(v.hget(args[1]!, args[2]!)), [1, 1, 1], ["fast"]),
  withValues(
    readCmd(
      "hmget",
      -3,
      (v, args) => arr(v.hmget(args[1]!, args.slice(2)).map((x) => bulkOrNull(x))),
      [1, 1, 1],
      ["fast"],
    ),
    (args) => args.length - 2,
  ),
  writeCmd("hdel", -3, (v, args) => int(v.hdel(args[1]!, args.slice(2))), [1, 1, 1], ["fast"]),
  withValues(readCmd("hgetall", 2, (v, args) => map(v.hgetall(args[1]!).map((e) => [bulk(e.key), bulk(e.value)] as const)), [1, 1, 1]), UNBOUNDED),
  readCmd("hlen", 2, (v, args) => int(v.hlen(args[1]!)), [1, 1, 1], ["fast"]),
  readCmd("hexists", 3, (v, args) => int(v.hget(args[1]!, args[2]!) === undefined ? 0 : 1), [1, 1, 1], ["fast"]),
  readCmd("hstrlen", 3, (v, args) => int(v.hget(args[1]!, args[2]!)?.length ?? 0), [1, 1, 1], ["fast"]),
  writeCmd("hincrby", 4, hincrby, [1, 1, 1], ["fast"]),
  writeCmd("hincrbyfloat", 4, hincrbyfloat, [1, 1, 1], ["fast"]),
  withValues(readCmd("hkeys", 2, (v, args) => arr(v.hgetall(args[1]!).map((e) => bulk(e.key))), [1, 1, 1]), UNBOUNDED),
  withValues(readCmd("hvals", 2, (v, args) => arr(v.hgetall(args[1]!).map((e) => bulk(e.value))), [1, 1, 1]), UNBOUNDED),
];

