import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { NodeFileSystem } from "../../src/io/NodeFileSystem.js";
import { fileSystemContract } from "./fileSystemContract.js";

function tempTarget() {
  const root = mkdtempSync(join(tmpdir(), "keel-nodefs-"));
  return { fs: new NodeFileSystem(), root, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

fileSystemContract("NodeFileSystem", tempTarget);

test("NodeFileSystem: bytes written through a handle are what node:fs reads back", () => {
  const t = tempTarget();
  try {
    const h = t.fs.open(join(t.root, "data"), "create");
    const data = new Uint8Array(10_000).map((_, i) => (i * 31) & 0xff);
    h.write(data, 0, data.length, 0);
    h.sync();
    h.close();
    assert.deepEqual(new Uint8Array(readFileSync(join(t.root, "data"))), data);
  } finally {
    t.cleanup();
  }
});

test("NodeFileSystem: errors carry node's errno fields", () => {
  const t = tempTarget();
  try {
    assert.throws(() => t.fs.open(join(t.root, "missing"), "r"), (e: NodeJS.ErrnoException) => {
      return e.code === "ENOENT" && typeof e.errno === "number" && e.syscall === "open";
    });
  } finally {
    t.cleanup();
  }
});
