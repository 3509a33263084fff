/**
 * SchemaChanges: the log's sub-database creates and drops, by LSN, so that openTxLog can tell the
 * encodings a sub-database had at the end of a range when it is dropped or created again after it.
 *
 * Invariants:
 * - Once built, the list holds every createDB/dropDB op of the log from `#from` to the last
 *   committed record, in LSN order: built by one scan of the log the first time a range needs it,
 *   then kept up by `note`, which LogDurability.commit calls for every record it appends.
 * - A wal: false session's mark (UNLOGGED_KIND) is listed as a change of every sub-database: what
 *   that session changed is not in the log, so nothing after it is known.
 * - Only what openTxLog asks grows the scan: a range above `#from` reads nothing; a range below it
 *   reads the log from that range up to `#from` once (batches read in order cost the log once).
 * - Memory follows the log that is kept: changes below its oldest record are dropped (no range can
 *   start there any more).
 */
import type { WriteAheadLog } from "../wal/index.js";
import type { KeyEncodingName, ValueEncodingName } from "../txn/Snapshot.js";
import { UNLOGGED_KIND } from "./unloggedChanges.js";

export type Encodings = { keyEncoding: KeyEncodingName; valueEncoding: ValueEncodingName };

export interface SchemaChange {
  lsn: number;
  /** The sub-database, or null for a wal: false session's mark (any of them may have changed). */
  db: string | null;
  type: "createDB" | "dropDB" | "unlogged";
  /** createDB: the new encodings; dropDB: those it dropped. */
  enc: Encodings | undefined;
}

interface OpLike {
  type: string;
  db: string;
  /** In memory an op's bytes may be a latin1 string (WriteTxn); read back from the log, a buffer. */
  value?: Uint8Array | string | undefined;
}

export function parseEncodings(v: Uint8Array | string | undefined): Encodings | undefined {
  try {
    const bytes = typeof v === "string" ? Buffer.from(v, "latin1") : Buffer.from(v ?? []);
    const e = JSON.parse(bytes.toString("utf8")) as Encodings;
    return e.keyEncoding && e.valueEncoding ? e : undefined;
  } catch {
    return undefined;
  }
}

function changesOf(lsn: number, kind: string, ops: readonly OpLike[], out: SchemaChange[]): void {
  if (kind === UNLOGGED_KIND) out.push({ lsn, db: null, type: "unlogged", enc: undefined });
  for (const op of ops) {
    if (op.type === "createDB" || op.type === "dropDB") out.push({ lsn, db: op.db, type: op.type, enc: parseEncodings(op.value) });
  }
}

export class SchemaChanges {
  /** Every change with an LSN at or above this is listed (Infinity: nothing built yet). */
  #from = Infinity;
  #list: SchemaChange[] = [];

  /** A record was appended (LogDurability.commit): list its changes once the list is built. */
  note(lsn: number, kind: string, ops: readonly OpLike[]): void {
    if (this.#from !== Infinity) changesOf(lsn, kind, ops, this.#list);
  }

  /**
   * The first change of `db` (or a wal: false mark) with an LSN above `lsn`, or undefined when
   * there is none up to the last committed record.
   */
  firstAfter(wal: WriteAheadLog, lsn: number, db: string): SchemaChange | undefined {
    this.#cover(wal, lsn + 1);
    const oldest = wal.segments()[0]?.firstLsn ?? 0;
    let gone = 0;
    while (gone < this.#list.length && this.#list[gone]!.lsn < oldest) gone++;
    if (gone > 0) this.#list.splice(0, gone);
    const list = this.#list;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (list[mid]!.lsn <= lsn) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < list.length; i++) if (list[i]!.db === db || list[i]!.db === null) return list[i];
    return undefined;
  }

  /** List the changes from `from` on (`from` is at least the oldest LSN the log still holds). */
  #cover(wal: WriteAheadLog, from: number): void {
    if (from >= this.#from) return;
    const upTo = this.#from === Infinity ? undefined : this.#from - 1;
    const found: SchemaChange[] = [];
    for (const rec of wal.readRecords(from, upTo)) changesOf(rec.lsn, rec.kind, rec.ops, found);
    this.#list = found.concat(this.#list);
    this.#from = from;
  }
}
