/**
 * ConsumerFloors: the tx-log consumer floors (db.setTxLogFloor) kept across a close, in
 * <dir>/txlog-floors.json: { "format": 1, "floors": { "<name>": <lsn>, ... } }.
 *
 * Invariant: log gc deletes a segment only under floors that are on disk. LogDurability writes this
 * file (atomically: temp file, fsync, rename, fsync of the directory) before a gc whenever a
 * consumer floor changed since the last write, and open reads it before the first gc. A crash
 * between setTxLogFloor and the next write leaves the older floor on disk: the log kept from it
 * is a superset of what the newer one needed, never less. A file that cannot be read or parsed
 * keeps all the log (floor 0), as a damaged snapshot.json does, and open warns; the next write
 * of the floors replaces it. A temp file left by a process killed while writing it is removed
 * by the next writable open with the log (it holds the LOCK: no other process is writing one).
 */
import { join } from "node:path";
import type { FileSystem } from "../io/FileSystem.js";
import { writeFileAtomic } from "../maintenance/Snapshots.js";

export const CONSUMER_FLOORS_FILE = "txlog-floors.json";
/** The prefix of a consumer's floor among the log's floors. */
export const CONSUMER = "consumer:";
/** The floor that stands for a damaged floors file: keep all the log. */
export const DAMAGED_FLOORS = "consumer-floors-unreadable";

/** The consumer floors on disk by name (without the prefix); "damaged" when the file is bad. */
export function readConsumerFloors(fs: FileSystem, dir: string): Map<string, number> | "damaged" {
  const path = join(dir, CONSUMER_FLOORS_FILE);
  if (!fs.stat(path)) return new Map();
  try {
    const json: unknown = JSON.parse(Buffer.from(fs.readFile(path)).toString("utf8"));
    const floors = (json as { format?: unknown; floors?: unknown }).floors;
    if ((json as { format?: unknown }).format !== 1 || typeof floors !== "object" || floors === null) return "damaged";
    const out = new Map<string, number>();
    for (const [name, lsn] of Object.entries(floors)) {
      if (!name || typeof lsn !== "number" || !Number.isSafeInteger(lsn) || lsn < 0) return "damaged";
      out.set(name, lsn);
    }
    return out;
  } catch {
    return "damaged";
  }
}

/** Remove the temp files of floors writes that a killed process left (writeFileAtomic's names). */
export function removeFloorsTemps(fs: FileSystem, dir: string): void {
  for (const name of fs.list(dir)) if (name.startsWith(`${CONSUMER_FLOORS_FILE}.tmp-`)) fs.remove(join(dir, name));
}

/** Write the consumer floors (by name, without the prefix); throws a KeelError IO/FULL. */
export function writeConsumerFloors(fs: FileSystem, dir: string, floors: Map<string, number>): void {
  const json = { format: 1, floors: Object.fromEntries([...floors].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) };
  writeFileAtomic(fs, join(dir, CONSUMER_FLOORS_FILE), Buffer.from(JSON.stringify(json, null, 2) + "\n"));
}
