/**
 * loadParsers: read a dump, JSON Lines or binary, as a header then a sequence of items (section,
 * entry, end), checking everything a damaged file could get wrong (docs/DUMP-FORMAT.md).
 *
 * Invariants:
 * - Every problem with the bytes is a KeelError CORRUPT whose details say where: `line` (1-based)
 *   and `offset` (of the line's first byte) for JSON Lines, `offset` (of the record's first byte)
 *   for binary, plus `reason`. Nothing the input says makes the parser hang, throw an untyped
 *   error, or allocate more than the bytes actually received (I6).
 * - The header is checked completely, its own CRC-32 included, before the first item is returned:
 *   damage in the header is found before anything is loaded.
 * - Binary records carry their own CRC-32, checked before the record is returned: an entry is
 *   returned only if its bytes are intact. JSON Lines entries are checked for syntax, canonical
 *   base64 and order; their bytes are covered only by the trailer's CRC-32.
 * - The end item is returned only after the trailer's CRC-32 (over every byte before it) matches
 *   and nothing follows the trailer.
 * - Entries larger than the target accepts (maxKeySize, maxValueSize) are INVALID_ARGUMENT, with
 *   the same location details, once the record itself is known to be intact.
 */
import { isUtf8 } from "node:buffer";
import { constants as bufferConstants } from "node:buffer";
import { KeelError } from "../errors.js";
import { crc32 } from "../util/crc32.js";
import {
  BINARY_MAGIC,
  BINARY_PREFIX,
  BodyRules,
  DUMP_VERSION,
  MAX_HEADER_BYTES,
  MAX_RECORD_KEY,
  MAX_RECORD_NAME,
  REC_DB,
  REC_END,
  REC_ENTRY,
  checkIdentity,
  checkMembers,
  dumpCorrupt,
  parseHeader,
  type DumpFormat,
  type DumpHeader,
  type Fail,
} from "./dumpFormat.js";
import type { LoadSource } from "./loadSource.js";

export type LoadItem = { kind: "db"; index: number } | { kind: "entry"; key: Buffer; value: Buffer } | { kind: "end" };

export interface Limits {
  maxKeySize: number;
  maxValueSize: number;
}

export interface DumpParser {
  readonly format: DumpFormat;
  header(): Promise<DumpHeader>;
  next(): Promise<LoadItem>;
  /** Where the parser is, for errors raised outside it: { line, offset } or { offset }. */
  where(): Record<string, unknown>;
}

function tooLarge(what: "key" | "value", size: number, max: number, where: Record<string, unknown>): KeelError {
  const limit = what === "key" ? "maxKeySize" : "maxValueSize";
  return new KeelError("INVALID_ARGUMENT", `the dump holds a ${what} of ${size} bytes; this database's ${limit} is ${max}`, { argument: "input", limit, max, size, ...where });
}

const CRC_MARKER = Buffer.from(',"crc32":', "latin1");

/** JSON Lines: one JSON object per line, each ending in "\n". */
export class JsonlParser implements DumpParser {
  readonly format = "jsonl" as const;
  #src: LoadSource;
  #limits: Limits;
  #line = 0;
  #lineOffset = 0;
  #maxLine: number;
  #rules: BodyRules | null = null;
  readonly fail: Fail = (message, reason, extra) => {
    throw dumpCorrupt(`line ${this.#line}: ${message}`, { format: "jsonl", line: this.#line, offset: this.#lineOffset, reason, ...extra });
  };

  constructor(src: LoadSource, limits: Limits) {
    this.#src = src;
    this.#limits = limits;
    // The longest entry line: base64 of the largest key and value, the readable "key" member
    // (at most 6 characters per key byte), and the punctuation.
    const b64 = (n: number) => Math.ceil(n / 3) * 4;
    const longest = b64(limits.maxKeySize) + b64(limits.maxValueSize) + 6 * limits.maxKeySize + 64;
    this.#maxLine = Math.min(longest, bufferConstants.MAX_STRING_LENGTH);
  }

  where(): Record<string, unknown> {
    return { line: this.#line, offset: this.#lineOffset };
  }

  /** The header's line is bounded only by the largest string: it lists every sub-database, not an entry. */
  async #readLine(max = this.#maxLine): Promise<Buffer | null> {
    this.#lineOffset = this.#src.offset;
    this.#line++;
    const r = await this.#src.readLine(max);
    if (!r) return null;
    if (r.tooLong) {
      const what = max === this.#maxLine ? "any entry this database accepts" : "the largest string this process can parse";
      this.fail(`the line is longer than ${what} (${max} bytes)`, "line-too-long", { max });
    }
    if (!r.terminated) this.fail("the dump is cut short: its last line has no newline", "truncated");
    // A text conversion (unix2dos, a Windows editor, git autocrlf) changes every line: said at the
    // first line, not as a checksum mismatch at the trailer after batches were committed.
    if (r.bytes.length > 0 && r.bytes[r.bytes.length - 1] === 13) this.fail('the line ends in "\\r\\n": the dump went through a text conversion', "line-end");
    if (!isUtf8(r.bytes)) this.fail("the line is not UTF-8", "utf8");
    return r.bytes;
  }

  #json(b: Buffer): Record<string, unknown> {
    let o: unknown;
    try {
      o = JSON.parse(b.toString("utf8"));
    } catch (e) {
      this.fail(`bad JSON (${(e as Error).message})`, "json");
    }
    if (typeof o !== "object" || o === null || Array.isArray(o)) this.fail("the line is not a JSON object", "shape");
    return o as Record<string, unknown>;
  }

  #base64(s: unknown, member: string): Buffer {
    if (typeof s !== "string") this.fail(`"${member}" is not a string`, "shape", { member });
    const b = Buffer.from(s, "base64");
    // Node's decoder skips what it does not know: re-encoding proves the text was canonical.
    if (b.toString("base64") !== s) this.fail(`"${member}" is not canonical base64`, "base64", { member });
    return b;
  }

