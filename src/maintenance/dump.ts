/**
 * dump: write one consistent snapshot of a database to a stream, as JSON Lines or binary
 * (docs/DUMP-FORMAT.md). The dump holds the raw stored bytes (keys as their encoded bytes, values
 * as stored), so it is exact and does not depend on the encoders of the KeelDB that reads it.
 *
 * The steps:
 *   1. Take the published snapshot and register it as a reader (engine.readers) for the whole
 *      dump, so no page it reaches is reused while writers go on (I2). Everything comes from it.
 *   2. Write the header: the format version, the snapshot's LSN, txn and time (left out with
 *      `reproducible`), and each dumped sub-database's name, encodings and entry count.
 *   3. For each sub-database, in name order: a section marker, then every entry in key order,
 *      values read through engine.readValue (overflow values included).
 *   4. Write the trailer: the entry count and the CRC-32 of every byte before it.
 *   5. Release the reader.
 *
 * Invariants:
 * - Consistency: one snapshot, held from step 1 to step 5.
 * - Bounded memory: output is built in chunks of about 64 KiB and written with backpressure
 *   (when `out.write` returns false, the dump waits for 'drain'); only the entry being written
 *   and the cursor's path of nodes are held (TreeCursor keeps no node it loads), whatever the
 *   database's size and however far writers move on meanwhile.
 * - Writers are not blocked: the dump yields to the event loop at least every few milliseconds.
 * - Determinism: equal content gives equal bytes. With `reproducible: true` (no lsn, txn, createdAt)
 *   a dump of a database loaded from a dump is byte-identical to that dump. Without it the two
 *   differ only in line 1 / the header (lsn, txn, createdAt, header crc32) and the trailer's crc32.
 * - The dump never ends or destroys `out`: the caller owns it (call out.end() after, and wait for
 *   'finish'; dumpToFile does all that atomically for a file).
 */
import { KeelError, invalidArgument } from "../errors.js";
import type { Database } from "../db/Database.js";
import { decodeKey } from "../db/KeyCodec.js";
import type { DbEntry, Snapshot } from "../txn/Snapshot.js";
import { crc32 } from "../util/crc32.js";
import { constants as bufferConstants } from "node:buffer";
import { BINARY_MAGIC, DUMP_VERSION, MAX_HEADER_BYTES, REC_DB, REC_END, REC_ENTRY, compareNames, headerText, type DumpDbHeader, type DumpFormat, type DumpHeader } from "./dumpFormat.js";
import { TreeCursor } from "../btree/TreeCursor.js";
import { DumpSink } from "./dumpSink.js";
import { setOwn } from "../util/ownRecord.js";
import { methodOptions, type OptionKind } from "../db/options.js";

export interface DumpProgress {
  entries: number;
  totalEntries: number;
}

/** The options dump() takes (methodOptions: anything else is INVALID_ARGUMENT). */
export const DUMP_OPTIONS: Readonly<Record<string, OptionKind>> = { format: "any", dbs: "any", signal: "signal", onProgress: "function", reproducible: "boolean", readable: "boolean" };

export interface DumpOptions {
  /** "jsonl" (default) or "binary". */
  format?: DumpFormat | undefined;
  /** Names of the sub-databases to dump ("" is the default one); all of them when omitted. */
  dbs?: string[] | undefined;
  signal?: AbortSignal | undefined;
  onProgress?: ((p: DumpProgress) => void) | undefined;
  /** Leave lsn, txn and createdAt out of the header: equal content gives byte-identical dumps. */
  reproducible?: boolean | undefined;
  /** JSON Lines only: add a "key" member with the key decoded, when it decodes to a string. */
  readable?: boolean | undefined;
}

export interface DumpReport {
  format: DumpFormat;
  entries: number;
  perDb: Record<string, number>;
  /** Bytes written to `out`. */
  bytes: number;
  /** LSN and txn id of the dumped snapshot (also when `reproducible` leaves them out of the file). */
  lsn: number;
  txn: number;
}

const PROGRESS_EVERY = 10_000;
/** Longest stretch, in ms, the dump runs without giving the event loop a turn. */
const SLICE_MS = 8;
/** Values at least this large go to the stream as their own chunk, without a copy. */
const DIRECT_VALUE = 64 * 1024;

const tick = () => new Promise<void>((r) => setImmediate(r));

