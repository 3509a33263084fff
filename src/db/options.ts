/**
 * OpenOptions: every option of open(), validated up front. An unknown key or a bad value is
 * KeelError INVALID_ARGUMENT naming the option, never silently ignored.
 */
import { invalidArgument } from "../errors.js";
import type { FileSystem } from "../io/FileSystem.js";
import { KEY_ENCODINGS, VALUE_ENCODINGS } from "../txn/CatalogRecord.js";
import type { KeyEncodingName, ValueEncodingName } from "../txn/Snapshot.js";

export type DurabilityProfile = "strict" | "relaxed" | "none";

export interface OpenOptions {
  /** Page size of a new database (power of two, 1024..65536). Default 4096. Fixed at creation. */
  pageSize?: number;
  /** Bytes of decoded pages kept in memory. Default 256 MiB. */
  cacheSize?: number;
  /** Most read snapshots (open range iterators) at once. Default 126. */
  maxReaders?: number;
  /** Largest value in bytes. Default 256 MiB. */
  maxValueSize?: number;
  /** Key encoding of the default database. Default "ordered-binary". */
  keyEncoding?: KeyEncodingName;
  /** Value encoding of the default database. Default "msgpack". */
  encoding?: ValueEncodingName;
  /** Write-ahead log. Default true. */
  wal?: boolean;
  durability?: DurabilityProfile;
  groupCommit?: number;
  groupCommitMs?: number;
  walSegmentMaxBytes?: number;
  walSegmentMaxMs?: number;
  walRetentionBytes?: number;
  walRetentionMs?: number;
  checkpointLogBytes?: number;
  checkpointDirtyBytes?: number;
  checkpointMs?: number;
  /** wal: false only. Skip the sync after the meta write: the last commit may be lost at a crash. */
  noMetaSync?: boolean;
  /** wal: false only. Never sync: recent commits may be lost at a crash; damage is detected. */
  noSync?: boolean;
  /** Open without writing; fails if the database does not exist. */
  readOnly?: boolean;
  /** Storage backend (tests pass fault-injecting and crash-simulating ones). */
  fs?: FileSystem;
  /** Test hook: called at named points of the commit, checkpoint and log sequences. */
  onPhase?: (phase: string) => void;
  /**
   * Default true. false: every checkpoint rewrites the whole free list (as format version 1 did)
   * instead of appending what it changed; tests build version-1 fixtures with it.
   */
  freelistDeltas?: boolean;
}

const KNOWN = new Set([
  "pageSize",
  "cacheSize",
  "maxReaders",
  "maxValueSize",
  "keyEncoding",
  "encoding",
  "wal",
  "durability",
  "groupCommit",
  "groupCommitMs",
  "walSegmentMaxBytes",
  "walSegmentMaxMs",
  "walRetentionBytes",
  "walRetentionMs",
  "checkpointLogBytes",
  "checkpointDirtyBytes",
  "checkpointMs",
  "noMetaSync",
  "noSync",
  "readOnly",
  "fs",
  "onPhase",
  "freelistDeltas",
]);

