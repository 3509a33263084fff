/**
 * dumpFormat: what the two dump formats (JSON Lines and binary) share: the version, the binary
 * magic and record types, the header (its one serialization and its strict validation), and the
 * rules a body must follow (section order, entry counts, ascending keys). The byte layouts are
 * described in docs/DUMP-FORMAT.md; dump.ts writes them and load.ts reads them.
 *
 * Invariants:
 * - One serialization: `headerText` is the only way a header is written, with its members in a
 *   fixed order and no optional whitespace, so that equal content gives equal bytes.
 * - Sub-databases appear in the header, and their sections in the body, in UTF-8 byte order of
 *   their names ("" first); keys within a section in strictly ascending byte order (tree order).
 * - Validation is strict: any member missing, unknown, of the wrong type or out of range is
 *   damage (CORRUPT), never silently ignored.
 */
import { KeelError } from "../errors.js";
import type { KeyEncodingName, ValueEncodingName } from "../txn/Snapshot.js";

export type DumpFormat = "jsonl" | "binary";

/** The dump format version this code writes and the only one it reads. */
export const DUMP_VERSION = 1;

/** First 8 bytes of a binary dump. */
export const BINARY_MAGIC = Buffer.from("KEELDUMP", "latin1");
/** Bytes of the binary file header before the header JSON: magic, u16 version, u16 flags, u32 length. */
export const BINARY_PREFIX = 16;
/** The largest header JSON a binary dump may declare (a damaged length must not allocate gigabytes). */
export const MAX_HEADER_BYTES = 64 * 1024 * 1024;
/** The largest key a record may declare: above any page size's maxKeySize. */
export const MAX_RECORD_KEY = 65535;
/** The largest sub-database name a record may declare. */
export const MAX_RECORD_NAME = 65535;

export const REC_DB = 0x01;
export const REC_ENTRY = 0x02;
export const REC_END = 0xff;

export const KEY_ENCODINGS: readonly KeyEncodingName[] = ["ordered-binary", "binary", "string"];
export const VALUE_ENCODINGS: readonly ValueEncodingName[] = ["msgpack", "json", "string", "binary"];

export interface DumpDbHeader {
  name: string;
  keyEncoding: KeyEncodingName;
  encoding: ValueEncodingName;
  entries: number;
}

export interface DumpHeader {
  keeldb: "dump";
  format: number;
  /** LSN of the dumped snapshot (absent in a reproducible dump). */
  lsn?: number | undefined;
  /** Transaction id of the dumped snapshot (absent in a reproducible dump). */
  txn?: number | undefined;
  /** When the dump was taken, ms since the epoch (absent in a reproducible dump). */
  createdAt?: number | undefined;
  dbs: DumpDbHeader[];
}

/** Order of sub-database names in a dump: UTF-8 byte order ("" first). */
export function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/**
 * The header object as JSON, without its closing brace: `{"keeldb":"dump","format":1,...,"dbs":[...]`.
 * JSON Lines appends `,"crc32":N}` (the CRC-32 of exactly this text's UTF-8 bytes); binary appends `}`.
 */
export function headerText(h: DumpHeader): string {
  let s = `{"keeldb":"dump","format":${h.format}`;
  if (h.lsn !== undefined) s += `,"lsn":${h.lsn}`;
  if (h.txn !== undefined) s += `,"txn":${h.txn}`;
  if (h.createdAt !== undefined) s += `,"createdAt":${h.createdAt}`;
  s += `,"dbs":[`;
  s += h.dbs
    .map((d) => `{"name":${JSON.stringify(d.name)},"keyEncoding":${JSON.stringify(d.keyEncoding)},"encoding":${JSON.stringify(d.encoding)},"entries":${d.entries}}`)
    .join(",");
  return s + "]";
}

/** Raises a CORRUPT error at the caller's location (line or offset). */
export type Fail = (message: string, reason: string, extra?: Record<string, unknown>) => never;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/** Exactly these members (each of `optional` may be absent). */
export function checkMembers(o: Record<string, unknown>, required: readonly string[], optional: readonly string[], what: string, fail: Fail): void {
  for (const k of required) if (!(k in o)) fail(`${what} lacks "${k}"`, "shape", { member: k });
  for (const k of Object.keys(o)) if (!required.includes(k) && !optional.includes(k)) fail(`${what} has an unknown member "${k}"`, "shape", { member: k });
}

/**
 * Check the first members of a parsed header: that it is a KeelDB dump and of the version this
 * code reads. Done before anything else, because another version may lay out the rest otherwise.
 */
export function checkIdentity(o: unknown, fail: Fail): asserts o is Record<string, unknown> {
  if (!isObject(o) || o.keeldb !== "dump") fail("not a KeelDB dump: the header lacks \"keeldb\":\"dump\"", "not-a-dump");
  if (o.format !== DUMP_VERSION) {
    fail(`dump format version ${JSON.stringify(o.format)} is not supported (this KeelDB reads version ${DUMP_VERSION})`, "version", { found: o.format, supported: DUMP_VERSION });
  }
}

