// The byte writers of page and log encoding: writeLatin1 (a JS loop for short strings, Buffer's
// latin1Write above that), putU16 and putU32 must store exactly what Buffer's own methods store.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { latin1Of, putU16, putU32, writeLatin1 } from "../../src/util/latin1.js";

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

test("putU16 and putU32 store little-endian exactly as writeUInt16LE / writeUInt32LE", () => {
  const cases = [
    { put: putU16, width: 2, values: [0, 1, 0xff, 0x100, 0x1234, 0xfffe, 0xffff] },
    { put: putU32, width: 4, values: [0, 1, 0xff, 0x100, 0xffff, 0x10000, 0x12345678, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff] },
  ];
  for (const { put, width, values } of cases) {
    for (const v of values) {
      const ours = Buffer.alloc(8, 0xee);
      const theirs = Buffer.alloc(8, 0xee);
      put(ours, 3, v);
      theirs.writeUIntLE(v, 3, width);
      assert.deepEqual(ours, theirs, `${width}-byte ${v}`);
    }
  }
});
