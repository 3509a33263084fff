/**
 * Configuration: TOML parsing, defaults, flags over the file, and every bad value and unknown key
 * refused as INVALID_ARGUMENT naming the key; the sample keel.toml documents every key and parses
 * to the defaults.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { KeelError } from "../../../src/errors.js";
import { ALL_KEYS, DEFAULTS, resolveConfig } from "../../../src/server/config/resolveConfig.js";
import { durabilityFor, loadConfig } from "../../../src/server/config/loadConfig.js";

const SAMPLE = fileURLToPath(new URL("../../../../keel.toml", import.meta.url));

function refused(text: string, key: string, flags = {}): KeelError {
  try {
    resolveConfig(text, "/etc/keel.toml", flags, "/work");
  } catch (e) {
    assert.ok(e instanceof KeelError, `a KeelError for ${key}`);
    assert.equal(e.code, "INVALID_ARGUMENT");
    assert.equal(e.details.key, key, `details.key for ${JSON.stringify(text)}: ${e.message}`);
    assert.ok(e.message.includes(key), `message names ${key}: ${e.message}`);
    return e;
  }
  assert.fail(`accepted: ${text} ${JSON.stringify(flags)}`);
}

test("no file: the defaults (dir ./keel-data, 127.0.0.1:7878, appendfsync always, HTTP 7879)", () => {
  const c = resolveConfig(null, null, {}, "/srv");
  assert.equal(c.server.dir, "/srv/keel-data");
  assert.equal(c.server.bind, "127.0.0.1");
  assert.equal(c.server.port, 7878);
  assert.equal(c.server.appendfsync, "always");
  assert.equal(c.server.requirepass, null);
  assert.equal(c.server.httpPort, 7879);
  assert.equal(c.server.httpBind, "127.0.0.1");
  assert.equal(c.server.databases, 16);
  assert.deepEqual(c.server.saveRules, DEFAULTS.saveRules);
  assert.equal(c.server.restoreFrom, null);
  assert.deepEqual(c.engine, { walRetentionBytes: 1024 ** 3, walRetentionMs: 86_400_000 });
  assert.equal(c.configFile, null);
});

test("every key parses; sizes take units; relative paths are relative to the file", () => {
  const c = resolveConfig(
    `dir = "data"
bind = "0.0.0.0"
port = 6400
requirepass = "s3cret"
maxclients = 50
proto_max_bulk_len = "1mb"
proto_max_multibulk_len = 1000
databases = 4
appendfsync = "everysec"
save_rules = [{ seconds = 5, changes = 2 }]
auto_aof_rewrite_percentage = 50
auto_aof_rewrite_min_size = "2k"
restore_from = "../dumps/a.dump"
http_bind = "::1"
http_port = 0
log_level = "warn"
[engine]
cache_size = "16mb"
page_size = 8192
wal_retention_bytes = 0
checkpoint_ms = 1000
[health]
min_free_bytes = "1gb"
max_durable_lag = 10
max_applied_lag = 20
`,
    "/etc/keel/keel.toml",
    {},
    "/work",
  );
  const s = c.server;
  assert.equal(s.dir, "/etc/keel/data");
  assert.equal(s.restoreFrom, "/etc/dumps/a.dump");
  assert.equal(s.bind, "0.0.0.0");
  assert.equal(s.port, 6400);
  assert.equal(s.requirepass, "s3cret");
  assert.equal(s.maxclients, 50);
  assert.equal(s.protoMaxBulkLen, 1024 * 1024);
  assert.equal(s.protoMaxMultibulkLen, 1000);
  assert.equal(s.databases, 4);
  assert.equal(s.appendfsync, "everysec");
  assert.deepEqual(s.saveRules, [{ seconds: 5, changes: 2 }]);
  assert.equal(s.autoAofRewritePercentage, 50);
  assert.equal(s.autoAofRewriteMinSize, 2000);
  assert.equal(s.httpBind, "::1");
  assert.equal(s.httpPort, 0);
  assert.equal(s.logLevel, "warn");
  assert.deepEqual(c.engine, { cacheSize: 16 * 1024 * 1024, pageSize: 8192, walRetentionBytes: 0, walRetentionMs: 86_400_000, checkpointMs: 1000 });
  assert.deepEqual(c.health, { minFreeBytes: 1024 ** 3, maxDurableLag: 10, maxAppliedLag: 20 });
  assert.equal(c.configFile, "/etc/keel/keel.toml");
});

test("flags override the file (and are relative to the working directory)", () => {
  const c = resolveConfig(`port = 1\ndir = "x"\nappendfsync = "no"`, "/etc/keel.toml", { port: "0", dir: "d", httpPort: "9000", appendfsync: "always", bind: "localhost", logLevel: "silent" }, "/work");
  assert.equal(c.server.port, 0);
  assert.equal(c.server.dir, "/work/d");
  assert.equal(c.server.httpPort, 9000);
  assert.equal(c.server.appendfsync, "always");
  assert.equal(c.server.bind, "localhost");
  assert.equal(c.server.logLevel, "silent");
});

test("appendfsync maps to the log's durability profiles", () => {
  assert.deepEqual(durabilityFor("always"), { wal: true, durability: "strict" });
  assert.deepEqual(durabilityFor("everysec"), { wal: true, durability: "relaxed", groupCommitMs: 1000, groupCommit: 10_000 });
  assert.deepEqual(durabilityFor("no"), { wal: true, durability: "none" });
});

test("unknown keys are refused, at every level, naming the key", () => {
  const e = refused(`prot = 1`, "prot");
  assert.equal(e.details.reason, "unknown-key");
  assert.equal(e.details.file, "/etc/keel.toml");
  refused(`[engine]\ncache_sise = 1`, "engine.cache_sise");
  refused(`[health]\nfree = 1`, "health.free");
  refused(`save_rules = [{ seconds = 1, changes = 1, every = 2 }]`, "save_rules[0].every");
  refused(`[persistence]\nappendfsync = "always"`, "persistence");
  // Names of Object.prototype members are unknown keys too, at every level.
  for (const k of ["constructor", "toString", "valueOf", "hasOwnProperty", "__proto__"]) {
    for (const v of ["1", `"x"`]) {
      assert.equal(refused(`[engine]\n${k} = ${v}`, `engine.${k}`).details.reason, "unknown-key", `engine.${k} = ${v}`);
      assert.equal(refused(`[health]\n${k} = ${v}`, `health.${k}`).details.reason, "unknown-key", `health.${k} = ${v}`);
      assert.equal(refused(`${k} = ${v}`, k).details.reason, "unknown-key", `${k} = ${v}`);
    }
  }
});

test("every bad value is refused naming the key", () => {
  const cases: Array<[string, string]> = [
    [`dir = ""`, "dir"],
    [`dir = 5`, "dir"],
    [`bind = ""`, "bind"],
    [`bind = "a b"`, "bind"],
    [`port = 70000`, "port"],
    [`port = -1`, "port"],
    [`port = "x"`, "port"],
    [`port = 1.5`, "port"],
    [`requirepass = 5`, "requirepass"],
    [`maxclients = 0`, "maxclients"],
    [`proto_max_bulk_len = "12parsecs"`, "proto_max_bulk_len"],
    [`proto_max_bulk_len = 0`, "proto_max_bulk_len"],
    [`proto_max_multibulk_len = 0`, "proto_max_multibulk_len"],
    [`databases = 0`, "databases"],
    [`appendfsync = "sometimes"`, "appendfsync"],
    [`appendfsync = true`, "appendfsync"],
    [`save_rules = "900 1"`, "save_rules"],
    [`save_rules = [5]`, "save_rules[0]"],
    [`save_rules = [{ seconds = 0, changes = 1 }]`, "save_rules[0].seconds"],
    [`save_rules = [{ seconds = 10, changes = 0 }]`, "save_rules[0].changes"],
    [`save_rules = [{ seconds = 10 }]`, "save_rules[0].changes"],
    [`save_rules = [{ seconds = 1, changes = 1 }, { changes = 1 }]`, "save_rules[1].seconds"],
    [`auto_aof_rewrite_percentage = -5`, "auto_aof_rewrite_percentage"],
    [`auto_aof_rewrite_min_size = "big"`, "auto_aof_rewrite_min_size"],
    [`restore_from = ""`, "restore_from"],
    [`http_bind = 1`, "http_bind"],
    [`http_port = 65536`, "http_port"],
    [`log_level = "loud"`, "log_level"],
    [`engine = 5`, "engine"],
    [`health = "x"`, "health"],
    [`[engine]\ncache_size = -1`, "engine.cache_size"],
    [`[engine]\npage_size = 3000`, "engine.page_size"],
    [`[engine]\npage_size = 131072`, "engine.page_size"],
    [`[engine]\nmax_readers = 0`, "engine.max_readers"],
    [`[engine]\nmax_value_size = "4gb"`, "engine.max_value_size"],
    [`[engine]\nwal_segment_max_bytes = 1000`, "engine.wal_segment_max_bytes"],
    [`[engine]\nwal_segment_max_ms = 0`, "engine.wal_segment_max_ms"],
    [`[engine]\nwal_retention_bytes = "x"`, "engine.wal_retention_bytes"],
    [`[engine]\nwal_retention_ms = -1`, "engine.wal_retention_ms"],
    [`[engine]\ncheckpoint_log_bytes = 0`, "engine.checkpoint_log_bytes"],
    [`[engine]\ncheckpoint_dirty_bytes = 0`, "engine.checkpoint_dirty_bytes"],
    [`[engine]\ncheckpoint_ms = 0`, "engine.checkpoint_ms"],
    [`[health]\nmin_free_bytes = -1`, "health.min_free_bytes"],
    [`[health]\nmax_durable_lag = "x"`, "health.max_durable_lag"],
    [`[health]\nmax_applied_lag = 1.5`, "health.max_applied_lag"],
  ];
  for (const [text, key] of cases) refused(text, key);
  refused("", "--port", { port: "http" });
  refused("", "--http-port", { httpPort: "99999" });
  refused("", "--appendfsync", { appendfsync: "never" });
  refused("", "--log-level", { logLevel: "x" });
  refused("", "--dir", { dir: "" });
});

test("a TOML syntax error names the file, line and column", () => {
  try {
    resolveConfig(`port = 1\nbind = "x\n`, "/etc/keel.toml", {}, "/");
    assert.fail("accepted");
  } catch (e) {
    assert.ok(e instanceof KeelError);
    assert.equal(e.code, "INVALID_ARGUMENT");
    assert.equal(e.details.file, "/etc/keel.toml");
    assert.equal(e.details.line, 2);
    assert.match(e.message, /^\/etc\/keel\.toml:2:/);
  }
});

test("a missing configuration file is NOT_FOUND naming it (never the defaults)", () => {
  assert.throws(() => loadConfig("/nonexistent/keel.toml"), (e: unknown) => e instanceof KeelError && e.code === "NOT_FOUND" && e.details.file === "/nonexistent/keel.toml");
});

test("the sample keel.toml documents every key and parses to the defaults", () => {
  const text = readFileSync(SAMPLE, "utf8");
  for (const k of ALL_KEYS) {
    const leaf = k.split(".").pop()!;
    assert.match(text, new RegExp(`^#? ?${leaf} = `, "m"), `keel.toml documents ${k}`);
  }
  const c = loadConfig(SAMPLE);
  const d = resolveConfig(null, null, {}, join(SAMPLE, ".."));
  assert.deepEqual({ ...c.server, dir: "" }, { ...d.server, dir: "" });
  assert.equal(c.server.dir, d.server.dir);
  assert.deepEqual(c.health, d.health);
  assert.deepEqual(c.engine, { ...d.engine, cacheSize: 256 * 1024 ** 2, maxReaders: 126, maxValueSize: 256 * 1024 ** 2, pageSize: 4096, walSegmentMaxBytes: 64 * 1024 ** 2, walSegmentMaxMs: 3_600_000, checkpointLogBytes: 64 * 1024 ** 2, checkpointDirtyBytes: 128 * 1024 ** 2, checkpointMs: 60_000 }, "the sample's [engine] values are the defaults");
});
