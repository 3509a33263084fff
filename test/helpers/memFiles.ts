/**
 * memFiles: whole-file reads and directory snapshots through a FileSystem (usually the in-memory
 * CrashFileSystem), for tests that require a source to be left byte for byte as it was.
 */
import assert from "node:assert/strict";
import type { FileSystem } from "../../src/io/FileSystem.js";
import { isRegistration } from "../../src/db/ReadOnlyReaders.js";

export function readAll(fs: FileSystem, path: string): Buffer {
  const f = fs.open(path, "r");
  try {
    const b = Buffer.alloc(f.size());
    f.read(b, 0, b.length, 0);
    return b;
  } finally {
    f.close();
  }
}

/**
 * Every file under `dir`, by relative path; `skip` leaves out a relative path (and below it).
 * Read-only opens' registrations (READER.*) are left out: they are how a read-only open tells
 * writers what it reads, not database content, and one whose removal failed is harmless.
 */
export function filesOf(fs: FileSystem, dir: string, skip: (rel: string) => boolean = () => false): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string, rel: string) => {
    for (const name of fs.list(d)) {
      const p = `${d}/${name}`;
      const r = `${rel}${name}`;
      if (skip(r) || isRegistration(name)) continue;
      if (fs.stat(p)!.isDirectory) walk(p, `${r}/`);
      else out.set(r, readAll(fs, p));
    }
  };
  walk(dir, "");
  return out;
}

/** The same files with the same bytes. */
export function assertUnchanged(before: Map<string, Buffer>, after: Map<string, Buffer>, what: string): void {
  assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort(), `${what}: same files`);
  for (const [k, v] of before) assert.ok(after.get(k)!.equals(v), `${what}: ${k} unchanged`);
}
