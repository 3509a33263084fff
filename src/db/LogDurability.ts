/**
 * Placeholder until the write-ahead log is wired in: wal: true falls back to checkpoint mode.
 */
import type { FileSystem } from "../io/FileSystem.js";
import type { Engine } from "../txn/Engine.js";
import { CheckpointDurability } from "./CheckpointDurability.js";
import type { OpenOptions } from "./options.js";

export function openLogDurability(_fs: FileSystem, _dir: string, engine: Engine, _o: OpenOptions): CheckpointDurability {
  return new CheckpointDurability(engine);
}
