/**
 * dumpFile: dump to a file and load from a file, through the database's FileSystem.
 *
 * dumpToFile keeps I7: the dump is written to `<path>.partial-<pid>-<n>` (partialPath), fsynced,
 * linked to `path` (fails EXISTS if that exists by then: publishOutput), the directory fsynced,
 * the partial name unlinked. On any failure or abort the partial file is removed, so `path`
 * either does not exist or holds a complete dump. `path` must not exist (EXISTS).
 */
import { Readable, Writable } from "node:stream";
import { dirname } from "node:path";
import { KeelError, invalidArgument, ioError } from "../errors.js";
import { pinnedPath } from "../io/NodeFileSystem.js";
import type { Database } from "../db/Database.js";
import type { FileHandle } from "../io/FileSystem.js";
import { DUMP_OPTIONS, dump, type DumpOptions, type DumpReport } from "./dump.js";
import { LOAD_OPTIONS, load, type LoadOptions, type LoadReport } from "./load.js";
import { partialPath, publishOutput, refuseExisting } from "./partialPath.js";
import { methodOptions, pathArgument } from "../db/options.js";

const CHUNK = 1 << 20;

/** A Writable over a FileHandle: each chunk is written synchronously at the next position. */
class FileWritable extends Writable {
  #fh: FileHandle;
  #pos = 0;

  constructor(fh: FileHandle) {
    super({ highWaterMark: CHUNK });
    this.#fh = fh;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (error?: Error | null) => void): void {
    try {
      this.#fh.write(chunk, 0, chunk.length, this.#pos);
      this.#pos += chunk.length;
      cb();
    } catch (e) {
      cb(ioError(e, "write", this.#fh.path));
    }
  }
}

function finish(w: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    w.once("error", reject);
    w.end(() => resolve());
  });
}

export async function dumpToFile(db: Database, path: string, options?: DumpOptions): Promise<DumpReport & { path: string }> {
  pathArgument(path, "path", "dumpToFile");
  const opts = methodOptions(options, "dumpToFile", DUMP_OPTIONS);
  if (path.endsWith("/") || /(^|\/)\.\.?$/.test(path)) {
    throw invalidArgument(`dumpToFile: ${path} names a directory: a dump is written to a file, not into a directory`, { argument: "path", method: "dumpToFile", path });
  }
  path = pinnedPath(db.fs, path); // as given checked above: resolving drops a trailing "/"
  const fs = db.fs;
  refuseExisting(fs, path, "a dump");
  const dir = dirname(path);
  const tmp = partialPath(path);
  let fh: FileHandle | null = null;
  try {
    try {
      fs.mkdir(dir);
      fs.remove(tmp);
      fh = fs.open(tmp, "createExclusive");
    } catch (e) {
      throw ioError(e, "open", tmp);
    }
    const out = new FileWritable(fh);
    const report = await dump(db, out, opts);
    await finish(out);
    try {
      fh.sync();
      fh.close();
      fh = null;
    } catch (e) {
      throw ioError(e, "sync", tmp);
    }
    // Linked, not renamed: a dump to the same path that finished first wins, the other gets EXISTS.
    publishOutput(fs, tmp, path, "a dump", "file");
    return { ...report, path };
  } catch (e) {
    try {
      fh?.close();
    } catch {
      // the dump's error is the one to report
    }
    try {
      fs.remove(tmp);
    } catch {
      // nothing more to do
    }
    throw e;
  }
}

export async function loadFromFile(db: Database, path: string, options?: LoadOptions): Promise<LoadReport> {
  path = pinnedPath(db.fs, pathArgument(path, "path", "loadFromFile"));
  const opts = methodOptions(options, "loadFromFile", LOAD_OPTIONS);
  const fs = db.fs;
  let fh: FileHandle;
  try {
    fh = fs.open(path, "r");
  } catch (e) {
    if ((e as NodeJS.ErrnoException)?.code === "ENOENT") throw new KeelError("NOT_FOUND", `${path} does not exist`, { path });
    throw ioError(e, "open", path);
  }
  const f = fh;
  async function* chunks(): AsyncGenerator<Buffer> {
    let pos = 0;
    for (;;) {
      // A fresh buffer per chunk: the loader keeps views into it until its batch commits.
      const buf = Buffer.allocUnsafe(CHUNK);
      let n: number;
      try {
        n = f.read(buf, 0, CHUNK, pos);
      } catch (e) {
        throw ioError(e, "read", path);
      }
      if (n <= 0) return;
      pos += n;
      yield buf.subarray(0, n);
    }
  }
  try {
    return await load(db, Readable.from(chunks(), { objectMode: false }), opts);
  } finally {
    try {
      f.close();
    } catch {
      // The file was only read: a failing close loses nothing, and the load's own outcome (its
      // commits are durable, or its error) is what the caller must hear, not this.
    }
  }
}
