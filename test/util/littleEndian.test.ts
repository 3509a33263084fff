// putU16 and putU32 (the page encoders' field stores) must store exactly what Buffer's writers store.
import { test } from "node:test";
import assert from "node:assert/strict";
import { putU16, putU32 } from "../../src/util/littleEndian.js";

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
