/**
 * keyCommands: DEL UNLINK EXISTS EXPIRE PEXPIRE EXPIREAT PEXPIREAT TTL PTTL EXPIRETIME PEXPIRETIME
 * PERSIST TYPE RENAME RENAMENX SCAN KEYS DBSIZE FLUSHDB FLUSHALL.
 */
import type { KeyView } from "../keyspace/KeyView.js";
import { globMatch } from "../keyspace/globMatch.js";
import { arr, bulk, cText, int, OK, simple, type Reply } from "../resp/Reply.js";
import { RespError, SYNTAX } from "../resp/RespError.js";
import { intArg, upper } from "./args.js";
import type { Command } from "./Command.js";
import type { CommandContext } from "./CommandContext.js";
import { readCmd, UNBOUNDED, withValues, writeCmd } from "./define.js";
import { expireCommandArg } from "./expireArgs.js";

function del(v: KeyView, args: Buffer[]): Reply {
  let n = 0;
  for (let i = 1; i < args.length; i++) if (v.del(args[i]!)) n++;
  return int(n);
}

function exists(v: KeyView, args: Buffer[]): Reply {
  let n = 0;
  for (let i = 1; i < args.length; i++) if (v.exists(args[i]!)) n++;
  return int(n);
}

function expireGeneric(name: string, seconds: boolean, relative: boolean) {
  return (v: KeyView, args: Buffer[]): Reply => {
    const key = args[1]!;
    let nx = false,
      xx = false,
      gt = false,
      lt = false;
    for (let i = 3; i < args.length; i++) {
      const o = upper(args[i]);
      if (o === "NX") nx = true;
      else if (o === "XX") xx = true;
      else if (o === "GT") gt = true;
      else if (o === "LT") lt = true;
      else throw new RespError(`ERR Unsupported option ${cText(args[i]!)}`);
    }
    if (nx && (xx || gt || lt)) throw new RespError("ERR NX and XX, GT or LT options at the same time are not compatible");
    if (gt && lt) throw new RespError("ERR GT and LT options at the same time are not compatible");
    // Options are checked before the time, as Redis does (so the error for both is the option's).
    const at = expireCommandArg(args[2]!, seconds, relative, name, v.now);
    const cur = v.expireAtOf(key);
    if (cur === -2) return int(0);
    // For GT and LT a key without expiry has an infinite TTL.
    if (nx && cur !== 0) return int(0);
    if (xx && cur === 0) return int(0);
    if (gt && (cur === 0 || at <= cur)) return int(0);
    if (lt && cur !== 0 && at >= cur) return int(0);
    v.setExpireAt(key, at);
    return int(1);
  };
}

function ttl(ms: boolean, absolute = false) {
  return (v: KeyView, args: Buffer[]): Reply => {
    const at = v.expireAtOf(args[1]!);
    if (at === -2) return int(-2);
    if (at === 0) return int(-1);
    // Seconds round to the nearest, as TTL's do (Redis 7.0 ttlGenericCommand: (ttl + 500) / 1000).
    if (absolute) return int(ms ? at : Math.floor((at + 500) / 1000));
    const left = Math.max(0, at - v.now);
    return int(ms ? left : Math.floor((left + 500) / 1000));
  };
}

function persist(v: KeyView, args: Buffer[]): Reply {
  const at = v.expireAtOf(args[1]!);
  if (at <= 0) return int(0);
  v.setExpireAt(args[1]!, 0);
  return int(1);
}

function rename(nx: boolean) {
  return (v: KeyView, args: Buffer[]): Reply => {
    const src = args[1]!;
    const dst = args[2]!;
    if (!v.exists(src)) throw new RespError("ERR no such key");
    if (nx) {
      if (src.equals(dst)) return int(0);
      if (v.exists(dst)) return int(0);
    }
    v.rename(src, dst);
    return nx ? int(1) : OK;
  };
}

