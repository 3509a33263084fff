// NodeCodec: leaf and branch pages encode and decode back to the same node (keys on both sides of
// writeLatin1's short-string cut, overflow references, txns past 2^32), and a node that does not
// fit its page is refused before a byte is stored (INTERNAL), never written short.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { BranchNode, LeafNode, OverflowValue, type LeafValue } from "../../src/btree/Node.js";
import { decodeNode, encodeBranch, encodeLeaf } from "../../src/btree/NodeCodec.js";
import { verifyPage } from "../../src/pager/PageCodec.js";
import { PageType } from "../../src/pager/PageLayout.js";
import { isKeelError } from "../../src/errors.js";

const PS = 4096;
const latin1 = (a: Uint8Array) => Buffer.from(a).toString("latin1");

test("a leaf page decodes to the keys and values it was encoded from", () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.uint8Array({ minLength: 1, maxLength: 60 }), { maxLength: 40, selector: latin1 }),
      fc.array(fc.oneof(fc.uint8Array({ maxLength: 50 }), fc.constant(null)), { minLength: 40, maxLength: 40 }),
      fc.nat({ max: 2 ** 40 }),
      (rawKeys, rawVals, txn) => {
        const keys = rawKeys.map(latin1).sort();
        const vals: LeafValue[] = keys.map((_, i) => {
          const v = rawVals[i];
          return v ? latin1(v) : new OverflowValue(5000 + i, 100 + i, 2 ** 33 + i, null);
        });
        const node = new LeafNode(keys, vals, 1);
        fc.pre(node.bytes <= PS);
        const buf = Buffer.alloc(PS);
        encodeLeaf(node, buf, 7, txn, (v) => [v.page, v.pageTxn]);
        const h = verifyPage(buf, { pageNo: 7, types: [PageType.Leaf], file: "t" });
        assert.equal(h.txn, txn);
        const back = decodeNode(buf, h, { file: "t", highWater: 1 << 20 }) as LeafNode;
        assert.deepEqual(back.keys, keys);
        for (let i = 0; i < keys.length; i++) {
          const v = vals[i]!;
          const b = back.vals[i]!;
          if (typeof v === "string") assert.equal(b, v);
          else {
            assert.ok(b instanceof OverflowValue);
            assert.equal(b.length, v.length);
            assert.equal(b.page, v.page);
            assert.equal(b.pageTxn, v.pageTxn % 2 ** 32);
          }
        }
      },
    ),
    { numRuns: 150 },
  );
});

test("a branch page decodes to its separators and child pages", () => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.uint8Array({ minLength: 1, maxLength: 45 }), { minLength: 1, maxLength: 60, selector: latin1 }), (raw) => {
      const keys = raw.map(latin1).sort();
      const pages = Array.from({ length: keys.length + 1 }, (_, i) => 2 + i * 977);
      const txns = pages.map((_, i) => 2 ** 32 - 1 - i);
      const node = new BranchNode(keys, pages.slice(), txns.slice(), 1);
      fc.pre(node.bytes <= PS);
      const buf = Buffer.alloc(PS);
      // Longer arrays than the node needs are fine (a checkpoint reuses one pair for every branch).
      encodeBranch(node, buf, 9, 3, [...pages, 12345], [...txns, 6]);
      const h = verifyPage(buf, { pageNo: 9, types: [PageType.Branch], file: "t" });
      assert.equal(h.count, keys.length + 1);
      const back = decodeNode(buf, h, { file: "t", highWater: 1 << 20 }) as BranchNode;
      assert.deepEqual(back.keys, keys);
      assert.deepEqual(back.children, pages);
      assert.deepEqual(back.childTxn, txns);
    }),
    { numRuns: 150 },
  );
});

test("a node larger than its page is INTERNAL, and nothing is stored", () => {
  const leaf = new LeafNode(["k".repeat(10)], ["v".repeat(200)], 1);
  const small = Buffer.alloc(128, 0xaa);
  assert.throws(
    () => encodeLeaf(leaf, small, 3, 1, () => [0, 0]),
    (e: unknown) => isKeelError(e) && e.code === "INTERNAL",
  );
  assert.ok(small.every((b) => b === 0xaa));
  const branch = new BranchNode(Array.from({ length: 20 }, (_, i) => `sep${String(i).padStart(4, "0")}`), Array.from({ length: 21 }, (_, i) => i + 2), new Array(21).fill(1), 1);
  assert.throws(
    () => encodeBranch(branch, small, 3, 1, branch.children as number[], branch.childTxn),
    (e: unknown) => isKeelError(e) && e.code === "INTERNAL",
  );
  assert.ok(small.every((b) => b === 0xaa));
});
