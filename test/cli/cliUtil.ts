/**
 * cliUtil: run the built `keel` (dist/src/cli/keel.js) as a real child process, and make real
 * databases in temp directories for it.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { open, type OpenOptions } from "../../src/index.js";

export const KEEL = fileURLToPath(new URL("../../src/cli/keel.js", import.meta.url));

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
}

export function keel(args: string[], o: { input?: string | Buffer; cwd?: string; timeoutMs?: number; nodeArgs?: string[] } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(o.nodeArgs ?? []), KEEL, ...args], { cwd: o.cwd, stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill("SIGKILL"), o.timeoutMs ?? 30_000);
    child.on("error", reject);
    child.on("close", (status) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      resolve({ status, stdout: stdoutBytes.toString("utf8"), stderr: Buffer.concat(err).toString("utf8"), stdoutBytes });
    });
    child.stdin.on("error", () => {}); // the child may exit before reading its input
    if (o.input !== undefined) child.stdin.end(o.input);
    else child.stdin.end();
  });
}

/** Run keel and check its exit status; the message shows its output when it is not `status`. */
export async function keelExpect(args: string[], status: number, o: { input?: string | Buffer; cwd?: string; nodeArgs?: string[] } = {}): Promise<RunResult> {
  const r = await keel(args, o);
  assert.equal(r.status, status, `keel ${args.join(" ")} exited ${r.status}, expected ${status}\nstdout: ${r.stdout.slice(0, 2000)}\nstderr: ${r.stderr.slice(0, 2000)}`);
  return r;
}

/** Run keel --json and parse its one JSON document. */
export async function keelJson<T = Record<string, unknown>>(args: string[], status = 0, o: { input?: string | Buffer } = {}): Promise<T> {
  const r = await keelExpect([...args, "--json"], status, o);
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    assert.fail(`keel ${args.join(" ")} --json printed no single JSON document:\n${r.stdout}\nstderr: ${r.stderr}`);
  }
}

export function tempDir(t: { after: (fn: () => void) => void }, prefix = "keel-cli-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A database with: 50 "user:N" entries and the number key 42 in the default database (msgpack),
 * a "strs" sub-database (string keys, string values) and a "bin" one (binary keys and values).
 */
export async function makeDb(dir: string, opts: OpenOptions = {}): Promise<void> {
  const db = await open(dir, opts);
  await db.transaction((tx) => {
    for (let i = 0; i < 50; i++) tx.put(`user:${String(i).padStart(2, "0")}`, { name: `n${i}`, i });
    tx.put(42, [1, 2, 3]);
  });
  const strs = db.openDB("strs", { keyEncoding: "string", encoding: "string" });
  await strs.put("a", "hello");
  await strs.put("b", "world");
  const bin = db.openDB("bin", { keyEncoding: "binary", encoding: "binary" });
  await bin.put(Buffer.from([1, 2, 255]), Buffer.from("xyz"));
  await db.close();
}

/** Flip one byte in every page from `fromPage` on (the meta pages 0 and 1 stay intact). */
export function damagePages(dir: string, fromPage = 2, pageSize = 4096): void {
  const path = join(dir, "data.keel");
  const b = readFileSync(path);
  for (let p = fromPage; (p + 1) * pageSize <= b.length; p++) b[p * pageSize + 100]! ^= 0xff;
  writeFileSync(path, b);
}
