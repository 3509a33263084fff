/**
 * load: read a dump (docs/DUMP-FORMAT.md) from a stream into an empty database, writing the raw
 * stored bytes it holds, so the loaded database stores exactly what the dumped one stored.
 *
 * The steps:
 *   1. Detect the format by its first bytes ("KEELDUMP": binary; otherwise JSON Lines), unless
 *      `format` says which.
 *   2. Read and check the whole header (its own CRC-32 included). Damage here is CORRUPT, raised
 *      before anything is written.
 *   3. Check the targets: for each sub-database the header lists, the target must be missing or
 *      empty (else INVALID_ARGUMENT naming it, details.name), and its encodings must be the
 *      header's: a named one is opened with db.openDB(name, { keyEncoding, encoding }) (a stored
 *      sub-database with other encodings is INVALID_ARGUMENT); the default one ("") must already
 *      have the header's encodings (open the target with the same keyEncoding and encoding).
 *   4. Stream the body: entries are gathered and committed with db.transaction every `batch`
 *      entries (default 10,000) or `batchBytes` bytes (default 64 MiB), whichever comes first.
 *      The first transaction that writes a sub-database checks again, inside the transaction,
 *      that it is empty (a writer may have got there since step 3).
 *   5. At the trailer: check the count and the CRC-32 of the whole dump, and that nothing follows.
 *      Only then is the last batch committed.
 *
 * What has been committed when a load fails (a load is NOT atomic across batches):
 * - Damage in the header, a target that is not empty, or encodings that differ: nothing.
 * - A dump no larger than one batch: nothing (its only batch is committed after step 5).
 * - Otherwise: every batch committed before the failure stays committed. The error's
 *   details.committedEntries counts them (and details.committedPerDb per sub-database); they
 *   are the dump's first entries in order, a prefix. With the binary format every record's own
 *   CRC-32 is checked before it joins a batch, so the committed entries are intact ones. With
 *   JSON Lines an entry line is checked for syntax, canonical base64 and key order, but its bytes
 *   are covered only by the trailer's CRC-32: damage that leaves a line well-formed (a base64
 *   character changed into another) is found only at the trailer, and such an entry may already
 *   be committed. In every case: clear (or recreate) the target and load a good dump again.
 * - `batch: Infinity` (with a large enough `batchBytes`) loads everything in one transaction,
 *   all or nothing, at the cost of holding the whole dump in memory.
 * - The same holds for an abort through `signal` (ABORTED) and for an I/O error of the database.
 *
 * Invariants:
 * - Bounded memory: the input is pulled only as the parser needs it; at most one batch (plus
 *   one entry) is held, whatever the dump's size. Committed batches then cost what any commit
 *   costs: with the log, changes stay in memory until a checkpoint (checkpointDirtyBytes,
 *   checkpointLogBytes bound them); with wal: false every batch is a checkpoint.
 * - Exactness: keys and values are written as the dump's bytes, never decoded and re-encoded.
 */
import { latin1Of } from "../util/latin1.js";
import { KeelError, invalidArgument } from "../errors.js";
import type { Database } from "../db/Database.js";
import type { Key } from "../db/KeyCodec.js";
import { SubDatabase } from "../db/SubDatabase.js";
import type { Transaction } from "../db/Transaction.js";
import type { KeyEncodingName, ValueEncodingName } from "../txn/Snapshot.js";
import type { WriteTxn } from "../txn/WriteTxn.js";
import { BINARY_MAGIC, totalEntries, type DumpFormat, type DumpHeader } from "./dumpFormat.js";
import type { DumpProgress } from "./dump.js";
import { BinaryParser, JsonlParser, type DumpParser } from "./loadParsers.js";
import { LoadSource } from "./loadSource.js";
import { recordOf, setOwn } from "../util/ownRecord.js";
import { methodOptions, type OptionKind } from "../db/options.js";

/** The options load() takes (methodOptions: anything else is INVALID_ARGUMENT). */
export const LOAD_OPTIONS: Readonly<Record<string, OptionKind>> = { format: "any", signal: "signal", onProgress: "function", batch: "any", batchBytes: "any" };

export interface LoadOptions {
  /** "jsonl" or "binary"; detected from the first bytes when omitted. */
  format?: DumpFormat | undefined;
  signal?: AbortSignal | undefined;
  /** Called after each committed batch. */
  onProgress?: ((p: DumpProgress) => void) | undefined;
  /** Entries per transaction (default 10,000); Infinity for one transaction. */
  batch?: number | undefined;
  /** Key and value bytes per transaction (default 64 MiB): a batch ends at whichever comes first. */
  batchBytes?: number | undefined;
}

