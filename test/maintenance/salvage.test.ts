/**
 * salvage (DESIGN.md section 5: "rebuilds a new database from whatever valid leaf pages and log
 * records a damaged one holds").
 *
 * - A clean database comes out whole: every sub-database, encoding, key and newest value; no key
 *   deleted since comes back from the stale leaves in free pages; the copy verifies clean and opens.
 * - Damaged leaves, overflow runs and branches: every key whose leaf (and overflow run) survived is
 *   recovered with its newest value; keys of damaged pages are absent or come back at an older
 *   version; nothing outside the damaged key ranges changes; leaves below a damaged branch go to
 *   "salvaged-orphans" as raw bytes; the report lists the bad pages and counts what was lost, and
 *   says that deleted keys cannot be known.
 * - The log: commits after the last checkpoint are replayed (no clean close); a damaged record stops
 *   the replay there (lostLogFrom = its LSN) and nothing after it is applied; a lost data file is
 *   rebuilt from the whole log.
 * - The newest meta damaged: its fields still lead to verified pages, so the last commit survives.
 * - The newest catalog page damaged: the older meta's catalog still names every sub-database and
 *   its tree; entries only the lost catalog reached go to the orphans.
 * - No catalog readable and the log record that created a sub-database not replayed (before the
 *   replay start, or gc'd): the log's writes to it keep its real encodings, taken from the newest old
 *   catalog page naming it; with no such page (data.keel lost) they go to "salvaged-orphans" as raw
 *   bytes, never into a sub-database of guessed encodings.
 * - After simulated power losses at random calls (CrashFileSystem, with and without the log), the
 *   salvaged database equals the state open recovers, exactly: log records after the checkpoint are
 *   replayed, pages of an interrupted checkpoint are set aside, nothing is reported bad or orphaned.
 * - Misuse: an existing destination (EXISTS, untouched), a missing source (NOT_FOUND); an abort
 *   leaves neither the destination nor a partial directory.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, unlinkSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { open, KeelError, type Database } from "../../src/index.js";
import { salvage, ORPHANS_DB } from "../../src/maintenance/salvage.js";
import { verify } from "../../src/maintenance/verify.js";
import { Engine } from "../../src/txn/Engine.js";
import { nodeFileSystem } from "../../src/io/NodeFileSystem.js";
import { CrashFileSystem } from "../../src/io/CrashFileSystem.js";
import type { FileSystem } from "../../src/io/FileSystem.js";
import { TreeCursor } from "../../src/btree/TreeCursor.js";
import type { Snapshot } from "../../src/txn/Snapshot.js";
import { OverflowValue, type BranchNode, type Node } from "../../src/btree/Node.js";
import { overflowPages } from "../../src/pager/PageLayout.js";
import { encodeLogRecord, probeLogRecord } from "../../src/wal/LogRecord.js";
import { SEGMENT_HEADER_SIZE } from "../../src/wal/SegmentHeader.js";
import { encodeKey } from "../../src/db/KeyCodec.js";
import { encodeValue } from "../../src/db/ValueCodec.js";
import { seal } from "../../src/pager/PageCodec.js";
import { readState } from "../helpers/dbModel.js";
import { removeStaleLock } from "../helpers/crashCheck.js";
import { databaseOutput, powerCutSweep } from "../helpers/powerCutSweep.js";

const PS = 1024;

function tempRoot(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), "keel-salvage-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function value(round: number, i: number): Buffer {
  const n = i % 11 === 0 ? 1500 + (i % 5) * 300 : 20 + (i % 17);
  const b = Buffer.alloc(n);
  for (let j = 0; j < n; j++) b[j] = (round * 31 + i * 7 + j) & 0xff;
  return b;
}

/** db name -> encoded key (latin1) -> value bytes (hex). */
type State = Map<string, Map<string, string>>;
/** db name -> encoded key -> every value it ever had (hex). */
type History = Map<string, Map<string, Set<string>>>;

function dumpSnapshot(engine: Engine, snap: Snapshot): State {
  const out: State = new Map();
  for (const [name, e] of snap.dbs) {
    const m = new Map<string, string>();
    const c = new TreeCursor(engine.pager, e.tree);
    for (c.seekGE(null); c.valid; c.next()) m.set(c.key, Buffer.from(engine.readValue(c.value)).toString("hex"));
    out.set(name, m);
  }
  return out;
}

function dumpDb(db: Database): State {
  return dumpSnapshot(db.engine, db.engine.published);
}

/** The state of a directory without a log (a salvage result). */
function dumpDir(dir: string, fs: FileSystem = nodeFileSystem): State {
  const e = Engine.open(fs, dir, { readOnly: true });
  try {
    return dumpSnapshot(e, e.durable);
  } finally {
    e.close();
  }
}

function keyOf(k: string | Buffer): string {
  return typeof k === "string" ? Buffer.from(k, "utf8").toString("latin1") : k.toString("latin1");
}

interface Built {
  db: Database;
  history: History;
}

/**
 * Sub-databases "a" (string keys, binary values), "b" (binary keys and values), "c" (json), and the
 * default one; rounds of transactions, removals and a checkpoint per round. Returns the open database
 * (the caller closes it, or leaves it open to stand for a crash) and every value each key ever had.
 */
