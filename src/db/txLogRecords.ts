/**
 * txLogRecords: what db.openTxLog iterates: the committed log records of a range, with keys and
 * values decoded by the encodings their sub-database had when each record was written.
 *
 * - Two passes over the range, at the first next(): the encodings each sub-database had at
 *   `fromLsn` (from the creates and drops in the range, else those it had at the range's end:
 *   SchemaChanges finds a drop after it), then the records,
 *   following creates and drops as they come. Raw bytes for a sub-database that no longer exists,
 *   or with `raw`.
 * - Each record first calls `check` (an iteration running across close() ends with CLOSED).
 * - The mark of a wal: false session ends the iteration with NOT_FOUND (unloggedChanges.ts):
 *   the records after it do not follow from those before it.
 */
import type { KeyEncodingName, Snapshot, ValueEncodingName } from "../txn/Snapshot.js";
import type { HeldSegment, WriteAheadLog } from "../wal/index.js";
import type { KeelError } from "../errors.js";
import type { ReplayReport } from "./LogDurability.js";
import { decodeKey, type Key } from "./KeyCodec.js";
import { UNLOGGED_KIND, unloggedGap } from "./unloggedChanges.js";
import { decodeValue } from "./ValueCodec.js";
import { parseEncodings, type Encodings, type SchemaChanges } from "./SchemaChanges.js";

export interface TxLogOp {
  db: string;
  type: string;
  key: Key | Buffer | undefined;
  value: unknown;
  /**
   * The encodings `key` and `value` were decoded with: those the sub-database had when the record
   * was written. Absent when they stay raw bytes (raw: true, or encodings no longer known), so a
   * raw Buffer is never mistaken for a decoded `binary` one.
   */
  keyEncoding?: KeyEncodingName;
  encoding?: ValueEncodingName;
}

export interface TxLogRecord {
  lsn: number;
  txTime: number;
  kind: string;
  ops: TxLogOp[];
}

export function txLogRecords(wal: WriteAheadLog, head: Snapshot, schema: SchemaChanges, fromLsn: number, to: number, raw: boolean, check: () => void): Iterable<TxLogRecord> {
  return {
    *[Symbol.iterator]() {
      // Pass 1: the encodings each sub-database had at `fromLsn`. A sub-database first dropped
      // in the range had the encodings its drop records; one first created in the range did not
      // exist before; any other kept through the range the encodings it had at `to`: those of
      // its next drop after `to`, else its current ones (none known past a wal: false session).
      const enc = new Map<string, Encodings | undefined>();
      if (!raw) {
        const seen = new Set<string>();
        const named = new Set<string>();
        for (const rec of wal.readRecords(fromLsn, to)) {
          for (const op of rec.ops) {
            named.add(op.db);
            if (seen.has(op.db)) continue;
            if (op.type === "dropDB") enc.set(op.db, parseEncodings(op.value));
            else if (op.type === "createDB") enc.set(op.db, undefined);
            else continue;
            seen.add(op.db);
          }
        }
        for (const name of named) {
          if (seen.has(name)) continue;
          const next = schema.firstAfter(wal, to, name);
          const e = head.dbs.get(name);
          if (next === undefined) enc.set(name, e && { keyEncoding: e.keyEncoding, valueEncoding: e.valueEncoding });
          else enc.set(name, next.type === "dropDB" ? next.enc : undefined);
        }
      }
      // Pass 2: decode, following creates and drops as they come.
      for (const rec of wal.readRecords(fromLsn, to)) {
        check();
        if (rec.kind === UNLOGGED_KIND) throw unloggedGap(rec.lsn, "be read");
        const ops = rec.ops.map((op): TxLogOp => {
          const e = raw ? undefined : enc.get(op.db);
          if (op.type === "createDB" && !raw) enc.set(op.db, parseEncodings(op.value));
          if (op.type === "dropDB") enc.delete(op.db);
          const key = op.key && op.type !== "createDB" ? (e ? decodeKey(Buffer.from(op.key).latin1Slice(0, op.key.length), e.keyEncoding) : Buffer.from(op.key)) : undefined;
          const value = op.value && op.type === "put" ? (e ? decodeValue(Buffer.from(op.value), e.valueEncoding) : Buffer.from(op.value)) : undefined;
          return e ? { db: op.db, type: op.type, key, value, keyEncoding: e.keyEncoding, encoding: e.valueEncoding } : { db: op.db, type: op.type, key, value };
        });
        yield { lsn: rec.lsn, txTime: rec.txTime, kind: rec.kind, ops };
      }
    },
  };
}

/** db.txlogWatermarks(): where the log stands, and what keeps its segments. */
export interface TxLogWatermarks {
  /** Last LSN appended to the log (readers may not see it yet under strict). */
  lastCommittedLsn: number;
  /** Last LSN on stable storage. */
  lastDurableLsn: number;
  /** Last LSN written into data.keel by a checkpoint. */
  lastAppliedLsn: number;
  durability: string;
  activeSegment: string;
  segmentCount: number;
  logBytes: number;
  logDiskBytes: number;
  oldestLsn: number | undefined;
  pendingSyncCount: number;
  /** durable: committed - durable (the relaxed loss window); applied: durable - applied (replay work). */
  lag: { durable: number; applied: number };
  lastSyncAt: number | undefined;
  lastCheckpointAt: number;
  /** The floors that keep log segments, by name (checkpoint, snapshot, keep, consumer:NAME). */
  floors: Record<string, number>;
  /** Segments the last gc would have deleted but a floor kept (as gcTxlogSegments reports them). */
  heldByFloor: HeldSegment[];
  failed: KeelError | undefined;
  /** What open() replayed. */
  replay: ReplayReport;
}