export interface LoadReport {
  format: DumpFormat;
  entries: number;
  perDb: Record<string, number>;
  /** The dumped snapshot's LSN, txn and time, as the header gives them (absent from a reproducible dump). */
  lsn?: number | undefined;
  txn?: number | undefined;
  createdAt?: number | undefined;
}

const DEFAULT_BATCH = 10_000;
const DEFAULT_BATCH_BYTES = 64 * 1024 * 1024;
/** Memory an entry costs beyond its bytes, for the batchBytes bound. */
const ENTRY_OVERHEAD = 64;


/**
 * A sub-database handle whose "encoding" is the identity: keys and values given to it are already
 * the stored bytes. Used only through a Transaction (tx.for(raw).put(keyBytes, valueBytes)), which
 * goes through the normal write path (ensureExists, WriteTxn.put, the log record).
 */
class RawSubDatabase extends SubDatabase {
  /** The write transaction of the last ensureExists call (the one running now). */
  writeTxn: WriteTxn | null = null;
  /** Checked empty inside a committed transaction: later batches need not check again. */
  verified = false;

  override encodeKey(key: Key): string {
    const k = key as Uint8Array;
    return latin1Of(k);
  }

  override encodeValue(v: unknown): Buffer | Uint8Array {
    return v as Uint8Array;
  }

  override ensureExists(w: WriteTxn): void {
    this.writeTxn = w;
    super.ensureExists(w);
  }
}

function notEmpty(name: string, entries: number): KeelError {
  const what = name === "" ? "the default database" : `sub-database ${JSON.stringify(name)}`;
  return invalidArgument(`${what} is not empty (${entries} entries): load writes only into empty or missing sub-databases`, { argument: "db", name, entries });
}

function checkBatch(v: number | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (v === Infinity || (Number.isSafeInteger(v) && v >= 1)) return v;
  throw invalidArgument(`${name} must be a positive integer (or Infinity)`, { argument: name, value: v });
}

/** Step 3: the targets, checked, one raw handle per header sub-database. */
function prepareTargets(db: Database, h: DumpHeader): RawSubDatabase[] {
  const snap = db.readSnapshot();
  const out: RawSubDatabase[] = [];
  for (const d of h.dbs) {
    const entries = snap.dbs.get(d.name)?.tree.entries ?? 0;
    if (entries > 0) throw notEmpty(d.name, entries);
    if (d.name === "") {
      if (db.keyEncoding !== d.keyEncoding || db.valueEncoding !== d.encoding) {
        throw invalidArgument(
          `the dump's default database has keyEncoding ${d.keyEncoding} and encoding ${d.encoding}; this database has ${db.keyEncoding} and ${db.valueEncoding} (open it with the dump's)`,
          { argument: "encoding", name: "", dump: { keyEncoding: d.keyEncoding, encoding: d.encoding }, stored: { keyEncoding: db.keyEncoding, encoding: db.valueEncoding } },
        );
      }
    } else {
      db.openDB(d.name, { keyEncoding: d.keyEncoding, encoding: d.encoding });
    }
    out.push(new RawSubDatabase(db, d.name, d.keyEncoding as KeyEncodingName, d.encoding as ValueEncodingName));
  }
  return out;
}

/** Step 4: entries gathered into batches, each committed as one transaction. */
class Batcher {
  #db: Database;
  #batch: number;
  #batchBytes: number;
  #items: Array<{ t: RawSubDatabase; key: Buffer; value: Buffer }> = [];
  #bytes = 0;
  /** Sub-databases this batch writes or creates, in dump order. */
  #touched = new Set<RawSubDatabase>();
  #current: RawSubDatabase | null = null;
  committed = 0;
  /** Entries committed per sub-database (a Map: a sub-database may be named "__proto__"). */
  readonly perDb = new Map<string, number>();

  constructor(db: Database, batch: number, batchBytes: number) {
    this.#db = db;
    this.#batch = batch;
    this.#batchBytes = batchBytes;
  }

  startSection(t: RawSubDatabase): void {
    this.#current = t;
    this.#touched.add(t);
    if (!this.perDb.has(t.name)) this.perDb.set(t.name, 0);
  }

  add(key: Buffer, value: Buffer): void {
    const t = this.#current!;
    this.#items.push({ t, key, value });
    this.#bytes += key.length + value.length + ENTRY_OVERHEAD;
    this.#touched.add(t);
  }