async function build(dir: string, o: { wal?: boolean; rounds?: number } = {}): Promise<Built> {
  const wal = o.wal ?? true;
  const db = await open(dir, wal ? { pageSize: PS, walSegmentMaxBytes: 64 * 1024 } : { pageSize: PS, wal: false });
  const a = db.openDB("a", { keyEncoding: "string", encoding: "binary" });
  const b = db.openDB("b", { keyEncoding: "binary", encoding: "binary" });
  const c = db.openDB("c", { keyEncoding: "string", encoding: "json" });
  const history: History = new Map([
    ["a", new Map()],
    ["b", new Map()],
  ]);
  const note = (dbName: string, k: string | Buffer, v: Buffer) => {
    const h = history.get(dbName)!;
    const key = keyOf(k);
    let s = h.get(key);
    if (!s) h.set(key, (s = new Set()));
    s.add(v.toString("hex"));
  };
  const rounds = o.rounds ?? 3;
  for (let r = 0; r < rounds; r++) {
    for (let start = 0; start < 300; start += 25) {
      await db.transaction((tx) => {
        for (let i = start; i < start + 25; i++) {
          const k = `key${String(i).padStart(4, "0")}`;
          tx.for(a).put(k, value(r, i));
          note("a", k, value(r, i));
          if (i % 2 === 0) {
            const bk = Buffer.from([i >> 8, i & 0xff]);
            tx.for(b).put(bk, value(r + 7, i));
            note("b", bk, value(r + 7, i));
          }
        }
      });
    }
    await db.transaction((tx) => {
      for (let i = r; i < 300; i += 7) tx.for(a).remove(`key${String(i).padStart(4, "0")}`);
      for (let i = 0; i < 40; i++) tx.for(c).put(`c${i}`, { r, i });
    });
    await db.put(`top${r}`, { r });
    await db.checkpoint();
  }
  return { db, history };
}

interface LeafInfo {
  page: number;
  keys: string[];
  lo: string | null;
  hi: string | null;
  runs: Array<{ page: number; count: number; key: string }>;
}

interface TreeInfo {
  leaves: LeafInfo[];
  branches: Array<{ page: number; lo: string | null; hi: string | null; leafPages: number[] }>;
}

/** Every leaf and branch of each tree of the newest meta, with the key range its parents give it. */
function trees(dir: string): Map<string, TreeInfo> {
  const e = Engine.open(nodeFileSystem, dir, { readOnly: true });
  try {
    const out = new Map<string, TreeInfo>();
    for (const [name, entry] of e.durable.dbs) {
      const info: TreeInfo = { leaves: [], branches: [] };
      const visit = (page: number, txn: number, lo: string | null, hi: string | null): number[] => {
        const n: Node = e.pager.load(page, txn);
        if (n.leaf) {
          const runs: LeafInfo["runs"] = [];
          n.vals.forEach((v, i) => {
            if (v instanceof OverflowValue) runs.push({ page: v.page, count: overflowPages(v.length, PS), key: n.keys[i]! });
          });
          info.leaves.push({ page, keys: n.keys.slice(), lo, hi, runs });
          return [page];
        }
        const b = n as BranchNode;
        const below: number[] = [];
        for (let i = 0; i < b.children.length; i++) below.push(...visit(b.children[i] as number, b.childTxn[i]!, i === 0 ? lo : b.keys[i - 1]!, i < b.keys.length ? b.keys[i]! : hi));
        info.branches.push({ page, lo, hi, leafPages: below });
        return below;
      };
      const t = entry.tree;
      if (t.root !== null) visit(t.root as number, t.rootTxn, null, null);
      out.set(name, info);
    }
    return out;
  } finally {
    e.close();
  }
}

function flipByte(path: string, offset: number): void {
  const fd = openSync(path, "r+");
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, offset);
    b[0] = b[0]! ^ 0x5a;
    writeSync(fd, b, 0, 1, offset);
  } finally {
    closeSync(fd);
  }
}

function flipPage(dir: string, page: number, within = 600): void {
  flipByte(join(dir, "data.keel"), page * PS + within);
}

function inRange(k: string, lo: string | null, hi: string | null): boolean {
  return (lo === null || k >= lo) && (hi === null || k < hi);
}

function segments(dir: string): string[] {
  return readdirSync(join(dir, "wal"))
    .filter((n) => n.endsWith(".wal"))
    .sort();
}

function recordOffsets(path: string): Array<{ offset: number; lsn: number }> {
  const bytes = readFileSync(path);
  const out: Array<{ offset: number; lsn: number }> = [];
  let pos = 64;
  for (;;) {
    const p = probeLogRecord(bytes, pos, bytes.length - pos);
    if (p.status !== "ok") break;
    out.push({ offset: pos, lsn: p.record.lsn });
    pos += p.size;
  }
  return out;
}

function assertStatesEqual(actual: State, expected: State, label: string): void {
  const names = [...new Set([...actual.keys(), ...expected.keys()])].sort();
  for (const name of names) {
    const a = actual.get(name) ?? new Map();
    const e = expected.get(name) ?? new Map();
    const diffs: string[] = [];
    for (const [k, v] of e) if (a.get(k) !== v) diffs.push(`${JSON.stringify(k)}: ${a.has(k) ? "changed" : "missing"}`);
    for (const k of a.keys()) if (!e.has(k)) diffs.push(`${JSON.stringify(k)}: extra`);
    assert.deepEqual(diffs.slice(0, 10), [], `${label}: sub-database "${name}" (${diffs.length} differences)`);
  }
}

// ----------------------------------------------------------------------------------------------

