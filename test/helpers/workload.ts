/**
 * workload: random write steps against a Database, with the model state each step leads to.
 *
 * A step is what the test awaits as one unit, and it is always one commit group: either one
 * transactionSync, or a few "parts" (plain put/remove calls, transaction() callbacks, clear(),
 * dropDB()) issued in the same tick, which the Database drains as one group and makes durable with
 * one checkpoint (db.batch calls are parts too). So a step is acknowledged as a whole (every non-aborted part resolves) or fails as
 * a whole; `runStep` checks that and reports a mixed outcome as an error.
 *
 * Values are sized against the page size so that every step mix holds inline values, values close
 * to the inline limit and overflow values (several pages at 1024-byte pages).
 */
import assert from "node:assert/strict";
import type { Database, SubDatabase, Transaction } from "../../src/index.js";
import { cloneState, type DbState } from "./dbModel.js";
import type { Rng } from "./rng.js";

/** Sub-databases the workload uses; "bin" stores binary values. */
export const SUB_DBS = ["", "users", "idx:é✓", "bin"] as const;

export type Op = { type: "put"; db: string; key: string; value: unknown } | { type: "remove"; db: string; key: string };

export type Part =
  | { kind: "ops"; ops: Op[] }
  | { kind: "txn"; ops: Op[]; abort: boolean; async: boolean }
  /** One db.batch call: ops of one sub-database, one transaction. */
  | { kind: "batch"; db: string; ops: Op[] }
  | { kind: "clear"; db: string }
  | { kind: "drop"; db: string };

export type Step = { kind: "group"; parts: Part[] } | { kind: "sync"; ops: Op[]; abort: boolean };

export interface WorkloadOptions {
  pageSize: number;
  /** Keys per sub-database. */
  keySpace: number;
  /** Probability that a value is overflow-sized. */
  bigValues?: number;
}

/** Thrown by aborting transaction callbacks; the test expects exactly this rejection. */
export class AbortMarker extends Error {
  constructor() {
    super("deliberate abort");
    this.name = "AbortMarker";
  }
}

/** The n-th key (deterministic, some long, so 1024-byte pages get deep trees). */
export function keyName(n: number): string {
  const base = `k${String(n).padStart(4, "0")}`;
  return n % 7 === 3 ? `${base}-${"x".repeat(40 + (n % 60))}` : base;
}

export function keyUniverse(o: WorkloadOptions): Map<string, string[]> {
  const keys = Array.from({ length: o.keySpace }, (_, i) => keyName(i));
  return new Map(SUB_DBS.map((d) => [d, keys]));
}

export function genValue(rng: Rng, db: string, o: WorkloadOptions): unknown {
  const r = rng.next();
  const big = o.bigValues ?? 0.1;
  const half = o.pageSize >> 1;
  const len = r < big ? rng.range(Math.floor(o.pageSize * 0.6), o.pageSize * 3) : r < big + 0.15 ? rng.range(half - 60, half + 20) : rng.int(60);
  return db === "bin" ? rng.bytes(len) : rng.text(len);
}

function genOp(rng: Rng, state: DbState, o: WorkloadOptions, db?: string): Op {
  const d = db ?? rng.pick(SUB_DBS);
  const existing = state.get(d);
  if (existing && existing.size > 0 && rng.bool(0.3)) {
    const keys = [...existing.keys()];
    const key = rng.bool(0.85) ? rng.pick(keys) : keyName(rng.int(o.keySpace));
    return { type: "remove", db: d, key };
  }
  return { type: "put", db: d, key: keyName(rng.int(o.keySpace)), value: genValue(rng, d, o) };
}

function genOps(rng: Rng, state: DbState, o: WorkloadOptions, n: number): Op[] {
  const ops: Op[] = [];
  let s = state;
  for (let i = 0; i < n; i++) {
    const op = genOp(rng, s, o);
    ops.push(op);
    if (i % 8 === 7) s = applyOps(cloneState(s), ops.slice(i - 7, i + 1));
  }
  return ops;
}

/**
 * A bulk load: `n` puts spread over the sub-databases (first step of a fresh database), as plain
 * puts, one transaction, or one db.batch per sub-database (into empty trees: built bottom-up).
 */