  get full(): boolean {
    return this.#items.length >= this.#batch || this.#bytes >= this.#batchBytes;
  }

  async commit(): Promise<void> {
    if (this.#items.length === 0 && this.#touched.size === 0) return;
    const items = this.#items;
    const touched = [...this.#touched];
    await this.#db.transaction((tx) => {
      const txs = new Map<RawSubDatabase, Transaction>();
      for (const t of touched) {
        const x = tx.for(t);
        x.createDefault(); // creates a missing sub-database (an empty one too) with its encodings
        if (!t.verified) {
          const n = t.writeTxn?.entry(t.name)?.tree.entries ?? 0;
          if (n > 0) throw notEmpty(t.name, n);
        }
        txs.set(t, x);
      }
      for (const it of items) txs.get(it.t)!.put(it.key, it.value);
    });
    for (const t of touched) t.verified = true;
    for (const it of items) this.perDb.set(it.t.name, (this.perDb.get(it.t.name) ?? 0) + 1);
    this.committed += items.length;
    this.#items = [];
    this.#bytes = 0;
    this.#touched = new Set(this.#current ? [this.#current] : []);
  }
}

export async function load(db: Database, input: NodeJS.ReadableStream, options?: LoadOptions): Promise<LoadReport> {
  const opts = methodOptions(options, "load", LOAD_OPTIONS);
  if (opts.format !== undefined && opts.format !== "jsonl" && opts.format !== "binary") {
    throw invalidArgument(`unknown dump format ${JSON.stringify(opts.format)} (jsonl or binary)`, { argument: "format", value: opts.format });
  }
  const batch = checkBatch(opts.batch, "batch", DEFAULT_BATCH);
  const batchBytes = checkBatch(opts.batchBytes, "batchBytes", DEFAULT_BATCH_BYTES);
  db.readSnapshot(); // CLOSED
  if (db.readOnly) throw new KeelError("READ_ONLY", `the database at ${db.path} was opened read-only`, { path: db.path });
  const src = new LoadSource(input, opts.signal);
  let batcher: Batcher | null = null;
  let parser: DumpParser | null = null;
  try {
    src.checkAborted();
    // 1. Format.
    const first = await src.peek(BINARY_MAGIC.length);
    const format: DumpFormat = opts.format ?? (first.equals(BINARY_MAGIC) ? "binary" : "jsonl");
    const limits = { maxKeySize: db.engine.limits.maxKeySize, maxValueSize: db.engine.maxValueSize };
    parser = format === "binary" ? new BinaryParser(src, limits) : new JsonlParser(src, limits);
    // 2. Header. 3. Targets.
    const header = await parser.header();
    const targets = prepareTargets(db, header);
    const total = totalEntries(header);
    batcher = new Batcher(db, batch, batchBytes);
    // 4. Body.
    for (;;) {
      const item = await parser.next();
      if (item.kind === "end") break;
      // A full batch is committed only once another item follows it, never on its last entry:
      // the dump's last batch (all of a dump that fits in one) waits for the trailer's checks.
      if (batcher.full) {
        src.checkAborted();
        await batcher.commit();
        opts.onProgress?.({ entries: batcher.committed, totalEntries: total });
      }
      if (item.kind === "entry") batcher.add(item.key, item.value);
      else batcher.startSection(targets[item.index]!);
    }
    // 5. The trailer checked out: the last batch.
    src.checkAborted();
    await batcher.commit();
    opts.onProgress?.({ entries: batcher.committed, totalEntries: total });
    const perDb: Record<string, number> = {};
    for (const d of header.dbs) setOwn(perDb, d.name, batcher.perDb.get(d.name) ?? 0);
    // A reproducible dump has no lsn, txn or createdAt: the report then has no such keys either.
    const report: LoadReport = { format, entries: batcher.committed, perDb };
    if (header.lsn !== undefined) report.lsn = header.lsn;
    if (header.txn !== undefined) report.txn = header.txn;
    if (header.createdAt !== undefined) report.createdAt = header.createdAt;
    return report;
  } catch (e) {
    await src.close();
    if (batcher && e instanceof KeelError) {
      // Say what stays committed (see the top of this file), and where the parser was.
      const where = e.details.line !== undefined || e.details.offset !== undefined ? {} : (parser?.where() ?? {});
      throw new KeelError(e.code, e.message, { ...where, ...e.details, committedEntries: batcher.committed, committedPerDb: recordOf(batcher.perDb) }, { cause: e });
    }
    throw e;
  }
}