/** The longest delay setTimeout takes (larger ones fire after 1 ms, with a warning). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

function positiveInt(o: Record<string, unknown>, name: string, min = 1, max = Number.MAX_SAFE_INTEGER): void {
  const v = o[name];
  if (v === undefined) return;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw invalidArgument(`option ${name} must be an integer from ${min} to ${max}, got ${String(v)}`, { option: name, value: v, min, max });
  }
}

function bool(o: Record<string, unknown>, name: string): void {
  const v = o[name];
  if (v !== undefined && typeof v !== "boolean") throw invalidArgument(`option ${name} must be true or false, got ${String(v)}`, { option: name, value: v });
}

export function validateOptions(options: unknown): OpenOptions {
  if (options === undefined) return {};
  if (options === null || typeof options !== "object") throw invalidArgument("options must be an object", { argument: "options" });
  const o = options as Record<string, unknown>;
  // for...in: inherited keys are read as options (Object.create({ wal: false }) opens without a
  // log), so an inherited typo must be refused like an own one.
  for (const k in o) {
    if (!KNOWN.has(k)) throw invalidArgument(`unknown option ${k}`, { option: k });
  }
  positiveInt(o, "pageSize", 1024, 65536);
  // Checked here, before open() creates the directory, not only when the file is created.
  const ps = o.pageSize as number | undefined;
  if (ps !== undefined && (ps & (ps - 1)) !== 0) throw invalidArgument(`pageSize must be a power of two from 1024 to 65536, got ${ps}`, { option: "pageSize", min: 1024, max: 65536 });
  positiveInt(o, "cacheSize", 0);
  positiveInt(o, "maxReaders", 1, 1 << 20);
  positiveInt(o, "maxValueSize", 1, 2 ** 31 - 1);
  positiveInt(o, "groupCommit", 1);
  // A timer delay: Node's setTimeout turns anything above 2^31 - 1 ms into 1 ms.
  positiveInt(o, "groupCommitMs", 0, MAX_TIMER_MS);
  positiveInt(o, "walSegmentMaxBytes", 64 * 1024);
  positiveInt(o, "walSegmentMaxMs", 1);
  positiveInt(o, "walRetentionBytes", 0);
  positiveInt(o, "walRetentionMs", 0);
  positiveInt(o, "checkpointLogBytes", 1);
  positiveInt(o, "checkpointDirtyBytes", 1);
  positiveInt(o, "checkpointMs", 1);
  for (const b of ["wal", "noMetaSync", "noSync", "readOnly"]) bool(o, b);
  checkEncodings(o);
  if (o.durability !== undefined && !["strict", "relaxed", "none"].includes(o.durability as string)) {
    throw invalidArgument("option durability must be strict, relaxed or none", { option: "durability", value: o.durability });
  }
  if (o.wal !== false && (o.noSync || o.noMetaSync)) {
    throw invalidArgument("noSync and noMetaSync apply to wal: false; with the log, use durability: relaxed or none", { option: o.noSync ? "noSync" : "noMetaSync" });
  }
  if (o.onPhase !== undefined && typeof o.onPhase !== "function") throw invalidArgument("option onPhase must be a function", { option: "onPhase" });
  if (o.freelistDeltas !== undefined && typeof o.freelistDeltas !== "boolean") throw invalidArgument("option freelistDeltas must be a boolean", { option: "freelistDeltas" });
  if (o.fs !== undefined) checkFileSystem(o.fs);
  return o as OpenOptions;
}

/** An `fs` option must implement the FileSystem interface (INVALID_ARGUMENT naming what it lacks). */
function checkFileSystem(fs: unknown, method?: string): void {
  const f = fs as Record<string, unknown> | null;
  const need = ["open", "stat", "mkdir", "list", "rename", "remove", "removeDir", "syncDir", "readFile"];
  const missing = f === null || typeof f !== "object" ? need : need.filter((m) => typeof f[m] !== "function");
  if (missing.length) throw invalidArgument(`${method ? `${method}: ` : ""}option fs must implement the FileSystem interface (missing: ${missing.join(", ")})`, { option: "fs", missing, ...(method ? { method } : {}) });
}

/** keyEncoding and encoding, where given, name encodings KeelDB has (open() and openDB() options). */
export function checkEncodings(o: { keyEncoding?: unknown; encoding?: unknown }): void {
  if (o.keyEncoding !== undefined && !KEY_ENCODINGS.includes(o.keyEncoding as KeyEncodingName)) {
    throw invalidArgument(`option keyEncoding must be one of ${KEY_ENCODINGS.join(", ")}`, { option: "keyEncoding", value: o.keyEncoding });
  }
  if (o.encoding !== undefined && !VALUE_ENCODINGS.includes(o.encoding as ValueEncodingName)) {
    throw invalidArgument(`option encoding must be one of ${VALUE_ENCODINGS.join(", ")}`, { option: "encoding", value: o.encoding });
  }
}

/** What an option of a method must be ("any": the method checks it itself). */
export type OptionKind = "boolean" | "function" | "signal" | "fs" | "any";

/**
 * The options argument of a method: an object, or undefined for none. With `known`, an option it
 * does not list (a typo: `{ encodng: "json" }`, `{ lmit: 1 }`) or of the wrong kind (`{ reverse:
 * "no" }`) is INVALID_ARGUMENT naming it, as open() does: ignored, it silently did something else.
 */
export function methodOptions<T extends object>(o: T | undefined, method: string, known?: Readonly<Record<string, OptionKind>>): T {
  if (o === undefined) return {} as T;
  if (o === null || typeof o !== "object") throw invalidArgument(`${method}: options must be an object`, { argument: "options", method });
  if (known) {
    // for...in: inherited enumerable keys are options too (Object.create({ lmit: 1 })).
    for (const option in o) {
      if (!Object.hasOwn(known, option)) throw invalidArgument(`${method}: unknown option ${JSON.stringify(option)} (options: ${Object.keys(known).join(", ")})`, { option, method });
    }
    // Read as the method reads them: a getter or an inherited value is checked too.
    for (const [option, kind] of Object.entries(known)) {
      const value: unknown = (o as Record<string, unknown>)[option];
      if (value === undefined || kind === "any") continue;
      if (kind === "fs") {
        checkFileSystem(value, method);
        continue;
      }
      const ok = kind === "signal" ? value instanceof AbortSignal : typeof value === kind;
      if (!ok) throw invalidArgument(`${method}: option ${option} must be ${kind === "signal" ? "an AbortSignal" : `a ${kind}`}`, { option, method, value: typeof value === "object" ? String(value) : value });
    }
  }
  return o;
}

/** A destination path argument: a non-empty string (INVALID_ARGUMENT otherwise). */
export function pathArgument(p: unknown, argument: string, method: string): string {
  if (typeof p !== "string" || p === "") throw invalidArgument(`${method}: ${argument} must be a non-empty path`, { argument, method });
  return p;
}
