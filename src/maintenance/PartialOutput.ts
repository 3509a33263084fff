/**
 * PartialOutput: the atomic-output shell of a backup or a compacted copy (I7).
 *
 * The sequence, in order:
 *   1. `dest` must not exist (EXISTS). Create the parent, then `<dest>.partial-<pid>-<n>/`, a name
 *      no other job of this process uses (partialPath; a stale one from a crashed process that had
 *      this pid is removed first), and `data.keel` in it (createExclusive).
 *   2. The caller writes data.keel through `file` (and may close and reopen it through `path`).
 *   3. `commit()`: fdatasync data.keel (off the event loop: syncAsync), close it, fsync the partial
 *      directory, check again that `dest` does not exist (EXISTS: a concurrent job got there
 *      first), rename it to `dest`, fsync the parent. If anything after the rename fails, `dest`
 *      is removed again: a backup not known to be durable is not left behind.
 *   4. `discard()` (on any failure or abort): close and remove the partial directory.
 *
 * Invariant: nothing appears under `dest` until the copy is complete and durable; after a failure
 * neither `dest` nor the partial directory exists (best effort for the removal itself).
 */
import { dirname, join } from "node:path";
import { ioError } from "../errors.js";
import type { FileHandle, FileSystem } from "../io/FileSystem.js";
import { DATA_FILE } from "../txn/Engine.js";
import { destPath, partialPath, publishOutput, refuseExisting } from "./partialPath.js";

export class PartialOutput {
  readonly fs: FileSystem;
  readonly dest: string;
  /** The job, as the EXISTS message names it ("a backup"). */
  readonly what: string;
  readonly parent: string;
  readonly dir: string;
  readonly path: string;
  file: FileHandle | null = null;

  private constructor(fs: FileSystem, dest: string, what: string) {
    this.fs = fs;
    this.dest = destPath(dest);
    this.what = what;
    this.parent = dirname(this.dest);
    this.dir = partialPath(dest);
    this.path = join(this.dir, DATA_FILE);
  }

  /** Step 1. `createFile: false` leaves data.keel to the caller (an Engine creates its own). */
  static create(fs: FileSystem, dest: string, what: string, createFile = true): PartialOutput {
    refuseExisting(fs, destPath(dest), what);
    const out = new PartialOutput(fs, dest, what);
    try {
      fs.mkdir(out.parent);
      fs.removeDir(out.dir);
      fs.mkdir(out.dir);
      if (createFile) out.file = fs.open(out.path, "createExclusive");
    } catch (e) {
      out.discard();
      throw ioError(e, "create", out.dir);
    }
    return out;
  }

  /** The open data.keel (reopened read-write if the caller closed it). */
  handle(): FileHandle {
    if (!this.file) {
      try {
        this.file = this.fs.open(this.path, "rw");
      } catch (e) {
        throw ioError(e, "open", this.path);
      }
    }
    return this.file;
  }

  /** Step 3, up to the rename: data.keel durable (one fdatasync, off the event loop). */
  async syncData(): Promise<void> {
    const f = this.handle();
    try {
      await f.syncAsync();
    } catch (e) {
      throw ioError(e, "fdatasync", this.path);
    }
    this.file = null;
    try {
      f.close();
    } catch (e) {
      throw ioError(e, "close", this.path);
    }
  }

  /** Step 3, the rest: rename into place, durable. */
  publish(): void {
    const fs = this.fs;
    try {
      fs.syncDir(this.dir);
    } catch (e) {
      throw ioError(e, "fsync", this.dir);
    }
    publishOutput(fs, this.dir, this.dest, this.what, "dir");
  }

  /** Step 4. Never throws: the caller's error is the one to report. */
  discard(): void {
    try {
      this.file?.close();
    } catch {
      // the job's error is the one to report
    }
    this.file = null;
    try {
      this.fs.removeDir(this.dir);
    } catch {
      // the job's error is the one to report
    }
  }
}
