/**
 * v0ToV1: the migration from data-file format version 0 to version 1.
 *
 * Format version 0 is the layout KeelDB wrote before the "big-endian magic" change: byte for byte
 * the layout of version 1 (docs/FORMAT.md), except that the meta magic 0x4B45454C at offset 32 of
 * the two meta pages is stored little-endian (the bytes read "LEEK" in a hex dump). The u16 at
 * offset 36 of such a meta holds 0 or 1 (the code of that time wrote its FORMAT_VERSION there):
 * the magic's byte order, not that field, is what marks version 0. Every other page is identical in
 * both versions, so the migration rewrites the two meta pages only: big-endian magic, version 1,
 * checksum resealed. A meta slot that is not a valid version-0 meta (the zero slot of a new file, a
 * torn meta) is copied as it is: it was not chosen at open before, and is not after.
 *
 * What it migrates, in order (each file is replaced atomically: a converted copy under a temp name,
 * fdatasync, rename over the original, fsync of its directory: I7):
 *   1. Each snapshot (`snapshots/current`, `snapshots/previous`) whose data file is version 0 and
 *      matches its snapshot.json: convert the data file into a temp file, then rewrite snapshot.json
 *      with the new CRC-32 (atomically), then rename the temp file over the data file. A crash in
 *      between leaves snapshot.json naming the converted bytes while the data file is still the old
 *      one; since the database's own data.keel is migrated last (step 2), the next open finds
 *      version 0 again and runs this migration again, which converts the same bytes, finds that CRC
 *      already recorded, and finishes. A snapshot whose data file does not match its snapshot.json
 *      (damaged) is left untouched: a migration must not launder damage into a valid checksum.
 *   2. `data.keel` itself.
 * Running it again on a database it already migrated changes nothing.
 */
import { join } from "node:path";
import { KeelError, corrupt, ioError } from "../../errors.js";
import type { FileSystem } from "../../io/FileSystem.js";
import { MAGIC, MAX_PAGE_SIZE, MIN_PAGE_SIZE, PageType, OFF_CHECKSUM, isValidPageSize } from "../../pager/PageLayout.js";
import { pageChecksum, readHeader, seal } from "../../pager/PageCodec.js";
import { probeMeta } from "../../pager/Meta.js";
import { crc32 } from "../../util/crc32.js";
import { SNAPSHOTS_DIR, SNAPSHOT_META, writeFileAtomic } from "../../maintenance/Snapshots.js";
import { DATA_FILE } from "../../txn/Engine.js";
import type { Migration } from "./index.js";

/** The suffix of the converted copy while a data file is being migrated. */
export const MIGRATING_SUFFIX = ".migrating";

/**
 * Whether `page` (one whole page, slot 0 or 1) is a valid version-0 meta: little-endian magic,
 * valid page size, checksum, type meta, page number = slot, version field 0 or 1. Never throws.
 */
export function isV0Meta(page: Buffer, slot: 0 | 1): boolean {
  if (page.length < 128 || page.readUInt32LE(32) !== MAGIC) return false;
  const pageSize = page.readUInt32LE(40);
  if (!isValidPageSize(pageSize) || page.length !== pageSize) return false;
  if (page.readUInt32LE(OFF_CHECKSUM) !== pageChecksum(page)) return false;
  if (page.readUInt16LE(36) > 1) return false;
  const h = readHeader(page);
  return h.type === PageType.Meta && h.pageNo === slot;
}

/** Page size of a file whose meta pages start `head`, judged from a valid version-0 meta; 0 if none. */
export function v0PageSize(head: Buffer): number {
  if (head.length >= 128 && head.readUInt32LE(32) === MAGIC) {
    const ps = head.readUInt32LE(40);
    if (isValidPageSize(ps) && head.length >= ps && isV0Meta(head.subarray(0, ps), 0)) return ps;
  }
  for (let ps = MIN_PAGE_SIZE; ps <= MAX_PAGE_SIZE; ps *= 2) {
    if (head.length >= 2 * ps && isV0Meta(head.subarray(ps, 2 * ps), 1)) return ps;
  }
  return 0;
}

/** Convert one version-0 meta page to version 1 in place. */
function convertMeta(page: Buffer, slot: 0 | 1, file: string): void {
  page.writeUInt32BE(MAGIC, 32);
  page.writeUInt16LE(1, 36);
  seal(page);
  const p = probeMeta(page, slot);
  if (!p.ok) throw new KeelError("INTERNAL", `migrating ${file}: the converted meta of slot ${slot} does not validate (${p.reason})`, { file, slot, reason: p.reason });
}

export interface ConvertResult {
  /** Whether the file held a version-0 meta (a temp file was written) or not (nothing written). */
  converted: boolean;
  /** CRC-32 of the original bytes and of the converted ones (equal when not converted). */
  crcBefore: number;
  crcAfter: number;
  bytes: number;
}

