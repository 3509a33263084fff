/**
 * dataFileMetas: creating an empty data file, and reading its two meta slots at open.
 *
 * Invariants:
 * - I7: a new data file appears whole or not at all: written under a temporary name, synced,
 *   renamed, the directory synced.
 * - The newest valid meta is the one to open (FORMAT.md section 3). A slot whose checksum fails
 *   but whose header claims a newer txn is reported as a fallback (the newest meta was lost), so
 *   the engine can skip the txn ids that meta's checkpoint used. A meta of another format version
 *   is VERSION, never CORRUPT; no valid meta at all is CORRUPT.
 */
import { join } from "node:path";
import { corrupt } from "../errors.js";
import type { FileHandle, FileSystem } from "../io/FileSystem.js";
import { META_FLAG_ONE_SYNC, encodeMeta, versionError, type Meta } from "../pager/Meta.js";
import { claimedTxn, readMetaSlots } from "../pager/MetaSlots.js";
import { formatVersionOfFile } from "../pager/formatVersionOf.js";
import { FORMAT_VERSION } from "../pager/PageLayout.js";

/** The newest-looking meta was damaged and the other slot was used. */
export interface MetaFallback {
  slot: 0 | 1;
  reason: string;
  claimedTxn: number;
}

/** Create `dir/name`: a data file with its first meta and an empty second slot. */
export function createDataFile(fs: FileSystem, dir: string, name: string, pageSize: number, flags: number): void {
  const path = join(dir, name);
  const tmp = path + ".creating";
  fs.remove(tmp);
  const f = fs.open(tmp, "createExclusive");
  try {
    const now = Date.now();
    const meta: Meta = {
      version: FORMAT_VERSION,
      pageSize,
      txn: 0,
      appliedLsn: 0,
      highWater: 2,
      catalogRoot: 0,
      catalogRootTxn: 0,
      catalogDepth: 0,
      catalogEntries: 0,
      catalogBranchPages: 0,
      catalogLeafPages: 0,
      catalogOverflowPages: 0,
      freelistPage: 0,
      freelistPages: 0,
      freelistTxn: 0,
      flags: flags & ~META_FLAG_ONE_SYNC,
      bootTag: 0,
      createdAt: now,
      checkpointAt: now,
    };
    f.write(encodeMeta(meta, 0), 0, pageSize, 0);
    f.write(Buffer.alloc(pageSize), 0, pageSize, pageSize);
    f.sync();
  } finally {
    f.close();
  }
  fs.rename(tmp, path);
  fs.syncDir(dir);
}

/** Both slots, which is newest, and whether a damaged newer one was passed over. */
export function readDataFileMetas(file: FileHandle, path: string): { metas: [Meta | null, Meta | null]; newest: 0 | 1; fallback: MetaFallback | undefined } {
  const slots = readMetaSlots(file);
  const [p0, p1] = slots.probes;
  for (const p of [p0, p1]) if (!p.ok && p.reason === "version") throw versionError(path, p.version, p.pageSize);
  const m0 = p0.ok ? p0.meta : null;
  const m1 = p1.ok ? p1.meta : null;
  if (!m0 && !m1) {
    // A meta of an older layout (version 0's little-endian magic) is no valid meta of this one,
    // but it is no damage either: VERSION, as for any other version (open() migrates it first).
    const older = formatVersionOfFile(file);
    if (older !== undefined && older !== FORMAT_VERSION) throw versionError(path, older);
    throw corrupt(`${path} has no valid meta page (page 0: ${p0.ok ? "ok" : p0.reason}, page 1: ${p1.ok ? "ok" : p1.reason})`, {
      file: path,
      page: 0,
      reason: "no-valid-meta",
    });
  }
  if (m0 && m1 && m0.pageSize !== m1.pageSize) {
    throw corrupt(`${path} meta pages disagree on the page size (${m0.pageSize} and ${m1.pageSize})`, { file: path, page: 1, reason: "meta-page-size" });
  }
  const newest: 0 | 1 = m0 && (!m1 || m0.txn >= m1.txn) ? 0 : 1;
  let fallback: MetaFallback | undefined;
  const bad: 0 | 1 = newest === 0 ? 1 : 0;
  const badProbe = bad === 0 ? p0 : p1;
  if (!badProbe.ok && (badProbe.reason === "checksum" || badProbe.reason === "counter-range")) {
    const claimed = claimedTxn(slots.raw[bad]);
    if (claimed > (newest === 0 ? m0 : m1)!.txn) fallback = { slot: bad, reason: badProbe.reason, claimedTxn: claimed };
  }
  return { metas: [m0, m1], newest, fallback };
}
