/**
 * engineUtil: small helpers for the txn unit tests, which drive the Engine directly (no Database):
 * commit a write transaction and publish it the way CheckpointDurability does, read a snapshot back
 * from disk (cold, so that page damage or reuse would show), and list the pages a tree uses.
 */
import assert from "node:assert/strict";
import { rootNode } from "../../src/btree/BTree.js";
import { checkTree } from "../../src/btree/TreeCheck.js";
import { TreeCursor } from "../../src/btree/TreeCursor.js";
import type { TreeState } from "../../src/btree/TreeState.js";
import { CrashFileSystem } from "../../src/io/CrashFileSystem.js";
import type { FileSystem } from "../../src/io/FileSystem.js";
import { Engine, type EngineOptions } from "../../src/txn/Engine.js";
import type { Snapshot } from "../../src/txn/Snapshot.js";
import type { WriteTxn } from "../../src/txn/WriteTxn.js";

export const DIR = "/db";

export function memFs(): CrashFileSystem {
  const fs = new CrashFileSystem();
  fs.mkdir(DIR);
  return fs;
}

export function openEngine(fs: FileSystem, opts: EngineOptions = {}): Engine {
  return Engine.open(fs, DIR, { pageSize: 1024, ...opts });
}

/** Model of one sub-database: key (latin1 string) -> value bytes as hex. */
export type Model = Map<string, string>;
export type DbModel = Map<string, Model>;

/** Run `fn` in a write transaction, commit it and publish it to readers. */
export function commit(engine: Engine, fn: (w: WriteTxn) => void): Snapshot {
  const w = engine.beginWrite();
  try {
    fn(w);
  } catch (e) {
    engine.abortWrite(w);
    throw e;
  }
  const s = engine.commitWrite(w, 0);
  engine.publish(engine.head);
  return s;
}

export function ensureDb(w: WriteTxn, name: string): void {
  if (!w.entry(name)) w.createDB(name, "binary", "binary");
}

/** Apply puts (value = Buffer) and removes (value = null) to a transaction and to the model. */
export function apply(w: WriteTxn, model: DbModel, db: string, ops: Array<[string, Buffer | null]>): void {
  ensureDb(w, db);
  let m = model.get(db);
  if (!m) model.set(db, (m = new Map()));
  for (const [k, v] of ops) {
    if (v === null) {
      w.remove(db, k);
      m.delete(k);
    } else {
      w.put(db, k, v);
      m.set(k, v.toString("hex"));
    }
  }
}

export function cloneModel(m: DbModel): DbModel {
  return new Map([...m].map(([k, v]) => [k, new Map(v)]));
}

/** A tree state whose root is a page number: every node is read from disk again. */
export function coldTree(engine: Engine, t: TreeState): TreeState {
  const r = rootNode(engine.pager, t);
  if (r === null || r.page === 0) return t;
  return { ...t, root: r.page, rootTxn: r.pageTxn };
}

export function readTree(engine: Engine, t: TreeState, cold = true): Model {
  const out: Model = new Map();
  const c = new TreeCursor(engine.pager, cold ? coldTree(engine, t) : t);
  for (c.seekGE(null); c.valid; c.next()) out.set(c.key, Buffer.from(engine.readValue(c.value)).toString("hex"));
  return out;
}

/** Every sub-database of a snapshot read back (cold), checked for tree problems. */
export function readSnapshot(engine: Engine, s: Snapshot, label = ""): DbModel {
  const out: DbModel = new Map();
  for (const [name, e] of s.dbs) {
    const problems = checkTree(engine.pager, coldTree(engine, e.tree), { name, readOverflow: (v) => engine.pager.readOverflow(v) });
    assert.deepEqual(problems, [], `${label} tree "${name}"`);
    out.set(name, readTree(engine, e.tree));
  }
  return out;
}

export function assertModel(actual: DbModel, expected: DbModel, label: string): void {
  const norm = (m: DbModel) =>
    [...m]
      .filter(([, v]) => v.size > 0)
      .sort((a, b) => (a[0] < b[0] ? -1 : 1))
      .map(([k, v]) => [k, [...v].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))]);
  assert.deepEqual(norm(actual), norm(expected), label);
}

/** Pages a tree uses on disk: page -> run length (1 for tree pages). */
export function treePages(engine: Engine, t: TreeState): Map<number, number> {
  const out = new Map<number, number>();
  checkTree(engine.pager, t, {
    name: "pages",
    onPages: (page, count) => {
      if (page) out.set(page, count);
    },
  });
  return out;
}

/** Raw bytes of every page of `pages`, for "was it overwritten?" checks. */
export function pageImages(engine: Engine, pages: Map<number, number>): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (const [p, n] of pages) out.set(p, engine.pager.readRaw(p, n));
  return out;
}

/** Deterministic pseudo-random bytes. */
export function bytes(seed: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

export function key(i: number): string {
  return "key" + String(i).padStart(5, "0");
}

/**
 * Exact page accounting of a checkpointed engine (head = durable): every page below the high water
 * is exactly one of tree, catalog, free or free-list segment; none leaked, none in two places.
 */
export function accountPages(e: Engine, label: string): void {
  const owner = new Map<number, string>();
  const mark = (p: number, n: number, what: string) => {
    for (let i = 0; i < n; i++) {
      const q = p + i;
      assert.ok(q >= 2 && q < e.pager.highWater, `${label}: ${what} page ${q} outside 2..${e.pager.highWater - 1}`);
      assert.ok(!owner.has(q), `${label}: page ${q} is both ${owner.get(q)} and ${what}`);
      owner.set(q, what);
    }
  };
  for (const [name, ent] of e.head.dbs) for (const [p, n] of treePages(e, ent.tree)) mark(p, n, `tree "${name}"`);
  for (const [p, n] of treePages(e, e.catalog)) mark(p, n, "catalog");
  for (const [p] of e.freelist.allPages()) mark(p, 1, "free");
  const m = e.durableMeta;
  const chain = e.freelistChain.segments;
  if (m.freelistPage === 0) assert.equal(chain.length, 0, `${label}: no free list, no segment`);
  else assert.deepEqual(chain[chain.length - 1], { page: m.freelistPage, pages: m.freelistPages, txn: m.freelistTxn }, `${label}: the meta names the newest segment`);
  for (const seg of chain) mark(seg.page, seg.pages, "free-list segment");
  assert.equal(owner.size, e.pager.highWater - 2, `${label}: ${e.pager.highWater - 2 - owner.size} pages leaked (neither used nor free)`);
}