test("salvage: a clean database comes out whole, with its encodings, and no deleted key comes back", async (t) => {
  const root = tempRoot(t);
  for (const wal of [false, true]) {
    const src = join(root, `src-${wal}`);
    const { db } = await build(src, { wal });
    // The last commit deletes a key: the older meta's tree (still intact on disk) holds it.
    await db.openDB("a", { keyEncoding: "string", encoding: "binary" }).remove("key0003");
    const truth = dumpDb(db);
    assert.equal(truth.get("a")!.has("key0003"), false);
    await db.close();
    const dest = join(root, `dest-${wal}`);
    const r = await salvage(src, dest);
    assertStatesEqual(dumpDir(dest), truth, `wal ${wal}`);
    assert.deepEqual(r.badPages, []);
    assert.equal(r.orphanEntries, 0);
    assert.equal(r.lostValues, 0);
    assert.equal(r.missingEntries, 0);
    assert.ok(r.staleEntries > 0, "stale copies of replaced and deleted entries were found and set aside");
    let total = 0;
    for (const [name, m] of truth) {
      assert.equal(r.perDb[name], m.size, `perDb ${name}`);
      total += m.size;
    }
    assert.equal(r.entries, total);
    assert.ok(r.leafPagesRead > 0);
    assert.ok(!(ORPHANS_DB in r.perDb));
    const v = await verify(dest);
    assert.deepEqual(v.problems, [], `the salvaged copy verifies clean (wal ${wal})`);
    const out = await open(dest, { readOnly: true });
    try {
      assert.deepEqual(out.get("top1"), { r: 1 });
      assert.deepEqual(out.openDB("c", { keyEncoding: "string", encoding: "json" }).get("c3"), { r: 2, i: 3 });
      assert.ok(Buffer.from(out.openDB("a", { keyEncoding: "string", encoding: "binary" }).get("key0001") as Buffer).equals(value(2, 1)));
    } finally {
      await out.close();
    }
  }
});

test("salvage: damaged leaves and overflow runs: surviving keys keep their newest value, lost ones are counted", async (t) => {
  const root = tempRoot(t);
  const src = join(root, "src");
  const { db, history } = await build(src, { wal: false });
  const truth = dumpDb(db);
  await db.close();
  const layout = trees(src);
  const aLeaves = layout.get("a")!.leaves;
  const damagedLeaf = aLeaves[Math.floor(aLeaves.length / 2)]!;
  flipPage(src, damagedLeaf.page);
  const bLeaf = layout.get("b")!.leaves.find((l) => l.runs.length > 0)!;
  const run = bLeaf.runs[0]!;
  flipPage(src, run.page + run.count - 1, 200); // inside the run's payload
  const cLeaf = layout.get("c")!.leaves[0]!;
  flipPage(src, cLeaf.page, 40);

  const dest = join(root, "dest");
  const r = await salvage(src, dest);
  const got = dumpDir(dest);
  for (const p of [damagedLeaf.page, run.page, cLeaf.page]) assert.ok(r.badPages.includes(p), `bad page ${p} is listed (${r.badPages})`);
  assert.ok(r.lostValues >= 1, "the overflow value that failed its checksum is counted");
  assert.ok(r.missingEntries > 0, "entries of the damaged leaves are counted as missing");
  assert.ok(r.notes.some((n) => /deleted .* cannot be known/.test(n)), r.notes.join("\n"));

  const damaged: Array<{ db: string; lo: string | null; hi: string | null }> = [
    { db: "a", lo: damagedLeaf.lo, hi: damagedLeaf.hi },
    { db: "c", lo: cLeaf.lo, hi: cLeaf.hi },
  ];
  const lostRunKey = { db: "b", key: run.key };
  let recovered = 0;
  let lost = 0;
  for (const [name, m] of truth) {
    const g = got.get(name) ?? new Map<string, string>();
    for (const [k, v] of m) {
      const inDamaged = damaged.some((d) => d.db === name && inRange(k, d.lo, d.hi)) || (name === lostRunKey.db && k === lostRunKey.key);
      if (!inDamaged) {
        assert.equal(g.get(k), v, `${name}/${JSON.stringify(k)}: its leaf survived, so its newest value is recovered`);
        recovered++;
      } else if (!g.has(k)) lost++;
      else if (g.get(k) !== v) {
        const h = history.get(name)?.get(k);
        assert.ok(h?.has(g.get(k)!), `${name}/${JSON.stringify(k)} came back with a value it once had`);
      }
    }
    for (const k of g.keys()) {
      if (m.has(k)) continue;
      assert.ok(damaged.some((d) => d.db === name && inRange(k, d.lo, d.hi)), `${name}/${JSON.stringify(k)} came back outside the damaged ranges`);
    }
  }
  assert.ok(recovered > 300, `${recovered} keys recovered`);
  assert.ok(lost + r.lostValues > 0);
  assert.deepEqual((await verify(dest)).problems, [], "the salvaged database is itself clean");
});

test("salvage: a live leaf page that reads back as all zeros is reported like any damaged page, never silently replaced by an older copy", async (t) => {
  const root = tempRoot(t);
  const src = join(root, "src");
  const db = await open(src, { wal: false, pageSize: PS });
  await db.put("key", "OLD-VALUE-1111");
  await db.put("key", "NEW-VALUE-2222");
  await db.close();
  const path = join(src, "data.keel");
  const data = readFileSync(path);
  let zeroed = -1;
  for (let p = 2; p < data.length / PS; p++) {
    if (data.subarray(p * PS, (p + 1) * PS).includes("NEW-VALUE-2222")) {
      zeroed = p;
      const fd = openSync(path, "r+");
      writeSync(fd, Buffer.alloc(PS), 0, PS, p * PS);
      closeSync(fd);
    }
  }
  assert.ok(zeroed > 0);
  const r = await salvage(src, join(root, "dest"));
  assert.ok(r.badPages.includes(zeroed), `the zeroed page ${zeroed} is listed: ${JSON.stringify(r)}`);
  assert.ok(r.notes.some((n) => /failed verification/.test(n)), r.notes.join("\n"));
});

