/**
 * Simulation: random puts, removes, range reads, transactions, sub-databases, close and reopen,
 * checked after every step against a Map model, and the tree invariants (TreeCheck) after every
 * group, over many seeds. KEEL_SEED=n replays one seed; KEEL_SIM_SEEDS=n runs more.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { CrashFileSystem } from "../../src/io/CrashFileSystem.js";
import { open, type Database } from "../../src/index.js";
import { checkTree } from "../../src/btree/TreeCheck.js";
import { Rng, seedList } from "../helpers/rng.js";

type Model = Map<string, Map<number, unknown>>;

function checkInvariants(db: Database, label: string): void {
  const engine = db.engine;
  for (const [name, e] of engine.head.dbs) {
    const problems = checkTree(engine.pager, e.tree, { name, readOverflow: (v) => engine.readValue(v) });
    assert.deepEqual(problems, [], `${label}: tree "${name}" has problems`);
  }
}

function compare(db: Database, model: Model, rng: Rng, label: string): void {
  for (const [name, m] of model) {
    const sub = name === "" ? db : db.openDB(name);
    const sorted = [...m.keys()].sort((a, b) => a - b);
    assert.equal(sub.getCount(), sorted.length, `${label}: count of "${name}"`);
    const all = sub.getRange().asArray;
    assert.deepEqual(all.map((e) => e.key), sorted, `${label}: keys of "${name}"`);
    for (const e of all) assert.deepEqual(e.value, m.get(e.key as number), `${label}: value of ${String(e.key)}`);
    // A few bounded and reverse ranges.
    for (let r = 0; r < 3; r++) {
      const a = rng.int(400);
      const b = a + rng.int(100);
      const rev = rng.chance(0.5);
      const limit = rng.chance(0.3) ? rng.int(10) : undefined;
      const offset = rng.chance(0.3) ? rng.int(5) : undefined;
      let want = rev ? sorted.filter((k) => k <= b && k > a).reverse() : sorted.filter((k) => k >= a && k < b);
      want = want.slice(offset ?? 0, limit === undefined ? undefined : (offset ?? 0) + limit);
      const got = sub.getKeys(rev ? { start: b, end: a, reverse: true, limit, offset } : { start: a, end: b, limit, offset }).asArray;
      assert.deepEqual(got, want, `${label}: range ${a}..${b} rev=${rev} limit=${limit} offset=${offset}`);
    }
    for (let r = 0; r < 10; r++) {
      const k = rng.int(500);
      assert.deepEqual(sub.get(k), m.get(k), `${label}: get ${k} in "${name}"`);
      assert.equal(sub.doesExist(k), m.has(k));
    }
  }
}

function randomValue(rng: Rng, pageSize: number): unknown {
  const r = rng.next();
  if (r < 0.6) return { n: rng.int(1e6), s: "v".repeat(rng.int(40)) };
  if (r < 0.85) return "x".repeat(rng.int(pageSize / 3));
  return Buffer.alloc(pageSize / 2 + rng.int(pageSize * 3), rng.int(256)); // overflow-sized
}


test("random operations match a Map model across close and reopen", async () => {
  for (const seed of seedList(40, "KEEL_SIM_SEEDS")) {
    const rng = new Rng(seed);
    const fs = new CrashFileSystem();
    const pageSize = rng.pick([1024, 1024, 4096]);
    const dir = "/db";
    let db = await open(dir, { fs, wal: false, pageSize });
    const model: Model = new Map([["", new Map()]]);
    const names = ["", "a", "b"];
    const steps = 30 + rng.int(40);
    for (let step = 0; step < steps; step++) {
      const label = `seed ${seed} step ${step}`;
      const action = rng.next();
      if (action < 0.55) {
        // A group of concurrent puts/removes in one tick (batched into one transaction).
        const ps: Promise<unknown>[] = [];
        const n = 1 + rng.int(60);
        for (let i = 0; i < n; i++) {
          const name = rng.pick(names);
          const sub = name === "" ? db : db.openDB(name);
          const m = model.get(name) ?? model.set(name, new Map()).get(name)!;
          const k = rng.int(500);
          if (rng.chance(0.7)) {
            const v = randomValue(rng, pageSize);
            m.set(k, v);
            ps.push(sub.put(k, v));
          } else {
            const had = m.has(k);
            m.delete(k);
            // Removes of a missing key must resolve false; only checkable when no put of the same key is in flight.
            ps.push(sub.remove(k).then((existed) => void (had !== undefined && existed)));
          }
        }
        await Promise.all(ps);
      } else if (action < 0.8) {
        // A transaction that reads its own writes; sometimes it throws and must leave no trace.
        const name = rng.pick(names);
        const sub = name === "" ? db : db.openDB(name);
        const m = model.get(name) ?? model.set(name, new Map()).get(name)!;
        const fail = rng.chance(0.2);
        const copy = new Map(m);
        const p = sub.transaction((tx) => {
          for (let i = 0; i < 1 + rng.int(80); i++) {
            const k = rng.int(500);
            if (rng.chance(0.6)) {
              const v = randomValue(rng, pageSize);
              tx.put(k, v);
              copy.set(k, v);
            } else {
              assert.equal(tx.remove(k), copy.has(k), `${label}: remove result in transaction`);
              copy.delete(k);
            }
            assert.deepEqual(tx.get(k), copy.get(k), `${label}: read own write`);
          }
          if (fail) throw new Error("rollback please");
        });
        if (fail) await assert.rejects(p, /rollback please/);
        else {
          await p;
          model.set(name, copy);
        }
      } else if (action < 0.88) {
        const name = rng.pick(names.slice(1));
        const m = model.get(name);
        if (m) {
          await db.openDB(name).clear();
          m.clear();
        }
      } else {
        await db.close();
        db = await open(dir, { fs, wal: false });
      }
      checkInvariants(db, label);
      compare(db, model, rng, label);
    }
    await db.close();
  }
});

test("sequential and reverse-sequential bulk loads fill pages and read back", async () => {
  const fs = new CrashFileSystem();
  const db = await open("/seq", { fs, wal: false, pageSize: 1024 });
  await db.transaction((tx) => {
    for (let i = 0; i < 20000; i++) tx.put(i, i * 2);
    for (let i = 39999; i >= 20000; i--) tx.put(i, i * 2);
  });
  checkInvariants(db, "bulk");
  const st = db.getStats();
  assert.equal(st.entries, 40000);
  let i = 0;
  for (const { key, value } of db.getRange()) {
    assert.equal(key, i);
    assert.equal(value, i * 2);
    i++;
  }
  assert.equal(i, 40000);
  // Remove every other key, then all: the tree shrinks back to empty and the pages are freed.
  await db.transaction((tx) => {
    for (let k = 0; k < 40000; k += 2) tx.remove(k);
  });
  checkInvariants(db, "half removed");
  await db.transaction((tx) => {
    for (let k = 1; k < 40000; k += 2) tx.remove(k);
  });
  checkInvariants(db, "all removed");
  assert.equal(db.getStats().entries, 0);
  assert.equal(db.getStats().dbs[""]?.leafPages, 0);
  await db.close();
});