  async header(): Promise<DumpHeader> {
    const b = await this.#readLine(bufferConstants.MAX_STRING_LENGTH);
    if (!b) this.fail("the dump is empty", "truncated");
    const o = this.#json(b);
    checkIdentity(o, this.fail);
    const at = b.lastIndexOf(CRC_MARKER);
    if (at < 0 || typeof o.crc32 !== "number") this.fail('the header has no "crc32"', "shape", { member: "crc32" });
    const crc = crc32(b.subarray(0, at));
    if (crc !== o.crc32) this.fail("the header's checksum does not match its bytes", "checksum", { found: o.crc32, expected: crc });
    const h = parseHeader(o, ["crc32"], this.fail);
    this.#rules = new BodyRules(h);
    return h;
  }

  async next(): Promise<LoadItem> {
    const rules = this.#rules!;
    const crcBefore = this.#src.crc;
    const b = await this.#readLine();
    if (!b) this.fail("the dump is cut short: it ends without a trailer", "truncated");
    const o = this.#json(b);
    if ("k" in o) {
      checkMembers(o, ["k", "v"], ["key"], "an entry", this.fail);
      if ("key" in o && typeof o.key !== "string") this.fail('"key" is not a string', "shape", { member: "key" });
      const key = this.#base64(o.k, "k");
      const value = this.#base64(o.v, "v");
      rules.entry(key.latin1Slice(0, key.length), this.fail);
      if (key.length > this.#limits.maxKeySize) throw tooLarge("key", key.length, this.#limits.maxKeySize, { format: "jsonl", ...this.where() });
      if (value.length > this.#limits.maxValueSize) throw tooLarge("value", value.length, this.#limits.maxValueSize, { format: "jsonl", ...this.where() });
      return { kind: "entry", key, value };
    }
    if ("db" in o) {
      checkMembers(o, ["db"], [], "a section line", this.fail);
      if (typeof o.db !== "string") this.fail('"db" is not a string', "shape", { member: "db" });
      return { kind: "db", index: rules.startSection(o.db, this.fail) };
    }
    if ("end" in o) {
      checkMembers(o, ["end", "entries", "crc32"], [], "the trailer", this.fail);
      if (o.end !== true || typeof o.entries !== "number" || typeof o.crc32 !== "number") this.fail("the trailer is malformed", "shape");
      if (o.crc32 !== crcBefore) this.fail("the dump's checksum does not match its bytes", "checksum", { found: o.crc32, expected: crcBefore });
      rules.end(o.entries, this.fail);
      if (!(await this.#src.atEnd())) {
        this.#lineOffset = this.#src.offset;
        this.#line++;
        this.fail("bytes follow the trailer", "trailing-data");
      }
      return { kind: "end" };
    }
    this.fail("the line is neither an entry, a section nor the trailer", "shape");
  }
}

/** Binary: the file header, then type-tagged records, each with its CRC-32. */
export class BinaryParser implements DumpParser {
  readonly format = "binary" as const;
  #src: LoadSource;
  #limits: Limits;
  #recOffset = 0;
  #rules: BodyRules | null = null;
  readonly fail: Fail = (message, reason, extra) => {
    throw dumpCorrupt(`offset ${this.#recOffset}: ${message}`, { format: "binary", offset: this.#recOffset, reason, ...extra });
  };

  constructor(src: LoadSource, limits: Limits) {
    this.#src = src;
    this.#limits = limits;
  }

  where(): Record<string, unknown> {
    return { offset: this.#recOffset };
  }

  async #take(n: number, what: string): Promise<Buffer> {
    const b = await this.#src.take(n);
    if (b.length < n) this.fail(`the dump is cut short in ${what}`, "truncated", { needed: n, found: b.length });
    return b;
  }

  async #checkCrc(expected: number, what: string): Promise<void> {
    const found = (await this.#take(4, `the checksum of ${what}`)).readUInt32LE(0);
    if (found !== expected) this.fail(`the checksum of ${what} does not match its bytes`, "checksum", { found, expected });
  }

  async header(): Promise<DumpHeader> {
    this.#recOffset = 0;
    const pre = await this.#take(BINARY_PREFIX, "the file header");
    if (!pre.subarray(0, 8).equals(BINARY_MAGIC)) this.fail('not a KeelDB binary dump: it does not start with "KEELDUMP"', "magic");
    const version = pre.readUInt16LE(8);
    if (version !== DUMP_VERSION) this.fail(`dump format version ${version} is not supported (this KeelDB reads version ${DUMP_VERSION})`, "version", { found: version, supported: DUMP_VERSION });
    const flags = pre.readUInt16LE(10);
    if (flags !== 0) this.fail(`unknown header flags 0x${flags.toString(16)}`, "flags", { flags });
    const len = pre.readUInt32LE(12);
    if (len > MAX_HEADER_BYTES) this.fail(`the header claims ${len} bytes`, "length", { length: len, max: MAX_HEADER_BYTES });
    const json = await this.#take(len, "the header");
    await this.#checkCrc(this.#src.crc, "the header");
    if (!isUtf8(json)) this.fail("the header is not UTF-8", "utf8");
    let o: unknown;
    try {
      o = JSON.parse(json.toString("utf8"));
    } catch (e) {
      this.fail(`the header is bad JSON (${(e as Error).message})`, "json");
    }
    checkIdentity(o, this.fail);
    const h = parseHeader(o, [], this.fail);
    this.#rules = new BodyRules(h);
    return h;
  }

  async next(): Promise<LoadItem> {
    const rules = this.#rules!;
    this.#recOffset = this.#src.offset;
    const t = await this.#take(1, "a record type (no END record)");
    const type = t[0]!;
    if (type === REC_DB) {
      const head = await this.#take(4, "a section record");
      const len = head.readUInt32LE(0);
      if (len > MAX_RECORD_NAME) this.fail(`a section record claims a name of ${len} bytes`, "length", { length: len, max: MAX_RECORD_NAME });
      const name = await this.#take(len, "a section record");
      await this.#checkCrc(crc32(name, crc32(head, crc32(t))), "a section record");
      if (!isUtf8(name)) this.fail("a sub-database name is not UTF-8", "utf8");
      return { kind: "db", index: rules.startSection(name.toString("utf8"), this.fail) };
    }
    if (type === REC_ENTRY) {
      const head = await this.#take(8, "an entry record");
      const klen = head.readUInt32LE(0);
      const vlen = head.readUInt32LE(4);
      if (klen > MAX_RECORD_KEY) this.fail(`an entry record claims a key of ${klen} bytes`, "length", { length: klen, max: MAX_RECORD_KEY });
      const key = await this.#take(klen, "an entry's key");
      const crc = crc32(key, crc32(head, crc32(t)));
      if (vlen > this.#limits.maxValueSize) {
        // Damage, or a value this database refuses? Check the record without keeping it.
        const s = await this.#src.skip(vlen, crc);
        if (s.count < vlen) this.fail("the dump is cut short in an entry's value", "truncated", { needed: vlen, found: s.count });
        await this.#checkCrc(s.crc, "an entry record");
        throw tooLarge("value", vlen, this.#limits.maxValueSize, { format: "binary", ...this.where() });
      }
      const value = await this.#take(vlen, "an entry's value");
      await this.#checkCrc(crc32(value, crc), "an entry record");
      rules.entry(key.latin1Slice(0, key.length), this.fail);
      if (klen > this.#limits.maxKeySize) throw tooLarge("key", klen, this.#limits.maxKeySize, { format: "binary", ...this.where() });
      return { kind: "entry", key, value };
    }
    if (type === REC_END) {
      const c = await this.#take(8, "the END record");
      const n = c.readBigUInt64LE(0);
      await this.#checkCrc(this.#src.crc, "the dump");
      if (n > BigInt(Number.MAX_SAFE_INTEGER)) this.fail("the END record's count is out of range", "shape");
      rules.end(Number(n), this.fail);
      if (!(await this.#src.atEnd())) {
        this.#recOffset = this.#src.offset;
        this.fail("bytes follow the END record", "trailing-data");
      }
      return { kind: "end" };
    }
    this.fail(`unknown record type 0x${type.toString(16)}`, "record-type", { type });
  }
}