test("salvage: leaves below a damaged branch go to salvaged-orphans as raw bytes, with their newest values", async (t) => {
  const root = tempRoot(t);
  const src = join(root, "src");
  const { db } = await build(src, { wal: false });
  const truth = dumpDb(db);
  await db.close();
  const layout = trees(src);
  const b = layout.get("b")!;
  const branch = b.branches.find((x) => x.leafPages.length < b.leaves.length) ?? b.branches[0]!;
  assert.ok(branch, "b has a branch");
  flipPage(src, branch.page, 40);
  const below = new Set(branch.leafPages);

  const dest = join(root, "dest");
  const r = await salvage(src, dest);
  assert.ok(r.badPages.includes(branch.page));
  assert.ok(r.orphanEntries > 0, "entries were found on unreachable leaves");
  const got = dumpDir(dest);
  const orphans = got.get(ORPHANS_DB)!;
  assert.ok(orphans, `the ${ORPHANS_DB} sub-database exists`);
  assert.equal(r.perDb[ORPHANS_DB], orphans.size);
  const gb = got.get("b") ?? new Map<string, string>();
  let viaOrphans = 0;
  for (const leaf of b.leaves) {
    for (const k of leaf.keys) {
      const want = truth.get("b")!.get(k)!;
      if (below.has(leaf.page)) {
        // Below the damaged branch: in "b" (an older tree still reaches it) or among the orphans.
        assert.ok(gb.get(k) === want || orphans.get(k) === want, `b/${JSON.stringify(k)} is recovered with its newest value`);
        if (orphans.get(k) === want) viaOrphans++;
      } else {
        assert.equal(gb.get(k), want, `b/${JSON.stringify(k)}`);
      }
    }
  }
  assert.ok(viaOrphans > 0);
  // The other sub-databases are untouched.
  for (const name of ["", "a", "c"]) assertStatesEqual(new Map([[name, got.get(name)!]]), new Map([[name, truth.get(name)!]]), name);
});

test("salvage: with the newest catalog page damaged, sub-databases are found through the older meta's catalog", async (t) => {
  const root = tempRoot(t);
  const src = join(root, "src");
  const { db } = await build(src, { wal: false });
  const truth = dumpDb(db);
  const catalogRoot = db.engine.durableMeta.catalogRoot;
  await db.close();
  flipPage(src, catalogRoot, 100);
  const dest = join(root, "dest");
  const r = await salvage(src, dest);
  assert.ok(r.badPages.includes(catalogRoot));
  assert.ok(r.notes.some((n) => /catalog of meta page \d \(txn \d+\) could not be read/.test(n)), r.notes.join("\n"));
  const got = dumpDir(dest);
  // The last commit only changed the default database: the others come out whole, in their own
  // sub-databases, with their encodings.
  for (const name of ["a", "b", "c"]) assertStatesEqual(new Map([[name, got.get(name)!]]), new Map([[name, truth.get(name)!]]), name);
  // The default database's newest leaf is reachable from no intact catalog: its entries are orphans.
  const top2 = [...truth.get("")!.keys()].find((k) => !got.get("")!.has(k) || got.get("")!.get(k) !== truth.get("")!.get(k));
  assert.ok(top2 !== undefined, "the last commit's key is not in the default database");
  assert.equal(got.get(ORPHANS_DB)?.get(top2!), truth.get("")!.get(top2!), "it is among the orphans, with its value");
  const out = await open(dest, { readOnly: true });
  try {
    assert.ok(Buffer.from(out.openDB("a", { keyEncoding: "string", encoding: "binary" }).get("key0005") as Buffer).equals(value(2, 5)));
  } finally {
    await out.close();
  }
});

test("salvage: the log after the last checkpoint is replayed; a damaged record stops the replay at its LSN", async (t) => {
  const root = tempRoot(t);
  const src = join(root, "src");
  const { db } = await build(src, { wal: true });
  const a = db.openDB("a", { keyEncoding: "string", encoding: "binary" });
  try {
    // Commits after the last checkpoint; the database is never closed: what a crash leaves.
    for (let i = 0; i < 8; i++) await a.put(`post${i}`, value(50, i));
    await db.remove("top0");
    const truth = dumpDb(db);

    const dest1 = join(root, "dest1");
    const r1 = await salvage(src, dest1);
    assertStatesEqual(dumpDir(dest1), truth, "replayed");
    assert.ok(r1.logRecordsReplayed >= 9, `${r1.logRecordsReplayed} records replayed`);
    assert.equal(r1.lostLogFrom, undefined);

    // Damage the record of post3 in the newest segment (later records were written after it was synced).
    const segs = segments(src);
    const newest = join(src, "wal", segs[segs.length - 1]!);
    const recs = recordOffsets(newest);
    const lastLsn = recs[recs.length - 1]!.lsn;
    const victim = recs.find((x) => x.lsn === lastLsn - 5)!; // post3: post0..7 then the remove
    flipByte(newest, victim.offset + 48);
    const dest2 = join(root, "dest2");
    const r2 = await salvage(src, dest2);
    assert.equal(r2.lostLogFrom, victim.lsn);
    const got = dumpDir(dest2);
    const ga = got.get("a")!;
    for (let i = 0; i < 8; i++) {
      const k = `post${i}`;
      if (i < 3) assert.equal(ga.get(k), value(50, i).toString("hex"), `${k} was replayed`);
      else assert.equal(ga.has(k), false, `${k} is after the damaged record`);
    }
    assert.equal(got.get("")!.size, truth.get("")!.size + 1, "the remove of top0 came after the damage: not applied");
    assert.ok(r2.notes.some((n) => /replay stopped/.test(n)), r2.notes.join("\n"));
  } finally {
    await db.close().catch(() => {});
  }
});

