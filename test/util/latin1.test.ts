// writeLatin1 (a JS loop for short strings, Buffer's latin1Write above that) must store exactly
// what Buffer.write(latin1) stores, and return the same count when the target ends first.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { latin1Of, writeLatin1 } from "../../src/util/latin1.js";

test("writeLatin1 writes what Buffer.write(latin1) writes, for every length around the short-string cut", () => {
  for (let n = 0; n <= 80; n++) {
    let s = "";
    for (let i = 0; i < n; i++) s += String.fromCharCode((i * 37 + n) & 0xff);
    const ours = Buffer.alloc(n + 6, 0xee);
    const theirs = Buffer.alloc(n + 6, 0xee);
    assert.equal(writeLatin1(ours, s, 3), n);
    theirs.write(s, 3, "latin1");
    assert.deepEqual(ours, theirs, `length ${n}`);
    assert.equal(latin1Of(ours, 3, 3 + n), s);
  }
});

test("writeLatin1 matches Buffer.write(latin1) on arbitrary byte strings and offsets", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 100 }), fc.nat({ max: 20 }), (bytes, at) => {
      const s = Buffer.from(bytes).toString("latin1");
      const ours = Buffer.alloc(at + bytes.length + 4, 0x5a);
      const theirs = Buffer.alloc(at + bytes.length + 4, 0x5a);
      assert.equal(writeLatin1(ours, s, at), bytes.length);
      theirs.write(s, at, "latin1");
      assert.deepEqual(ours, theirs);
    }),
    { numRuns: 300 },
  );
});

test("writeLatin1 past the end of the target writes what fits and returns that count, as latin1Write does", () => {
  for (const n of [5, 20, 40]) {
    const s = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH".slice(0, n);
    const ours = Buffer.alloc(10, 0xee);
    const theirs = Buffer.alloc(10, 0xee);
    assert.equal(writeLatin1(ours, s, 7), theirs.latin1Write(s, 7));
    assert.deepEqual(ours, theirs, `length ${n}`);
  }
});
