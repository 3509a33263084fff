import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
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

test("NodeFileSystem: mkdir where the system answers ENOENT under an existing parent (/proc) throws instead of looping forever", { skip: !existsSync("/proc/self") }, () => {
  // In a child with a time limit: node's own recursive mkdirSync never returns there.
  const mod = new URL("../../src/io/NodeFileSystem.js", import.meta.url).href;
  const script = `import { NodeFileSystem } from ${JSON.stringify(mod)};
    const fs = new NodeFileSystem();
    for (const p of ["/proc/keel-no-such-dir", "/proc/keel-no-such-dir/x"]) {
      try { fs.mkdir(p); console.log("made", p); } catch (e) { console.log(e.code); }
    }`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 20_000 });
  assert.equal(r.signal, null, "mkdir under /proc did not return");
  assert.deepEqual(r.stdout.trim().split("\n"), ["ENOENT", "ENOENT"], r.stderr);
});

test("NodeFileSystem: mkdir makes missing parents, accepts an existing directory, refuses a file", () => {
  const root = mkdtempSync(join(tmpdir(), "keel-mkdir-"));
  try {
    const fs = new NodeFileSystem();
    fs.mkdir(join(root, "a", "b", "c"));
    fs.mkdir(join(root, "a", "b", "c"));
    assert.equal(fs.stat(join(root, "a", "b", "c"))?.isDirectory, true);
    writeFileSync(join(root, "f"), "x");
    assert.throws(() => fs.mkdir(join(root, "f")), (e: NodeJS.ErrnoException) => e.code === "EEXIST");
    assert.throws(() => fs.mkdir(join(root, "f", "g")), (e: NodeJS.ErrnoException) => e.code === "ENOTDIR");
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("NodeFileSystem: remove reports the errno unlink gives (EPERM in a sticky directory), not ENOTDIR", { skip: process.getuid?.() !== 0 }, () => {
  const t = tempTarget();
  try {
    // Root's file in a sticky, world-writable directory: another user may not remove it.
    chmodSync(t.root, 0o1777);
    const file = join(t.root, "LOCK");
    writeFileSync(file, "1\n");
    const index = fileURLToPath(new URL("../../src/io/NodeFileSystem.js", import.meta.url));
    const script = `import(${JSON.stringify(index)}).then((m) => { try { new m.NodeFileSystem().remove(${JSON.stringify(file)}); console.log("removed"); } catch (e) { console.log(e.code); } });`;
    const r = spawnSync(process.execPath, ["-e", script], { uid: 65534, gid: 65534, encoding: "utf8", timeout: 20000 });
    if (r.status !== 0) return; // this host does not let that user run node from here: not checked
    assert.equal(r.stdout.trim(), "EPERM");
    assert.equal(existsSync(file), true);
  } finally {
    t.cleanup();
  }
});