test("salvage: with data.keel lost, the whole log is replayed", async (t) => {
  const root = tempRoot(t);
  const src = join(root, "src");
  const { db } = await build(src, { wal: true, rounds: 2 });
  const truth = dumpDb(db);
  await db.close();
  unlinkSync(join(src, "data.keel"));
  const dest = join(root, "dest");
  const r = await salvage(src, dest);
  assertStatesEqual(dumpDir(dest), truth, "from the log alone");
  assert.ok(r.logRecordsReplayed > 20);
  assert.equal(r.leafPagesRead, 0);
  assert.ok(r.notes.some((n) => /only the log/.test(n)));
});

test("salvage: with the newest meta damaged, its fields still lead to verified pages and the last commit survives", async (t) => {
  const root = tempRoot(t);
  const src = join(root, "src");
  const { db } = await build(src, { wal: false, rounds: 2 });
  await db.put("final", "the last commit");
  const truth = dumpDb(db);
  const e = db.engine;
  const newest = e.newest;
  await db.close();
  flipPage(src, newest, 100); // the checkpoint time: every field salvage follows is intact
  const dest = join(root, "dest");
  const r = await salvage(src, dest);
  assertStatesEqual(dumpDir(dest), truth, "newest meta damaged");
  assert.ok(r.notes.some((n) => new RegExp(`meta page ${newest} is damaged`).test(n)), r.notes.join("\n"));
});

/**
 * A "binary" sub-database written over several checkpoints (so the log record that created it is
 * older than where a replay from either meta starts), then five puts that only the log holds.
 */
async function buildGcdBinary(dir: string): Promise<void> {
  const db = await open(dir, { pageSize: PS, freelistDeltas: false, walSegmentMaxBytes: 64 * 1024 });
  const bin = db.openDB("bin", { keyEncoding: "string", encoding: "binary" });
  for (let r = 0; r < 8; r++) {
    for (let i = 0; i < 20; i++) await bin.put(`k${i}`, Buffer.alloc(2000, r));
    await db.checkpoint();
  }
  for (let i = 0; i < 5; i++) await bin.put(`k${i}`, Buffer.alloc(40, 9));
  await db.close();
}

test("salvage: with no catalog readable and the createDB record before the replay start, the log's writes keep the sub-database's encodings from an old catalog page", async (t) => {
  const root = tempRoot(t);
  const src = join(root, "src");
  await buildGcdBinary(src);
  // Both metas (checksums valid) name a catalog root past the end of the file.
  const fd = openSync(join(src, "data.keel"), "r+");
  for (const slot of [0, 1]) {
    const p = Buffer.alloc(PS);
    readSync(fd, p, 0, PS, slot * PS);
    p.writeUInt32LE(99999, 48);
    seal(p);
    writeSync(fd, p, 0, PS, slot * PS);
  }
  closeSync(fd);
  const dest = join(root, "dest");
  const r = await salvage(src, dest);
  assert.ok(r.notes.some((n) => /sub-database "bin" was in no readable catalog.*binary values/.test(n)), r.notes.join("\n"));
  const out = await open(dest, { readOnly: true });
  try {
    assert.equal(out.engine.head.dbs.get("bin")?.valueEncoding, "binary");
    const bin = out.openDB("bin", { keyEncoding: "string", encoding: "binary" });
    for (let i = 0; i < 5; i++) assert.ok(Buffer.from(bin.get(`k${i}`) as Buffer).equals(Buffer.alloc(40, 9)), `k${i}`);
  } finally {
    await out.close();
  }
});

test("salvage: a log write to a sub-database whose encodings nothing left gives goes to salvaged-orphans as raw bytes", async (t) => {
  const root = tempRoot(t);
  const src = join(root, "src");
  await buildGcdBinary(src);
  unlinkSync(join(src, "data.keel"));
  // As gc leaves it: the segment holding the createDB record of "bin" is gone.
  const first = segments(src)[0]!;
  assert.equal(recordOffsets(join(src, "wal", first))[0]?.lsn, 1);
  unlinkSync(join(src, "wal", first));
  const dest = join(root, "dest");
  const r = await salvage(src, dest);
  assert.ok(r.notes.some((n) => /\d+ log writes to sub-database "bin".*salvaged-orphans/.test(n)), r.notes.join("\n"));
  assert.equal(r.orphanEntries, 20);
  const got = dumpDir(dest);
  assert.equal(got.has("bin"), false, "no \"bin\" of guessed encodings");
  for (let i = 0; i < 20; i++) assert.equal(got.get(ORPHANS_DB)?.get(keyOf(`k${i}`)), Buffer.alloc(i < 5 ? 40 : 2000, i < 5 ? 9 : 7).toString("hex"), `k${i}`);
});

