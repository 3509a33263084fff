/**
 * instrumentation: node:diagnostics_channel channels the engine publishes timings on, for
 * monitoring (the server's /metrics subscribes). Publishing costs one property read when
 * nobody subscribes; subscribers run synchronously and must not throw or block.
 *
 * Invariant: a message is published only after the measured step finished (successfully or
 * not: `ok` says which); nothing about the engine's behaviour depends on whether anyone listens.
 */
import { channel } from "node:diagnostics_channel";

/** A log fdatasync: { ms, ok, background } (background: relaxed's off-loop sync). */
export interface WalSyncMessage {
  ms: number;
  ok: boolean;
  background: boolean;
}
/** A checkpoint of data.keel: { ms, bytes }. */
export interface CheckpointMessage {
  ms: number;
  bytes: number;
}
/** A write group taken off the queue: { items, waitMs } (waitMs: how long its first write queued). */
export interface WriteGroupMessage {
  items: number;
  waitMs: number;
}

/**
 * A write group settled: { writers, ok }. writers: the calls it made durable (or rejected, !ok):
 * each put, remove and transaction() call, and each callback of a shared GroupItem (the server's
 * batched commands); maintenance tasks do not count.
 */
export interface WriteGroupDoneMessage {
  writers: number;
  ok: boolean;
}

export const walSyncChannel = channel("keeldb:wal-sync");
export const checkpointChannel = channel("keeldb:checkpoint");
export const writeGroupChannel = channel("keeldb:write-group");
export const writeGroupDoneChannel = channel("keeldb:write-group-done");