export function bulkStep(rng: Rng, o: WorkloadOptions, n: number): Step {
  const ops: Op[] = [];
  for (let i = 0; i < n; i++) {
    const db = rng.bool(0.6) ? "" : rng.pick(SUB_DBS);
    ops.push({ type: "put", db, key: keyName(rng.int(o.keySpace)), value: genValue(rng, db, o) });
  }
  const r = rng.next();
  if (r < 0.35) return { kind: "group", parts: [{ kind: "ops", ops }] };
  if (r < 0.7) return { kind: "group", parts: [{ kind: "txn", ops, abort: false, async: false }] };
  return { kind: "group", parts: SUB_DBS.map((db): Part => ({ kind: "batch", db, ops: ops.filter((op) => op.db === db) })).filter((p) => p.kind === "batch" && p.ops.length > 0) };
}

export function genStep(rng: Rng, state: DbState, o: WorkloadOptions): Step {
  if (rng.bool(0.1)) return { kind: "sync", ops: genOps(rng, state, o, rng.range(1, 6)), abort: rng.bool(0.1) };
  const parts: Part[] = [];
  const n = rng.bool(0.7) ? 1 : rng.range(2, 3);
  for (let i = 0; i < n; i++) {
    const r = rng.next();
    if (r < 0.45) parts.push({ kind: "ops", ops: genOps(rng, state, o, rng.range(1, 8)) });
    else if (r < 0.8) parts.push({ kind: "txn", ops: genOps(rng, state, o, rng.range(1, 20)), abort: rng.bool(0.12), async: rng.bool(0.3) });
    else if (r < 0.85) parts.push(genBatch(rng, state, o));
    else if (r < 0.92) parts.push({ kind: "ops", ops: genOps(rng, state, o, rng.range(30, 120)) });
    else if (r < 0.96) parts.push({ kind: "clear", db: rng.pick(SUB_DBS) });
    else parts.push({ kind: "drop", db: rng.pick(SUB_DBS.filter((d) => d !== "")) });
  }
  return { kind: "group", parts };
}

/**
 * A db.batch of one sub-database: usually small, sometimes past RADIX_MIN (1024), so that it is
 * sorted by radix, with many writes to the same keys (the key space is small).
 */
function genBatch(rng: Rng, state: DbState, o: WorkloadOptions): Part {
  const db = rng.pick(SUB_DBS);
  const n = rng.bool(0.2) ? rng.range(1024, 1300) : rng.range(1, 40);
  const ops: Op[] = [];
  for (let i = 0; i < n; i++) ops.push(genOp(rng, state, o, db));
  return { kind: "batch", db, ops };
}

function applyOps(s: DbState, ops: readonly Op[]): DbState {
  for (const op of ops) {
    if (op.type === "put") {
      let m = s.get(op.db);
      if (!m) s.set(op.db, (m = new Map()));
      m.set(op.key, op.value);
    } else s.get(op.db)?.delete(op.key);
  }
  return s;
}

function applyPart(s: DbState, p: Part): void {
  if (p.kind === "ops" || p.kind === "batch") applyOps(s, p.ops);
  else if (p.kind === "txn") {
    if (!p.abort) applyOps(s, p.ops);
  } else if (p.kind === "clear") {
    if (s.has(p.db)) s.set(p.db, new Map());
  } else s.delete(p.db);
}

/** The parts of a step, as the transactions the Database runs (a transactionSync is one part). */
function partsOf(step: Step): Part[] {
  return step.kind === "sync" ? [{ kind: "txn", ops: step.ops, abort: step.abort, async: false }] : step.parts;
}

/**
 * The units of a step that succeed or fail on their own, in issue order: each plain put/remove
 * call (the Database batches consecutive ones, but a failure while building a batch rejects only
 * the calls batched so far, and the next calls start a new batch), each transaction, each clear
 * and dropDB.
 */
export function unitsOf(step: Step): Part[] {
  const out: Part[] = [];
  for (const p of partsOf(step)) {
    if (p.kind === "ops") for (const op of p.ops) out.push({ kind: "ops", ops: [op] });
    else out.push(p);
  }
  return out;
}

