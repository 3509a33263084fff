/**
 * Snapshot: one committed state of every sub-database. Immutable once made: readers may hold it
 * for as long as they like; writers build the next one by copying what they change.
 */
import type { TreeState } from "../btree/TreeState.js";

export type KeyEncodingName = "ordered-binary" | "binary" | "string";
export type ValueEncodingName = "msgpack" | "json" | "string" | "binary";

export interface DbEntry {
  readonly name: string;
  readonly keyEncoding: KeyEncodingName;
  readonly valueEncoding: ValueEncodingName;
  readonly tree: TreeState;
}

export interface Snapshot {
  /** Id of the last transaction this state includes. */
  readonly txn: number;
  /** LSN of the last log record this state includes (0 without a log). */
  readonly lsn: number;
  readonly dbs: ReadonlyMap<string, DbEntry>;
}

/** The name of the default (unnamed) database in the catalog. */
export const DEFAULT_DB = "";