test("salvage: after a simulated power loss, salvage yields exactly the state open recovers", async () => {
  process.removeAllListeners("warning");
  process.on("warning", (w: Error & { code?: string }) => {
    if (w.code !== "KEEL_META_FALLBACK") process.stderr.write(`${w.name}: ${w.message}\n`);
  });
  let replayedSome = 0;
  let interrupted = 0;
  for (let seed = 1; seed <= 16; seed++) {
    for (const wal of [true, false]) {
      const fs = new CrashFileSystem({ model: seed % 3 === 0 ? "ordered" : "sectors", sectorSize: 512 });
      fs.mkdir("/db");
      fs.syncDir("/");
      try {
        const db = await open("/db", wal ? { fs, pageSize: PS, walSegmentMaxBytes: 64 * 1024, checkpointLogBytes: 30_000 } : { fs, pageSize: PS, wal: false });
        const a = db.openDB("a", { keyEncoding: "string", encoding: "binary" });
        const b = db.openDB("b", { keyEncoding: "string", encoding: "binary" });
        fs.crashAfterCalls(40 + ((seed * 7919) % 1500), { performCall: seed % 2 === 0 });
        for (let i = 0; i < 3000; i++) {
          const k = `k${(i * 31 + seed) % 200}`;
          const sub = i % 3 === 0 ? b : a;
          if (i % 5 === 4) await sub.remove(k);
          else await sub.put(k, value(seed, i));
          if (i % 50 === 0) await db.checkpoint();
          if (i % 300 === 299) await b.clear();
        }
      } catch {
        // the power cut
      }
      fs.crash(seed);
      const r = await salvage("/db", "/out", { fs });
      if (r.logRecordsReplayed > 0) replayedSome++;
      if (r.notes.some((n) => /interrupted checkpoint/.test(n))) interrupted++;
      const label = `seed ${seed}, wal ${wal}`;
      assert.equal(r.orphanEntries, 0, label);
      assert.equal(r.lostLogFrom, undefined, label);
      assert.deepEqual(r.badPages, [], label);
      const got = dumpDir("/out", fs);
      fs.removeDir("/out");
      fs.remove("/db/LOCK");
      const db = await open("/db", { fs, pageSize: PS, wal });
      const expected = dumpDb(db);
      await db.close();
      assertStatesEqual(got, expected, label);
    }
  }
  assert.ok(replayedSome > 0, "some crashes left records after the last checkpoint");
  assert.ok(interrupted > 0, "some crashes interrupted a checkpoint (wal: false), whose pages were set aside");
});

test("salvage: misuse (EXISTS, NOT_FOUND) and an abort leave nothing behind", async (t) => {
  const root = tempRoot(t);
  const src = join(root, "src");
  const { db } = await build(src, { wal: false, rounds: 1 });
  await db.close();
  const dest = join(root, "dest");
  mkdirSync(dest);
  await assert.rejects(salvage(src, dest), (e: unknown) => e instanceof KeelError && e.code === "EXISTS");
  assert.deepEqual(readdirSync(dest), [], "the existing destination is untouched");
  rmSync(dest, { recursive: true });
  await assert.rejects(salvage(join(root, "nope"), dest), (e: unknown) => e instanceof KeelError && e.code === "NOT_FOUND");
  const ac = new AbortController();
  const running = salvage(src, dest, { signal: ac.signal });
  ac.abort(); // after the first slice of work, before the rest
  await assert.rejects(running, (e: unknown) => e instanceof KeelError && e.code === "ABORTED");
  assert.equal(existsSync(dest), false);
  assert.deepEqual(
    readdirSync(root).filter((n) => n.includes(".partial-")),
    [],
    "no partial directory is left",
  );
});

