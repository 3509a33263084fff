/**
 * walHistory: the commit history of a write-ahead-log workload, as the tests see it, and the
 * checks that compare a recovered database with it (DESIGN.md I3, I4).
 *
 * A Unit is what a writer hands to the database in one call: a put, a remove, or a transaction()
 * callback with its ops (aborted transactions are not units: they never commit). Units are
 * recorded in the order they are enqueued. The Database drains its write queue in FIFO order and
 * each log record holds whole units (a run of consecutive put/remove calls of one group forms one
 * record, a transaction callback its own), so the LSN order of the records is the enqueue order of
 * the units, and "the state equals applying the first N commits" implies "the state equals
 * applying the first k units" for some k. The converse check is what `matchPrefixes` does.
 *
 * LSN mapping: a record's commit event reports how many logical ops it applied (puts, removes of
 * existing keys, clears and drops; createDB is not counted). Replaying the units on the model
 * gives each unit's effective op count, so the state at LSN L is the state after the units whose
 * cumulative op count equals the ops of the events up to L (units of zero effective ops change
 * nothing, so any of the matching k gives the same state). `stateAtLsn` uses that.
 */
import assert from "node:assert/strict";
import { canon, cloneState, diffStates, type DbState } from "./dbModel.js";

/** One logical write: a put when `value` is defined, else a remove. */
export interface WalOp {
  db: string;
  key: string;
  value?: unknown;
}

export interface Unit {
  /** Index in the history (enqueue order). */
  index: number;
  kind: "put" | "remove" | "txn";
  ops: WalOp[];
  /** Free-form label (writer, sequence) for failure messages. */
  tag: string;
}

export interface CommitEvent {
  lsn: number;
  ops: number;
}

/** Apply one op to a state; returns whether it was an effective op (counted by the engine). */
export function applyWalOp(s: DbState, op: WalOp): boolean {
  if (op.value !== undefined) {
    let m = s.get(op.db);
    if (!m) {
      m = new Map();
      s.set(op.db, m);
    }
    m.set(op.key, op.value);
    return true;
  }
  const m = s.get(op.db);
  if (!m) return false;
  return m.delete(op.key);
}

interface Prefixes {
  canons: string[];
  /** Effective ops applied after k units. */
  effOps: number[];
  /** The state after the last unit. */
  final: DbState;
}

export class WalHistory {
  readonly units: Unit[] = [];
  readonly events: CommitEvent[] = [];
  /** Highest unit index acknowledged (resolved), -1 if none. */
  maxAcked = -1;
  acked = 0;
  #prefixes: Prefixes | undefined;

  /** `base`: the verified state the workload starts from; `baseLsn`: its last LSN. */
  constructor(
    readonly base: DbState,
    readonly baseLsn: number,
  ) {}

  add(kind: Unit["kind"], ops: WalOp[], tag: string): Unit {
    const u: Unit = { index: this.units.length, kind, ops, tag };
    this.units.push(u);
    this.#prefixes = undefined;
    return u;
  }

  ack(u: Unit): void {
    this.acked++;
    if (u.index > this.maxAcked) this.maxAcked = u.index;
  }

  /** Record a commit event (events with LSN 0 are empty transactions and carry no record). */
  event(lsn: number, ops: number): void {
    if (lsn === 0) return;
    this.events.push({ lsn, ops });
  }

  prefixes(): Prefixes {
    if (this.#prefixes) return this.#prefixes;
    const s = cloneState(this.base);
    const canons = [canon(s)];
    const effOps = [0];
    let n = 0;
    for (const u of this.units) {
      for (const op of u.ops) if (applyWalOp(s, op)) n++;
      canons.push(canon(s));
      effOps.push(n);
    }
    this.#prefixes = { canons, effOps, final: s };
    return this.#prefixes;
  }

  /** The state after the first k units. */
  stateAfter(k: number): DbState {
    const s = cloneState(this.base);
    for (let i = 0; i < k; i++) for (const op of this.units[i]!.ops) applyWalOp(s, op);
    return s;
  }

  /** Every k (0..units.length) such that `actual` equals the state after the first k units. */
  matchPrefixes(actual: DbState): number[] {
    const a = canon(actual);
    const out: number[] = [];
    this.prefixes().canons.forEach((c, k) => {
      if (c === a) out.push(k);
    });
    return out;
  }

  /** Commit events are contiguous from baseLsn + 1 (I3 as seen by listeners). */
  checkEventsContiguous(context: string): void {
    let expect = this.baseLsn + 1;
    for (const e of this.events) {
      assert.equal(e.lsn, expect, `${context}: commit events out of order or with a hole: got LSN ${e.lsn}, expected ${expect}`);
      expect++;
    }
  }

  /** The last LSN whose commit event was seen (baseLsn when none). */
  get lastEventLsn(): number {
    const e = this.events[this.events.length - 1];
    return e ? e.lsn : this.baseLsn;
  }

  /**
   * The unit counts k whose state is the state at LSN `lsn`, from the commit events (undefined when
   * the events do not reach that LSN). Throws when no unit boundary matches (a bug in the test or
   * an op count the engine reports wrongly).
   */
  unitsAtLsn(lsn: number, context = ""): number[] | undefined {
    if (lsn < this.baseLsn || lsn > this.lastEventLsn) return undefined;
    let ops = 0;
    for (const e of this.events) if (e.lsn <= lsn) ops += e.ops;
    const ks: number[] = [];
    this.prefixes().effOps.forEach((n, k) => {
      if (n === ops) ks.push(k);
    });
    assert.ok(ks.length > 0, `${context}: no unit boundary has ${ops} effective ops (LSN ${lsn}); the commit events disagree with the model`);
    return ks;
  }

  stateAtLsn(lsn: number, context = ""): DbState | undefined {
    const ks = this.unitsAtLsn(lsn, context);
    return ks === undefined ? undefined : this.stateAfter(ks[0]!);
  }

  /**
   * Check that `actual` is a prefix state, at least `minUnits` units long. Returns the matching
   * unit counts. On failure, the message shows the diff against the closest allowed states.
   */
  checkPrefix(actual: DbState, minUnits: number, context: string): number[] {
    const ks = this.matchPrefixes(actual);
    if (ks.length === 0) {
      const hint = [minUnits, this.units.length]
        .filter((k, i, a) => a.indexOf(k) === i && k >= 0 && k <= this.units.length)
        .map((k) => `  vs state after ${k} units:\n    ${diffStates(actual, this.stateAfter(k)).join("\n    ")}`);
      assert.fail(`${context}: the recovered state is not the state after any prefix of the ${this.units.length} units (not a prefix of the commit history: a hole or a reordering, I3)\n${hint.join("\n")}`);
    }
    const ok = ks.filter((k) => k >= minUnits);
    if (ok.length === 0) {
      const missing = this.units.slice(Math.max(...ks), minUnits).map((u) => u.tag);
      assert.fail(
        `${context}: acknowledged commits are missing: the state is the prefix of ${Math.max(...ks)} units but ${minUnits} were acknowledged (lost: ${missing.slice(0, 8).join(", ")}${missing.length > 8 ? ", ..." : ""})`,
      );
    }
    return ok;
  }
}
