/**
 * config: CONFIG GET / CONFIG SET over the documented subset of parameters, mapped onto ServerConfig.
 * Settable: requirepass, maxclients, proto-max-bulk-len, save, auto-aof-rewrite-percentage,
 * auto-aof-rewrite-min-size. Read-only: appendonly (always "yes"), appendfsync, port, bind, dir,
 * databases.
 *
 * Invariants:
 * - CONFIG SET checks every name (unknown, immutable, given twice) and then every value before it
 *   applies any, so a failed CONFIG SET changes nothing (as in Redis 7); errors use Redis 7's words.
 * - A value is accepted by CONFIG SET exactly when the TOML file accepts it (CONFIG_LIMITS; the one
 *   exception is below: maxclients over the descriptor limit); sizes
 *   take Redis's memory units ("64mb" = 64 * 1024^2, "64m" = 64 * 10^6).
 * - CONFIG GET port answers the port actually bound (port 0 in the file picks one).
 * - CONFIG SET maxclients above what the descriptor limit allows (clientsForFdLimit) is refused
 *   with Redis's words; at start the server lowers maxclients to it instead (startServer).
 */
import { clientsForFdLimit } from "../../util/clientsForFdLimit.js";
import { globMatch } from "../keyspace/globMatch.js";
import { bulk, map, type Reply } from "../resp/Reply.js";
import { RespError } from "../resp/RespError.js";
import { CONFIG_LIMITS, type SaveRule, type ServerConfig } from "../ServerContext.js";

interface Param {
  get(c: ServerConfig, live: LiveValues): string;
  /** Parse and return the apply step; throws the reason text on a bad value. */
  set?(value: string): (c: ServerConfig) => void;
}

/** What the running server knows better than the configuration. */
export interface LiveValues {
  readonly port: number;
}

function outOfRange(r: { readonly min: number; readonly max: number }): Error {
  return new Error(`argument must be between ${r.min} and ${r.max} inclusive`);
}

function intValue(v: string, r: { readonly min: number; readonly max: number }): number {
  if (!/^-?[0-9]+$/.test(v)) throw new Error("argument couldn't be parsed into an integer");
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < r.min || n > r.max) throw outOfRange(r);
  return n;
}

const MEMORY_UNITS: Record<string, number> = { "": 1, b: 1, k: 1000, kb: 1024, m: 1000 ** 2, mb: 1024 ** 2, g: 1000 ** 3, gb: 1024 ** 3 };

/** A memory value as Redis reads one (memtoull): digits and an optional unit, nothing else. */
function memoryValue(v: string, r: { readonly min: number; readonly max: number }): number {
  const m = /^([0-9]+)([a-z]*)$/i.exec(v);
  const unit = m ? MEMORY_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new Error("argument must be a memory value");
  const n = Number(m[1]) * unit;
  if (!Number.isSafeInteger(n) || n < r.min || n > r.max) throw outOfRange(r);
  return n;
}

/**
 * "3600 1 300 100" <-> [{seconds: 3600, changes: 1}, {seconds: 300, changes: 100}]. As Redis, the
 * numbers are separated by single spaces and "" alone means no rules (" " is refused); the ranges
 * are the TOML file's (save_rules: seconds and changes at least 1).
 */
export function parseSaveRules(v: string): SaveRule[] {
  if (v === "") return [];
  const parts = v.split(" ");
  if (parts.length % 2 !== 0) throw new Error("Invalid save parameters");
  const out: SaveRule[] = [];
  const { saveSeconds, saveChanges } = CONFIG_LIMITS;
  for (let i = 0; i < parts.length; i += 2) {
    const [s, c] = [parts[i]!, parts[i + 1]!];
    if (!/^[0-9]+$/.test(s) || !/^[0-9]+$/.test(c)) throw new Error("Invalid save parameters");
    const seconds = Number(s);
    const changes = Number(c);
    if (seconds < saveSeconds.min || seconds > saveSeconds.max || changes < saveChanges.min || changes > saveChanges.max) throw new Error("Invalid save parameters");
    out.push({ seconds, changes });
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
      const n = intValue(v, CONFIG_LIMITS.maxclients);
      // As Redis: more clients than the descriptor limit leaves room for is refused, not fitted.
      const fit = clientsForFdLimit();
      if (fit !== null && n > fit) throw new Error(`The operating system is not able to handle the specified number of clients, try with ${fit}`);
      return (c) => (c.maxclients = n);
    },
  },
  "proto-max-bulk-len": {
    get: (c) => String(c.protoMaxBulkLen),
    set: (v) => {
      const n = memoryValue(v, CONFIG_LIMITS.protoMaxBulkLen);
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
      const n = intValue(v, CONFIG_LIMITS.autoAofRewritePercentage);
      return (c) => (c.autoAofRewritePercentage = n);
    },
  },
  "auto-aof-rewrite-min-size": {
    get: (c) => String(c.autoAofRewriteMinSize),
    set: (v) => {
      const n = memoryValue(v, CONFIG_LIMITS.autoAofRewriteMinSize);
      return (c) => (c.autoAofRewriteMinSize = n);
    },
  },
  appendonly: { get: () => "yes" },
  appendfsync: { get: (c) => c.appendfsync },
  port: { get: (_c, live) => String(live.port) },
  bind: { get: (c) => c.bind },
  dir: { get: (c) => c.dir },
  databases: { get: (c) => String(c.databases) },
};

export function configGet(c: ServerConfig, patterns: string[], live: LiveValues): Reply {
  const out: Array<readonly [Reply, Reply]> = [];
  const seen = new Set<string>();
  for (const p of patterns) {
    const lower = p.toLowerCase();
    if (!/[[*?]/.test(p)) {
      // A plain name: looked up, and echoed as the client typed it (as redis-server does).
      const param = Object.hasOwn(PARAMS, lower) ? PARAMS[lower] : undefined;
      if (param && !seen.has(lower)) {
        seen.add(lower);
        out.push([bulk(p), bulk(param.get(c, live))]);
      }
      continue;
    }
    const pat = Buffer.from(lower);
    for (const [name, param] of Object.entries(PARAMS)) {
      if (seen.has(name) || !globMatch(pat, Buffer.from(name))) continue;
      seen.add(name);
      out.push([bulk(name), bulk(param.get(c, live))]);
    }
  }
  return map(out);
}

export function configSet(c: ServerConfig, kv: string[]): void {
  // Names first, in order (Redis quotes the name as typed), then values (quoted by their own name).
  const named: Array<{ name: string; param: Param; value: string }> = [];
  for (let i = 0; i < kv.length; i += 2) {
    const name = kv[i]!.toLowerCase();
    const param = Object.hasOwn(PARAMS, name) ? PARAMS[name] : undefined;
    if (!param) throw new RespError(`ERR Unknown option or number of arguments for CONFIG SET - '${kv[i]}'`);
    if (!param.set) throw new RespError(`ERR CONFIG SET failed (possibly related to argument '${kv[i]}') - can't set immutable config`);
    if (named.some((n) => n.name === name)) throw new RespError(`ERR CONFIG SET failed (possibly related to argument '${kv[i]}') - duplicate parameter`);
    named.push({ name, param, value: kv[i + 1]! });
  }
  const steps: Array<(c: ServerConfig) => void> = [];
  for (const { name, param, value } of named) {
    try {
      steps.push(param.set!(value));
    } catch (reason) {
      throw new RespError(`ERR CONFIG SET failed (possibly related to argument '${name}') - ${(reason as Error).message}`);
    }
  }
  for (const s of steps) s(c);
}
