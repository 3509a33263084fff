/**
 * `keel serve` with an address it cannot listen on: a bad configuration value (exit 2) naming the
 * key (`bind`, `http_bind`), refused before the data directory is created. A port in use is exit 6
 * naming `port`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runServe } from "./serveChild.js";

function tmp(t: { after: (fn: () => void) => void }): string {
  const d = mkdtempSync(join(tmpdir(), "keel-bind-"));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function fatal(lines: Array<Record<string, unknown>>): { code?: string; details?: Record<string, unknown> } {
  const l = lines.find((x) => x.event === "start-failed");
  assert.ok(l, JSON.stringify(lines));
  return l.err as { code?: string; details?: Record<string, unknown> };
}

test("--bind with a name that does not resolve: exit 2 naming bind, no data directory created", async (t) => {
  const root = tmp(t);
  const dir = join(root, "db");
  const r = await runServe(["--dir", dir, "--bind", "localhosst.invalid", "--port", "0", "--http-port", "0"]);
  assert.equal(r.code, 2, r.stderr);
  const err = fatal(r.lines);
  assert.equal(err.code, "INVALID_ARGUMENT");
  assert.equal(err.details?.key, "bind");
  assert.equal(err.details?.value, "localhosst.invalid");
  assert.match(r.stderr, /\bbind\b/);
  assert.equal(existsSync(dir), false, "the data directory was not created");
});

test("http_bind with an address that is not local: exit 2 naming http_bind, no data directory created", async (t) => {
  const root = tmp(t);
  const dir = join(root, "db");
  const conf = join(root, "keel.toml");
  // TEST-NET-3 (RFC 5737): never an address of this machine.
  writeFileSync(conf, `http_bind = "203.0.113.7"\nhttp_port = 7799\n`);
  const r = await runServe(["--config", conf, "--dir", dir, "--port", "0"]);
  assert.equal(r.code, 2, r.stderr);
  const err = fatal(r.lines);
  assert.equal(err.code, "INVALID_ARGUMENT");
  assert.equal(err.details?.key, "http_bind");
  assert.match(r.stderr, /http_bind/);
  assert.equal(existsSync(dir), false, "the data directory was not created");
});

test("a RESP port in use: exit 6 naming port", async (t) => {
  const root = tmp(t);
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, "127.0.0.1", () => r()));
  t.after(() => busy.close());
  const port = (busy.address() as { port: number }).port;
  const r = await runServe(["--dir", join(root, "db"), "--port", String(port), "--http-port", "0"]);
  assert.equal(r.code, 6, r.stderr);
  const err = fatal(r.lines);
  assert.equal(err.code, "IO");
  assert.equal(err.details?.key, "port");
  assert.equal(err.details?.errno, "EADDRINUSE");
});