export async function dump(db: Database, out: NodeJS.WritableStream, options?: DumpOptions): Promise<DumpReport> {
  const opts = methodOptions(options, "dump", DUMP_OPTIONS);
  const format = opts.format ?? "jsonl";
  if (format !== "jsonl" && format !== "binary") throw invalidArgument(`unknown dump format ${JSON.stringify(format)} (jsonl or binary)`, { argument: "format", value: format });
  if (opts.dbs !== undefined && (!Array.isArray(opts.dbs) || opts.dbs.some((n) => typeof n !== "string"))) {
    throw invalidArgument("dbs is an array of sub-database names", { argument: "dbs" });
  }
  if (!out || typeof out.write !== "function") throw invalidArgument("out must be a writable stream", { argument: "out" });
  const signal = opts.signal;
  checkAborted(signal);
  const engine = db.engine;
  // 1. One snapshot, registered as a reader for the whole dump (no await in between).
  const snap = db.readSnapshot();
  engine.readers.acquire(snap.txn);
  const sink = new DumpSink(out, signal);
  try {
    const selected = selectDbs(snap, opts.dbs);
    const header: DumpHeader = {
      keeldb: "dump",
      format: DUMP_VERSION,
      lsn: opts.reproducible ? undefined : snap.lsn,
      txn: opts.reproducible ? undefined : snap.txn,
      createdAt: opts.reproducible ? undefined : Date.now(),
      dbs: selected.map((e): DumpDbHeader => ({ name: e.name, keyEncoding: e.keyEncoding, encoding: e.valueEncoding, entries: e.tree.entries })),
    };
    const totalEntries = header.dbs.reduce((n, d) => n + d.entries, 0);
    const writer = format === "jsonl" ? new JsonlWriter(sink, !!opts.readable) : new BinaryWriter(sink);
    // 2. Header.
    writer.header(header);
    const perDb: Record<string, number> = {};
    let entries = 0;
    let lastYield = performance.now();
    // 3. Sections.
    for (const e of selected) {
      writer.section(e);
      let n = 0;
      // TreeCursor holds only its path: a dump larger than memory stays in bounded memory.
      const cur = new TreeCursor(engine.pager, e.tree);
      for (cur.seekGE(null); cur.valid; cur.next()) {
        // readValue may return a scratch buffer that the next read reuses: the writer copies
        // (or encodes) it before anything else reads.
        writer.entry(e, cur.key, engine.readValue(cur.value));
        n++;
        entries++;
        if (sink.pending >= DumpSink.CHUNK) await sink.flush();
        if ((entries & 255) === 0 && performance.now() - lastYield >= SLICE_MS) {
          await tick();
          sink.yielded = true;
        }
        if (entries % PROGRESS_EVERY === 0) opts.onProgress?.({ entries, totalEntries });
        if (sink.yielded) {
          sink.yielded = false;
          lastYield = performance.now();
          checkAborted(signal);
          if (db.isClosed || engine.closed) throw new KeelError("CLOSED", "the database was closed during the dump", { path: db.path });
        }
      }
      if (n !== e.tree.entries) {
        throw new KeelError("CORRUPT", `sub-database ${JSON.stringify(e.name)} holds ${n} entries; its tree records ${e.tree.entries}`, {
          db: e.name,
          reason: "entry-count",
          found: n,
          expected: e.tree.entries,
        });
      }
      setOwn(perDb, e.name, n); // a sub-database may be named "__proto__"
    }
    checkAborted(signal);
    // 4. Trailer (its CRC covers every byte before it).
    await writer.trailer(entries);
    await sink.flush();
    opts.onProgress?.({ entries, totalEntries });
    return { format, entries, perDb, bytes: sink.bytes, lsn: snap.lsn, txn: snap.txn };
  } finally {
    sink.detach();
    // 5. Release the snapshot.
    engine.readers.release(snap.txn);
  }
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new KeelError("ABORTED", "the dump was aborted", { reason: String(signal.reason ?? "") });
}

function selectDbs(snap: Snapshot, names: string[] | undefined): DbEntry[] {
  let list: DbEntry[];
  if (names === undefined) list = [...snap.dbs.values()];
  else {
    list = [];
    for (const name of new Set(names)) {
      const e = snap.dbs.get(name);
      if (!e) throw new KeelError("NOT_FOUND", `sub-database ${JSON.stringify(name)} does not exist`, { name });
      list.push(e);
    }
  }
  return list.sort((a, b) => compareNames(a.name, b.name));
}

interface Writer {
  header(h: DumpHeader): void;
  section(e: DbEntry): void;
  /** `key` is the encoded key as a latin1 string; `value` may be a scratch buffer: use it now. */
  entry(e: DbEntry, key: string, value: Buffer): void;
  trailer(entries: number): Promise<void>;
}

/** JSON Lines: header, {"db":name} per section, {"k":..,"v":..} per entry, trailer. */
class JsonlWriter implements Writer {
  #sink: DumpSink;
  #readable: boolean;

  constructor(sink: DumpSink, readable: boolean) {
    this.#sink = sink;
    this.#readable = readable;
  }

  header(h: DumpHeader): void {
    const text = headerText(h);
    this.#sink.text(`${text},"crc32":${crc32(Buffer.from(text, "utf8"))}}\n`);
  }

