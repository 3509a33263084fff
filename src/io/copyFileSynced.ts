/**
 * copyFileSynced: copy one file's bytes to a new file through a FileSystem and fsync the copy.
 *
 * Invariants:
 * - The destination is created exclusively (never overwrites) and is synced before this returns;
 *   its directory entry is the caller's to sync.
 * - Both handles are closed whatever fails; when the copy itself failed, that error is the one
 *   thrown, not a later close error.
 * - With `sparse`, runs of zeros (a log segment's preallocated tail) are left as holes of the same
 *   size: they read back as the same zeros and take no disk space. Only for copies nobody writes
 *   to again (a backup): a hole is not preallocated space, so a later write into it may need
 *   blocks the disk no longer has.
 */
import type { FileHandle, FileSystem } from "./FileSystem.js";

const ZEROS = Buffer.alloc(1 << 20);

export interface CopyFileOptions {
  /** Leave runs of zeros as holes (see above). Default false. */
  sparse?: boolean;
  /** A scratch buffer to reuse across copies. */
  buf?: Buffer;
}

/** Returns the number of bytes copied (the source's size). */
export function copyFileSynced(fs: FileSystem, from: string, to: string, opts: CopyFileOptions = {}): number {
  const buf = opts.buf ?? Buffer.allocUnsafe(ZEROS.length);
  const sparse = opts.sparse === true;
  let src: FileHandle | null = null;
  let dst: FileHandle | null = null;
  try {
    src = fs.open(from, "r");
    dst = fs.open(to, "createExclusive");
    const size = src.size();
    if (sparse) dst.truncate(size);
    const chunk = Math.min(buf.length, ZEROS.length);
    for (let pos = 0; pos < size; ) {
      const n = src.read(buf, 0, Math.min(chunk, size - pos), pos);
      if (n <= 0) break;
      if (!sparse || buf.compare(ZEROS, 0, n, 0, n) !== 0) dst.write(buf, 0, n, pos);
      pos += n;
    }
    dst.sync();
    const d = dst;
    dst = null;
    d.close();
    const s = src;
    src = null;
    s.close();
    return size;
  } catch (e) {
    for (const h of [dst, src]) {
      try {
        h?.close();
      } catch {
        // the copy's own error is the one to report
      }
    }
    throw e;
  }
}