/** Validate a parsed header strictly. `extra` names members the container format adds (crc32). */
export function parseHeader(o: Record<string, unknown>, extra: readonly string[], fail: Fail): DumpHeader {
  checkMembers(o, ["keeldb", "format", "dbs"], ["lsn", "txn", "createdAt", ...extra], "the header", fail);
  for (const k of ["lsn", "txn", "createdAt"] as const) {
    if (k in o && !isCount(o[k])) fail(`the header's "${k}" is not a non-negative integer`, "shape", { member: k });
  }
  if (!Array.isArray(o.dbs)) fail('the header\'s "dbs" is not an array', "shape", { member: "dbs" });
  const dbs: DumpDbHeader[] = [];
  const seen = new Set<string>();
  for (const [i, d] of (o.dbs as unknown[]).entries()) {
    if (!isObject(d)) fail(`the header's dbs[${i}] is not an object`, "shape", { member: `dbs[${i}]` });
    checkMembers(d, ["name", "keyEncoding", "encoding", "entries"], [], `the header's dbs[${i}]`, fail);
    const { name, keyEncoding, encoding, entries } = d;
    if (typeof name !== "string") fail(`the header's dbs[${i}].name is not a string`, "shape", { member: `dbs[${i}].name` });
    if (seen.has(name)) fail(`the header names sub-database ${JSON.stringify(name)} twice`, "shape", { name });
    if (dbs.length && compareNames(dbs[dbs.length - 1]!.name, name) > 0) fail("the header's sub-databases are not in name order", "shape", { name });
    seen.add(name);
    if (!KEY_ENCODINGS.includes(keyEncoding as KeyEncodingName)) fail(`sub-database ${JSON.stringify(name)} has an unknown keyEncoding ${JSON.stringify(keyEncoding)}`, "shape", { name });
    if (!VALUE_ENCODINGS.includes(encoding as ValueEncodingName)) fail(`sub-database ${JSON.stringify(name)} has an unknown encoding ${JSON.stringify(encoding)}`, "shape", { name });
    if (!isCount(entries)) fail(`sub-database ${JSON.stringify(name)} has a bad entry count`, "shape", { name });
    dbs.push({ name, keyEncoding: keyEncoding as KeyEncodingName, encoding: encoding as ValueEncodingName, entries });
  }
  return {
    keeldb: "dump",
    format: DUMP_VERSION,
    lsn: o.lsn as number | undefined,
    txn: o.txn as number | undefined,
    createdAt: o.createdAt as number | undefined,
    dbs,
  };
}

export function totalEntries(h: DumpHeader): number {
  return h.dbs.reduce((n, d) => n + d.entries, 0);
}

/**
 * BodyRules: what a body must follow, whichever the format: one section per header sub-database,
 * in header order, each holding exactly the header's entry count, keys strictly ascending; then
 * the trailer with the total count.
 */
export class BodyRules {
  readonly header: DumpHeader;
  /** Index into header.dbs of the current section (-1 before the first). */
  section = -1;
  /** Entries seen in the current section, and in all. */
  inSection = 0;
  total = 0;
  #lastKey: string | null = null;

  constructor(header: DumpHeader) {
    this.header = header;
  }

  #closeSection(fail: Fail): void {
    if (this.section < 0) return;
    const d = this.header.dbs[this.section]!;
    if (this.inSection !== d.entries) {
      fail(`sub-database ${JSON.stringify(d.name)} holds ${this.inSection} entries; the header says ${d.entries}`, "entry-count", { db: d.name, found: this.inSection, expected: d.entries });
    }
  }

  /** A section begins: returns its index into header.dbs. */
  startSection(name: string, fail: Fail): number {
    this.#closeSection(fail);
    const next = this.header.dbs[this.section + 1];
    if (!next) fail(`a section for sub-database ${JSON.stringify(name)} follows the last one the header lists`, "section", { db: name });
    if (next.name !== name) fail(`the section for sub-database ${JSON.stringify(name)} comes where the header expects ${JSON.stringify(next.name)}`, "section", { db: name, expected: next.name });
    this.section++;
    this.inSection = 0;
    this.#lastKey = null;
    return this.section;
  }

  /** An entry of the current section, its key as a latin1 string (byte order). */
  entry(key: string, fail: Fail): void {
    if (this.section < 0) fail("an entry comes before the first section", "section");
    if (this.#lastKey !== null && key <= this.#lastKey) fail("keys are not in strictly ascending order", "key-order", { db: this.header.dbs[this.section]!.name });
    this.#lastKey = key;
    this.inSection++;
    this.total++;
  }

  /** The trailer: every section seen, counts match. */
  end(entries: number, fail: Fail): void {
    this.#closeSection(fail);
    if (this.section !== this.header.dbs.length - 1) {
      const missing = this.header.dbs[this.section + 1]!.name;
      fail(`the dump ends before the section of sub-database ${JSON.stringify(missing)}`, "section", { db: missing });
    }
    if (entries !== this.total) fail(`the trailer counts ${entries} entries; the dump holds ${this.total}`, "entry-count", { found: this.total, expected: entries });
  }
}

/** A CORRUPT error about a dump, at a line (JSON Lines) or an offset (binary). */
export function dumpCorrupt(message: string, where: Record<string, unknown>): KeelError {
  return new KeelError("CORRUPT", `damaged dump: ${message}`, where);
}
