/**
 * ReaderTable unit tests: READERS_FULL at maxReaders, minTxn over the live readers, counts per txn.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { KeelError } from "../../src/errors.js";
import { ReaderTable } from "../../src/txn/ReaderTable.js";

test("acquire beyond maxReaders is READERS_FULL naming the limit; a release makes room", () => {
  const t = new ReaderTable(2);
  t.acquire(5);
  t.acquire(5);
  assert.equal(t.active, 2);
  try {
    t.acquire(6);
    assert.fail("expected READERS_FULL");
  } catch (e) {
    assert.ok(e instanceof KeelError);
    assert.equal(e.code, "READERS_FULL");
    assert.equal(e.details.maxReaders, 2);
  }
  assert.equal(t.active, 2, "a refused acquire takes no slot");
  assert.equal(t.minTxn(), 5, "a refused acquire registers no snapshot");
  t.release(5);
  assert.equal(t.active, 1);
  t.acquire(6);
  assert.equal(t.active, 2);
});

test("minTxn is the oldest live snapshot, Infinity when none", () => {
  const t = new ReaderTable(10);
  assert.equal(t.minTxn(), Infinity);
  t.acquire(9);
  t.acquire(4);
  t.acquire(7);
  t.acquire(4);
  assert.equal(t.minTxn(), 4);
  t.release(4);
  assert.equal(t.minTxn(), 4, "a second reader of txn 4 is still live");
  t.release(4);
  assert.equal(t.minTxn(), 7);
  t.release(9);
  assert.equal(t.minTxn(), 7);
  t.release(7);
  assert.equal(t.minTxn(), Infinity);
  assert.equal(t.active, 0);
});

test("releasing a txn that holds no reader changes nothing", () => {
  const t = new ReaderTable(1);
  t.acquire(3);
  t.release(8);
  assert.equal(t.active, 1);
  assert.equal(t.minTxn(), 3);
  t.release(3);
  t.release(3); // double release
  assert.equal(t.active, 0);
  t.acquire(1);
  assert.equal(t.active, 1);
  assert.throws(() => t.acquire(1), (e: unknown) => e instanceof KeelError && e.code === "READERS_FULL");
});