function scan(v: KeyView, args: Buffer[], ctx: CommandContext): Reply {
  const cs = args[1]!.toString("latin1");
  if (!/^[0-9]+$/.test(cs) || cs.length > 20) throw new RespError("ERR invalid cursor");
  let count = 10;
  let match: Buffer | null = null;
  let type: string | null = null;
  for (let i = 2; i < args.length; i++) {
    const o = upper(args[i]);
    if (o === "COUNT" && i + 1 < args.length) {
      count = intArg(args[++i]!);
      if (count < 1) throw new RespError(SYNTAX);
    } else if (o === "MATCH" && i + 1 < args.length) {
      match = args[++i]!;
      if (match.length === 1 && match[0] === 0x2a) match = null; // everything, the empty key too (as Redis)
    } else if (o === "TYPE" && i + 1 < args.length) type = args[++i]!.toString().toLowerCase();
    else throw new RespError(SYNTAX);
  }
  let after: Buffer | undefined;
  if (cs !== "0") {
    const r = ctx.server.scanCursors.resolve(v.ldb.index, Number(cs));
    if (r === null) throw new RespError("ERR invalid cursor");
    after = r;
  }
  const { keys, last } = v.scan(after, Math.min(count, 100_000));
  const out: Reply[] = [];
  for (const k of keys) {
    if (match && !globMatch(match, k)) continue;
    if (type && v.type(k) !== type) continue;
    out.push(bulk(Buffer.from(k)));
  }
  const done = last === undefined || v.scan(last, 1).last === undefined;
  const next = done ? "0" : String(ctx.server.scanCursors.issue(v.ldb.index, last));
  return arr([bulk(next), arr(out)]);
}

function keys(v: KeyView, args: Buffer[]): Reply {
  const pat = args[1]!;
  const all = pat.length === 1 && pat[0] === 0x2a;
  const out: Reply[] = [];
  let after: Buffer | undefined;
  for (;;) {
    const { keys: batch, last } = v.scan(after, 1000);
    for (const k of batch) if (all || globMatch(pat, k)) out.push(bulk(Buffer.from(k)));
    if (last === undefined) break;
    after = last;
  }
  return arr(out);
}

function flushOne(v: KeyView, args: Buffer[]): Reply {
  if (args.length > 2 || (args.length === 2 && !["ASYNC", "SYNC"].includes(upper(args[1])))) throw new RespError(SYNTAX);
  v.flush();
  return OK;
}

function flushAll(v: KeyView, args: Buffer[]): Reply {
  if (args.length > 2 || (args.length === 2 && !["ASYNC", "SYNC"].includes(upper(args[1])))) throw new RespError(SYNTAX);
  for (const d of v.ks.dbs) {
    const w = v.ks.write(d.index, v.store, v.now);
    w.flush();
    v.dirty += w.dirty;
  }
  return OK;
}

export const keyCommands: Command[] = [
  writeCmd("del", -2, del, [1, -1, 1]),
  writeCmd("unlink", -2, del, [1, -1, 1], ["fast"]),
  readCmd("exists", -2, exists, [1, -1, 1], ["fast"]),
  writeCmd("expire", -3, expireGeneric("expire", true, true), [1, 1, 1], ["fast"]),
  writeCmd("pexpire", -3, expireGeneric("pexpire", false, true), [1, 1, 1], ["fast"]),
  writeCmd("expireat", -3, expireGeneric("expireat", true, false), [1, 1, 1], ["fast"]),
  writeCmd("pexpireat", -3, expireGeneric("pexpireat", false, false), [1, 1, 1], ["fast"]),
  readCmd("ttl", 2, ttl(false), [1, 1, 1], ["fast"]),
  readCmd("pttl", 2, ttl(true), [1, 1, 1], ["fast"]),
  readCmd("expiretime", 2, ttl(false, true), [1, 1, 1], ["fast"]),
  readCmd("pexpiretime", 2, ttl(true, true), [1, 1, 1], ["fast"]),
  writeCmd("persist", 2, persist, [1, 1, 1], ["fast"]),
  readCmd("type", 2, (v, args) => simple(v.type(args[1]!)), [1, 1, 1], ["fast"]),
  writeCmd("rename", 3, rename(false), [1, 2, 1]),
  writeCmd("renamenx", 3, rename(true), [1, 2, 1], ["fast"]),
  withValues(readCmd("scan", -2, scan, [0, 0, 0]), UNBOUNDED),
  withValues(readCmd("keys", 2, keys, [0, 0, 0]), UNBOUNDED),
  readCmd("dbsize", 1, (v) => int(v.dbsize()), [0, 0, 0], ["fast"]),
  writeCmd("flushdb", -1, flushOne, [0, 0, 0]),
  writeCmd("flushall", -1, flushAll, [0, 0, 0]),
];