  section(e: DbEntry): void {
    this.#sink.text(`{"db":${JSON.stringify(e.name)}}\n`);
  }

  entry(e: DbEntry, key: string, value: Buffer): void {
    const k = Buffer.from(key, "latin1").toString("base64");
    const human = this.#readable ? readableKey(e, key) : undefined;
    const pre = human === undefined ? "{" : `{"key":${JSON.stringify(human)},`;
    // A line is one JavaScript string: base64 of a value past about 400 MB cannot be made (and the
    // loader could not read it back). Refused with the way out, before any of the line is written.
    const lineChars = pre.length + k.length + 4 * Math.ceil(value.length / 3) + 16;
    if (lineChars > bufferConstants.MAX_STRING_LENGTH) {
      throw invalidArgument(`a value of ${value.length} bytes in sub-database "${e.name}" is too large for a JSON Lines dump; use format "binary"`, {
        argument: "format",
        value: "jsonl",
        db: e.name,
        size: value.length,
        max: bufferConstants.MAX_STRING_LENGTH,
      });
    }
    this.#sink.text(`${pre}"k":"${k}","v":"${value.toString("base64")}"}\n`);
  }

  async trailer(entries: number): Promise<void> {
    await this.#sink.flush();
    this.#sink.text(`{"end":true,"entries":${entries},"crc32":${this.#sink.crc}}\n`);
  }
}

/** The key decoded for people, when it is a string; undefined otherwise. */
function readableKey(e: DbEntry, key: string): string | undefined {
  if (e.keyEncoding === "binary") return undefined;
  if (e.keyEncoding === "string") return Buffer.from(key, "latin1").toString("utf8");
  try {
    const k = decodeKey(key, "ordered-binary");
    return typeof k === "string" ? k : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Binary: "KEELDUMP", u16 version, u16 flags, u32 header length, header JSON, u32 header CRC;
 * records with their own CRC; the END record with the count and the CRC of all bytes before it.
 */
class BinaryWriter implements Writer {
  #sink: DumpSink;

  constructor(sink: DumpSink) {
    this.#sink = sink;
  }

  header(h: DumpHeader): void {
    const json = Buffer.from(headerText(h) + "}", "utf8");
    // The loader refuses a longer header as damage (a damaged length must not allocate gigabytes).
    if (json.length > MAX_HEADER_BYTES) {
      throw invalidArgument(`the header of a binary dump of these ${h.dbs.length} sub-databases would be ${json.length} bytes, over the format's ${MAX_HEADER_BYTES}; use format "jsonl"`, {
        argument: "format",
        value: "binary",
        size: json.length,
        max: MAX_HEADER_BYTES,
      });
    }
    const pre = Buffer.alloc(16);
    BINARY_MAGIC.copy(pre, 0);
    pre.writeUInt16LE(DUMP_VERSION, 8);
    pre.writeUInt16LE(0, 10);
    pre.writeUInt32LE(json.length, 12);
    const crc = crc32(json, crc32(pre));
    this.#sink.bytesOf(pre);
    this.#sink.bytesOf(json);
    this.#sink.u32(crc);
  }

  section(e: DbEntry): void {
    const name = Buffer.from(e.name, "utf8");
    const head = Buffer.alloc(5);
    head[0] = REC_DB;
    head.writeUInt32LE(name.length, 1);
    this.#sink.bytesOf(head);
    this.#sink.bytesOf(name);
    this.#sink.u32(crc32(name, crc32(head)));
  }

  entry(_e: DbEntry, key: string, value: Buffer): void {
    const sink = this.#sink;
    const head = sink.reserve(9);
    head.buf[head.at] = REC_ENTRY;
    head.buf.writeUInt32LE(key.length, head.at + 1);
    head.buf.writeUInt32LE(value.length, head.at + 5);
    let crc = crc32(head.buf.subarray(head.at, head.at + 9));
    const k = sink.reserve(key.length);
    k.buf.latin1Write(key, k.at, key.length);
    crc = crc32(k.buf.subarray(k.at, k.at + key.length), crc);
    crc = crc32(value, crc);
    // Small values (possibly in the engine's scratch buffer) are copied into the chunk. A large
    // one is always an overflow value: a buffer read for this call, or the engine's own copy,
    // which nobody changes; it goes to the stream as its own chunk, without a copy.
    if (value.length >= DIRECT_VALUE) sink.direct(value);
    else sink.bytesOf(value);
    sink.u32(crc);
  }

  async trailer(entries: number): Promise<void> {
    const t = Buffer.alloc(9);
    t[0] = REC_END;
    t.writeBigUInt64LE(BigInt(entries), 1);
    this.#sink.bytesOf(t);
    await this.#sink.flush();
    this.#sink.u32(this.#sink.crc);
  }
}