test("salvage keeps a stored value larger than its own open's default maxValueSize (accepted by the open that wrote it) rebuilt from its pages", async () => {
  const base = mkdtempSync(join(tmpdir(), "keel-salv-big-"));
  try {
    const dir = join(base, "db");
    const big = Buffer.alloc(256 * 1024 * 1024 + 16, 7); // over the 256 MiB default salvage opens its output with
    const db = await open(dir, { maxValueSize: 300 * 1024 * 1024, keyEncoding: "string", encoding: "binary" });
    await db.put("big", big);
    await db.put("small", Buffer.from("s"));
    await db.close(); // checkpointed: salvage rebuilds it from the pages
    const r = await salvage(dir, join(base, "out"));
    assert.equal(r.lostValues, 0, r.notes.join("; "));
    const out = await open(join(base, "out"), { readOnly: true, keyEncoding: "string", encoding: "binary" });
    assert.ok(Buffer.from(out.get("big") as Uint8Array).equals(big), "the big value came through");
    assert.equal(Buffer.from(out.get("small") as Uint8Array).toString(), "s");
    await out.close();
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test("salvage refuses another format version with VERSION instead of reading it as damage: a newer or an older data file (migratable), a log segment of another version", async (t) => {
  const { probeMeta } = await import("../../src/pager/Meta.js");
  const { FORMAT_VERSION } = await import("../../src/pager/PageLayout.js");
  const { crc32 } = await import("node:zlib");
  const root = tempRoot(t);
  const build = async (name: string, wal: boolean): Promise<string> => {
    const dir = join(root, name);
    const db = await open(dir, { wal, pageSize: 4096 });
    await db.openDB("users").put("u1", { n: 1 });
    await db.put("k", "v");
    await db.close();
    return dir;
  };
  const setDataVersion = (dir: string, version: number) => {
    const fd = openSync(join(dir, "data.keel"), "r+");
    try {
      for (const slot of [0, 1] as const) {
        const page = Buffer.alloc(4096);
        readSync(fd, page, 0, 4096, slot * 4096);
        if (!probeMeta(page, slot).ok) continue;
        page.writeUInt16LE(version, 36);
        seal(page);
        writeSync(fd, page, 0, 4096, slot * 4096);
      }
    } finally {
      closeSync(fd);
    }
  };
  const refused = async (dir: string, what: string) => {
    const out = join(root, `${what}-out`);
    let err: unknown;
    try {
      await salvage(dir, out);
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof KeelError && err.code === "VERSION", `${what}: ${String(err)}`);
    assert.ok(!existsSync(out), `${what}: nothing written`);
    return err;
  };
  const newer = await build("newer", false);
  setDataVersion(newer, FORMAT_VERSION + 1);
  const e1 = await refused(newer, "newer");
  assert.equal(e1.details.found, FORMAT_VERSION + 1);
  const older = await build("older", false);
  setDataVersion(older, FORMAT_VERSION - 1);
  const e2 = await refused(older, "older");
  assert.equal(e2.details.migratable, true);
  // A log segment with a valid header of another version.
  const logged = await build("segment", true);
  const seg = join(logged, "wal", readdirSync(join(logged, "wal")).sort()[0]!);
  const fd = openSync(seg, "r+");
  try {
    const head = Buffer.alloc(64);
    readSync(fd, head, 0, 64, 0);
    head.writeUInt16LE(head.readUInt16LE(4) + 1, 4);
    head.writeUInt32LE(crc32(head.subarray(0, 60)), 60);
    writeSync(fd, head, 0, 64, 0);
  } finally {
    closeSync(fd);
  }
  const e3 = await refused(logged, "segment");
  assert.match(e3.message, /format version/);
});

/** Run `body` (statements using `db`, opened on `dir`) in a child process that exits without close(): its files are a crash image. */
function childWrites(dir: string, body: string): void {
  const index = new URL("../../src/index.js", import.meta.url).href;
  const script = `const { open } = await import(${JSON.stringify(index)});
const db = await open(${JSON.stringify(dir)}, { checkpointLogBytes: 1 << 30, checkpointDirtyBytes: 1 << 30, checkpointMs: 3600000 });
${body}
process.exit(0);`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
}

test("salvage: damage in log records the data file already holds does not hide the intact records after it", async (t) => {
  const root = tempRoot(t);
  const dir = join(root, "db");
  childWrites(
    dir,
    `for (let i = 0; i < 50; i++) await db.put("k" + i, "v1-" + i);
await db.checkpoint();
await db.put("x", 1); await db.checkpoint(); // both meta slots are past LSN 12
for (let i = 0; i < 20; i++) await db.put("k" + i, "v2-" + i); // LSN 52..71, only in the log`,
  );
  const seg = join(dir, "wal", segments(dir).at(-1)!);
  flipByte(seg, readFileSync(seg).indexOf(Buffer.from("v1-10")));
  assert.ok((await verify(dir)).problems.some((p) => p.kind === "wal-damaged"));
  const out = join(root, "out");
  const r = await salvage(dir, out);
  // It used to replay nothing and say nothing: the scan of the segment stopped at the damage.
  assert.equal(r.lostLogFrom, undefined);
  assert.ok(r.logRecordsReplayed >= 20, `replayed ${r.logRecordsReplayed}`);
  assert.ok(r.notes.some((n) => n.includes("already holds")), r.notes.join("\n"));
  const db = await open(out);
  for (let i = 0; i < 50; i++) assert.equal(db.get(`k${i}`), i < 20 ? `v2-${i}` : `v1-${i}`, `k${i}`);
  await db.close();
});

test("salvage: a log that ends before the data file's applied LSN is reported (lostLogFrom and a note), not passed over", async (t) => {
  const root = tempRoot(t);
  const dir = join(root, "db");
  childWrites(
    dir,
    `for (let i = 0; i < 50; i++) await db.put("k" + i, "v1-" + i);
await db.createSnapshot(); // checkpoint and roll: a new segment starts at LSN 51
for (let i = 0; i < 50; i++) await db.put("k" + i, "v2-" + i);
await db.checkpoint(); // applied LSN 100
for (let i = 0; i < 20; i++) await db.put("k" + i, "v3-" + i); // LSN 101..120, only in the newest segment`,
  );
  const segs = segments(dir);
  assert.equal(segs.length, 2);
  unlinkSync(join(dir, "wal", segs.at(-1)!));
  assert.ok((await verify(dir)).problems.some((p) => p.kind === "log-behind-data"));
  const r = await salvage(dir, join(root, "out"));
  assert.ok(r.lostLogFrom !== undefined && r.lostLogFrom > 100, `lostLogFrom ${r.lostLogFrom}`); // the data file's applied LSN + 1
  assert.ok(r.notes.some((n) => n.includes("log-behind-data")), r.notes.join("\n"));
});

test("salvage: a lost write of a leaf the newest tree references is reported as a bad page, not served silently from the older copy", async (t) => {
  const root = tempRoot(t);
  const dir = join(root, "db");
  const ps = 4096;
  const db = await open(dir, { wal: false, pageSize: ps });
  for (let i = 0; i < 10; i++) await db.put(`k${i}`, `v0-${i}`);
  const history: Buffer[] = [];
  for (let round = 1; round <= 6; round++) {
    await db.put("k1", `v${round}-1`);
    history.push(readFileSync(join(dir, "data.keel")));
  }
  await db.transaction((tx) => {
    tx.put("k5", "NEW-5");
    tx.remove("k7");
  });
  await db.close();
  const now = readFileSync(join(dir, "data.keel"));
  // The newest leaf (holding NEW-5) gets the bytes an earlier checkpoint left there: valid checksum, older txn.
  let lost: { page: number; bytes: Buffer } | undefined;
  for (const old of history.reverse()) {
    for (let p = 2; p < Math.min(old.length, now.length) / ps && !lost; p++) {
      const a = old.subarray(p * ps, (p + 1) * ps);
      const b = now.subarray(p * ps, (p + 1) * ps);
      if (b.includes(Buffer.from("NEW-5")) && a[0] === b[0] && !a.equals(b)) lost = { page: p, bytes: Buffer.from(a) };
    }
    if (lost) break;
  }
  assert.ok(lost, "an older version of the newest leaf");
  const fd = openSync(join(dir, "data.keel"), "r+");
  writeSync(fd, lost.bytes, 0, ps, lost.page * ps);
  closeSync(fd);
  assert.ok((await verify(dir)).problems.some((p) => p.kind === "stale-page" && p.page === lost!.page));
  const r = await salvage(dir, join(root, "out"));
  assert.ok(r.badPages.includes(lost.page), `badPages ${JSON.stringify(r.badPages)}`);
  assert.ok(r.notes.some((n) => n.includes("stale-page")), r.notes.join("\n"));
  assert.ok(r.notes.some((n) => n.includes("may have come back")), r.notes.join("\n"));
});

test("salvage: a power cut at every I/O call leaves no output or the complete one, and a salvage that resolved survives it (I7)", async () => {
  const fs0 = new CrashFileSystem();
  const db0 = await open("/db", { fs: fs0 });
  const users = db0.openDB("users");
  for (let i = 0; i < 40; i++) await (i % 2 ? users : db0).put(`k${i}`, { i, pad: "p".repeat(40) });
  await db0.checkpoint();
  for (let i = 0; i < 10; i++) await db0.put(`late${i}`, i); // in the log only: replayed by salvage
  const expected = readState(db0);
  await db0.close();
  const base = fs0.snapshotDurable();
  removeStaleLock(base, "/db");
  await powerCutSweep(
    base,
    async (fs, resolved) => {
      await salvage("/db", "/out", { fs });
      resolved();
    },
    databaseOutput("/out", expected, "salvage"),
    [1, 2],
  );
});

test("salvage: after a damaged record whose value holds bytes shaped like a record of this log, it goes on where the damaged records' headers point (checksum, LSN or magic damaged, two in a row, the last record of a sealed segment), never from inside a payload", async (t) => {
  const root = tempRoot(t);
  // Where to damage record e (and e + 1 for "two"): byte offsets inside the record.
  const cases: Array<{ name: string; at: number[]; both?: boolean; sealedEnd?: boolean }> = [
    { name: "checksum", at: [9] },
    { name: "lsn", at: [16] },
    { name: "magic", at: [1] },
    { name: "two in a row", at: [9], both: true },
    { name: "last record of a sealed segment", at: [9], sealedEnd: true },
  ];
  for (const c of cases) {
    let done = false;
    for (let pad = 0; pad < 8 && !done; pad++) {
      const src = join(root, `src-${c.name.replace(/ /g, "-")}-${pad}`);
      const db = await open(src, { checkpointMs: 3_600_000, walSegmentMaxBytes: 64 << 10 });
      const bin = db.openDB("bin", { encoding: "binary" });
      await bin.put("init", Buffer.from("x"));
      await db.put("victim", "real-1");
      await db.checkpoint();
      const e = db.txlogWatermarks().lastCommittedLsn + 1;
      // A record that was never committed: LSN e + 1 (the next one), ghost and a victim value.
      const forged = encodeLogRecord(
        { lsn: e + 1, txTime: Date.now(), kind: "txn", ops: [{ type: "put", db: "", key: Buffer.from(encodeKey("ghost", "ordered-binary", 1000), "latin1"), value: encodeValue("never committed", "msgpack") }, { type: "put", db: "", key: Buffer.from(encodeKey("victim", "ordered-binary", 1000), "latin1"), value: encodeValue("FORGED", "msgpack") }] },
        e,
      );
      const carrier = Buffer.concat([Buffer.alloc(pad, 0x41), forged]);
      await bin.put("carrier", carrier); // LSN e
      // A value too big for what is left of the 64 KiB segment: the log rolls, so the carrier is the last record of a sealed segment.
      await db.put("victim", c.sealedEnd ? "real-2".padEnd(70_000, ".") : "real-2");
      await db.put("after", "yes");
      await db.checkpoint();
      await db.close();
      const walDir = join(src, "wal");
      let aligned = false;
      let sealedEnd = false;
      for (const name of readdirSync(walDir).sort()) {
        const bytes = readFileSync(join(walDir, name));
        for (let pos = SEGMENT_HEADER_SIZE; pos < bytes.length; ) {
          const p = probeLogRecord(bytes, pos, bytes.length - pos);
          if (p.status !== "ok") break;
          if (p.record.lsn === e || (c.both && p.record.lsn === e + 1)) {
            if (p.record.lsn === e) {
              const inner = bytes.indexOf(forged.subarray(0, 32), pos + 8);
              aligned = inner % 8 === 0 && inner + forged.length === pos + p.size;
              sealedEnd = pos + p.size === bytes.length;
            }
            const fd = openSync(join(walDir, name), "r+");
            for (const off of c.at) writeSync(fd, Buffer.from([bytes[pos + off]! ^ 0xff]), 0, 1, pos + off);
            closeSync(fd);
          }
          pos += p.size;
        }
      }
      if (!aligned || (c.sealedEnd && !sealedEnd)) continue;
      done = true;
      const dest = join(root, `out-${c.name.replace(/ /g, "-")}-${pad}`);
      const report = await salvage(src, dest);
      const out = await open(dest, { readOnly: true });
      assert.equal(out.get("ghost"), undefined, `${c.name}, pad ${pad}: bytes inside a value were replayed as a commit`);
      assert.equal(String(out.get("victim")).slice(0, 6), "real-2", `${c.name}: victim`);
      assert.equal(out.get("after"), "yes", `${c.name}: after`);
      assert.deepEqual(out.openDB("bin", { encoding: "binary" }).get("carrier"), carrier, `${c.name}: carrier`);
      await out.close();
      assert.ok(report.notes.some((n) => /damaged/.test(n)), report.notes.join("; "));
      assert.equal(report.lostLogFrom, undefined, `${c.name}: the data file holds every record: nothing is lost (${report.notes.join("; ")})`);
    }
    assert.ok(done, `${c.name}: no padding put the forged record on a record boundary`);
  }
});
