// The FileSystem contract, run against every backend so that the simulated ones cannot drift from
// node:fs in the ways the engine relies on (open modes, short reads, errno codes, sorted listings).
import assert from "node:assert/strict";
import { test } from "node:test";
import type { FileSystem } from "../../src/io/FileSystem.js";

export interface ContractTarget {
  fs: FileSystem;
  /** A directory that exists and is empty. */
  root: string;
  cleanup?: () => void;
}

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

function errCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as NodeJS.ErrnoException).code;
  }
  return undefined;
}

export function fileSystemContract(name: string, make: () => ContractTarget): void {
  const withFs = (title: string, body: (fs: FileSystem, root: string) => void | Promise<void>): void => {
    test(`${name}: ${title}`, async () => {
      const t = make();
      try {
        await body(t.fs, t.root);
      } finally {
        t.cleanup?.();
      }
    });
  };

  withFs("open modes: r/rw need the file, create keeps content, createExclusive refuses existing", (fs, root) => {
    const p = `${root}/f`;
    assert.equal(errCode(() => fs.open(p, "r")), "ENOENT");
    assert.equal(errCode(() => fs.open(p, "rw")), "ENOENT");
    const h = fs.open(p, "create");
    h.write(bytes("hello world"), 0, 11, 0);
    h.close();
    assert.equal(errCode(() => fs.open(p, "createExclusive")), "EEXIST");
    const h2 = fs.open(p, "create");
    assert.equal(h2.size(), 11, "create must not truncate an existing file");
    h2.write(bytes("J"), 0, 1, 0); // not an append: position 0 is overwritten
    h2.close();
    assert.equal(text(fs.readFile(p)), "Jello world");
    const h3 = fs.open(`${root}/g`, "createExclusive");
    assert.equal(h3.size(), 0);
    h3.close();
  });

  withFs("read is short only at end of file; write at an offset past the end leaves zeros", (fs, root) => {
    const h = fs.open(`${root}/f`, "create");
    h.write(bytes("abcdef"), 2, 3, 10); // "cde" at 10
    assert.equal(h.size(), 13);
    const buf = new Uint8Array(20).fill(0xff);
    assert.equal(h.read(buf, 1, 20 - 1, 0), 13);
    assert.deepEqual([...buf.subarray(1, 14)], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 99, 100, 101]);
    assert.equal(buf[0], 0xff, "bytes before offset untouched");
    assert.equal(buf[14], 0xff, "bytes past the count untouched");
    assert.equal(h.read(buf, 0, 5, 13), 0);
    assert.equal(h.read(buf, 0, 5, 100), 0);
    h.close();
  });

  withFs("truncate shrinks and extends with zeros; sync and syncAsync succeed", async (fs, root) => {
    const h = fs.open(`${root}/f`, "create");
    h.write(new Uint8Array(100).fill(7), 0, 100, 0);
    h.truncate(10);
    assert.equal(h.size(), 10);
    h.truncate(50);
    const buf = new Uint8Array(50);
    assert.equal(h.read(buf, 0, 50, 0), 50);
    assert.deepEqual([...buf.subarray(8, 12)], [7, 7, 0, 0]);
    assert.ok(buf.subarray(10).every((b) => b === 0), "extension reads zeros even where old data was");
    h.sync();
    await h.syncAsync();
    h.close();
  });

  withFs("read-only handle refuses writes", (fs, root) => {
    fs.open(`${root}/f`, "create").close();
    const h = fs.open(`${root}/f`, "r");
    assert.ok(errCode(() => h.write(bytes("x"), 0, 1, 0)) !== undefined);
    h.close();
  });

  withFs("stat, mkdir -p, list sorted, readFile", (fs, root) => {
    assert.equal(fs.stat(`${root}/nope`), undefined);
    fs.mkdir(`${root}/a/b/c`);
    fs.mkdir(`${root}/a/b/c`); // no error when it exists
    for (const n of ["zeta", "alpha", "Mid", "b2"]) {
      const h = fs.open(`${root}/a/${n}`, "create");
      h.write(bytes(n), 0, n.length, 0);
      h.close();
    }
    assert.deepEqual(fs.list(`${root}/a`), ["Mid", "alpha", "b", "b2", "zeta"]);
    assert.equal(fs.stat(`${root}/a/b`)?.isDirectory, true);
    const st = fs.stat(`${root}/a/zeta`);
    assert.equal(st?.isDirectory, false);
    assert.equal(st?.size, 4);
    assert.equal(typeof st?.mtimeMs, "number");
    assert.equal(text(fs.readFile(`${root}/a/alpha`)), "alpha");
    assert.equal(errCode(() => fs.readFile(`${root}/a/none`)), "ENOENT");
    assert.equal(errCode(() => fs.list(`${root}/none`)), "ENOENT");
    assert.equal(errCode(() => fs.list(`${root}/a/alpha`)), "ENOTDIR");
    assert.equal(errCode(() => fs.mkdir(`${root}/a/alpha`)), "EEXIST");
  });

  withFs("rename replaces the target atomically; remove and removeDir tolerate missing paths", (fs, root) => {
    for (const [n, c] of [["a", "new"], ["b", "old"]] as const) {
      const h = fs.open(`${root}/${n}`, "create");
      h.write(bytes(c), 0, c.length, 0);
      h.close();
    }
    fs.rename(`${root}/a`, `${root}/b`);
    assert.deepEqual(fs.list(root), ["b"]);
    assert.equal(text(fs.readFile(`${root}/b`)), "new");
    assert.equal(errCode(() => fs.rename(`${root}/a`, `${root}/c`)), "ENOENT");
    fs.remove(`${root}/b`);
    fs.remove(`${root}/b`);
    assert.deepEqual(fs.list(root), []);
    fs.mkdir(`${root}/d/e`);
    fs.open(`${root}/d/e/f`, "create").close();
    fs.open(`${root}/d/g`, "create").close();
    fs.removeDir(`${root}/d`);
    fs.removeDir(`${root}/d`);
    assert.equal(fs.stat(`${root}/d`), undefined);
    fs.syncDir(root);
    assert.equal(errCode(() => fs.syncDir(`${root}/none`)), "ENOENT");
  });

  withFs("link gives a file a second name and never replaces: EEXIST onto a file, ENOENT from nothing, EPERM for a directory", (fs, root) => {
    const h = fs.open(`${root}/a`, "create");
    h.write(bytes("mine"), 0, 4, 0);
    h.close();
    fs.open(`${root}/taken`, "create").close();
    assert.equal(errCode(() => fs.link(`${root}/a`, `${root}/taken`)), "EEXIST");
    assert.equal(fs.stat(`${root}/taken`)?.size, 0, "the existing file is untouched");
    assert.equal(errCode(() => fs.link(`${root}/none`, `${root}/c`)), "ENOENT");
    fs.mkdir(`${root}/d`);
    assert.equal(errCode(() => fs.link(`${root}/d`, `${root}/e`)), "EPERM");
    fs.link(`${root}/a`, `${root}/b`);
    fs.remove(`${root}/a`);
    assert.deepEqual(fs.list(root), ["b", "d", "taken"]);
    assert.equal(text(fs.readFile(`${root}/b`)), "mine", "the second name keeps the file after the first is removed");
  });

  withFs("rename of a directory moves its contents", (fs, root) => {
    fs.mkdir(`${root}/snap/current`);
    fs.open(`${root}/snap/current/meta`, "create").close();
    fs.rename(`${root}/snap/current`, `${root}/snap/previous`);
    assert.deepEqual(fs.list(`${root}/snap`), ["previous"]);
    assert.deepEqual(fs.list(`${root}/snap/previous`), ["meta"]);
  });

  withFs("a handle keeps working on a file renamed or removed while open", (fs, root) => {
    const h = fs.open(`${root}/f`, "create");
    h.write(bytes("abc"), 0, 3, 0);
    fs.rename(`${root}/f`, `${root}/g`);
    h.write(bytes("d"), 0, 1, 3);
    assert.equal(text(fs.readFile(`${root}/g`)), "abcd");
    fs.remove(`${root}/g`);
    const buf = new Uint8Array(4);
    assert.equal(h.read(buf, 0, 4, 0), 4);
    assert.equal(text(buf), "abcd");
    h.close();
  });

  withFs("claim: isClaimed while a claim is open on the file, not for plain opens, not after close, not for a new file at the path", (fs, root) => {
    const p = `${root}/LOCK`;
    assert.equal(fs.isClaimed(p), false, "missing file");
    const h = fs.open(p, "createExclusive");
    h.write(bytes("1\n"), 0, 2, 0);
    h.close();
    const reader = fs.open(p, "r");
    const writer = fs.open(p, "rw");
    fs.readFile(p);
    assert.equal(fs.isClaimed(p), false, "plain read and write handles are not claims");
    const c = fs.claim(p);
    assert.equal(fs.isClaimed(p), true);
    assert.equal(fs.isClaimed(`${root}/other`), false);
    const c2 = fs.claim(p);
    c.close();
    assert.equal(fs.isClaimed(p), true, "one claim still open");
    c2.close();
    assert.equal(fs.isClaimed(p), false, "every claim closed");
    // A claim is on the file, not the name: a new file put at the path is not claimed.
    const c3 = fs.claim(p);
    fs.remove(p);
    fs.open(p, "createExclusive").close();
    assert.equal(fs.isClaimed(p), false, "a new file at the claimed path");
    c3.close();
    reader.close();
    writer.close();
    assert.equal(errCode(() => fs.claim(`${root}/missing`)), "ENOENT");
  });
}