/** The state after `step` is committed on top of `state` (aborted parts change nothing). */
export function applyStep(state: DbState, step: Step): DbState {
  const s = cloneState(state);
  for (const p of partsOf(step)) applyPart(s, p);
  return s;
}

/** The state after only the units (see unitsOf) with `committed[i]` true are applied, in order. */
export function applyUnits(state: DbState, step: Step, committed: readonly boolean[]): DbState {
  const s = cloneState(state);
  unitsOf(step).forEach((p, i) => {
    if (committed[i]) applyPart(s, p);
  });
  return s;
}

export function subOf(db: Database, name: string): SubDatabase {
  if (name === "") return db;
  return db.openDB(name, name === "bin" ? { encoding: "binary" } : {});
}

function runTxnOps(db: Database, tx: Transaction, ops: readonly Op[], checkReads: boolean): void {
  for (const op of ops) {
    const t = tx.for(subOf(db, op.db));
    if (op.type === "put") {
      t.put(op.key, op.value);
      if (checkReads) assert.deepEqual(t.get(op.key), op.value, `read-your-writes of ${op.key} inside a transaction`);
    } else {
      t.remove(op.key);
      if (checkReads) assert.equal(t.get(op.key), undefined, `read-your-removes of ${op.key} inside a transaction`);
    }
  }
}

export interface StepResult {
  /** Per unit (see unitsOf): whether it was acknowledged. */
  committed: boolean[];
  /** The first rejection of a non-aborted unit, if any. */
  error?: unknown;
}

/**
 * Issue `step` (every call in the same tick, so that the Database drains it as one group) and
 * settle every unit. Aborted transactions must reject (an Error is thrown if one resolves).
 * Never rejects for a failed commit: the result says which units were acknowledged.
 */
export async function runStep(db: Database, step: Step): Promise<StepResult> {
  if (step.kind === "sync") {
    try {
      db.transactionSync((tx) => {
        runTxnOps(db, tx, step.ops, true);
        if (step.abort) throw new AbortMarker();
      });
    } catch (e) {
      if (step.abort && e instanceof AbortMarker) return { committed: [false] };
      if (step.abort) return { committed: [false] }; // an I/O error met before it got to abort
      return { committed: [false], error: e };
    }
    if (step.abort) throw new Error("an aborted transactionSync returned normally");
    return { committed: [true] };
  }
  const units: Array<{ unit: Part; p: Promise<unknown> }> = [];
  for (const unit of unitsOf(step)) {
    let p: Promise<unknown>;
    if (unit.kind === "ops") {
      const op = unit.ops[0]!;
      p = op.type === "put" ? subOf(db, op.db).put(op.key, op.value) : subOf(db, op.db).remove(op.key);
    } else if (unit.kind === "txn") {
      const part = unit;
      p = db.transaction(async (tx) => {
        if (part.async) await Promise.resolve();
        runTxnOps(db, tx, part.ops, true);
        if (part.abort) throw new AbortMarker();
      });
    } else if (unit.kind === "batch") {
      p = subOf(db, unit.db).batch(unit.ops.map((op) => (op.type === "put" ? { type: "put", key: op.key, value: op.value } : { type: "remove", key: op.key })));
    } else if (unit.kind === "clear") p = subOf(db, unit.db).clear();
    else p = db.dropDB(unit.db);
    units.push({ unit, p });
  }
  const settled = await Promise.allSettled(units.map((x) => x.p));
  const result: StepResult = { committed: [] };
  settled.forEach((r, i) => {
    const unit = units[i]!.unit;
    if (unit.kind === "txn" && unit.abort) {
      // It rejects with AbortMarker, or with an I/O error met before it got to abort.
      if (r.status === "fulfilled") throw new Error("an aborting transaction resolved");
      result.committed.push(false);
      return;
    }
    result.committed.push(r.status === "fulfilled");
    if (r.status === "rejected") result.error ??= r.reason;
  });
  return result;
}

/** runStep, failing unless every non-aborted part was acknowledged. */
export async function runStepOk(db: Database, step: Step): Promise<void> {
  const r = await runStep(db, step);
  if (r.error !== undefined) throw r.error;
}

