/**
 * config: CONFIG GET / CONFIG SET over the documented subset of parameters, mapped onto ServerConfig.
 * Settable: requirepass, maxclients, proto-max-bulk-len, save, auto-aof-rewrite-percentage,
 * auto-aof-rewrite-min-size. Read-only: appendonly (always "yes"), appendfsync, port, bind, dir,
 * databases.
 *
 * Invariant: CONFIG SET validates every pair before applying any, so a failed CONFIG SET changes
 * nothing (as in Redis 7).
 */
import { globMatch } from "../keyspace/globMatch.js";
import { bulk, map, type Reply } from "../resp/Reply.js";
import { RespError } from "../resp/RespError.js";
import type { SaveRule, ServerConfig } from "../ServerContext.js";

interface Param {
  get(c: ServerConfig): string;
  /** Parse and return the apply step; throws the reason text on a bad value. */
  set?(value: string): (c: ServerConfig) => void;
}

function intValue(v: string, min: number): number {
  if (!/^-?[0-9]+$/.test(v)) throw new Error("argument couldn't be parsed into an integer");
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) throw new Error("argument must be between " + min + " and " + Number.MAX_SAFE_INTEGER + " inclusive");
  return n;
}

/** "3600 1 300 100" <-> [{seconds: 3600, changes: 1}, {seconds: 300, changes: 100}] */
export function parseSaveRules(v: string): SaveRule[] {
  const parts = v.trim().split(/\s+/).filter((p) => p.length > 0);
  if (parts.length % 2 !== 0) throw new Error("Invalid save parameters");
  const out: SaveRule[] = [];
  for (let i = 0; i < parts.length; i += 2) {
    if (!/^[0-9]+$/.test(parts[i]!) || !/^[0-9]+$/.test(parts[i + 1]!)) throw new Error("Invalid save parameters");
    out.push({ seconds: Number(parts[i]), changes: Number(parts[i + 1]) });
  }
  return out;
}

export function formatSaveRules(rules: readonly SaveRule[]): string {
  return rules.map((r) => `${r.seconds} ${r.changes}`).join(" ");
}

const PARAMS: Record<string, Param> = {
  requirepass: {
    get: (c) => c.requirepass ?? "",
    set: (v) => (c) => (c.requirepass = v === "" ? null : v),
  },
  maxclients: {
    get: (c) => String(c.maxclients),
    set: (v) => {
      const n = intValue(v, 1);
      return (c) => (c.maxclients = n);
    },
  },
  "proto-max-bulk-len": {
    get: (c) => String(c.protoMaxBulkLen),
    set: (v) => {
      const n = intValue(v, 1024 * 1024);
      return (c) => (c.protoMaxBulkLen = n);
    },
  },
  save: {
    get: (c) => formatSaveRules(c.saveRules),
    set: (v) => {
      const rules = parseSaveRules(v);
      return (c) => (c.saveRules = rules);
    },
  },
  "auto-aof-rewrite-percentage": {
    get: (c) => String(c.autoAofRewritePercentage),
    set: (v) => {
      const n = intValue(v, 0);
      return (c) => (c.autoAofRewritePercentage = n);
    },
  },
  "auto-aof-rewrite-min-size": {
    get: (c) => String(c.autoAofRewriteMinSize),
    set: (v) => {
      const n = intValue(v, 0);
      return (c) => (c.autoAofRewriteMinSize = n);
    },
  },
  appendonly: { get: () => "yes" },
  appendfsync: { get: (c) => c.appendfsync },
  port: { get: (c) => String(c.port) },
  bind: { get: (c) => c.bind },
  dir: { get: (c) => c.dir },
  databases: { get: (c) => String(c.databases) },
};

export function configGet(c: ServerConfig, patterns: string[]): Reply {
  const out: Array<readonly [Reply, Reply]> = [];
  const seen = new Set<string>();
  for (const p of patterns) {
    const pat = Buffer.from(p.toLowerCase());
    for (const [name, param] of Object.entries(PARAMS)) {
      if (seen.has(name) || !globMatch(pat, Buffer.from(name))) continue;
      seen.add(name);
      out.push([bulk(name), bulk(param.get(c))]);
    }
  }
  return map(out);
}

export function configSet(c: ServerConfig, kv: string[]): void {
  const steps: Array<(c: ServerConfig) => void> = [];
  for (let i = 0; i < kv.length; i += 2) {
    const name = kv[i]!.toLowerCase();
    const param = PARAMS[name];
    if (!param) throw new RespError(`ERR Unknown option or number of arguments for CONFIG SET - '${kv[i]}'`);
    if (!param.set) throw new RespError(`ERR CONFIG SET failed (possibly related to argument '${name}') - can't set immutable config`);
    try {
      steps.push(param.set(kv[i + 1]!));
    } catch (reason) {
      throw new RespError(`ERR CONFIG SET failed (possibly related to argument '${name}') - ${(reason as Error).message}`);
    }
  }
  for (const s of steps) s(c);
}
