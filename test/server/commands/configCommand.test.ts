/**
 * CONFIG on KeelDB alone: CONFIG SET accepts exactly the values the TOML file accepts (one set of
 * ranges, memory units in both; but a maxclients over the open-files limit, see
 * maxclientsFdLimit.test.ts), and CONFIG GET port names the port actually bound (port 0).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { configSet } from "../../../src/server/commands/config.js";
import { clientsForFdLimit } from "../../../src/util/clientsForFdLimit.js";
import { resolveConfig } from "../../../src/server/config/resolveConfig.js";
import { RespError } from "../../../src/server/resp/RespError.js";
import { startTestServer, testConfig } from "../../helpers/respServer.js";

/** [CONFIG SET name, TOML key, value as typed, TOML literal] */
const CASES: Array<[string, string, string, string]> = [
  ["proto-max-bulk-len", "proto_max_bulk_len", "1mb", '"1mb"'],
  ["proto-max-bulk-len", "proto_max_bulk_len", "1kb", '"1kb"'],
  ["proto-max-bulk-len", "proto_max_bulk_len", "1048575", "1048575"],
  ["proto-max-bulk-len", "proto_max_bulk_len", "2147483647", "2147483647"],
  ["proto-max-bulk-len", "proto_max_bulk_len", "2gb", '"2gb"'],
  ["maxclients", "maxclients", "1000000", "1000000"],
  ["maxclients", "maxclients", "1000001", "1000001"],
  ["maxclients", "maxclients", "0", "0"],
  ["auto-aof-rewrite-min-size", "auto_aof_rewrite_min_size", "32mb", '"32mb"'],
  ["auto-aof-rewrite-min-size", "auto_aof_rewrite_min_size", "0", "0"],
  ["auto-aof-rewrite-percentage", "auto_aof_rewrite_percentage", "1000000", "1000000"],
  ["auto-aof-rewrite-percentage", "auto_aof_rewrite_percentage", "1000001", "1000001"],
  ["save", "save_rules", "315360000 1", "[{ seconds = 315360000, changes = 1 }]"],
  ["save", "save_rules", "315360001 1", "[{ seconds = 315360001, changes = 1 }]"],
  ["save", "save_rules", "0 10", "[{ seconds = 0, changes = 10 }]"],
  ["save", "save_rules", "10 0", "[{ seconds = 10, changes = 0 }]"],
];

test("CONFIG SET and the TOML file accept and refuse the same values", () => {
  for (const [name, key, value, literal] of CASES) {
    let toml: unknown = null;
    try {
      toml = resolveConfig(`${key} = ${literal}`, "keel.toml", { dir: "/tmp/unused" }, "/").server;
    } catch (e) {
      toml = e;
    }
    const c = testConfig("/tmp/unused");
    let set: unknown = null;
    try {
      configSet(c, [name, value]);
    } catch (e) {
      set = e;
    }
    const tomlOk = !(toml instanceof Error);
    const setOk = set === null;
    // The one difference, Redis's: a maxclients the open-files limit cannot serve is lowered to
    // what it can at start, and refused by CONFIG SET.
    const fit = clientsForFdLimit();
    if (name === "maxclients" && tomlOk && fit !== null && Number(value) > fit) {
      assert.ok(set instanceof RespError && /The operating system is not able to handle the specified number of clients, try with \d+$/.test(set.message), String(set));
      continue;
    }
    assert.equal(setOk, tomlOk, `${name} ${JSON.stringify(value)}: CONFIG SET ${setOk ? "accepts" : "refuses"}, the file ${tomlOk ? "accepts" : "refuses"} (${String(set ?? toml)})`);
    if (!setOk) assert.ok(set instanceof RespError, String(set));
    if (setOk && tomlOk) {
      const field = { "proto-max-bulk-len": "protoMaxBulkLen", maxclients: "maxclients", "auto-aof-rewrite-min-size": "autoAofRewriteMinSize", "auto-aof-rewrite-percentage": "autoAofRewritePercentage", save: "saveRules" }[name]!;
      assert.deepEqual((c as unknown as Record<string, unknown>)[field], (toml as Record<string, unknown>)[field], `${name} ${value}: the same value`);
    }
  }
});

test("CONFIG GET port answers the port actually bound when the configuration says 0", async () => {
  const ts = await startTestServer({ port: 0 });
  const r = new Redis({ port: ts.port, lazyConnect: true, maxRetriesPerRequest: 0 });
  try {
    await r.connect();
    assert.notEqual(ts.port, 0);
    assert.deepEqual(await r.config("GET", "port"), ["port", String(ts.port)]);
    const info = await r.info("server");
    assert.match(info, new RegExp(`tcp_port:${ts.port}\\r\\n`));
  } finally {
    r.disconnect();
    await ts.stop();
  }
});
