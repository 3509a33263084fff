/**
 * The wal/ layer's public surface, for the db layer.
 *
 * Invariants kept: this file only re-exports; each invariant lives in the file that keeps it.
 */
export { ReadOnlyLog } from "./ReadOnlyLog.js";
export { WriteAheadLog, READER_FLOOR, type WalWatermarks, type WalRecoverySummary, type GcResult, type RotateResult } from "./WriteAheadLog.js";
export { type WalOptions, WAL_DEFAULTS } from "./WalOptions.js";
export { type DurabilityProfile } from "./GroupCommit.js";
export { type LogRecord, type LogOp, type StoredLogOp, type LogOpType, type NewLogRecord, encodeLogRecord, decodeLogRecord } from "./LogRecord.js";
export { type SegmentInfo } from "./LogSegment.js";
export { type GcOptions, type HeldSegment } from "./WalRetention.js";
export { type TornTailRepair } from "./WalRecovery.js";
export { WAL_PHASES, type WalPhase } from "./WalPhases.js";
export { segmentName, parseSegmentName } from "./SegmentName.js";