/**
 * Stream `path` into `tmp` with its version-0 meta pages converted, fdatasync `tmp`, and return both
 * CRC-32s. Writes nothing when the file holds no valid version-0 meta.
 */
export function convertDataFile(fs: FileSystem, path: string, tmp: string): ConvertResult {
  const src = fs.open(path, "r");
  try {
    const size = src.size();
    const head = Buffer.alloc(Math.min(size, 2 * MAX_PAGE_SIZE));
    src.read(head, 0, head.length, 0);
    const ps = v0PageSize(head);
    if (!ps) {
      const crc = crcOfHandle(src, size);
      return { converted: false, crcBefore: crc, crcAfter: crc, bytes: size };
    }
    fs.remove(tmp);
    const dst = fs.open(tmp, "createExclusive");
    try {
      const buf = Buffer.allocUnsafe(Math.max(1 << 20, 2 * ps));
      let crcBefore = 0;
      let crcAfter = 0;
      for (let pos = 0; pos < size; ) {
        const n = src.read(buf, 0, Math.min(buf.length, size - pos), pos);
        if (n <= 0) throw corrupt(`${path} ended early while being migrated`, { file: path, reason: "short-read" });
        const chunk = buf.subarray(0, n);
        crcBefore = crc32(chunk, crcBefore);
        if (pos === 0) {
          for (const slot of [0, 1] as const) {
            if (n >= (slot + 1) * ps) {
              const page = chunk.subarray(slot * ps, (slot + 1) * ps);
              if (isV0Meta(page, slot)) convertMeta(page, slot, path);
            }
          }
        }
        crcAfter = crc32(chunk, crcAfter);
        dst.write(chunk, 0, n, pos);
        pos += n;
      }
      dst.sync();
      return { converted: true, crcBefore, crcAfter, bytes: size };
    } finally {
      dst.close();
    }
  } finally {
    src.close();
  }
}

function crcOfHandle(f: ReturnType<FileSystem["open"]>, size: number): number {
  const buf = Buffer.allocUnsafe(1 << 20);
  let crc = 0;
  for (let pos = 0; pos < size; ) {
    const n = f.read(buf, 0, Math.min(buf.length, size - pos), pos);
    if (n <= 0) break;
    crc = crc32(buf.subarray(0, n), crc);
    pos += n;
  }
  return crc;
}

/** Step 1 for one snapshot directory. */
function migrateSnapshot(fs: FileSystem, snapDir: string): void {
  const data = join(snapDir, DATA_FILE);
  const metaPath = join(snapDir, SNAPSHOT_META);
  if (!fs.stat(data) || !fs.stat(metaPath)) return; // not a finished snapshot: never listed
  const text = Buffer.from(fs.readFile(metaPath)).toString("utf8"); // an I/O error stops the migration
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return; // damaged snapshot.json: listSnapshots reports it; leave it as it is
  }
  if (json === null || typeof json !== "object") return;
  const tmp = data + MIGRATING_SUFFIX;
  const r = convertDataFile(fs, data, tmp);
  if (!r.converted) return;
  const recorded = json.dataCrc32;
  if (recorded !== r.crcBefore && recorded !== r.crcAfter) {
    fs.remove(tmp); // damaged: keep the evidence as it is
    return;
  }
  if (recorded !== r.crcAfter || json.bytes !== r.bytes) {
    json.dataCrc32 = r.crcAfter;
    json.bytes = r.bytes;
    writeFileAtomic(fs, metaPath, Buffer.from(JSON.stringify(json, null, 2) + "\n"));
  }
  fs.rename(tmp, data);
  fs.syncDir(snapDir);
}

function migrate(fs: FileSystem, dir: string): void {
  const path = join(dir, DATA_FILE);
  try {
    const snaps = join(dir, SNAPSHOTS_DIR);
    if (fs.stat(snaps)?.isDirectory) {
      for (const name of ["previous", "current"]) {
        const d = join(snaps, name);
        if (fs.stat(d)?.isDirectory) migrateSnapshot(fs, d);
      }
    }
    const tmp = path + MIGRATING_SUFFIX;
    const r = convertDataFile(fs, path, tmp);
    if (!r.converted) return;
    fs.rename(tmp, path);
    fs.syncDir(dir);
  } catch (e) {
    // Best effort: a converted copy left behind is only clutter (the next run replaces it).
    for (const t of [path, join(dir, SNAPSHOTS_DIR, "previous", DATA_FILE), join(dir, SNAPSHOTS_DIR, "current", DATA_FILE)]) {
      try {
        fs.remove(t + MIGRATING_SUFFIX);
      } catch {
        // report the migration error
      }
    }
    throw ioError(e, "migrate", path);
  }
}

export const v0ToV1: Migration = {
  from: 0,
  to: 1,
  describe: "meta magic stored big-endian (bytes read \"KEEL\"); meta pages rewritten with version 1, checksums resealed",
  migrate,
};
