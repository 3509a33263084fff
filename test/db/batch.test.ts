/**
 * db.batch / tx.batch: one atomic transaction of puts and removes. The state equals the ops
 * applied in the given order (a Map model), also after a crash replays the batch's log record;
 * a bad op refuses the whole batch with its index; sub-databases, CLOSED and READ_ONLY.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { openSync, type BatchOp, type Database, type SubDatabase, type Transaction } from "../../src/index.js";
import { RADIX_MIN } from "../../src/btree/sortedOrder.js";
import { removeStaleLock } from "../helpers/crashCheck.js";
import { DIR, memDb, rejectsKeel, throwsKeel } from "./dbUtil.js";

type Model = Map<string, string>;

function apply(model: Model, ops: readonly BatchOp[]): void {
  for (const op of ops) {
    if (op.type === "put") model.set(op.key as string, op.value as string);
    else model.delete(op.key as string);
  }
}

function contents(db: SubDatabase): Model {
  const m: Model = new Map();
  for (const { key, value } of db.getRange()) m.set(key as string, value as string);
  return m;
}

function assertMatches(db: SubDatabase, model: Model, label: string): void {
  const got = contents(db);
  assert.equal(got.size, model.size, `${label}: entry count`);
  for (const [k, v] of model) assert.equal(got.get(k), v, `${label}: key ${JSON.stringify(k)}`);
  assert.equal(db.getCount(), model.size, `${label}: getCount`);
}

// Keys crowd into a few key ranges with shared heads, so a batch has duplicates (order matters)
// and removes that hit; values are sometimes large enough for overflow pages.
const keyArb = fc.oneof(
  fc.integer({ min: 0, max: 3000 }).map((i) => `user:${String(i).padStart(6, "0")}`),
  fc.string({ minLength: 0, maxLength: 10 }),
  fc.integer({ min: 0, max: 200 }).map((i) => `z${i}`),
);
const valueArb = fc.oneof(
  { weight: 20, arbitrary: fc.string({ maxLength: 30 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 9000 }).map((n) => "L".repeat(n)) },
);
const opArb: fc.Arbitrary<BatchOp> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ type: fc.constant("put" as const), key: keyArb, value: valueArb }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant("remove" as const), key: keyArb }) },
);
// Below and above the sizes from which a batch into an empty tree is built (64) and sorted by radix.
const opsArb = fc.oneof(fc.array(opArb, { maxLength: 150, size: "max" }), fc.array(opArb, { minLength: RADIX_MIN, maxLength: 4 * RADIX_MIN }));

test("batch: the state is the ops applied in order, after the commit and after a crash replays the log", async () => {
  let seed = 0;
  await fc.assert(
    // Half the time nothing comes before: the batch goes into an empty tree (built bottom-up).
    fc.asyncProperty(fc.oneof(fc.constant([]), fc.array(opArb, { maxLength: 300 })), opsArb, fc.boolean(), async (before, ops, wal) => {
      seed++;
      const { db, fs } = memDb({ wal, pageSize: 1024, encoding: "string" });
      const model: Model = new Map();
      try {
        await db.batch(before);
        apply(model, before);
        await db.batch(ops);
        apply(model, ops);
        assertMatches(db, model, "after the commit");
        // The batch's own record replays (strict: it was synced; no checkpoint since).
        const copy = fs.crashedCopy(seed);
        removeStaleLock(copy, DIR);
        const again = openSync(DIR, { fs: copy, wal, pageSize: 1024, encoding: "string" });
        try {
          assertMatches(again, model, `after a crash (wal ${wal})`);
          const report = await again.verify();
          assert.ok(report.ok, `verify: ${JSON.stringify(report.problems.slice(0, 3))}`);
        } finally {
          await again.close();
        }
      } finally {
        await db.close();
      }
    }),
    { numRuns: 40, seed: 4242 },
  );
});

test("tx.batch: reads in the transaction see it, writes around it keep their order, a sub-database is created by a put only", async () => {
  const { db } = memDb({ encoding: "string" });
  const users = db.openDB("users", { encoding: "string" });
  const ops: BatchOp[] = [];
  for (let i = 0; i < 3000; i++) ops.push({ type: "put", key: `k${(i * 7919) % 3000}`, value: `v${i}` });
  ops.push({ type: "remove", key: "k5" }, { type: "put", key: "k6", value: "last" });
  const seen = db.transactionSync((tx) => {
    tx.put("k1", "before");
    const t = tx.for(users);
    t.batch(ops);
    const inside = [t.get("k1"), t.get("k5"), t.get("k6"), t.doesExist("k2999")];
    t.put("k7", "after");
    tx.batch([]);
    return inside;
  });
  assert.deepEqual(seen, ["v" + ops.findIndex((o) => o.key === "k1"), undefined, "last", true]);
  assert.equal(db.get("k1"), "before");
  assert.equal(users.get("k7"), "after");
  assert.equal(users.get("k5"), undefined);
  assert.equal(users.getCount(), 2999);

  // A batch of removes does not create a missing sub-database; one with a put does.
  const names = () => db.listDBs();
  await db.openDB("empty").batch([{ type: "remove", key: "x" }]);
  assert.ok(!names().includes("empty"), "a batch of removes created the sub-database");
  await db.openDB("made").batch([{ type: "remove", key: "x" }, { type: "put", key: "x", value: 1 }]);
  assert.ok(names().includes("made"));
  assert.equal(db.openDB("made").get("x"), 1);
  await db.close();
});

test("batch: a bad op refuses the whole batch with its index, and nothing is written", async () => {
  const { db } = memDb({ encoding: "string", pageSize: 1024 });
  await db.put("keep", "old");
  const good: BatchOp[] = Array.from({ length: 2000 }, (_, i) => ({ type: "put", key: `g${i}`, value: "v" }));
  const cases: Array<[string, unknown[], number | undefined]> = [
    ["a key too large", [...good, { type: "put", key: "x".repeat(db.engine.limits.maxKeySize + 1), value: "v" }], 2000],
    ["a value of the wrong type", [{ type: "put", key: "keep", value: "new" }, { type: "put", key: "a", value: 42 }], 1],
    ["an unknown type", [...good.slice(0, 3), { type: "del", key: "keep" }], 3],
    ["not an object", [null], 0],
    ["no key", [{ type: "remove" }], 0],
  ];
  for (const [label, ops, index] of cases) {
    const e = await rejectsKeel(db.batch(ops as BatchOp[]), "INVALID_ARGUMENT", label);
    assert.equal(e.details.index, index, `${label}: the index`);
    throwsKeel(() => db.transactionSync((tx) => tx.batch(ops as BatchOp[])), "INVALID_ARGUMENT", `${label} (tx.batch)`);
    assert.equal(db.get("keep"), "old", `${label}: nothing written`);
    assert.equal(db.getCount(), 1, `${label}: nothing written`);
  }
  await rejectsKeel(db.batch("nope" as never), "INVALID_ARGUMENT", "not an array");
  await rejectsKeel(db.batch((() => {}) as never), "INVALID_ARGUMENT", "a callback");

  // tx.batch refusing leaves the transaction as it was: the callback may go on and commit.
  db.transactionSync((tx) => {
    tx.put("a", "1");
    throwsKeel(() => tx.batch([{ type: "put", key: "b", value: "2" }, { type: "put", key: "c", value: 3 as never }]), "INVALID_ARGUMENT");
    tx.put("d", "4");
  });
  assert.deepEqual([db.get("a"), db.get("b"), db.get("c"), db.get("d")], ["1", undefined, undefined, "4"]);
  // A transaction's batch after it ended is TXN, even an empty one.
  let ended: Transaction | undefined;
  db.transactionSync((tx) => void (ended = tx));
  throwsKeel(() => ended!.batch([]), "TXN", "an ended transaction");
  await db.close();
  await rejectsKeel(db.batch([{ type: "put", key: "z", value: "z" }]), "CLOSED");
});

test("batch: READ_ONLY on a read-only database", async () => {
  const { db, fs } = memDb();
  await db.batch([{ type: "put", key: "a", value: 1 }]);
  await db.close();
  const ro: Database = openSync(DIR, { fs, readOnly: true });
  try {
    await rejectsKeel(ro.batch([{ type: "put", key: "b", value: 2 }]), "READ_ONLY");
    assert.equal(ro.get("a"), 1);
  } finally {
    await ro.close();
  }
});
