/**
 * txLogRecords: what db.openTxLog iterates: the committed log records of a range, with keys and
 * values decoded by the encodings their sub-database had when each record was written.
 *
 * - Two passes over the range, at the first next(): the encodings each sub-database had at
 *   `fromLsn` (from the creates and drops in the range, else its current ones), then the records,
 *   following creates and drops as they come. Raw bytes for a sub-database that no longer exists,
 *   or with `raw`.
 * - Each record first calls `check` (an iteration running across close() ends with CLOSED).
 * - The mark of a wal: false session ends the iteration with NOT_FOUND (unloggedChanges.ts):
 *   the records after it do not follow from those before it.
 */
import type { KeyEncodingName, Snapshot, ValueEncodingName } from "../txn/Snapshot.js";
import type { WriteAheadLog } from "../wal/index.js";
import { decodeKey, type Key } from "./KeyCodec.js";
import { UNLOGGED_KIND, unloggedGap } from "./unloggedChanges.js";
import { decodeValue } from "./ValueCodec.js";

export interface TxLogRecord {
  lsn: number;
  txTime: number;
  kind: string;
  ops: Array<{ db: string; type: string; key: Key | Buffer | undefined; value: unknown }>;
}

type Enc = { keyEncoding: KeyEncodingName; valueEncoding: ValueEncodingName };

function parseEnc(v: Uint8Array | undefined): Enc | undefined {
  try {
    const e = JSON.parse(Buffer.from(v ?? []).toString("utf8")) as Enc;
    return e.keyEncoding && e.valueEncoding ? e : undefined;
  } catch {
    return undefined;
  }
}

export function txLogRecords(wal: WriteAheadLog, head: Snapshot, fromLsn: number, to: number, raw: boolean, check: () => void): Iterable<TxLogRecord> {
  return {
    *[Symbol.iterator]() {
      // Pass 1: the encodings each sub-database had at `fromLsn`. A sub-database first dropped
      // in the range had the encodings its drop records; one first created in the range did not
      // exist before; any other kept its current encodings throughout.
      const enc = new Map<string, Enc | undefined>();
      const seen = new Set<string>();
      if (!raw) {
        for (const rec of wal.readRecords(fromLsn, to)) {
          for (const op of rec.ops) {
            if (seen.has(op.db)) continue;
            if (op.type === "dropDB") enc.set(op.db, parseEnc(op.value));
            else if (op.type === "createDB") enc.set(op.db, undefined);
            else continue;
            seen.add(op.db);
          }
        }
        for (const [name, e] of head.dbs) if (!seen.has(name)) enc.set(name, { keyEncoding: e.keyEncoding, valueEncoding: e.valueEncoding });
      }
      // Pass 2: decode, following creates and drops as they come.
      for (const rec of wal.readRecords(fromLsn, to)) {
        check();
        if (rec.kind === UNLOGGED_KIND) throw unloggedGap(rec.lsn, "be read");
        const ops = rec.ops.map((op) => {
          const e = raw ? undefined : enc.get(op.db);
          if (op.type === "createDB" && !raw) enc.set(op.db, parseEnc(op.value));
          if (op.type === "dropDB") enc.delete(op.db);
          const key = op.key && op.type !== "createDB" ? (e ? decodeKey(Buffer.from(op.key).latin1Slice(0, op.key.length), e.keyEncoding) : Buffer.from(op.key)) : undefined;
          const value = op.value && op.type === "put" ? (e ? decodeValue(Buffer.from(op.value), e.valueEncoding) : Buffer.from(op.value)) : undefined;
          return { db: op.db, type: op.type, key, value };
        });
        yield { lsn: rec.lsn, txTime: rec.txTime, kind: rec.kind, ops };
      }
    },
  };
}
