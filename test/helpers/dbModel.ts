/**
 * dbModel: the expected content of a database as plain Maps, and the checks that compare an open
 * Database with it.
 *
 * A DbState maps each existing sub-database name ("" is the default database, which always exists)
 * to its entries (string key -> value: a string for msgpack sub-databases, a Buffer for binary
 * ones). `readState` walks a Database into a DbState; `matchState` says which of several allowed
 * states it equals (or fails with a readable diff); `checkDb` then reads the matched state back
 * every other way: get() of every key of the key universe, forward/reverse/bounded ranges,
 * getCount, getStats, listDBs.
 */
import assert from "node:assert/strict";
import { KeelError, type Database, type SubDatabase } from "../../src/index.js";

export type DbState = Map<string, Map<string, unknown>>;

export function emptyState(): DbState {
  return new Map([["", new Map()]]);
}

export function cloneState(s: DbState): DbState {
  const out: DbState = new Map();
  for (const [name, m] of s) out.set(name, new Map(m));
  return out;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function valueText(v: unknown): string {
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return `b:${Buffer.from(v).toString("hex")}`;
  return `j:${JSON.stringify(v)}`;
}

/** A canonical string of a state: equal states give equal strings. */
export function canon(s: DbState): string {
  const names = [...s.keys()].sort(cmp);
  const parts: string[] = [];
  for (const n of names) {
    const m = s.get(n)!;
    const keys = [...m.keys()].sort(cmp);
    parts.push(JSON.stringify(n) + "{" + keys.map((k) => `${JSON.stringify(k)}=${valueText(m.get(k))}`).join(",") + "}");
  }
  return parts.join(";");
}

export function sortedEntries(m: Map<string, unknown>): Array<{ key: string; value: unknown }> {
  return [...m.keys()].sort(cmp).map((key) => ({ key, value: m.get(key) }));
}

/** The sub-database handle for `name` (the stored encodings are used). */
export function sub(db: Database, name: string): SubDatabase {
  return name === "" ? db : db.openDB(name);
}

/** Walk every sub-database of `db` (listDBs plus the default) into a DbState. */
export function readState(db: Database): DbState {
  const s: DbState = new Map();
  for (const name of ["", ...db.listDBs()]) {
    const m = new Map<string, unknown>();
    for (const { key, value } of sub(db, name).getRange()) {
      assert.equal(typeof key, "string", `sub-database ${JSON.stringify(name)}: key ${String(key)} is not a string`);
      assert.ok(!m.has(key as string), `sub-database ${JSON.stringify(name)}: key ${String(key)} seen twice in one range`);
      m.set(key as string, value);
    }
    s.set(name, m);
  }
  return s;
}

function short(v: unknown): string {
  const t = valueText(v);
  return t.length > 60 ? `${t.slice(0, 40)}...(${t.length} chars)` : t;
}

/** A readable list of the differences between two states (at most `max` lines). */
export function diffStates(actual: DbState, expected: DbState, max = 8): string[] {
  const out: string[] = [];
  const names = new Set([...actual.keys(), ...expected.keys()]);
  for (const n of [...names].sort(cmp)) {
    const a = actual.get(n);
    const e = expected.get(n);
    if (!a || !e) {
      out.push(`sub-database ${JSON.stringify(n)}: ${a ? "exists" : "missing"}, expected ${e ? "to exist" : "absent"}`);
      continue;
    }
    const keys = new Set([...a.keys(), ...e.keys()]);
    for (const k of [...keys].sort(cmp)) {
      const av = a.has(k) ? valueText(a.get(k)) : undefined;
      const ev = e.has(k) ? valueText(e.get(k)) : undefined;
      if (av !== ev) out.push(`${JSON.stringify(n)} ${k}: got ${a.has(k) ? short(a.get(k)) : "absent"}, expected ${e.has(k) ? short(e.get(k)) : "absent"}`);
      if (out.length >= max) return out;
    }
  }
  return out;
}

export interface Candidate {
  label: string;
  state: DbState;
}

/** The label of the first candidate `actual` equals; fails with a diff against each otherwise. */
export function matchState(actual: DbState, candidates: readonly Candidate[], context = ""): string {
  const a = canon(actual);
  for (const c of candidates) if (canon(c.state) === a) return c.label;
  const lines = candidates.map((c) => `  vs ${c.label}:\n    ${diffStates(actual, c.state).join("\n    ")}`);
  assert.fail(`${context}the database holds none of the allowed states (${candidates.map((c) => c.label).join(", ")}):\n${lines.join("\n")}`);
}

/**
 * Read `expected` back every way the API offers. `universe` names, per sub-database, keys that
 * may or may not exist (their get() must say undefined when absent).
 */
export function checkDb(db: Database, expected: DbState, universe: ReadonlyMap<string, readonly string[]> = new Map(), context = ""): void {
  try {
    checkDbInner(db, expected, universe, context);
  } catch (e) {
    if (e instanceof KeelError) {
      throw new Error(`${context}reading back failed: KeelError ${e.code}: ${e.message} ${JSON.stringify(e.details)}`, { cause: e });
    }
    throw e;
  }
}

function checkDbInner(db: Database, expected: DbState, universe: ReadonlyMap<string, readonly string[]>, context: string): void {
  const ctx = (what: string) => `${context}${what}`;
  assert.deepEqual(db.listDBs(), [...expected.keys()].filter((n) => n !== "").sort(cmp), ctx("listDBs"));
  const stats = db.getStats();
  let total = 0;
  for (const [name, m] of expected) {
    const s = sub(db, name);
    const want = sortedEntries(m);
    total += want.length;
    assert.deepEqual(s.getRange().asArray, want, ctx(`forward range of ${JSON.stringify(name)}`));
    assert.deepEqual(s.getRange({ reverse: true }).asArray, want.slice().reverse(), ctx(`reverse range of ${JSON.stringify(name)}`));
    if (want.length >= 3) {
      const i = Math.floor(want.length / 3);
      const j = Math.floor((2 * want.length) / 3);
      assert.deepEqual(
        s.getRange({ start: want[i]!.key, end: want[j]!.key }).asArray,
        want.slice(i, j),
        ctx(`bounded range of ${JSON.stringify(name)}`),
      );
      assert.deepEqual(s.getRange({ offset: 1, limit: 2 }).asArray, want.slice(1, 3), ctx(`offset/limit range of ${JSON.stringify(name)}`));
    }
    for (const { key, value } of want) assert.deepEqual(s.get(key), value, ctx(`get(${key}) in ${JSON.stringify(name)}`));
    for (const key of universe.get(name) ?? []) {
      if (!m.has(key)) assert.equal(s.get(key), undefined, ctx(`get(${key}) of an absent key in ${JSON.stringify(name)}`));
    }
    assert.equal(s.getCount(), want.length, ctx(`getCount of ${JSON.stringify(name)}`));
    assert.equal(stats.dbs[name]?.entries, want.length, ctx(`getStats().dbs[${JSON.stringify(name)}].entries`));
  }
  for (const name of universe.keys()) {
    if (!expected.has(name)) {
      assert.equal(stats.dbs[name], undefined, ctx(`getStats().dbs has dropped sub-database ${JSON.stringify(name)}`));
    }
  }
  assert.equal(stats.entries, total, ctx("getStats().entries"));
}

/** Fails with the first differences when two states differ. */
export function assertSameState(actual: DbState, expected: DbState, what: string): void {
  if (canon(actual) !== canon(expected)) assert.fail(`${what}:\n  ${diffStates(actual, expected).join("\n  ")}`);
}
