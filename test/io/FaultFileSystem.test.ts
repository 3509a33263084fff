import assert from "node:assert/strict";
import { constants } from "node:os";
import { test } from "node:test";
import { ioError } from "../../src/errors.js";
import { CrashFileSystem } from "../../src/io/CrashFileSystem.js";
import { CALL_KINDS, type CallInfo, type CallKind, FaultFileSystem } from "../../src/io/FaultFileSystem.js";
import type { FileSystem } from "../../src/io/FileSystem.js";
import { fileSystemContract } from "./fileSystemContract.js";

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

fileSystemContract("FaultFileSystem (no faults)", () => {
  const inner = new CrashFileSystem();
  inner.mkdir("/t");
  return { fs: new FaultFileSystem(inner), root: "/t" };
});

function caught(fn: () => unknown): NodeJS.ErrnoException | undefined {
  try {
    fn();
  } catch (e) {
    return e as NodeJS.ErrnoException;
  }
  return undefined;
}

/** One call of every kind, in CALL_KINDS order. */
async function everyKind(fs: FileSystem): Promise<void> {
  const h = fs.open("/f", "create");
  fs.stat("/f");
  fs.mkdir("/d");
  fs.list("/");
  fs.rename("/f", "/g");
  fs.link("/g", "/h");
  fs.remove("/nothing");
  fs.removeDir("/d");
  fs.syncDir("/");
  fs.readFile("/g");
  h.read(new Uint8Array(1), 0, 1, 0);
  h.write(bytes("x"), 0, 1, 0);
  h.sync();
  await h.syncAsync();
  h.size();
  h.truncate(0);
  h.close();
}

test("FaultFileSystem counts every kind of call, in one counter and per kind", async () => {
  const seen: CallInfo[] = [];
  const fs = new FaultFileSystem(new CrashFileSystem(), { onCall: (i) => seen.push(i) });
  await everyKind(fs);
  assert.equal(fs.calls, CALL_KINDS.length);
  for (const k of CALL_KINDS) assert.equal(fs.callsOf(k), 1, k);
  assert.deepEqual(
    seen.map((i) => i.kind),
    [...CALL_KINDS],
  );
  assert.deepEqual(
    seen.map((i) => i.call),
    CALL_KINDS.map((_, i) => i + 1),
  );
  assert.equal(seen[11]?.path, "/f", "handle calls report the handle's path");
  fs.reset();
  assert.equal(fs.calls, 0);
  assert.equal(fs.counts().write, 0);
});

test("failAt(n): transient fault fails only the n-th call, with node-style fields", () => {
  const inner = new CrashFileSystem();
  const fs = new FaultFileSystem(inner).failAt(3);
  const h = fs.open("/f", "create"); // 1
  h.write(bytes("a"), 0, 1, 0); // 2
  const e = caught(() => h.write(bytes("b"), 0, 1, 1)); // 3
  assert.ok(e instanceof Error);
  assert.equal(e.code, "EIO");
  assert.equal(e.errno, -constants.errno.EIO);
  assert.equal(e.syscall, "write");
  assert.equal(e.path, "/f");
  h.write(bytes("c"), 0, 1, 1); // 4: works again
  assert.equal(text(fs.readFile("/f")), "ac");
  assert.equal(fs.faultsInjected, 1);
  assert.deepEqual(fs.lastFault, { kind: "write", call: 3, path: "/f", errno: "EIO" });
  assert.equal(fs.calls, 5);
});

test("failAt(n, persistent): the n-th call and every later one fail", () => {
  const fs = new FaultFileSystem(new CrashFileSystem()).failAt(2, { persistent: true });
  fs.mkdir("/a");
  for (let i = 0; i < 5; i++) assert.equal(caught(() => fs.mkdir(`/b${i}`))?.code, "EIO");
  assert.equal(fs.faultsInjected, 5);
  fs.clearFaults();
  fs.mkdir("/c");
  assert.deepEqual(fs.list("/"), ["a", "c"], "failed calls had no effect");
});

test("failAt with kinds counts only those kinds, from the moment it is armed", () => {
  const fs = new FaultFileSystem(new CrashFileSystem());
  const h = fs.open("/f", "create");
  h.sync();
  fs.failAt(2, { kinds: ["sync"], errno: "ENOSPC" });
  h.write(bytes("x"), 0, 1, 0);
  h.read(new Uint8Array(1), 0, 1, 0);
  h.sync(); // first sync since armed
  h.write(bytes("y"), 0, 1, 1);
  const e = caught(() => h.sync());
  assert.equal(e?.code, "ENOSPC");
  assert.equal(e?.errno, -constants.errno.ENOSPC);
  assert.equal(e?.syscall, "fdatasync");
  h.sync();
  assert.equal(fs.callsOf("sync"), 4);
});

test("ENOSPC maps to KeelError FULL, EIO to IO", () => {
  const fs = new FaultFileSystem(new CrashFileSystem()).failAt(1, { errno: "ENOSPC" }).failAt(2, { errno: "EIO" });
  const full = caught(() => fs.mkdir("/a"));
  const io = caught(() => fs.mkdir("/b"));
  assert.equal(ioError(full, "mkdir", "/a").code, "FULL");
  assert.equal(ioError(io, "mkdir", "/b").code, "IO");
});

