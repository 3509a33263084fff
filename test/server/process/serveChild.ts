/**
 * serveChild: run the built `keel serve` (dist/src/cli/keel.js) as a real child process, read its
 * JSON log lines, and wait for the "ready" line that names the bound port.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";

export const KEEL = fileURLToPath(new URL("../../../src/cli/keel.js", import.meta.url));

export interface Served {
  readonly child: ChildProcess;
  readonly port: number;
  readonly httpPort: number | null;
  readonly lines: Array<Record<string, unknown>>;
  readonly stderr: () => string;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface Exited {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly lines: Array<Record<string, unknown>>;
  readonly stdout: string;
  readonly stderr: string;
}

export interface LaunchOptions {
  /** Start under this soft open-files limit (`ulimit -n` in a shell that then execs node). */
  readonly nofile?: number;
}

function launch(args: string[], env: Record<string, string> = {}, o: LaunchOptions = {}) {
  const argv = [KEEL, "serve", ...args];
  const opts = { stdio: ["ignore", "pipe", "pipe"] as ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } };
  const child =
    o.nofile === undefined
      ? spawn(process.execPath, argv, opts)
      : spawn("/bin/sh", ["-c", `ulimit -n ${o.nofile} && exec "$0" "$@"`, process.execPath, ...argv], opts);
  const lines: Array<Record<string, unknown>> = [];
  let out = "";
  let err = "";
  let buf = "";
  const listeners: Array<(l: Record<string, unknown>) => void> = [];
  child.stdout!.setEncoding("utf8").on("data", (d: string) => {
    out += d;
    buf += d;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        const o = JSON.parse(line) as Record<string, unknown>;
        lines.push(o);
        for (const l of listeners) l(o);
      } catch {
        // not a log line
      }
    }
  });
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  return { child, lines, listeners, exit, out: () => out, err: () => err };
}

/** Start `keel serve` with `args` (plus --port 0 unless given) and wait until it is ready. */
export async function startServe(args: string[], env: Record<string, string> = {}, timeoutMs = 20_000, o: LaunchOptions = {}): Promise<Served> {
  const full = args.includes("--port") ? args : [...args, "--port", "0"];
  const l = launch(full, env, o);
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => {
      l.child.kill("SIGKILL");
      reject(new Error(`keel serve not ready after ${timeoutMs} ms\nstdout: ${l.out()}\nstderr: ${l.err()}`));
    }, timeoutMs);
    const seen = l.lines.find((x) => x.event === "ready");
    if (seen) {
      clearTimeout(timer);
      return resolve(seen);
    }
    l.listeners.push((o) => {
      if (o.event === "ready") {
        clearTimeout(timer);
        resolve(o);
      }
    });
    void l.exit.then((e) => {
      clearTimeout(timer);
      reject(new Error(`keel serve exited (${e.code ?? e.signal}) before it was ready\nstdout: ${l.out()}\nstderr: ${l.err()}`));
    });
  });
  return { child: l.child, port: ready.port as number, httpPort: (ready.httpPort as number | null) ?? null, lines: l.lines, stderr: l.err, exit: l.exit };
}

/** Run `keel serve` expecting it to exit by itself (a refused start). */
export async function runServe(args: string[], timeoutMs = 20_000, o: LaunchOptions = {}): Promise<Exited> {
  const l = launch(args, {}, o);
  const timer = setTimeout(() => l.child.kill("SIGKILL"), timeoutMs);
  const e = await l.exit;
  clearTimeout(timer);
  return { ...e, lines: l.lines, stdout: l.out(), stderr: l.err() };
}

/** An ioredis client that never retries or queues (a dead server fails its commands at once). */
export function client(port: number): Redis {
  const r = new Redis({ port, host: "127.0.0.1", maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: true, lazyConnect: false, reconnectOnError: () => false });
  r.on("error", () => {});
  return r;
}

/** Wait for a started server to shut down by itself, with a deadline. */
export async function exited(s: Served, timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_r, reject) => {
    timer = setTimeout(() => {
      s.child.kill("SIGKILL");
      reject(new Error(`keel serve did not exit within ${timeoutMs} ms; stderr: ${s.stderr()}`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([s.exit, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
