/**
 * Database API tests: getRange semantics (bounds, reverse, limit/offset, laziness and snapshots,
 * reader slots), transactions (async callbacks hold the write lock, failures leave no trace, sync
 * misuse), write grouping, sub-databases, CLOSED after close, getStats consistency, VERSION on a
 * page size that differs from the file's.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { KeelError, open, openSync, type Database } from "../../src/index.js";
import { CrashFileSystem } from "../../src/io/CrashFileSystem.js";
import { FaultFileSystem } from "../../src/io/FaultFileSystem.js";
import { DIR, memDb, rejectsKeel, sleep, tempDir, throwsKeel } from "./dbUtil.js";
import { Rng } from "../helpers/rng.js";
import { seal } from "../../src/pager/PageCodec.js";

async function filled(n = 100, opts = {}): Promise<{ db: Database; fs: CrashFileSystem; keys: number[] }> {
  const { db, fs } = memDb({ wal: false, ...opts });
  const keys = Array.from({ length: n }, (_, i) => i * 10);
  await db.transaction((tx) => {
    for (const k of keys) tx.put(k, `v${k}`);
  });
  return { db, fs, keys };
}

// ---- getRange ----

test("getRange: start inclusive, end exclusive; reverse from start down to end; limit and offset", async () => {
  const { db, keys } = await filled(100);
  const range = (o: Parameters<Database["getKeys"]>[0]) => db.getKeys(o).asArray;
  assert.deepEqual(range({}), keys);
  assert.deepEqual(range({ start: 100, end: 150 }), [100, 110, 120, 130, 140]);
  assert.deepEqual(range({ start: 95, end: 151 }), [100, 110, 120, 130, 140, 150]);
  assert.deepEqual(range({ start: 100, end: 100 }), []);
  assert.deepEqual(range({ start: 150, end: 100 }), [], "start after end forwards is empty");
  assert.deepEqual(range({ end: 30 }), [0, 10, 20]);
  assert.deepEqual(range({ start: 970 }), [970, 980, 990]);
  assert.deepEqual(range({ start: 991 }), []);
  assert.deepEqual(range({ start: 150, end: 100, reverse: true }), [150, 140, 130, 120, 110]);
  assert.deepEqual(range({ start: 155, end: 100, reverse: true }), [150, 140, 130, 120, 110]);
  assert.deepEqual(range({ start: 100, end: 150, reverse: true }), [], "reverse with start below end is empty");
  assert.deepEqual(range({ reverse: true, limit: 3 }), [990, 980, 970]);
  assert.deepEqual(range({ end: 960, reverse: true }), [990, 980, 970]);
  assert.deepEqual(range({ start: 20, reverse: true }), [20, 10, 0]);
  assert.deepEqual(range({ start: -5, reverse: true }), []);
  assert.deepEqual(range({ limit: 2 }), [0, 10]);
  assert.deepEqual(range({ limit: 0 }), []);
  assert.deepEqual(range({ offset: 98 }), [980, 990]);
  assert.deepEqual(range({ offset: 100 }), []);
  assert.deepEqual(range({ offset: 500 }), []);
  assert.deepEqual(range({ start: 100, offset: 2, limit: 3 }), [120, 130, 140]);
  assert.deepEqual(range({ start: 100, end: 130, offset: 1, limit: 10 }), [110, 120]);
  assert.deepEqual(range({ start: 500, reverse: true, offset: 1, limit: 2 }), [490, 480]);
  assert.deepEqual(
    db.getRange({ start: 10, end: 30 }).asArray,
    [
      { key: 10, value: "v10" },
      { key: 20, value: "v20" },
    ],
  );
  assert.equal(db.getCount(), 100);
  assert.equal(db.getCount({ start: 100, end: 200 }), 10);
  assert.equal(db.getCount({ start: 100, limit: 4 }), 4);
  assert.equal(db.getCount({ limit: 0 }), 0, "getCount agrees with getRange on limit: 0");
  assert.equal(db.getCount({ offset: 0 }), 100);
  assert.equal(db.getCount({ offset: 95 }), 5);
  for (const bad of [{ limit: -1 }, { limit: 1.5 }, { offset: -2 }, { offset: NaN }]) {
    throwsKeel(() => db.getRange(bad), "INVALID_ARGUMENT", JSON.stringify(bad));
  }
  await db.close();
});

test("getRange over many leaves: every bound and direction matches a sorted model", async () => {
  const { db } = memDb({ wal: false, pageSize: 1024 });
  const keys = Array.from({ length: 1500 }, (_, i) => `k${String(i * 3).padStart(5, "0")}`);
  await db.transaction((tx) => {
    for (const k of keys) tx.put(k, k.length);
  });
  assert.ok(db.getStats().depth >= 2);
  for (const [s, e] of [
    ["k00000", "k04500"],
    ["k00100", "k00200"],
    ["k01000", "k01001"],
    ["k0", "k1"],
    ["a", "z"],
  ]) {
    const want = keys.filter((k) => k >= s! && k < e!);
    assert.deepEqual(db.getKeys({ start: s, end: e }).asArray, want);
    const wantRev = keys.filter((k) => k <= e! && k > s!).reverse();
    assert.deepEqual(db.getKeys({ start: e, end: s, reverse: true }).asArray, wantRev);
  }
  await db.close();
});

test("getRange is lazy and re-iterable: each iteration reads the snapshot taken when it starts", async () => {
  const { db } = await filled(10);
  const r = db.getKeys({ start: 0 });
  await db.put(5, "new");
  assert.deepEqual(r.asArray, [0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90], "a write made before iterating shows");
  // Mid-iteration writes do not show in a running iteration.
  const it = r[Symbol.iterator]();
  assert.equal(it.next().value, 0);
  await db.put(1, "after start");
  await db.remove(50);
  await db.put(95, "after start");
  const rest: unknown[] = [];
  for (let x = it.next(); !x.done; x = it.next()) rest.push(x.value);
  assert.deepEqual(rest, [5, 10, 20, 30, 40, 50, 60, 70, 80, 90], "the running iteration keeps its snapshot");
  // The next iteration of the same iterable sees the new state.
  assert.deepEqual(r.asArray, [0, 1, 5, 10, 20, 30, 40, 60, 70, 80, 90, 95]);
  // Values too come from the snapshot.
  const vr2 = db.getRange({ start: 20, end: 31 })[Symbol.iterator]();
  assert.deepEqual(vr2.next().value, { key: 20, value: "v20" });
  await db.put(30, "changed later");
  assert.deepEqual(vr2.next().value, { key: 30, value: "v30" });
  assert.equal(vr2.next().done, true);
  assert.equal(db.getStats().readers, 0);
  await db.close();
});

test("map and filter are lazy and keep the snapshot semantics", async () => {
  const { db } = await filled(20);
  let calls = 0;
  const m = db.getKeys().map((k) => {
    calls++;
    return (k as number) / 10;
  });
  assert.equal(calls, 0, "map runs nothing before iteration");
  const f = m.filter((x) => x % 2 === 0);
  assert.deepEqual(f.asArray, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
  assert.equal(calls, 20);
  for (const x of f) if (x === 4) break;
  assert.equal(db.getStats().readers, 0, "break out of a mapped range releases its reader");
  await db.close();
});

test("breaking out of an iteration, or finishing it, releases the reader slot", async () => {
  const { db } = await filled(50);
  for (const e of db.getRange()) {
    assert.equal(db.getStats().readers, 1, "a running iteration holds one reader");
    if ((e.key as number) >= 30) break;
  }
  assert.equal(db.getStats().readers, 0, "break released the reader");
  const [first] = db.getKeys();
  assert.equal(first, 0);
  assert.equal(db.getStats().readers, 0, "destructuring released the reader");
  db.getRange().asArray;
  assert.equal(db.getStats().readers, 0);
  try {
    for (const _ of db.getRange()) throw new Error("boom");
  } catch {
    // expected
  }
  assert.equal(db.getStats().readers, 0, "an exception in the loop body released the reader");
  await db.close();
});

test("an iterator ended with return() before its first next() releases its reader slot", async () => {
  // SubDatabase.#range acquires the reader when [Symbol.iterator]() is called, but releases it in
  // a generator's finally block, which never runs for a generator that has not started.
  const { db } = await filled(5, { maxReaders: 2 });
  for (let i = 0; i < 2; i++) {
    const it = db.getRange()[Symbol.iterator]();
    const r = it.return?.();
    assert.equal(r?.done, true);
  }
  assert.equal(db.getStats().readers, 0, "reader slots leaked by iterators closed before starting");
  assert.deepEqual(db.getKeys().asArray, [0, 10, 20, 30, 40], "no READERS_FULL after closed iterators");
  await db.close();
});

test("READERS_FULL with maxReaders: 2 and two open iterators; finishing one makes room", async () => {
  const { db } = await filled(10, { maxReaders: 2 });
  const a = db.getRange()[Symbol.iterator]();
  const b = db.getKeys()[Symbol.iterator]();
  a.next();
  b.next();
  assert.equal(db.getStats().readers, 2);
  const e = throwsKeel(() => {
    for (const _ of db.getRange()) break;
  }, "READERS_FULL");
  assert.equal(e.details.maxReaders, 2);
  throwsKeel(() => db.getKeys().asArray, "READERS_FULL");
  assert.equal(db.getStats().readers, 2, "a refused iteration takes no slot");
  // Single reads do not need a reader slot.
  assert.equal(db.get(10), "v10");
  a.return?.();
  assert.equal(db.getStats().readers, 1);
  assert.deepEqual(db.getKeys({ limit: 2 }).asArray, [0, 10]);
  for (let x = b.next(); !x.done; x = b.next());
  assert.equal(db.getStats().readers, 0);
  await db.close();
});

test("a range iterated while writers churn reads one consistent snapshot", async () => {
  const { db } = memDb({ wal: false, pageSize: 1024 });
  await db.transaction((tx) => {
    for (let i = 0; i < 600; i++) tx.put(i, { gen: 0, pad: "p".repeat(50) });
  });
  const it = db.getRange()[Symbol.iterator]();
  const seen: Array<{ key: unknown; value: unknown }> = [];
  let gen = 0;
  for (let x = it.next(); !x.done; x = it.next()) {
    seen.push(x.value);
    if (seen.length % 50 === 0) {
      gen++;
      const g = gen;
      await db.transaction((tx) => {
        for (let i = 0; i < 600; i += 2) tx.put(i, { gen: g, pad: "q".repeat(60) });
        for (let i = 1; i < 600; i += 7) tx.remove(i);
      });
    }
  }
  assert.ok(gen > 5);
  assert.equal(seen.length, 600);
  assert.deepEqual(
    seen.map((e) => e.key),
    Array.from({ length: 600 }, (_, i) => i),
  );
  assert.ok(seen.every((e) => (e.value as { gen: number }).gen === 0), "every value from the snapshot");
  await db.close();
});

test("memory sweeps under a small cache never change what an open iteration's snapshot reads", async () => {
  // Copy-on-write clones share arrays with the node they copy (Node.ts): a sweep that swaps a
  // child of a newer root back to its page number must not write into an array the pinned
  // snapshot's root still reads, or that snapshot loads a page expecting the wrong txn (CORRUPT).
  const fs = new CrashFileSystem();
  const opts = { wal: false, pageSize: 1024, cacheSize: 64 * 1024 } as const;
  const first = memDb(opts, fs).db;
  const val = (i: number, r: number) => `${i}:${r}:`.padEnd(40, "v");
  await first.transaction((tx) => {
    for (let i = 0; i < 3000; i++) tx.put(i, val(i, 0));
  });
  await first.close();
  const { db } = memDb(opts, fs); // everything on disk: children are page numbers again
  // The snapshot pinned below is a commit's: its root is the node the next writer clones.
  await db.put(0, val(0, 0));
  const it = db.getRange()[Symbol.iterator]();
  const seen = [it.next().value as { key: number; value: string }];
  const rng = new Rng(7);
  for (let r = 1; r <= 60; r++) {
    const k = rng.int(3000);
    await db.put(k, val(k, r));
    for (let j = 0; j < 200; j++) db.get(rng.int(3000)); // loads pages: the cache sweeps
  }
  assert.ok(db.getStats().cache.sweeps > 10, "the cache swept");
  for (let x = it.next(); !x.done; x = it.next()) seen.push(x.value as { key: number; value: string });
  assert.equal(seen.length, 3000);
  for (const e of seen) assert.equal(e.value, val(e.key, 0), `key ${e.key} from the pinned snapshot`);
  await db.close();
});

test("an iteration keeps reading its snapshot while its sub-database is dropped and the pages are rewritten", async () => {
  const { db } = memDb({ wal: false, pageSize: 1024 });
  const s = db.openDB("s", { encoding: "binary" });
  const val = (i: number, r: number) => Buffer.alloc(i % 10 === 0 ? 2500 : 40, (i * 7 + r) & 0xff);
  await s.transaction((tx) => {
    for (let i = 0; i < 400; i++) tx.put(i, val(i, 0));
  });
  const it = s.getRange()[Symbol.iterator]();
  const seen: Array<{ key: unknown; value: unknown }> = [it.next().value];
  await db.dropDB("s");
  // Every commit is a checkpoint (wal: false): the freed pages would be reused at once if allowed.
  const t = db.openDB("t", { encoding: "binary" });
  for (let r = 1; r <= 12; r++) {
    await t.transaction((tx) => {
      for (let i = 0; i < 400; i++) tx.put(i, val(i, r));
    });
  }
  for (let x = it.next(); !x.done; x = it.next()) seen.push(x.value);
  assert.equal(seen.length, 400);
  for (const e of seen) assert.ok((e.value as Buffer).equals(val(e.key as number, 0)), `value of ${String(e.key)} from the dropped snapshot`);
  assert.equal(db.getStats().readers, 0);
  assert.deepEqual(db.listDBs(), ["t"]);
  await db.close();
});

// ---- transactions ----

test("an async transaction callback holds the write lock until its promise settles", async () => {
  const { db } = memDb({ wal: false });
  await db.put("b", "old");
  const order: string[] = [];
  let inside: { bDb: unknown; bTx: unknown; aDb: unknown } | undefined;
  let syncErr: unknown;
  const t = db.transaction(async (tx) => {
    tx.put("a", 1);
    await sleep(30);
    inside = { bDb: db.get("b"), bTx: tx.get("b"), aDb: db.get("a") };
    try {
      db.transactionSync((t2) => t2.put("c", 1));
    } catch (e) {
      syncErr = e;
    }
    await sleep(10);
    tx.put("a", 2);
    order.push("txn body done");
    return "result";
  });
  await sleep(5);
  const p = db.put("b", "new").then(() => order.push("put resolved"));
  const r = t.then((v) => {
    order.push("txn resolved");
    return v;
  });
  assert.equal(await r, "result");
  await p;
  assert.deepEqual(order, ["txn body done", "txn resolved", "put resolved"]);
  assert.deepEqual(inside, { bDb: "old", bTx: "old", aDb: undefined }, "the put queued during the transaction ran after it");
  assert.ok(syncErr instanceof KeelError && syncErr.code === "TXN", "transactionSync during an async transaction is TXN");
  assert.equal(db.get("a"), 2);
  assert.equal(db.get("b"), "new");
  assert.equal(db.get("c"), undefined);
  await db.close();
});

test("a throwing or rejecting transaction callback leaves no trace", async () => {
  const { db } = memDb({ wal: false });
  await db.put("keep", 1);
  const before = db.getStats();
  class Boom extends Error {}
  await assert.rejects(
    db.transaction((tx) => {
      tx.put("keep", 2);
      tx.put("x", 1);
      tx.remove("keep");
      throw new Boom();
    }),
    Boom,
  );
  await assert.rejects(
    db.transaction(async (tx) => {
      tx.put("y", 1);
      await sleep(1);
      tx.put("keep", 3);
      throw new Boom();
    }),
    Boom,
  );
  assert.throws(() =>
    db.transactionSync((tx) => {
      tx.put("z", 1);
      throw new Boom();
    }),
  Boom);
  const sub = db.openDB("never");
  await assert.rejects(
    sub.transaction((tx) => {
      tx.put("k", 1);
      throw new Boom();
    }),
    Boom,
  );
  assert.equal(db.get("keep"), 1);
  for (const k of ["x", "y", "z"]) assert.equal(db.doesExist(k), false);
  assert.deepEqual(db.listDBs(), [], "a failed transaction created no sub-database");
  const after = db.getStats();
  assert.equal(after.entries, before.entries);
  assert.equal(after.txnId, before.txnId, "the published txn did not move");
  assert.equal(after.checkpoints, before.checkpoints, "no checkpoint for failed transactions");
  // The database works on.
  await db.put("after", 1);
  assert.equal(db.get("after"), 1);
  await db.close();
});

test("a failing transaction does not take down the plain writes grouped with it", async () => {
  const { db } = memDb({ wal: false });
  const p1 = db.put("a", 1);
  const p2 = db.transaction(() => {
    throw new Error("no");
  });
  const p3 = db.put("b", 2);
  assert.equal(await p1, true);
  await assert.rejects(p2);
  assert.equal(await p3, true);
  assert.equal(db.get("a"), 1);
  assert.equal(db.get("b"), 2);
  await db.close();
});

test("transactionSync with an async callback is INVALID_ARGUMENT and keeps nothing", async () => {
  const { db } = memDb({ wal: false });
  const before = db.getStats().txnId;
  throwsKeel(
    () =>
      db.transactionSync(async (tx) => {
        tx.put("x", 1);
      }),
    "INVALID_ARGUMENT",
  );
  throwsKeel(() => db.transactionSync((tx) => (tx.put("y", 1), Promise.resolve(1))), "INVALID_ARGUMENT");
  assert.equal(db.doesExist("x"), false);
  assert.equal(db.doesExist("y"), false);
  assert.equal(db.getStats().txnId, before);
  // The write lock was released: a sync transaction works now.
  assert.equal(
    db.transactionSync((tx) => {
      tx.put("z", 1);
      return "ret";
    }),
    "ret",
  );
  assert.equal(db.get("z"), 1);
  await db.close();
});

test("inside a transaction, reads see its own writes; getRange re-seeks around its own changes", async () => {
  const { db } = await filled(30);
  await db.transaction((tx) => {
    tx.put(5, "five");
    assert.equal(tx.get(5), "five");
    assert.equal(tx.doesExist(5), true);
    assert.equal(db.get(5), undefined, "not visible outside before commit");
    tx.remove(10);
    assert.equal(tx.get(10), undefined);
    const seen: unknown[] = [];
    for (const e of tx.getRange({ start: 0, end: 100 })) {
      seen.push(e.key);
      // Remove the next key and insert one far ahead while iterating.
      tx.remove((e.key as number) + 10);
      tx.put((e.key as number) + 1000, "ahead");
    }
    assert.deepEqual(seen, [0, 5, 20, 40, 60, 80]);
    assert.equal(tx.txnId > 0, true);
  });
  assert.equal(db.get(5), "five");
  assert.equal(db.get(10), undefined);
  assert.equal(db.get(30), undefined);
  await db.close();
});

test("a tx.getRange iterator resumed after its transaction ended is TXN: rolled back, committed, or its pages since reused", async () => {
  for (const wal of [false, true]) {
    const { db } = memDb({ wal, pageSize: 1024, cacheSize: 64 * 1024 });
    await db.batch(Array.from({ length: 3000 }, (_, i) => ({ type: "put" as const, key: `k${String(i).padStart(5, "0")}`, value: `v${i}` })));
    const started = async (fail: boolean): Promise<Iterator<{ key: unknown; value: unknown }>> => {
      let it: Iterator<{ key: unknown; value: unknown }> | undefined;
      await db
        .transaction((tx) => {
          tx.put("k00000", "ROLLED-BACK");
          it = tx.getRange()[Symbol.iterator]();
          assert.deepEqual(it.next().value, { key: "k00000", value: "ROLLED-BACK" }, "inside: its own write");
          if (fail) throw new Error("roll back");
        })
        .catch(() => {});
      return it!;
    };
    const rolledBack = await started(true);
    throwsKeel(() => rolledBack.next(), "TXN", `wal ${wal}: resumed after a rollback`);
    assert.equal(db.get("k00000"), "v0", "the rolled-back write is nowhere");
    const committed = await started(false);
    throwsKeel(() => committed.next(), "TXN", `wal ${wal}: resumed after the commit`);
    // Its pages reused by later commits and checkpoints: still TXN, not a false CORRUPT.
    const stale = await started(false);
    for (let r = 0; r < 5; r++) {
      await db.batch(Array.from({ length: 500 }, (_, i) => ({ type: "put" as const, key: `k${String(i * 6 + r).padStart(5, "0")}`, value: `r${r}` })));
      await db.checkpoint();
    }
    throwsKeel(() => stale.next(), "TXN", `wal ${wal}: resumed after its pages were reused`);
    await db.close();
  }
});

test("tx.swap returns the value it replaced: inline and overflow, written in this transaction or read from disk", async () => {
  const fs = new CrashFileSystem();
  const big = (c: string) => c.repeat(20_000); // overflow pages at the default page size
  let db = openSync(DIR, { fs });
  await db.transaction((tx) => {
    assert.equal(tx.swap("a", "one"), undefined, "a new key");
    assert.equal(tx.swap("a", "two"), "one", "replaced within the transaction");
    assert.equal(tx.swap("b", big("x")), undefined);
    assert.equal(tx.swap("b", big("y")), big("x"), "an overflow value written in this transaction");
  });
  await db.close();
  db = openSync(DIR, { fs }); // nothing cached: the old values come from the file
  await db.transaction((tx) => {
    assert.equal(tx.swap("b", "small"), big("y"), "an overflow value read from its pages, which the swap frees");
    assert.equal(tx.swap("a", big("z")), "two");
    assert.equal(tx.get("b"), "small");
  });
  assert.equal(db.get("a"), big("z"));
  assert.equal(db.getStats().entries, 2);
  await db.close();
  db = openSync(DIR, { fs });
  assert.equal(db.get("a"), big("z"));
  assert.equal(db.get("b"), "small");
  await db.close();
});

test("puts and removes issued in one tick are one transaction and one checkpoint", async () => {
  const { db } = memDb({ wal: false });
  await db.put("seed", 0);
  const before = db.getStats();
  const ps: Array<Promise<boolean>> = [];
  for (let i = 0; i < 50; i++) ps.push(db.put(i, i));
  ps.push(db.remove("seed"));
  ps.push(db.remove("missing"));
  const results = await Promise.all(ps);
  assert.deepEqual(results.slice(0, 51), new Array(51).fill(true));
  assert.equal(results[51], false, "remove of a missing key resolves false");
  const after = db.getStats();
  assert.equal(after.checkpoints - before.checkpoints, 1, "one checkpoint for the whole tick");
  assert.equal(after.txnId - before.txnId, 1, "one transaction for the whole tick");
  assert.equal(after.entries, 50);
  // Writes in separate ticks are separate transactions.
  await db.put("a", 1);
  await db.put("b", 1);
  assert.equal(db.getStats().txnId - after.txnId, 2);
  await db.close();

  const { db: w } = memDb({});
  const b0 = w.getStats().txnId;
  await Promise.all(Array.from({ length: 20 }, (_, i) => w.put(i, i)));
  assert.equal(w.getStats().txnId - b0, 1, "with the log, too: one transaction per tick");
  await w.close();
});

test("200,000 puts issued in one tick all resolve, and a reopen finds exactly them (both modes)", async () => {
  // More writers in one group than a JavaScript call has argument slots: the group's
  // bookkeeping must not spread them into one call (a RangeError there once rejected every
  // writer of a commit whose log record was already written).
  for (const wal of [true, false]) {
    const fs = new CrashFileSystem();
    const db = openSync(DIR, { fs, wal });
    const n = 200_000;
    const ps: Array<Promise<boolean>> = [];
    for (let i = 0; i < n; i++) ps.push(db.put(i, i));
    const results = await Promise.allSettled(ps);
    const rejected = results.filter((r) => r.status === "rejected");
    assert.equal(rejected.length, 0, `wal ${wal}: ${rejected.length} writers rejected, first: ${String((rejected[0] as PromiseRejectedResult | undefined)?.reason)}`);
    assert.equal(db.getStats().entries, n);
    await db.close();
    const again = openSync(DIR, { fs, wal });
    assert.equal(again.getStats().entries, n, `wal ${wal}: reopen`);
    assert.equal(again.get(n - 1), n - 1);
    await again.close();
  }
});

test("putSync/removeSync are durable transactions of their own", async () => {
  const { db } = memDb({ wal: false });
  const t0 = db.getStats();
  assert.equal(db.putSync("a", 1), false, "putSync returns whether the key existed");
  assert.equal(db.putSync("a", 2), true);
  assert.equal(db.removeSync("a"), true);
  assert.equal(db.removeSync("a"), false);
  const t1 = db.getStats();
  assert.ok(t1.checkpoints - t0.checkpoints >= 3);
  await db.close();
});

// ---- sub-databases ----

test("openDB creates on first write; listDBs and dropDB; encodings persist across reopen", async () => {
  const fs = new CrashFileSystem();
  let db = openSync(DIR, { fs, wal: false });
  const users = db.openDB("users");
  const bin = db.openDB("bin", { keyEncoding: "binary", encoding: "binary" });
  assert.equal(db.openDB("users"), users, "the same handle for the same name and encodings");
  assert.deepEqual(db.listDBs(), [], "nothing exists before a write");
  await users.put("alice", { age: 30 });
  await bin.put(Buffer.from([1, 2]), Buffer.from([3]));
  await db.openDB("\u00e9t\u00e9").put(1, 1);
  assert.deepEqual(db.listDBs(), ["bin", "users", "\u00e9t\u00e9"]);
  assert.equal(db.get("alice"), undefined, "sub-databases are separate from the default one");
  assert.deepEqual(users.get("alice"), { age: 30 });
  // Stored encodings are enforced.
  const e = throwsKeel(() => db.openDB("users", { encoding: "json" }), "INVALID_ARGUMENT");
  assert.equal(e.details.name, "users");
  throwsKeel(() => db.openDB("bin", { keyEncoding: "string" }), "INVALID_ARGUMENT");
  throwsKeel(() => db.openDB(""), "INVALID_ARGUMENT");
  throwsKeel(() => db.openDB("n".repeat(5000)), "INVALID_ARGUMENT");
  assert.equal(await db.dropDB("\u00e9t\u00e9"), true);
  assert.equal(await db.dropDB("nope"), false);
  await rejectsKeel(db.dropDB(""), "INVALID_ARGUMENT");
  assert.deepEqual(db.listDBs(), ["bin", "users"]);
  // The handle from before the drop would create the name again with its own encodings (msgpack),
  // so other encodings are refused until a reopen, and it names the handle's.
  const stale = throwsKeel(() => db.openDB("été", { encoding: "string" }), "INVALID_ARGUMENT");
  assert.deepEqual(stale.details.stored, { keyEncoding: "ordered-binary", encoding: "msgpack" });
  await db.close();

  db = openSync(DIR, { fs, wal: false });
  assert.deepEqual(db.listDBs(), ["bin", "users"]);
  const bin2 = db.openDB("bin"); // no options: the stored encodings
  assert.equal(bin2.keyEncoding, "binary");
  assert.equal(bin2.valueEncoding, "binary");
  assert.ok((bin2.get(Buffer.from([1, 2])) as Buffer).equals(Buffer.from([3])));
  assert.deepEqual(db.openDB("users").get("alice"), { age: 30 });
  throwsKeel(() => db.openDB("users", { keyEncoding: "binary" }), "INVALID_ARGUMENT");
  // A dropped name can be created again with other encodings.
  const again = db.openDB("\u00e9t\u00e9", { encoding: "string" });
  assert.equal(again.get(1), undefined, "the dropped database stays dropped");
  await again.put(1, "s");
  assert.equal(again.get(1), "s");
  await db.close();
  db = openSync(DIR, { fs, wal: false });
  assert.equal(db.openDB("\u00e9t\u00e9").valueEncoding, "string");
  assert.equal(db.openDB("\u00e9t\u00e9").get(1), "s");
  await db.close();
});

test("reopening the database with other default encodings is INVALID_ARGUMENT", async () => {
  const fs = new CrashFileSystem();
  const db = openSync(DIR, { fs, wal: false, encoding: "json" });
  await db.put("k", { a: 1 });
  await db.close();
  for (const o of [{ encoding: "msgpack" }, { keyEncoding: "binary" }] as const) {
    const e = throwsKeel(() => openSync(DIR, { fs, wal: false, ...o }), "INVALID_ARGUMENT", JSON.stringify(o));
    assert.equal(e.details.option, "encoding");
  }
  const ok = openSync(DIR, { fs, wal: false });
  assert.equal(ok.valueEncoding, "json", "no encoding option: the stored one");
  assert.deepEqual(ok.get("k"), { a: 1 });
  await ok.close();
});

test("two handles to one new sub-database with different encodings cannot both write into it", async () => {
  // openDB checks encodings only against a sub-database that already exists; two handles opened
  // before the first write may disagree, and the second one's writes land in a database stored
  // under the first one's encodings.
  const { db } = memDb({ wal: false });
  const asJson = db.openDB("x", { encoding: "json" });
  let asString;
  try {
    asString = db.openDB("x", { encoding: "string" });
  } catch (e) {
    assert.ok(e instanceof KeelError && e.code === "INVALID_ARGUMENT");
    await db.close();
    return; // refused at openDB: fine
  }
  await asString.put("s", "plain text");
  await rejectsKeel(asJson.put("j", { a: 1 }), "INVALID_ARGUMENT", "a write under encodings the sub-database was not created with");
  await db.close();
});

test("bad arguments to openDB, dropDB, transaction, getRange and put are INVALID_ARGUMENT, and leave nothing behind", async () => {
  const { db } = memDb({ wal: false });
  const bad = db as unknown as Record<string, (...a: unknown[]) => unknown>;
  throwsKeel(() => bad.openDB!.call(db, "x", { encoding: "yaml" }), "INVALID_ARGUMENT", "unknown encoding");
  throwsKeel(() => bad.openDB!.call(db, "x", { keyEncoding: "yaml" }), "INVALID_ARGUMENT", "unknown keyEncoding");
  throwsKeel(() => bad.openDB!.call(db, "x", "json"), "INVALID_ARGUMENT", "options not an object");
  // The refused calls registered nothing: "x" opens with any valid encodings and works.
  const x = db.openDB("x", { encoding: "string" });
  await x.put("k", "v");
  assert.equal(x.get("k"), "v");
  await rejectsKeel(bad.dropDB!.call(db, 7) as Promise<unknown>, "INVALID_ARGUMENT", "dropDB of a number");
  await rejectsKeel(bad.transaction!.call(db, 5) as Promise<unknown>, "INVALID_ARGUMENT", "transaction without a callback");
  throwsKeel(() => bad.transactionSync!.call(db, null), "INVALID_ARGUMENT", "transactionSync without a callback");
  throwsKeel(() => [...(bad.getRange!.call(db, "abc") as Iterable<unknown>)], "INVALID_ARGUMENT", "range options not an object");
  // msgpack would store a function as undefined: a key that exists with nothing to read back.
  await rejectsKeel(db.put("f", () => 1), "INVALID_ARGUMENT", "a function value");
  assert.equal(db.doesExist("f"), false);
  assert.deepEqual(db.listDBs(), ["x"]);
  await db.close();
});

test("clear() empties one sub-database atomically", async () => {
  const { db } = memDb({ wal: false });
  const s = db.openDB("s");
  await s.transaction((tx) => {
    for (let i = 0; i < 500; i++) tx.put(i, "x".repeat(i % 3 === 0 ? 3000 : 20));
  });
  await db.put("d", 1);
  await s.clear();
  assert.equal(s.getCount(), 0);
  assert.deepEqual(s.getKeys().asArray, []);
  assert.equal(db.get("d"), 1);
  assert.deepEqual(db.listDBs(), ["s"], "a cleared sub-database still exists");
  const st = db.getStats();
  assert.equal(st.dbs["s"]!.entries, 0);
  assert.equal(st.dbs["s"]!.overflowPages, 0);
  await db.close();
});

// ---- close ----

test("after close: reads throw CLOSED, writes and transactions reject with CLOSED", async () => {
  const { db } = await filled(10);
  const sub = db.openDB("s");
  await sub.put(1, 1);
  const range = db.getRange();
  await db.close();
  assert.equal(db.isClosed, true);
  throwsKeel(() => db.get(0), "CLOSED", "get");
  throwsKeel(() => db.doesExist(0), "CLOSED", "doesExist");
  throwsKeel(() => db.getBinary(0), "CLOSED", "getBinary");
  throwsKeel(() => sub.get(1), "CLOSED", "sub get");
  throwsKeel(() => db.getRange().asArray, "CLOSED", "getRange");
  throwsKeel(() => range.asArray, "CLOSED", "a range made before close");
  throwsKeel(() => db.getCount(), "CLOSED", "getCount");
  throwsKeel(() => db.getStats(), "CLOSED", "getStats");
  throwsKeel(() => db.listDBs(), "CLOSED", "listDBs");
  throwsKeel(() => db.openDB("s"), "CLOSED", "openDB");
  await rejectsKeel(db.put(1, 1), "CLOSED", "put");
  await rejectsKeel(sub.put(2, 2), "CLOSED", "sub put");
  await rejectsKeel(db.remove(1), "CLOSED", "remove");
  await rejectsKeel(db.transaction(() => 1), "CLOSED", "transaction");
  await rejectsKeel(db.clear(), "CLOSED", "clear");
  await rejectsKeel(db.dropDB("s"), "CLOSED", "dropDB");
  await rejectsKeel(db.sync(), "CLOSED", "sync");
  await rejectsKeel(db.checkpoint(), "CLOSED", "checkpoint");
  throwsKeel(() => db.transactionSync(() => 1), "CLOSED", "transactionSync");
  throwsKeel(() => db.putSync(1, 1), "CLOSED", "putSync");
  await rejectsKeel(db.flushed(), "CLOSED", "flushed");
  await db.close(); // a second close is a no-op
});

test("close() returns the same promise every time, so a failed close stays failed when called again", async () => {
  for (const opts of [{}, { wal: false, noSync: true }] as const) {
    const ffs = new FaultFileSystem(new CrashFileSystem());
    const db = openSync(DIR, { fs: ffs, ...opts });
    await db.put("a", 1);
    ffs.failEvery(["sync", "syncAsync", "write"], "EIO");
    const first = db.close();
    const second = db.close();
    assert.equal(first, second);
    await rejectsKeel(first, "IO", `${JSON.stringify(opts)}: the close fails`);
    const third = db.close();
    assert.equal(third, first, "called again after it failed: the same (rejected) promise");
    await rejectsKeel(third, "IO", "still failed");
    assert.equal(db.isClosed, true);
  }
  const { db } = memDb();
  const p = db.close();
  await p;
  assert.equal(db.close(), p, "after a clean close too");
});

test("close waits for queued writes", async () => {
  const { db, fs } = memDb({ wal: false });
  const pending = [db.put("a", 1), db.transaction((tx) => tx.put("b", 2)), db.put("c", 3)];
  await db.close();
  assert.deepEqual(await Promise.all(pending), [true, false, true]);
  const again = openSync(DIR, { fs, wal: false });
  assert.deepEqual(again.getKeys().asArray, ["a", "b", "c"]);
  await again.close();
});

test("an iteration running across close ends with CLOSED, wherever it stands", async () => {
  // Reopened databases read nodes from disk as the iteration goes: stopping at every position of
  // the first leaves also stops right before a step that must read the next leaf from the file.
  const fs = new CrashFileSystem();
  const db0 = openSync(DIR, { fs, wal: false, pageSize: 1024 });
  await db0.transaction((tx) => {
    for (let i = 0; i < 2000; i++) tx.put(i, "v".repeat(30));
  });
  await db0.close();
  const codes = new Map<string, number>();
  for (let stop = 1; stop <= 60; stop++) {
    const db = openSync(DIR, { fs, wal: false, pageSize: 1024 });
    const it = db.getKeys()[Symbol.iterator]();
    for (let i = 0; i < stop; i++) it.next();
    await db.close();
    let err: unknown;
    try {
      it.next();
    } catch (e) {
      err = e;
    }
    const c = err instanceof KeelError ? err.code : `untyped ${String(err)}`;
    codes.set(c, (codes.get(c) ?? 0) + 1);
  }
  assert.deepEqual([...codes], [["CLOSED", 60]], "every iteration stopped by close reports CLOSED");
});

// ---- stats ----

test("getStats: entries sum over sub-databases, and every page is counted once", async () => {
  const { db } = memDb({ wal: false, pageSize: 1024 });
  const a = db.openDB("a");
  const b = db.openDB("b", { encoding: "binary" });
  const check = (label: string) => {
    const st = db.getStats();
    const names = Object.keys(st.dbs).sort();
    assert.deepEqual(names, ["", ...db.listDBs()].sort(), `${label}: dbs`);
    let entries = 0;
    let depth = 0;
    let overflow = 0;
    for (const n of names) {
      entries += st.dbs[n]!.entries;
      depth = Math.max(depth, st.dbs[n]!.depth);
      overflow += st.dbs[n]!.overflowPages;
      assert.equal(st.dbs[n]!.entries, (n === "" ? db : db.openDB(n)).getCount(), `${label}: count of "${n}"`);
    }
    assert.equal(st.entries, entries, `${label}: entries`);
    assert.equal(st.depth, depth, `${label}: depth`);
    assert.equal(st.overflowPages, overflow, `${label}: overflow pages`);
    assert.equal(st.pageSize, 1024);
    assert.equal(st.totalPages, db.engine.pager.highWater);
    assert.ok(st.fileBytes >= st.totalPages * st.pageSize, `${label}: file bytes`);
    // Meta pages + tree pages (catalog included) + overflow runs + free pages + the free list's own
    // segments: exactly the pages of the file.
    const chain = db.engine.freelistChain;
    const flRun = chain.basePages + chain.deltaPages;
    assert.equal(2 + st.branchPages + st.leafPages + st.overflowPages + st.freePages + flRun, st.totalPages, `${label}: page accounting`);
    assert.equal(st.readers, 0);
    assert.equal(st.dbs["b"]?.encoding ?? "binary", "binary");
    return st;
  };
  const s0 = check("empty");
  for (let r = 0; r < 8; r++) {
    await db.transaction((tx) => {
      for (let i = 0; i < 150; i++) {
        tx.for(a).put(i, { r, pad: "a".repeat(r * 10) });
        if (i % 4 === r % 4) tx.put(`d${i}`, r);
        if (i % 25 === 0) tx.for(b).put(`big${i}`, Buffer.alloc(1500 + r * 200, r));
        if (r > 3 && i % 3 === 0) tx.for(a).remove(i);
      }
    });
    check(`round ${r}`);
  }
  const s1 = check("end");
  assert.ok(s1.txnId > s0.txnId);
  assert.ok(s1.checkpoints > s0.checkpoints);
  assert.ok(s1.freePages > 0, "rewrites left free pages");
  assert.equal(s1.maxReaders, 126);
  await db.dropDB("b");
  const s2 = check("after drop");
  assert.equal(s2.dbs["b"], undefined);
  assert.equal(s2.overflowPages, 0);
  await db.close();
});

// ---- read-only, meta fallback ----

test("readOnly: reads work, every write is READ_ONLY, a missing database is NOT_FOUND", async () => {
  const fs = new CrashFileSystem();
  const w = openSync(DIR, { fs, wal: false });
  await w.put("k", 1);
  await w.openDB("s").put("x", 2);
  await w.close();
  const db = openSync(DIR, { fs, readOnly: true });
  assert.equal(db.get("k"), 1);
  assert.equal(db.openDB("s").get("x"), 2);
  assert.deepEqual(db.getKeys().asArray, ["k"]);
  await rejectsKeel(db.put("k", 2), "READ_ONLY", "put");
  await rejectsKeel(db.remove("k"), "READ_ONLY", "remove");
  await rejectsKeel(db.transaction(() => 1), "READ_ONLY", "transaction");
  await rejectsKeel(db.openDB("s").put("y", 1), "READ_ONLY", "sub put");
  await rejectsKeel(db.dropDB("s"), "READ_ONLY", "dropDB");
  throwsKeel(() => db.putSync("k", 2), "READ_ONLY", "putSync");
  throwsKeel(() => db.transactionSync(() => 1), "READ_ONLY", "transactionSync");
  assert.equal(db.get("k"), 1);
  await db.close();
  await rejectsKeel(open("/nothing-here", { fs, readOnly: true }), "NOT_FOUND");
  assert.equal(fs.stat("/nothing-here"), undefined, "a read-only open created nothing");
});

test("a damaged newest meta: open uses the older one and getStats reports the fallback", async () => {
  const fs = new CrashFileSystem();
  const db = openSync(DIR, { fs, wal: false, pageSize: 1024 });
  await db.put("a", 1);
  await db.put("b", 2);
  const newest = db.engine.newest;
  const lostTxn = db.getStats().txnId;
  await db.close();
  const f = fs.open(DIR + "/data.keel", "rw");
  const b = Buffer.alloc(1);
  f.read(b, 0, 1, newest * 1024 + 100);
  b[0]! ^= 0xff;
  f.write(b, 0, 1, newest * 1024 + 100);
  f.close();
  const warnings: string[] = [];
  const onWarning = (w: Error & { code?: string }) => warnings.push(w.code ?? "");
  process.on("warning", onWarning);
  try {
    const db2 = openSync(DIR, { fs, wal: false, pageSize: 1024 });
    await new Promise((r) => setImmediate(r));
    assert.equal(db2.get("a"), 1);
    assert.equal(db2.get("b"), undefined, "wal: false: the last commit group is lost");
    const st = db2.getStats();
    assert.ok(st.metaFallback, "getStats reports the fallback");
    assert.equal(st.metaFallback.slot, newest);
    assert.equal(st.metaFallback.reason, "checksum");
    assert.equal(st.metaFallback.claimedTxn, lostTxn);
    assert.ok(warnings.includes("KEEL_META_FALLBACK"), "a process warning is emitted");
    // New commits get txn ids past the lost one.
    await db2.put("c", 3);
    assert.ok(db2.getStats().txnId > lostTxn);
    await db2.close();
    const db3 = openSync(DIR, { fs, wal: false });
    assert.deepEqual(db3.getKeys().asArray, ["a", "c"]);
    await db3.close();
  } finally {
    process.off("warning", onWarning);
  }
});

test("a newest meta whose txn or applied LSN is 2^53 or more (checksum valid) is damage: the older one is used, and later commits survive", async () => {
  for (const field of ["txn", "appliedLsn"] as const) {
    for (const wal of [false, true]) {
      const fs = new CrashFileSystem();
      const db = openSync(DIR, { fs, wal, pageSize: 1024 });
      await db.put("a", 1);
      await db.checkpoint();
      await db.put("b", 2);
      await db.checkpoint();
      const newest = db.engine.newest;
      await db.close();
      const f = fs.open(DIR + "/data.keel", "rw");
      const page = Buffer.alloc(1024);
      f.read(page, 0, 1024, newest * 1024);
      page.writeUInt32LE(0x200000, field === "txn" ? 12 : 84); // the high word: 2^53
      seal(page); // only the field is wrong
      f.write(page, 0, 1024, newest * 1024);
      f.close();
      const what = `${field}, wal ${wal}`;
      const onWarning = () => {};
      process.on("warning", onWarning);
      try {
        const db2 = openSync(DIR, { fs, wal, pageSize: 1024 });
        assert.equal(db2.getStats().metaFallback?.reason, "counter-range", what);
        assert.equal(db2.get("a"), 1, what);
        // With the log, b is replayed; without it, the last commit group is lost, as for any damaged newest meta.
        assert.equal(db2.get("b"), wal ? 2 : undefined, what);
        for (let i = 0; i < 3; i++) await db2.put(`k${i}`, i);
        assert.ok(Number.isSafeInteger(db2.getStats().txnId), `${what}: txn ids stay countable`);
        await db2.close();
        const db3 = openSync(DIR, { fs, wal, pageSize: 1024 });
        assert.deepEqual(db3.getKeys().asArray, wal ? ["a", "b", "k0", "k1", "k2"] : ["a", "k0", "k1", "k2"], `${what}: acknowledged commits after the open survive`);
        await db3.close();
      } finally {
        process.off("warning", onWarning);
      }
    }
  }
});

test("slot 0's page-size field damaged: slot 1 is still found (every page size is tried) and open uses it", async () => {
  const fs = new CrashFileSystem();
  const db = openSync(DIR, { fs, wal: false, pageSize: 1024 });
  for (let i = 0; i < 3; i++) await db.put(`k${i}`, i); // a checkpoint each: both slots hold a meta
  await db.close();
  const f = fs.open(DIR + "/data.keel", "rw");
  const b = Buffer.alloc(4);
  b.writeUInt32LE(8192);
  f.write(b, 0, 4, 40); // slot 0's page size: 1024 -> 8192, a valid size, its checksum now fails
  f.close();
  const onWarning = () => {};
  process.on("warning", onWarning);
  try {
    const db2 = openSync(DIR, { fs, wal: false, pageSize: 1024 });
    assert.deepEqual([db2.get("k0"), db2.get("k1")], [0, 1], "the state slot 1 names");
    assert.equal(db2.getStats().pageSize, 1024);
    await db2.put("after", 1);
    await db2.close();
  } finally {
    process.off("warning", onWarning);
  }
});

// ---- page size ----

test("opening with a pageSize other than the file's is VERSION naming both; the lock is released", async (t) => {
  const dir = tempDir(t);
  const db = await open(dir, { wal: false, pageSize: 1024 });
  await db.put("k", "v");
  await db.close();
  let err: unknown;
  try {
    await open(dir, { wal: false, pageSize: 4096 });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof KeelError);
  assert.equal(err.code, "VERSION");
  assert.equal(err.details.pageSize, 1024);
  assert.equal(err.details.requested, 4096);
  // The failed open released its lock: a correct open works.
  const again = await open(dir, { wal: false });
  assert.equal(again.get("k"), "v");
  assert.equal(again.getStats().pageSize, 1024);
  await again.close();
  const same = await open(dir, { wal: false, pageSize: 1024 });
  await same.close();
});

test("tx.for refuses what is not a handle of this database; null options and empty paths of the maintenance calls are INVALID_ARGUMENT", async () => {
  const { db } = memDb();
  const { db: other } = memDb();
  const orders = other.openDB("orders");
  await db.put("a", 1);
  for (const [what, arg] of [
    ["a handle of another database", orders],
    ["another database itself", other],
    ["undefined", undefined],
    ["a plain object", {}],
  ] as const) {
    await rejectsKeel(
      db.transaction((tx) => tx.for(arg as never).put("x", 1)),
      "INVALID_ARGUMENT",
      what,
    );
  }
  assert.deepEqual(db.listDBs(), [], "nothing was created in this database");
  assert.equal(other.openDB("orders").getCount(), 0);
  // A handle of this database works.
  await db.transaction((tx) => tx.for(db.openDB("mine")).put("x", 1));
  assert.equal(db.openDB("mine").get("x"), 1);
  throwsKeel(() => db.getCount(null as never), "INVALID_ARGUMENT", "getCount(null)");
  throwsKeel(() => db.openTxLog(1, undefined, null as never), "INVALID_ARGUMENT", "openTxLog(1, undefined, null)");
  await rejectsKeel(db.createSnapshot(null as never), "INVALID_ARGUMENT", "createSnapshot(null)");
  await rejectsKeel(db.backup("/bk", null as never), "INVALID_ARGUMENT", "backup(dest, null)");
  await rejectsKeel(db.backup("", {}), "INVALID_ARGUMENT", "backup('')");
  await rejectsKeel(db.backup(Symbol("x") as never), "INVALID_ARGUMENT", "backup(Symbol)");
  await rejectsKeel(db.compact(""), "INVALID_ARGUMENT", "compact('')");
  await rejectsKeel(db.verify(null as never), "INVALID_ARGUMENT", "verify(null)");
  await db.close();
  await other.close();
});