test("rules armed together count independently", () => {
  const fs = new FaultFileSystem(new CrashFileSystem());
  fs.failAt(1, { kinds: ["stat"] }).failAt(3, { kinds: ["stat", "list"], errno: "ENOSPC" });
  assert.equal(caught(() => fs.stat("/"))?.code, "EIO"); // rule 1 (rule 2 counts 1)
  fs.list("/"); // rule 2 counts 2
  assert.equal(caught(() => fs.stat("/"))?.code, "ENOSPC"); // rule 2 counts 3
  fs.stat("/");
});

test("failEvery(kind): every call of that kind fails; syncAsync rejects rather than throws", async () => {
  const fs = new FaultFileSystem(new CrashFileSystem()).failEvery(["sync", "syncAsync"]);
  const h = fs.open("/f", "create");
  h.write(bytes("x"), 0, 1, 0);
  assert.equal(caught(() => h.sync())?.code, "EIO");
  assert.equal(caught(() => h.sync())?.code, "EIO");
  let p: Promise<void> | undefined;
  assert.equal(caught(() => (p = h.syncAsync())), undefined, "no synchronous throw");
  await assert.rejects(p!, (e: NodeJS.ErrnoException) => e.code === "EIO" && e.syscall === "fdatasync");
  h.write(bytes("y"), 0, 1, 1);
  assert.equal(fs.faultsInjected, 3);
});

test("a failed call does not reach the wrapped file system", () => {
  const inner = new FaultFileSystem(new CrashFileSystem());
  const fs = new FaultFileSystem(inner).failEvery(["write", "rename", "truncate", "open"]);
  const ih = inner.open("/f", "create");
  ih.write(bytes("old"), 0, 3, 0);
  const before = inner.calls;
  assert.equal(caught(() => fs.open("/f", "rw"))?.code, "EIO");
  assert.equal(caught(() => fs.rename("/f", "/g"))?.code, "EIO");
  assert.equal(inner.calls, before);
  assert.equal(text(inner.readFile("/f")), "old");
});

test("partialWrite: a failing write leaves a prefix of its data", () => {
  const inner = new CrashFileSystem();
  const fs = new FaultFileSystem(inner);
  const h = fs.open("/f", "create");
  h.write(bytes("................"), 0, 16, 0);
  fs.failAt(1, { kinds: ["write"], errno: "ENOSPC", partialWrite: true });
  assert.equal(caught(() => h.write(bytes("ABCDEFGHIJ"), 0, 10, 2))?.code, "ENOSPC");
  assert.equal(text(inner.readFile("/f")), "..ABCDE.........");
  fs.failAt(1, { kinds: ["write"], partialWrite: 3 });
  assert.equal(caught(() => h.write(bytes("xyzw"), 1, 3, 14))?.code, "EIO");
  assert.equal(text(inner.readFile("/f")), "..ABCDE.......yzw", "prefix extends the file like a real short write");
  fs.failAt(1, { kinds: ["write"] });
  assert.equal(caught(() => h.write(bytes("!!!!"), 0, 4, 0))?.code, "EIO");
  assert.equal(text(inner.readFile("/f")), "..ABCDE.......yzw", "no partialWrite: nothing written");
});

test("a failing close still closes the wrapped handle", () => {
  const inner = new FaultFileSystem(new CrashFileSystem());
  const fs = new FaultFileSystem(inner).failEvery("close");
  const h = fs.open("/f", "create");
  assert.equal(caught(() => h.close())?.code, "EIO");
  assert.equal(inner.callsOf("close"), 1);
});

test("onCall can stop the caller at a chosen call before it runs", () => {
  const inner = new FaultFileSystem(new CrashFileSystem());
  const stop = new Error("stop");
  const fs = new FaultFileSystem(inner, {
    onCall: (i) => {
      if (i.kind === "rename") throw stop;
    },
  });
  fs.open("/a", "create").close();
  assert.equal(caught(() => fs.rename("/a", "/b")), stop);
  assert.equal(inner.callsOf("rename"), 0);
  assert.deepEqual(inner.list("/"), ["a"]);
});

test("failAt rejects nonsense arguments", () => {
  const fs = new FaultFileSystem(new CrashFileSystem());
  assert.throws(() => fs.failAt(0), RangeError);
  assert.throws(() => fs.failAt(1.5), RangeError);
  assert.throws(() => fs.failAt(1, { kinds: ["bogus" as CallKind] }), RangeError);
});

test("fail the N-th call for every N: each run fails exactly at N and nowhere else", () => {
  // The pattern the engine's fault tests follow: count a clean run, then replay it failing each call.
  const workload = (fs: FileSystem): void => {
    fs.mkdir("/db/wal");
    const h = fs.open("/db/wal/tmp", "createExclusive");
    h.write(bytes("record"), 0, 6, 0);
    h.sync();
    h.close();
    fs.rename("/db/wal/tmp", "/db/wal/0001");
    fs.syncDir("/db/wal");
  };
  const clean = new FaultFileSystem(new CrashFileSystem());
  workload(clean);
  const total = clean.calls;
  assert.equal(total, 7);
  const failedKinds: CallKind[] = [];
  for (let n = 1; n <= total; n++) {
    const fs = new FaultFileSystem(new CrashFileSystem()).failAt(n);
    const e = caught(() => workload(fs));
    assert.equal(e?.code, "EIO", `run ${n}`);
    assert.equal(fs.lastFault?.call, n);
    assert.equal(fs.calls, n, "the workload stops at the failing call");
    failedKinds.push(fs.lastFault!.kind);
  }
  assert.deepEqual(failedKinds, ["mkdir", "open", "write", "sync", "close", "rename", "syncDir"]);
});
