/**
 * metaRewrite: the migrations whose format change lives in the meta pages only (v0ToV1, v1ToV2).
 * Every other page is read the same way before and after, so such a migration rewrites the meta
 * pages of each data file and copies the rest as it is. A MetaConverter says which meta pages it
 * converts and how.
 *
 * What `rewriteMetas` migrates, in order (each file is replaced atomically: a converted copy under a
 * temp name, fdatasync, rename over the original, fsync of its directory: I7):
 *   1. Each snapshot (`snapshots/current`, `snapshots/previous`) whose data file holds a meta the
 *      converter matches and matches its snapshot.json: convert the data file into a temp file, then
 *      rewrite snapshot.json with the new CRC-32 (atomically), then rename the temp file over the
 *      data file. A crash in between leaves snapshot.json naming the converted bytes while the data
 *      file is still the old one; since the database's own data.keel is migrated last (step 2), the
 *      next open finds the old version again and runs the migration again, which converts the same
 *      bytes, finds that CRC already recorded, and finishes. A snapshot whose data file does not
 *      match its snapshot.json (damaged) is left untouched: a migration must not launder damage into
 *      a valid checksum.
 *   2. `data.keel` itself.
 * A meta slot the converter does not match (the zero slot of a new file, a torn meta) is copied as
 * it is: it was not chosen at open before, and is not after. Running a migration again on a
 * database it already migrated changes nothing.
 */
import { join } from "node:path";
import { KeelError, corrupt, ioError } from "../../errors.js";
import type { FileSystem } from "../../io/FileSystem.js";
import { crc32 } from "../../util/crc32.js";
import { MAGIC, MAX_PAGE_SIZE, MIN_PAGE_SIZE, OFF_CHECKSUM, PageType, isValidPageSize } from "../../pager/PageLayout.js";
import { pageChecksum, readHeader } from "../../pager/PageCodec.js";
import { SNAPSHOTS_DIR, SNAPSHOT_META, fileCrc32, writeFileAtomic } from "../../maintenance/Snapshots.js";
import { DATA_FILE } from "../../txn/Engine.js";

/** The suffix of the converted copy while a data file is being migrated. */
export const MIGRATING_SUFFIX = ".migrating";

export interface MetaConverter {
  /** Whether `page` (one whole page of slot 0 or 1) is a meta to convert. Never throws. */
  matches(page: Buffer, slot: 0 | 1): boolean;
  /** Convert a matched meta in place (resealed), or throw INTERNAL if the result does not validate. */
  convert(page: Buffer, slot: 0 | 1, file: string): void;
}

/**
 * Whether `page` is a valid meta of the current layout (big-endian magic, page size, checksum,
 * type meta, page number = slot) whose version field is `version`. Never throws.
 */
export function isMetaOfVersion(page: Buffer, slot: 0 | 1, version: number): boolean {
  if (page.length < 128 || page.readUInt32BE(32) !== MAGIC || page.readUInt16LE(36) !== version) return false;
  const pageSize = page.readUInt32LE(40);
  if (!isValidPageSize(pageSize) || page.length !== pageSize) return false;
  if (page.readUInt32LE(OFF_CHECKSUM) !== pageChecksum(page)) return false;
  const h = readHeader(page);
  return h.type === PageType.Meta && h.pageNo === slot;
}

/** INTERNAL unless a converted meta is a valid meta of `version`. */
export function checkConverted(page: Buffer, slot: 0 | 1, version: number, file: string): void {
  if (!isMetaOfVersion(page, slot, version)) {
    throw new KeelError("INTERNAL", `migrating ${file}: the converted meta of slot ${slot} is not a valid version-${version} meta`, { file, slot, version });
  }
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
 * Stream `path` into `tmp` with the meta pages `c` recognises converted, fdatasync `tmp`, and return
 * both CRC-32s. Writes nothing when the file holds no meta that `c` converts.
 */
export function convertDataFile(fs: FileSystem, path: string, tmp: string, c: MetaConverter): ConvertResult {
  const src = fs.open(path, "r");
  try {
    const size = src.size();
    const head = Buffer.alloc(Math.min(size, 2 * MAX_PAGE_SIZE));
    src.read(head, 0, head.length, 0);
    const ps = pageSizeOf(head, c);
    if (!ps) {
      const { crc } = fileCrc32(fs, path);
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
              if (c.matches(page, slot)) c.convert(page, slot, path);
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

/** Page size of a file whose first bytes are `head`, judged from a meta `c` matches (slot 0's page size field, else every size for slot 1); 0 if none. */
function pageSizeOf(head: Buffer, c: MetaConverter): number {
  if (head.length >= 128) {
    const ps = head.readUInt32LE(40);
    if (isValidPageSize(ps) && head.length >= ps && c.matches(head.subarray(0, ps), 0)) return ps;
  }
  for (let ps = MIN_PAGE_SIZE; ps <= MAX_PAGE_SIZE; ps *= 2) {
    if (head.length >= 2 * ps && c.matches(head.subarray(ps, 2 * ps), 1)) return ps;
  }
  return 0;
}

/** Step 1 for one snapshot directory. */
function migrateSnapshot(fs: FileSystem, snapDir: string, c: MetaConverter): void {
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
  const r = convertDataFile(fs, data, tmp, c);
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

/** Steps 1 and 2 of the module comment, with the meta conversion `c`. */
export function rewriteMetas(fs: FileSystem, dir: string, c: MetaConverter): void {
  const path = join(dir, DATA_FILE);
  try {
    const snaps = join(dir, SNAPSHOTS_DIR);
    if (fs.stat(snaps)?.isDirectory) {
      for (const name of ["previous", "current"]) {
        const d = join(snaps, name);
        if (fs.stat(d)?.isDirectory) migrateSnapshot(fs, d, c);
      }
    }
    const tmp = path + MIGRATING_SUFFIX;
    const r = convertDataFile(fs, path, tmp, c);
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

