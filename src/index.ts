/**
 * keeldb: an embedded, durable, transactional key-value database.
 * See README.md for the API and the durability trade-off of every option.
 */
export { open, openSync } from "./db/open.js";
export type { OpenOptions, DurabilityProfile } from "./db/options.js";
export { Database, type Stats, type CommitReport, type SubDatabaseOptions } from "./db/Database.js";
export { SubDatabase, type RangeOptions, type Entry, type BatchOp } from "./db/SubDatabase.js";
export { Transaction } from "./db/Transaction.js";
export { RangeIterable } from "./db/RangeIterable.js";
export type { Key } from "./db/KeyCodec.js";
export { KeelError, isKeelError, type KeelErrorCode } from "./errors.js";
export type { FileSystem, FileHandle, OpenMode, FileStat } from "./io/FileSystem.js";
export { NodeFileSystem } from "./io/NodeFileSystem.js";
export type { KeyEncodingName, ValueEncodingName } from "./txn/Snapshot.js";
export { restore, type RestoreOptions, type RestoreResult } from "./maintenance/restore.js";
export type { SnapshotInfo } from "./maintenance/Snapshots.js";
export type { CopyResult } from "./maintenance/copyDatabase.js";
export type { TxLogWatermarks, TxLogRecord, TxLogOp } from "./db/Database.js";
export type { HeldSegment } from "./wal/index.js";
export { verify, type VerifyReport, type VerifyProblem } from "./maintenance/verify.js";
export { salvage, type SalvageReport } from "./maintenance/salvage.js";
export { dump, type DumpReport, type DumpOptions } from "./maintenance/dump.js";
export { load, type LoadReport, type LoadOptions } from "./maintenance/load.js";
export { dumpToFile, loadFromFile } from "./maintenance/dumpFile.js";
export { compactTo, type CompactToResult } from "./maintenance/compactTo.js";
export type { BackupPagesResult } from "./maintenance/backupPages.js";
