/** RespWriter: RESP2 and RESP3 encodings of every reply type, and one batched write per flush. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { arr, bulk, err, int, map, NULL, NULL_ARRAY, OK, set, type Reply } from "../../../src/server/resp/Reply.js";
import { RespWriter } from "../../../src/server/resp/RespWriter.js";

function encode(proto: 2 | 3, ...rs: Reply[]): string {
  const w = new RespWriter(proto);
  for (const r of rs) w.add(r);
  return w.take().toString("latin1");
}

test("RESP2 encodings", () => {
  assert.equal(encode(2, OK, err("ERR x"), int(-5), int(9223372036854775807n)), "+OK\r\n-ERR x\r\n:-5\r\n:9223372036854775807\r\n");
  assert.equal(encode(2, bulk(""), bulk(Buffer.from([0, 13, 10, 255])), NULL, NULL_ARRAY), "$0\r\n\r\n$4\r\n\x00\r\n\xff\r\n$-1\r\n*-1\r\n");
  assert.equal(encode(2, arr([bulk("a"), arr([])]), map([[bulk("k"), int(1)]]), set([bulk("s")])), "*2\r\n$1\r\na\r\n*0\r\n*2\r\n$1\r\nk\r\n:1\r\n*1\r\n$1\r\ns\r\n");
  assert.equal(encode(2, { t: "bool", v: true }, { t: "verbatim", s: "hi" }), ":1\r\n$2\r\nhi\r\n");
});

test("RESP3 encodings", () => {
  assert.equal(encode(3, NULL, NULL_ARRAY, { t: "bool", v: false }), "_\r\n_\r\n#f\r\n");
  assert.equal(encode(3, map([[bulk("k"), int(1)]]), set([bulk("s")])), "%1\r\n$1\r\nk\r\n:1\r\n~1\r\n$1\r\ns\r\n");
  assert.equal(encode(3, { t: "verbatim", s: "hi" }), "=6\r\ntxt:hi\r\n");
});

test("error text never carries CR or LF", () => {
  assert.equal(encode(2, err("ERR a\r\nb")), "-ERR a  b\r\n");
  assert.equal(encode(2, err("ERR \u010d\u010a")), "-ERR ??\r\n", "no char whose low byte is CR or LF");
});

test("large bulks are passed through as buffers; one cork/uncork per flush", () => {
  const big = Buffer.alloc(100_000, 0x61);
  const w = new RespWriter(2);
  for (let i = 0; i < 100; i++) w.add(int(i));
  w.add(bulk(big));
  w.add(OK);
  const writes: Buffer[] = [];
  let corks = 0;
  let uncorks = 0;
  w.flush({
    cork: () => void corks++,
    uncork: () => void uncorks++,
    write: (b: Buffer | string, enc?: BufferEncoding) => {
      writes.push(typeof b === "string" ? Buffer.from(b, enc) : b);
      return true;
    },
  });
  assert.equal(corks, 1);
  assert.equal(uncorks, 1);
  assert.ok(writes.includes(big));
  const all = Buffer.concat(writes).toString("latin1");
  assert.ok(all.startsWith(":0\r\n:1\r\n"));
  assert.ok(all.endsWith(`\r\n+OK\r\n`));
  assert.equal(w.pendingBytes, 0);
});
