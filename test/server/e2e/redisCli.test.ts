/**
 * A scripted redis-cli session (the real /usr/bin/redis-cli, as a user would run it) against the
 * server: commands from stdin, then a few one-shot invocations, with -a for a password-protected
 * server. Skipped, saying why, when redis-cli is missing.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { startTestServer } from "../../helpers/respServer.js";

const CLI = "/usr/bin/redis-cli";
const skip = existsSync(CLI) ? false : `${CLI} is missing (CI installs redis-tools)`;

/** Runs redis-cli without blocking the event loop (the server runs in this process). */
function cli(args: string[], input?: string): Promise<{ out: string; code: number | null }> {
  return new Promise((resolve) => {
    const p = spawn(CLI, args, { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    p.stdout.on("data", (d) => (out += d.toString()));
    p.stderr.on("data", (d) => (out += d.toString()));
    p.on("close", (code) => resolve({ out, code }));
    p.stdin.end(input ?? "");
  });
}

test("redis-cli: a scripted session from stdin", { skip }, async () => {
  const ts = await startTestServer();
  try {
    const script = ["PING", "SET greeting hello", "GET greeting", "INCR visits", "INCRBY visits 41", "HSET user:1 name Ada lang en", "HGET user:1 name", "EXPIRE greeting 100", "TTL greeting", "TYPE user:1", "DBSIZE", "GET nokey", "NOSUCH x", "DEL greeting", "EXISTS greeting"].join("\n");
    const { out, code } = await cli(["-p", String(ts.port)], script + "\n");
    assert.equal(code, 0);
    assert.equal(
      out,
      ["PONG", "OK", "hello", "1", "42", "2", "Ada", "1", "100", "hash", "3", "", "ERR unknown command 'NOSUCH', with args beginning with: 'x' ", "", "1", "0", ""].join("\n"),
    );
    const one = await cli(["-p", String(ts.port), "--no-raw", "HGETALL", "user:1"]);
    assert.equal(one.out, '1) "lang"\n2) "en"\n3) "name"\n4) "Ada"\n');
    const three = await cli(["-3", "-p", String(ts.port), "--no-raw", "HGETALL", "user:1"]);
    assert.equal(three.out, '1# "lang" => "en"\n2# "name" => "Ada"\n');
    const info = await cli(["-p", String(ts.port), "INFO", "keyspace"]);
    assert.match(info.out, /# Keyspace\r?\ndb0:keys=2,expires=0,avg_ttl=0/);
  } finally {
    await ts.stop();
  }
});

test("redis-cli: password, NOAUTH and -a", { skip }, async () => {
  const ts = await startTestServer({ requirepass: "pw" });
  try {
    const denied = await cli(["-p", String(ts.port), "GET", "k"]);
    assert.match(denied.out, /NOAUTH Authentication required/);
    const ok = await cli(["-p", String(ts.port), "-a", "pw", "--no-auth-warning", "SET", "k", "v"]);
    assert.equal(ok.out, "OK\n");
    const bad = await cli(["-p", String(ts.port), "-a", "wrong", "--no-auth-warning", "GET", "k"]);
    assert.match(bad.out, /WRONGPASS|NOAUTH/);
  } finally {
    await ts.stop();
  }
});

