/**
 * Engine unit tests: create/open/checkpoint/reopen, transaction misuse, the release limit (I2: a page
 * a registered reader can reach is never rewritten), and failing checkpoints (before the meta write:
 * nothing changes; after it: reopen picks a valid state, and pages the failed meta names are not
 * handed out again while that meta may be chosen).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { treeGet } from "../../src/btree/BTree.js";
import { KeelError } from "../../src/errors.js";
import { FaultFileSystem } from "../../src/io/FaultFileSystem.js";
import { encodeMeta, probeMeta } from "../../src/pager/Meta.js";
import { FORMAT_VERSION } from "../../src/pager/PageLayout.js";
import { DATA_FILE, Engine } from "../../src/txn/Engine.js";
import {
  DIR,
  apply,
  assertModel,
  bytes,
  cloneModel,
  commit,
  ensureDb,
  key,
  memFs,
  openEngine,
  pageImages,
  readSnapshot,
  readTree,
  treePages,
  type DbModel,
} from "./engineUtil.js";

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof KeelError, `expected a KeelError, got ${String(e)}`);
    return e.code;
  }
  assert.fail("expected a KeelError");
}

test("create, commit, checkpoint, reopen: the state survives and the metas alternate", () => {
  const fs = memFs();
  const e = openEngine(fs);
  assert.equal(e.report.created, true);
  assert.equal(e.head.txn, 0);
  assert.equal(e.head.dbs.size, 0);
  assert.ok(e.metas[0] && !e.metas[1], "a new file has one meta");
  const model: DbModel = new Map();
  commit(e, (w) => {
    apply(w, model, "", Array.from({ length: 200 }, (_, i) => [key(i), bytes(i, 20 + (i % 50))] as [string, Buffer]));
    apply(w, model, "other", [
      ["big", bytes(1, 5000)],
      ["small", bytes(2, 3)],
    ]);
  });
  assert.equal(e.head.txn, 1);
  assert.equal(e.needsCheckpoint, true);
  const info = e.checkpoint();
  assert.ok(info);
  assert.equal(info.txn, 1);
  assert.equal(e.durable, e.head);
  assert.equal(e.needsCheckpoint, false);
  assert.equal(e.newest, 1, "the first checkpoint writes slot 1");
  assert.equal(e.checkpoint(), null, "nothing to checkpoint");
  commit(e, (w) => apply(w, model, "", [[key(5), null], [key(500), bytes(500, 10)]]));
  e.checkpoint();
  assert.equal(e.newest, 0);
  assertModel(readSnapshot(e, e.head, "before close"), model, "before close");
  e.close();

  const e2 = openEngine(fs);
  assert.equal(e2.report.created, false);
  assert.equal(e2.head.txn, 2);
  assert.equal(e2.newest, 0);
  assert.equal(e2.metas[0]!.txn, 2);
  assert.equal(e2.metas[1]!.txn, 1);
  assertModel(readSnapshot(e2, e2.head, "reopened"), model, "reopened");
  assert.equal(e2.head.dbs.get("other")!.keyEncoding, "binary");
  // New transactions continue the txn sequence.
  const w = e2.beginWrite();
  assert.equal(w.txn, 3);
  e2.abortWrite(w);
  e2.close();
});

test("an engine opens with the page size of the file, and refuses another with VERSION", () => {
  const fs = memFs();
  openEngine(fs, { pageSize: 2048 }).close();
  const e = Engine.open(fs, DIR);
  assert.equal(e.limits.pageSize, 2048);
  e.close();
  let err: unknown;
  try {
    Engine.open(fs, DIR, { pageSize: 4096 });
  } catch (x) {
    err = x;
  }
  assert.ok(err instanceof KeelError);
  assert.equal(err.code, "VERSION");
  assert.equal(err.details.pageSize, 2048);
  assert.equal(err.details.requested, 4096);
  assert.equal(code(() => Engine.open(fs, DIR, { pageSize: 3000 })), "INVALID_ARGUMENT");
});

test("a file of another format version is refused with VERSION naming both versions", () => {
  const fs = memFs();
  openEngine(fs).close();
  const f = fs.open(`${DIR}/${DATA_FILE}`, "rw");
  const page = Buffer.alloc(1024);
  f.read(page, 0, 1024, 0);
  const p = probeMeta(page, 0);
  assert.ok(p.ok);
  // Rewrite the meta as version 99 with a valid checksum.
  f.write(encodeMeta({ ...p.meta, version: 99 }, 0), 0, 1024, 0);
  f.close();
  let err: unknown;
  try {
    openEngine(fs);
  } catch (x) {
    err = x;
  }
  assert.ok(err instanceof KeelError);
  assert.equal(err.code, "VERSION");
  assert.equal(err.details.found, 99);
  assert.equal(err.details.supported, FORMAT_VERSION);
});

test("after falling back to the older meta, new transactions get ids past the damaged meta's txn", () => {
  const fs = memFs();
  const e = openEngine(fs);
  const model: DbModel = new Map();
  for (let r = 0; r < 3; r++) {
    commit(e, (w) => apply(w, model, "", [[key(r), bytes(r, 30)]]));
    e.checkpoint();
  }
  const newest = e.newest;
  const lost = e.head.txn;
  e.close();
  const f = fs.open(`${DIR}/${DATA_FILE}`, "rw");
  const b = Buffer.alloc(1);
  f.read(b, 0, 1, newest * 1024 + 300);
  b[0]! ^= 1;
  f.write(b, 0, 1, newest * 1024 + 300);
  f.close();
  const e2 = openEngine(fs);
  assert.equal(e2.head.txn, lost - 1);
  assert.deepEqual(e2.report.metaFallback, { slot: newest, reason: "checksum", claimedTxn: lost });
  const w = e2.beginWrite();
  assert.ok(w.txn > lost, `txn ${w.txn} reuses an id of the damaged checkpoint (${lost})`);
  e2.abortWrite(w);
  e2.close();
});

test("transaction misuse is TXN; a closed engine is CLOSED", () => {
  const fs = memFs();
  const e = openEngine(fs);
  const w = e.beginWrite();
  assert.equal(e.writing, true);
  assert.equal(code(() => e.beginWrite()), "TXN");
  assert.equal(code(() => e.checkpoint()), "TXN");
  e.abortWrite(w);
  assert.equal(e.writing, false);
  assert.equal(code(() => w.put("x", "k", Buffer.from("v"))), "TXN");
  assert.equal(code(() => e.commitWrite(w, 0)), "TXN");
  const w2 = e.beginWrite();
  ensureDb(w2, "");
  w2.put("", "k", Buffer.from("v"));
  e.commitWrite(w2, 0);
  assert.equal(code(() => w2.put("", "k2", Buffer.from("v"))), "TXN", "a committed transaction is ended");
  assert.equal(code(() => w2.put("nope", "k", Buffer.from("v"))), "TXN");
  const w3 = e.beginWrite();
  assert.equal(code(() => w3.put("nope", "k", Buffer.from("v"))), "NOT_FOUND");
  e.abortWrite(w3);
  e.close();
  assert.equal(code(() => e.beginWrite()), "CLOSED");
  assert.equal(code(() => e.checkpoint()), "CLOSED");
});

test("an empty transaction keeps the head: nothing to checkpoint", () => {
  const fs = memFs();
  const e = openEngine(fs);
  commit(e, (w) => apply(w, new Map(), "", [["a", Buffer.from("1")]]));
  e.checkpoint();
  const head = e.head;
  const w = e.beginWrite();
  assert.equal(w.get("", "missing"), undefined);
  assert.equal(e.commitWrite(w, 0), head);
  assert.equal(e.head, head);
  assert.equal(e.checkpoint(), null);
  e.close();
});

test("a transaction whose only op removes a missing key changes nothing: the head is kept", () => {
  // WriteTxn.finish: "the base if nothing changed". remove() of a missing key copies the tree
  // state (#ownTree) before finding out that the key is absent, so the transaction yields a new
  // snapshot and a checkpoint (two syncs and a new meta in wal: false mode) for nothing.
  const fs = memFs();
  const e = openEngine(fs);
  commit(e, (w) => apply(w, new Map(), "", [["a", Buffer.from("1")]]));
  e.checkpoint();
  const head = e.head;
  const w = e.beginWrite();
  assert.equal(w.remove("", "missing"), false);
  assert.equal(e.commitWrite(w, 0), head, "remove of a missing key made a new snapshot");
  assert.equal(e.checkpoint(), null);
  e.close();
});

test("write limits: keys over maxKeySize and values over maxValueSize are INVALID_ARGUMENT with details.limit", () => {
  const fs = memFs();
  const e = openEngine(fs, { maxValueSize: 3000 });
  const w = e.beginWrite();
  ensureDb(w, "");
  const max = e.limits.maxKeySize;
  w.put("", "k".repeat(max), Buffer.from("ok"));
  let err: unknown;
  try {
    w.put("", "k".repeat(max + 1), Buffer.from("no"));
  } catch (x) {
    err = x;
  }
  assert.ok(err instanceof KeelError && err.code === "INVALID_ARGUMENT");
  assert.equal(err.details.limit, "maxKeySize");
  w.put("", "v", Buffer.alloc(3000));
  try {
    w.put("", "v2", Buffer.alloc(3001));
    assert.fail("expected INVALID_ARGUMENT");
  } catch (x) {
    assert.ok(x instanceof KeelError && x.code === "INVALID_ARGUMENT");
    assert.equal(x.details.limit, "maxValueSize");
  }
  e.commitWrite(w, 0);
  e.checkpoint();
  e.close();
});

test("release limit (I2): pages a registered reader reaches are not rewritten while it lives", () => {
  const fs = memFs();
  const e = openEngine(fs);
  const model: DbModel = new Map();
  const N = 300;
  const round = (r: number) =>
    commit(e, (w) =>
      apply(
        w,
        model,
        "",
        Array.from({ length: N }, (_, i) => [key(i), r % 3 === 2 && i % 5 === 0 ? null : bytes(r * 1000 + i, i % 30 === 0 ? 1800 : 40 + (i % 60))] as [string, Buffer | null]),
      ),
    );
  for (let r = 0; r < 4; r++) {
    round(r);
    e.checkpoint();
  }
  // A reader registers the published snapshot, as getRange does.
  const snap = e.published;
  e.readers.acquire(snap.txn);
  const readerModel = cloneModel(model);
  const tree = snap.dbs.get("")!.tree;
  const pages = treePages(e, tree);
  assert.ok(pages.size > 10, `the reader's tree spans ${pages.size} pages`);
  const images = pageImages(e, pages);
  const highWaterAtStart = e.pager.highWater;

  for (let r = 4; r < 16; r++) {
    round(r);
    e.checkpoint();
    // The reader still reads every value right, from disk.
    assertModel(readSnapshot(e, snap, `round ${r}`), readerModel, `reader's snapshot after round ${r}`);
  }
  for (const [p, img] of images) assert.ok(e.pager.readRaw(p, pages.get(p)!).equals(img), `page ${p} of the reader's tree was rewritten`);
  // Single values through get, too.
  for (const [k, hex] of readerModel.get("")!) {
    const v = treeGet(e.pager, tree, k);
    assert.ok(v !== undefined);
    assert.equal(Buffer.from(e.readValue(v)).toString("hex"), hex);
  }
  assert.ok(e.pager.highWater > highWaterAtStart, "the file grew instead of reusing the reader's pages");

  // Control: once the reader is gone, its pages are reused (the rule is not "never reuse").
  e.readers.release(snap.txn);
  const hwBefore = e.pager.highWater;
  for (let r = 16; r < 22; r++) {
    round(r);
    e.checkpoint();
  }
  let rewritten = 0;
  for (const [p, img] of images) if (!e.pager.readRaw(p, pages.get(p)!).equals(img)) rewritten++;
  assert.ok(rewritten > 0, "no page of the released snapshot was ever reused");
  assert.ok(e.pager.highWater - hwBefore < (hwBefore - highWaterAtStart) / 2, "the file keeps growing after the reader is gone");
  assertModel(readSnapshot(e, e.head, "end"), model, "head at the end");
  e.close();
  const e2 = openEngine(fs);
  assertModel(readSnapshot(e2, e2.head, "reopen"), model, "reopened");
  e2.close();
});

test("two readers at different txns: the older one bounds the release", () => {
  const fs = memFs();
  const e = openEngine(fs);
  const model: DbModel = new Map();
  const write = (r: number) => commit(e, (w) => apply(w, model, "", Array.from({ length: 150 }, (_, i) => [key(i), bytes(r * 7 + i, 60)] as [string, Buffer])));
  write(0);
  e.checkpoint();
  const s1 = e.published;
  const m1 = cloneModel(model);
  e.readers.acquire(s1.txn);
  write(1);
  e.checkpoint();
  const s2 = e.published;
  const m2 = cloneModel(model);
  e.readers.acquire(s2.txn);
  assert.equal(e.readers.minTxn(), s1.txn);
  const p1 = treePages(e, s1.dbs.get("")!.tree);
  const img1 = pageImages(e, p1);
  e.readers.release(s2.txn); // the newer one goes first; the older still holds its pages
  for (let r = 2; r < 10; r++) {
    write(r);
    e.checkpoint();
  }
  for (const [p, img] of img1) assert.ok(e.pager.readRaw(p, 1).equals(img), `page ${p} of the older reader was rewritten`);
  assertModel(readSnapshot(e, s1), m1, "older reader");
  void m2;
  e.readers.release(s1.txn);
  e.close();
});

function setup(): { fault: FaultFileSystem; e: Engine; model: DbModel; churn: (r: number) => void } {
  const base = memFs();
  const fault = new FaultFileSystem(base);
  const e = Engine.open(fault, DIR, { pageSize: 1024 });
  const model: DbModel = new Map();
  const churn = (r: number) =>
    commit(e, (w) =>
      apply(
        w,
        model,
        "",
        Array.from({ length: 120 }, (_, i) => [key((i * 7 + r) % 200), i % 17 === 0 ? null : bytes(r * 500 + i, i % 25 === 0 ? 2500 : 50)] as [string, Buffer | null]),
      ),
    );
  // Enough checkpoints that the free list has reusable pages.
  for (let r = 0; r < 6; r++) {
    churn(r);
    e.checkpoint();
  }
  assert.ok(e.freelist.readyCount > 0 || e.freelist.pendingCount > 0, "the setup frees pages");
  return { fault, e, model, churn };
}

function checkpointError(e: Engine): KeelError {
  try {
    e.checkpoint();
  } catch (x) {
    assert.ok(x instanceof KeelError, `expected KeelError, got ${String(x)}`);
    return x;
  }
  assert.fail("the checkpoint did not fail");
}

test("a checkpoint failing before the meta write leaves the engine at its last state; a later one succeeds", () => {
  for (const where of ["write", "data-sync"] as const) {
    const { fault, e, model, churn } = setup();
    const durableBefore = e.durable;
    const metasBefore = [...e.metas];
    const newestBefore = e.newest;
    const freeBefore = [...e.freelist.allPages()];
    const hwBefore = e.pager.highWater;
    const modelBefore = cloneModel(model);
    churn(100);
    if (where === "write") fault.failAt(1, { kinds: ["write"], errno: "ENOSPC" });
    else fault.failAt(1, { kinds: ["sync"] });
    const err = checkpointError(e);
    assert.equal(err.code, where === "write" ? "FULL" : "IO", where);
    assert.equal(e.durable, durableBefore, `${where}: durable state unchanged`);
    assert.deepEqual(e.metas, metasBefore);
    assert.equal(e.newest, newestBefore);
    assert.deepEqual([...e.freelist.allPages()], freeBefore, `${where}: free list unchanged`);
    assert.equal(e.pager.highWater, hwBefore);
    assert.equal(e.needsCheckpoint, true);
    // The durable state on disk still reads right.
    assertModel(readSnapshot(e, durableBefore, where), modelBefore, `${where}: durable state`);
    // A later checkpoint succeeds and makes the head durable.
    fault.clearFaults();
    churn(101);
    assert.ok(e.checkpoint());
    assert.equal(e.durable, e.head);
    e.close();
    const e2 = Engine.open(fault.inner, DIR);
    assertModel(readSnapshot(e2, e2.head, where), model, `${where}: reopened after recovery`);
    e2.close();
  }
});

test("a checkpoint failing after the meta write: reopen picks a valid state", () => {
  // sync after the meta write fails: the meta is in the file; reopen sees the new state.
  {
    const { fault, e, model, churn } = setup();
    churn(200);
    const want = cloneModel(model);
    const txn = e.head.txn;
    fault.failAt(2, { kinds: ["sync"] });
    assert.equal(checkpointError(e).code, "IO");
    e.close();
    const e2 = Engine.open(fault.inner, DIR);
    assert.equal(e2.head.txn, txn);
    assertModel(readSnapshot(e2, e2.head, "meta-sync"), want, "after a failed meta sync");
    e2.close();
  }
  // The meta write itself is torn: reopen falls back to the previous state.
  {
    const { fault, e, model, churn } = setup();
    const prev = cloneModel(model);
    const prevTxn = e.durable.txn;
    churn(300);
    fault.failAt(2, { kinds: ["write"], partialWrite: 100 }); // 1: the data pages, 2: the meta
    assert.equal(checkpointError(e).code, "IO");
    e.close();
    const e2 = Engine.open(fault.inner, DIR);
    assert.equal(e2.head.txn, prevTxn);
    assertModel(readSnapshot(e2, e2.head, "torn meta"), prev, "after a torn meta write");
    e2.close();
  }
});

test("after a failure after the meta write, the next checkpoint does not reuse the pages that meta names", () => {
  // C1's meta reaches the file but its sync fails; C2 then fails before its own meta write. The
  // file's newest meta is C1's: every page it names must still hold what C1 wrote.
  for (let variant = 0; variant < 4; variant++) {
    const { fault, e, model, churn } = setup();
    churn(400);
    const c1Model = cloneModel(model);
    const c1Txn = e.head.txn;
    fault.failAt(2, { kinds: ["sync"] });
    assert.equal(checkpointError(e).code, "IO");
    fault.clearFaults();
    // The process goes on: more writes (some freeing C1's pages in memory), then a checkpoint that
    // dies before its meta write.
    for (let r = 0; r <= variant; r++) churn(500 + r);
    fault.failAt(1, { kinds: ["sync"] });
    assert.equal(checkpointError(e).code, "IO");
    e.close();
    const e2 = Engine.open(fault.inner, DIR);
    assert.equal(e2.head.txn, c1Txn, `variant ${variant}: reopen picks C1's meta`);
    assertModel(readSnapshot(e2, e2.head, `variant ${variant}`), c1Model, `variant ${variant}: C1's state is intact`);
    e2.close();
  }
});

test("after a failure after the meta write, the engine goes on and later states reopen correctly", () => {
  const { fault, e, model, churn } = setup();
  churn(600);
  fault.failAt(2, { kinds: ["sync"] });
  checkpointError(e);
  fault.clearFaults();
  for (let r = 0; r < 8; r++) {
    churn(700 + r);
    e.checkpoint();
    assertModel(readSnapshot(e, e.head, `round ${r}`), model, `round ${r}`);
  }
  e.close();
  const e2 = Engine.open(fault.inner, DIR);
  assertModel(readSnapshot(e2, e2.head, "reopen"), model, "reopened");
  // Every page is accounted for exactly once: no page is both free and in use.
  const used = new Map<number, string>();
  const mark = (p: number, n: number, what: string) => {
    for (let i = 0; i < n; i++) {
      assert.ok(!used.has(p + i), `page ${p + i} is both ${used.get(p + i)} and ${what}`);
      used.set(p + i, what);
    }
  };
  for (const [name, ent] of e2.head.dbs) for (const [p, n] of treePages(e2, ent.tree)) mark(p, n, `tree ${name}`);
  for (const [p, n] of treePages(e2, e2.catalog)) mark(p, n, "catalog");
  for (const [p] of e2.freelist.allPages()) mark(p, 1, "free");
  const m = e2.durableMeta;
  mark(m.freelistPage, m.freelistPages, "free-list run");
  e2.close();
});

test("reading a value through readTree and treeGet agree (helper sanity)", () => {
  const fs = memFs();
  const e = openEngine(fs);
  commit(e, (w) => apply(w, new Map(), "", [["a", Buffer.from("xyz")], ["b", bytes(3, 4000)]]));
  e.checkpoint();
  const t = e.head.dbs.get("")!.tree;
  const m = readTree(e, t);
  assert.equal(m.get("a"), Buffer.from("xyz").toString("hex"));
  assert.equal(m.get("b"), bytes(3, 4000).toString("hex"));
  e.close();
});
