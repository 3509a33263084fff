/**
 * Command.values (replyValues): how many stored values a reply made in the write queue may carry,
 * which Connection bounds per connection (SERVER-COMMANDS.md, "Memory per connection").
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { replyValues } from "../../../src/server/commands/Command.js";
import { hashCommands } from "../../../src/server/commands/hashCommands.js";
import { keyCommands } from "../../../src/server/commands/keyCommands.js";
import { stringCommands } from "../../../src/server/commands/stringCommands.js";

const table = new Map([...stringCommands, ...hashCommands, ...keyCommands].map((c) => [c.name, c]));

function values(...words: string[]): number {
  const cmd = table.get(words[0]!.toLowerCase());
  assert.ok(cmd, words[0]);
  return replyValues(cmd, words.map((w) => Buffer.from(w)));
}

test("replyValues: reads 1, MGET/HMGET their keys or fields, whole-hash and keyspace replies unbounded; writes 0 unless they reply with a value", () => {
  assert.equal(values("GET", "k"), 1);
  assert.equal(values("STRLEN", "k"), 1);
  assert.equal(values("MGET", "a", "b", "c"), 3);
  assert.equal(values("HMGET", "h", "f1", "f2"), 2);
  for (const c of [["HGETALL", "h"], ["HKEYS", "h"], ["HVALS", "h"], ["KEYS", "*"], ["SCAN", "0"]]) assert.equal(values(...c), Infinity, c[0]);
  assert.equal(values("SET", "k", "v"), 0);
  assert.equal(values("SET", "k", "get"), 0, "a value that reads GET is no option");
  assert.equal(values("SET", "k", "v", "GET"), 1);
  assert.equal(values("SET", "k", "v", "EX", "10", "gEt"), 1);
  assert.equal(values("SET", "k", "v", "GETX"), 0);
  for (const c of [["GETSET", "k", "v"], ["GETDEL", "k"], ["GETEX", "k"]]) assert.equal(values(...c), 1, c[0]);
  for (const c of [["INCR", "k"], ["DEL", "a", "b"], ["HSET", "h", "f", "v"], ["MSET", "a", "1"], ["APPEND", "k", "x"]]) assert.equal(values(...c), 0, c[0]);
});
