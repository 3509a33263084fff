/**
 * keel: help, version, serve, usage errors (exit 2, JSON with --json) and a missing database
 * (exit 4), run as a real child process.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { keel, keelExpect, keelJson, tempDir } from "./cliUtil.js";

test("keel --help lists the commands and the exit codes, exit 0", async () => {
  const r = await keelExpect(["--help"], 0);
  for (const c of ["stat", "list", "copy", "compact", "dump", "load", "verify", "salvage", "txlog", "watermarks", "snapshot", "snapshots", "gc", "restore", "get", "put", "del", "scan", "doctor", "serve"]) {
    assert.match(r.stdout, new RegExp(`\\n  ${c} `), `help lists ${c}`);
  }
  assert.match(r.stdout, /Exit codes:/);
  for (const code of ["0", "1", "2", "3", "4", "5", "6", "10"]) assert.match(r.stdout, new RegExp(`\\n  ${code} +\\S`), `exit code ${code} documented`);
  const sub = await keelExpect(["get", "--help"], 0);
  assert.match(sub.stdout, /--key-type/);
});

test("keel --version prints the package version", async () => {
  const r = await keelExpect(["--version"], 0);
  assert.match(r.stdout.trim(), /^\d+\.\d+\.\d+/);
});

test("keel serve refuses a bad flag value naming it, exit 2 (the server itself: test/server/process)", async () => {
  const r = await keelExpect(["serve", "--port", "70000", "--dir", "/nonexistent/never-created"], 2);
  assert.match(r.stderr, /--port/);
});

test("usage errors exit 2: no command, unknown command, unknown option, missing argument, bad values", async () => {
  const [unknown] = await Promise.all([
    keelExpect(["frobnicate"], 2),
    keelExpect([], 2),
    keelExpect(["stat", "x", "--bogus"], 2),
    keelExpect(["get", "x"], 2),
    keelExpect(["scan", "x", "--limit", "-3"], 2),
    keelExpect(["txlog", "x", "--from", "abc"], 2),
    keelExpect(["get", "x", "k", "--key-type", "float"], 2),
    keelExpect(["stat", "a", "b"], 2),
  ]);
  assert.match(unknown.stderr, /unknown command/);
});

test("usage errors with --json are one JSON error document", async () => {
  const doc = await keelJson<{ error: { code: string; message: string } }>(["frobnicate"], 2);
  assert.equal(doc.error.code, "USAGE");
  assert.match(doc.error.message, /frobnicate/);
  const bad = await keelJson<{ error: { code: string } }>(["scan", "x", "--limit", "many"], 2);
  assert.equal(bad.error.code, "USAGE");
});

test("no command with --json: a USAGE document saying a command is required, exit 2; keel help is exit 0", async () => {
  const doc = await keelJson<{ error: { code: string; message: string } }>([], 2);
  assert.equal(doc.error.code, "USAGE");
  assert.match(doc.error.message, /a command is required/);
  const help = await keelExpect(["help"], 0);
  assert.match(help.stdout, /Exit codes:/);
});

test("a directory without a database is not found (exit 4), and is not created", async (t) => {
  const dir = tempDir(t);
  const missing = join(dir, "nothing-here");
  const runs = [["stat", missing], ["get", missing, "k"], ["put", missing, "k", "v"], ["verify", missing], ["txlog", missing], ["doctor", missing]];
  for (const r of await Promise.all(runs.map((args) => keelExpect(args, 4)))) assert.match(r.stderr, /no database at/);
  const doc = await keelJson<{ error: { code: string; details: { path: string } } }>(["list", missing], 4);
  assert.equal(doc.error.code, "NOT_FOUND");
  assert.equal(doc.error.details.path, missing);
  const again = await keel(["stat", missing]);
  assert.equal(again.status, 4, "the put above created nothing");
});
