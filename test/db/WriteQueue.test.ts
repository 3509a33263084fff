/**
 * WriteQueue group items (the server's batching of many clients' commands): callbacks share one
 * transaction and one log record only where that cannot be told apart from one transaction each,
 * in order. Runs on the real engine over the in-memory crash file system, with the log on.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { KeelError, openSync, type Database } from "../../src/index.js";
import { CrashFileSystem } from "../../src/io/CrashFileSystem.js";
import { FaultFileSystem } from "../../src/io/FaultFileSystem.js";
import type { Transaction } from "../../src/db/Transaction.js";
import type { Settled } from "../../src/db/WriteQueue.js";
import { memDb, rejectsKeel } from "./dbUtil.js";

type Fn = (tx: Transaction) => unknown;

function group(db: Database, fns: Fn[], hooks: { onStart?: () => void; onRetry?: () => void } = {}): Promise<Settled[]> {
  return db.enqueue({ kind: "group", db, fns, ...hooks }) as Promise<Settled[]>;
}

const lsn = (db: Database) => db.txlogWatermarks().lastCommittedLsn;

function keelCode(s: Settled | undefined): string {
  assert.equal(s?.status, "rejected");
  const e = (s as { reason: unknown }).reason;
  assert.ok(e instanceof KeelError, String(e));
  return e.code;
}

test("group: callbacks share one transaction and one log record, each sees the earlier ones' writes; an error thrown before any change is that callback's alone", async () => {
  const { db } = memDb();
  await db.put("seed", 1);
  const before = lsn(db);
  let starts = 0;
  let retries = 0;
  const fns: Fn[] = [
    (tx) => {
      tx.put("a", 1);
      return "one";
    },
    (tx) => {
      const a = tx.get("a") as number;
      tx.put("b", a + 1);
      return a;
    },
    (tx) => {
      if (tx.get("b") === 2) throw new Error("refused before writing");
      tx.put("never", 1);
    },
    (tx) => tx.get("b"),
  ];
  const p = group(db, fns, { onStart: () => void starts++, onRetry: () => void retries++ });
  // Until the item starts, callbacks may still join it.
  fns.push((tx) => tx.remove("seed"));
  const out = await p;
  assert.deepEqual(
    out.map((o) => (o.status === "fulfilled" ? o.value : (o.reason as Error).message)),
    ["one", 1, "refused before writing", 2, true],
  );
  assert.equal(starts, 1);
  assert.equal(retries, 0);
  assert.equal(lsn(db) - before, 1, "one log record for the whole group");
  assert.deepEqual([db.get("a"), db.get("b"), db.get("never"), db.get("seed")], [1, 2, undefined, undefined]);
  await db.close();
});

test("group: a callback that throws after a change undoes the shared attempt; then each runs alone, in order, with the results of one transaction each", async () => {
  const { db } = memDb({ maxValueSize: 64 });
  const before = lsn(db);
  let retries = 0;
  const out = await group(
    db,
    [
      (tx) => tx.put("x", 1),
      (tx) => {
        tx.put("half", 1);
        tx.put("big", "z".repeat(200)); // INVALID_ARGUMENT after a change: cannot be taken out alone
      },
      (tx) => tx.get("half"),
      (tx) => {
        tx.put("y", 2);
        return tx.get("x");
      },
    ],
    { onRetry: () => void retries++ },
  );
  assert.equal(retries, 1);
  assert.equal(out[0]?.status, "fulfilled");
  assert.equal(keelCode(out[1]), "INVALID_ARGUMENT");
  assert.deepEqual(out[2], { status: "fulfilled", value: undefined }, "the failed callback's first write is not seen");
  assert.deepEqual(out[3], { status: "fulfilled", value: 1 });
  assert.equal(lsn(db) - before, 2, "one record per writing callback that committed (x, y)");
  assert.deepEqual([db.get("x"), db.get("half"), db.get("big"), db.get("y")], [1, undefined, undefined, 2]);
  await db.close();
});

test("group: a callback must be synchronous; one that returns a promise is refused, and any write it made is undone", async () => {
  const { db } = memDb();
  const out = await group(db, [
    () => Promise.resolve(1),
    (tx) => tx.put("k", 1),
    (tx) => {
      tx.put("async", 1);
      return Promise.resolve(2);
    },
  ]);
  assert.equal(keelCode(out[0]), "INVALID_ARGUMENT");
  assert.equal(out[1]?.status, "fulfilled");
  assert.equal(keelCode(out[2]), "INVALID_ARGUMENT");
  assert.deepEqual([db.get("k"), db.get("async")], [1, undefined]);
  await db.close();
});

test("group: a write to the database from inside a callback is refused (TXN) instead of deadlocking", async () => {
  const { db } = memDb();
  let inner: Promise<unknown> | undefined;
  const out = await group(db, [
    () => {
      inner = db.put("nested", 1);
    },
  ]);
  assert.equal(out[0]?.status, "fulfilled");
  assert.ok(inner);
  await rejectsKeel(inner, "TXN");
  assert.equal(db.get("nested"), undefined);
  await db.close();
});

test("group: a failed log sync rejects the whole group, whose writes are then not seen", async () => {
  const crash = new CrashFileSystem();
  const ffs = new FaultFileSystem(crash);
  const db = openSync("/db", { fs: ffs, durability: "strict" });
  await db.put("before", 1);
  ffs.failEvery("sync", "EIO");
  let err: unknown;
  await group(db, [(tx) => tx.put("a", 1), (tx) => tx.put("b", 2)]).catch((e) => (err = e));
  ffs.clearFaults();
  assert.ok(err instanceof KeelError && err.code === "IO", String(err));
  assert.deepEqual([db.get("before"), db.get("a"), db.get("b")], [1, undefined, undefined]);
  await db.close().catch(() => undefined); // a failed log is final: close reports it again
  // (After a restart the unsynced record may or may not be there, as after any crash: it was never
  // acknowledged.) The acknowledged write is.
  const again = openSync("/db", { fs: crash });
  assert.equal(again.get("before"), 1);
  await again.close();
});

test("flushed() and close() wait for the writes queued before the call, not for a writer that never stops; writes after close() are CLOSED", async () => {
  for (const durability of ["strict", "relaxed"] as const) {
    const fs = new CrashFileSystem();
    const db = openSync("/db", { fs, durability });
    let puts = 0;
    let stopped: unknown;
    const writer = (async () => {
      try {
        for (;;) {
          await db.put(`k${puts % 50}`, puts);
          puts++;
        }
      } catch (e) {
        stopped = e;
      }
    })();
    await new Promise((r) => setTimeout(r, 20));
    // A put queued right before flushed(): settled when flushed() resolves.
    let earlierSettled = false;
    void db.put("earlier", 1).then(() => (earlierSettled = true));
    await db.flushed();
    assert.ok(earlierSettled, `${durability}: flushed() resolved before a write queued ahead of it settled`);
    const before = puts;
    await db.close();
    await writer;
    assert.ok(stopped instanceof KeelError && stopped.code === "CLOSED", `${durability}: the writer should stop with CLOSED, got ${String(stopped)}`);
    assert.ok(puts - before < 1000, `${durability}: close() let ${puts - before} more puts in`);
    // Everything acknowledged is there after a reopen.
    const again = openSync("/db", { fs, durability });
    assert.equal(again.get("earlier"), 1);
    assert.equal(again.get(`k${(puts - 1) % 50}`), puts - 1, `${durability}: the last acknowledged put`);
    await again.close();
  }
});

test("db.createSnapshot(), db.flushed() and db.close() called inside a transaction callback are TXN, not a deadlock", async () => {
  const { db } = memDb();
  await db.put("a", 1);
  for (const call of ["createSnapshot", "flushed", "close"] as const) {
    const r = await db.transaction(async (tx) => {
      tx.put("t", call);
      try {
        await db[call]();
        return "resolved";
      } catch (e) {
        return e instanceof KeelError ? e.code : String(e);
      }
    });
    assert.equal(r, "TXN", `db.${call}() inside a transaction`);
    assert.equal(db.get("t"), call, "the transaction went on and committed");
  }
  await db.close();
});

test("once close() has begun, writes and maintenance calls are CLOSED (they would interleave with close's checkpoint); close() returns one promise", async () => {
  const { db } = memDb();
  await db.put("a", 1);
  const closing = db.close();
  assert.equal(db.close(), closing);
  await rejectsKeel(db.put("b", 2), "CLOSED", "put");
  await rejectsKeel(db.checkpoint(), "CLOSED", "checkpoint");
  await rejectsKeel(db.sync(), "CLOSED", "sync");
  await rejectsKeel(db.createSnapshot(), "CLOSED", "createSnapshot");
  await rejectsKeel(db.backup("/bk"), "CLOSED", "backup");
  await rejectsKeel(db.verify(), "CLOSED", "verify");
  await rejectsKeel(db.gcTxlogSegments(), "CLOSED", "gcTxlogSegments");
  await closing;
});

test("a burst of transaction() calls in one turn is drained in groups of at most MAX_GROUP_ITEMS (each holds the nodes it copied until published: an unbounded group ran the heap out), in order, all committed", async () => {
  const { subscribe, unsubscribe } = await import("node:diagnostics_channel");
  const { MAX_GROUP_ITEMS } = await import("../../src/db/WriteQueue.js");
  const { db } = memDb();
  const sizes: number[] = [];
  const onGroup = (m: unknown) => sizes.push((m as { items: number }).items);
  subscribe("keeldb:write-group", onGroup);
  try {
    const n = 2 * MAX_GROUP_ITEMS + 100;
    const order: number[] = [];
    const ps: Promise<unknown>[] = [];
    for (let i = 0; i < n; i++) {
      ps.push(
        db.transaction((tx) => {
          order.push(i);
          tx.put(`k${i % 500}`, i);
        }),
      );
    }
    await Promise.all(ps);
    assert.deepEqual(sizes, [MAX_GROUP_ITEMS, MAX_GROUP_ITEMS, 100]);
    assert.deepEqual(order, Array.from({ length: n }, (_, i) => i), "callbacks ran in call order");
    const last = new Map<number, number>();
    for (let i = 0; i < n; i++) last.set(i % 500, i);
    for (const [k, i] of last) assert.equal(db.get(`k${k}`), i, `k${k} holds its last write`);
  } finally {
    unsubscribe("keeldb:write-group", onGroup);
    await db.close();
  }
});
