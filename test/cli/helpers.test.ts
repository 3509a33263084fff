/**
 * The keel command's helpers, in process: exit codes for every error, key and value parsing,
 * /proc/mounts lookup, doctor's machine checks, and progress bars (only on a TTY, only after a
 * second).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { KeelError } from "../../src/index.js";
import { CliError } from "../../src/cli/CliError.js";
import { ExitCode, exitCodeFor } from "../../src/cli/exitCodes.js";
import { errorDocument, hexOf, Output, toJson } from "../../src/cli/output.js";
import { constants as bufferConstants } from "node:buffer";
import { Progress, progressCount } from "../../src/cli/progress.js";
import { keyText, parseKey, parseValue, valueText } from "../../src/cli/values.js";
import { checkHugePages, checkSwappiness, findMount, checkFreePages } from "../../src/cli/commands/doctor.js";
import { resolveSnapshotDir } from "../../src/cli/commands/restore.js";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Stats } from "../../src/index.js";

test("KeelError codes map to exit codes in one place", () => {
  const cases: Array<[string, number]> = [
    ["LOCKED", 3],
    ["NOT_FOUND", 4],
    ["CORRUPT", 5],
    ["VERSION", 5],
    ["IO", 6],
    ["FULL", 6],
    ["INVALID_ARGUMENT", 2],
    ["EXISTS", 2],
    ["INTERNAL", 10],
    ["READERS_FULL", 10],
    ["ABORTED", 130],
  ];
  for (const [code, exit] of cases) assert.equal(exitCodeFor(new KeelError(code as never, "x")), exit, code);
  assert.equal(exitCodeFor(new CliError(ExitCode.NOT_FOUND, "NOT_FOUND", "k")), 4);
  assert.equal(exitCodeFor(new TypeError("bug")), 10);
  assert.equal(exitCodeFor(Object.assign(new Error("x"), { code: "ENOSPC" })), 6);
  // A raw OS error is reported with the code ioError gives it: a full disk is FULL, not IO.
  for (const [errno, code] of [["ENOSPC", "FULL"], ["EDQUOT", "FULL"], ["EFBIG", "FULL"], ["EIO", "IO"], ["ENOENT", "NOT_FOUND"]]) {
    assert.equal(errorDocument(Object.assign(new Error("x"), { code: errno })).error.code, code, errno);
  }
  const doc = errorDocument(new KeelError("LOCKED", "raw", { dir: "/d", pid: 77 }));
  assert.equal(doc.error.message, "database /d is in use by process 77; stop it or use `keel` commands against the server instead");
});

test("a streamed --json document an error interrupts is closed with the error inside it (scan, txlog)", async () => {
  const text: string[] = [];
  const sink = new Writable({ write: (c: Buffer, _e, cb) => (text.push(c.toString()), cb()) });
  const out = new Output(true, { stdout: sink, stderr: sink });
  let count = 0;
  await out.beginDocument('{"path":"p","records":[', () => `],"count":${count}`);
  await out.write('{"lsn":1}');
  count++;
  out.error(new KeelError("CORRUPT", "damaged", { page: 7 }));
  assert.deepEqual(JSON.parse(text.join("")), { path: "p", records: [{ lsn: 1 }], count: 1, error: { code: "CORRUPT", message: "damaged", details: { page: 7 } } });
  // Once ended, an error is a document of its own again.
  text.length = 0;
  await out.beginDocument('{"records":[', () => "]");
  await out.endDocument();
  assert.deepEqual(JSON.parse(text.join("")), { records: [] });
  text.length = 0;
  out.error(new KeelError("IO", "later"));
  assert.equal(JSON.parse(text.join("")).error.code, "IO");
});

test("keys and values from the command line, by type and encoding", () => {
  assert.equal(parseKey("12", "number", "ordered-binary"), 12);
  assert.deepEqual(parseKey('["a",1]', "json", "ordered-binary"), ["a", 1]);
  assert.deepEqual(parseKey("abc", "string", "binary"), Buffer.from("abc"));
  assert.deepEqual(parseKey("0a0b", "hex", "binary"), Buffer.from([10, 11]));
  assert.throws(() => parseKey("0a0", "hex", "binary"), CliError);
  assert.throws(() => parseKey("x", "number", "ordered-binary"), CliError);
  assert.throws(() => parseKey("1", "number", "string"), CliError);
  assert.deepEqual(parseValue('{"a":1}', "json", "msgpack"), { a: 1 });
  assert.deepEqual(parseValue("hi", "string", "binary"), Buffer.from("hi"));
  assert.throws(() => parseValue("{}", "json", "string"), CliError);
  assert.equal(valueText(Buffer.from([1, 255]), "binary"), "01ff");
  assert.equal(valueText("t", "string"), "t");
  assert.equal(valueText({ b: Buffer.from([1]) }, "msgpack"), '{"b":{"$binary":"01"}}');
  assert.equal(keyText(["a", 2], "ordered-binary"), '["a",2]');
  assert.equal(toJson({ n: 10n, m: new Map([["k", 1]]) }), '{"n":"10","m":{"$map":[["k",1]]}}');
});

test("findMount takes the longest matching mount point, unescaping /proc/mounts", () => {
  const mounts = [
    "/dev/sda1 / ext4 rw,relatime 0 0",
    "tmpfs /tmp tmpfs rw 0 0",
    "server:/export /mnt/data\\040dir nfs4 rw 0 0",
    "/dev/sdb1 /mnt/data\\040dir/local xfs ro 0 0",
  ].join("\n");
  assert.equal(findMount(mounts, "/home/x")?.fsType, "ext4");
  assert.equal(findMount(mounts, "/tmp/db")?.fsType, "tmpfs");
  assert.equal(findMount(mounts, "/tmpfoo")?.fsType, "ext4");
  assert.equal(findMount(mounts, "/mnt/data dir/db")?.fsType, "nfs4");
  assert.equal(findMount(mounts, "/mnt/data dir/local/db")?.mountPoint, "/mnt/data dir/local");
});

test("doctor's machine checks read swappiness and transparent huge pages", () => {
  const src = (files: Record<string, string>) => ({ readText: (p: string) => files[p] });
  assert.equal(checkSwappiness(src({ "/proc/sys/vm/swappiness": "60\n" })).status, "WARN");
  assert.equal(checkSwappiness(src({ "/proc/sys/vm/swappiness": "1\n" })).status, "OK");
  assert.equal(checkSwappiness(src({ "/proc/sys/vm/swappiness": "10\n" })).status, "OK");
  assert.equal(checkSwappiness(src({})).status, "WARN");
  const thp = "/sys/kernel/mm/transparent_hugepage/enabled";
  assert.equal(checkHugePages(src({ [thp]: "[always] madvise never\n" })).status, "WARN");
  assert.equal(checkHugePages(src({ [thp]: "always [madvise] never\n" })).status, "OK");
  const stats = (freePages: number, totalPages: number) => ({ freePages, totalPages, pageSize: 4096 }) as Stats;
  assert.equal(checkFreePages("/d", stats(26, 100)).status, "WARN");
  assert.match(checkFreePages("/d", stats(26, 100)).message, /keel compact \/d \/d\.compacted/);
  assert.equal(checkFreePages("/d", stats(25, 100)).status, "OK");
});

class FakeTty extends Writable {
  isTTY = true;
  columns = 100;
  text = "";
  override _write(chunk: Buffer, _e: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
  cursorTo(_x: number, _y?: number, cb?: () => void): boolean {
    cb?.();
    return true;
  }
  clearLine(_d: number, cb?: () => void): boolean {
    cb?.();
    return true;
  }
  moveCursor(_dx: number, _dy: number, cb?: () => void): boolean {
    cb?.();
    return true;
  }
}

test("progress: a bar only on a terminal and only once the work has run for a second", () => {
  assert.deepEqual(progressCount({ entries: 5, totalEntries: 10 }), { done: 5, total: 10, unit: "entries" });
  assert.deepEqual(progressCount({ pages: 3, totalPages: 0 }), { done: 3, total: undefined, unit: "pages" });
  assert.equal(progressCount({ other: 1 }), undefined);

  let now = 0;
  const tty = new FakeTty();
  const p = new Progress("copy", { stream: tty, now: () => now });
  p.update({ entries: 10, totalEntries: 100 });
  assert.equal(p.shown, false, "not before a second");
  now = 1500;
  p.update({ entries: 50, totalEntries: 100 });
  assert.equal(p.shown, true);
  assert.match(tty.text, /copy/);
  p.stop();
  assert.equal(p.shown, false);

  now = 0;
  const none = new Progress("copy", { stream: undefined, now: () => now });
  now = 5000;
  none.update({ entries: 1, totalEntries: 2 });
  assert.equal(none.shown, false, "no terminal: no bar");
});

test("restore's source: a snapshot directory as given; a database directory means its newest snapshot (current, else previous)", () => {
  const db = mkdtempSync(join(tmpdir(), "keel-resolve-"));
  try {
    const snap = (name: string) => {
      mkdirSync(join(db, "snapshots", name), { recursive: true });
      writeFileSync(join(db, "snapshots", name, "snapshot.json"), "{}");
      return join(db, "snapshots", name);
    };
    assert.equal(resolveSnapshotDir(db), db, "no snapshot: the path as given (restore reports it)");
    const previous = snap("previous");
    assert.equal(resolveSnapshotDir(db), previous, "a rotation cut off between its renames left only previous");
    const current = snap("current");
    assert.equal(resolveSnapshotDir(db), current);
    assert.equal(resolveSnapshotDir(previous), previous);
  } finally {
    rmSync(db, { recursive: true, force: true });
  }
});

test("hexOf refuses a value whose hex would leave no room for the key and separators beside it in one string (get and scan lines built on it failed with a RangeError, exit 10)", () => {
  // Only byteLength is read before refusing: no 268 MB buffer is needed to test the bound.
  const sized = (n: number) => ({ byteLength: n }) as unknown as Uint8Array;
  const atLimit = Math.floor(bufferConstants.MAX_STRING_LENGTH / 2);
  assert.throws(() => hexOf(sized(atLimit)), (e: unknown) => e instanceof KeelError && e.code === "INVALID_ARGUMENT");
  assert.throws(() => hexOf(sized(atLimit - 1024)), (e: unknown) => e instanceof KeelError && e.code === "INVALID_ARGUMENT");
  assert.equal(hexOf(Buffer.from([1, 255])), "01ff");
});

test("a signal that comes after a command's last abort check: the command's result stands (exit 0) and a note says the work was complete", async () => {
  const { Command } = await import("commander");
  const { action, getExitStatus, setExitStatus } = await import("../../src/cli/context.js");
  const written: string[] = [];
  const listenersBefore = process.listenerCount("SIGINT");
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array) => (written.push(String(chunk)), true)) as typeof process.stderr.write;
  try {
    for (const finish of ["returns", "throws"] as const) {
      written.length = 0;
      setExitStatus(-1);
      const program = new Command().exitOverride();
      program.command("job").action(
        action(async (ctx) => {
          void ctx.signal; // the handler a long job installs
          process.emit("SIGINT"); // after its last check: nothing reads the signal again
          if (finish === "throws") throw new KeelError("ABORTED", "stopped");
        }),
      );
      await program.parseAsync(["node", "keel", "job"]);
      const text = written.join("");
      assert.match(text, /interrupted; stopping/);
      if (finish === "returns") {
        assert.equal(getExitStatus(), ExitCode.OK);
        assert.match(text, /already finished when the interrupt came/);
      } else {
        assert.equal(getExitStatus(), exitCodeFor(new KeelError("ABORTED", "x")));
        assert.doesNotMatch(text, /already finished/);
      }
      assert.equal(process.listenerCount("SIGINT"), listenersBefore, "the command's handler is removed");
    }
  } finally {
    process.stderr.write = write;
    setExitStatus(0);
  }
});
