/**
 * walWorkload: several concurrent, awaited writers against one Database, recording every unit they
 * enqueue in a WalHistory (see walHistory.ts for why enqueue order is LSN order).
 *
 * Writers: `putLoops` loops of awaited put/remove calls, and `txnLoops` loops of awaited
 * transaction() callbacks (1-5 ops over several sub-databases; some async, some aborting). Each
 * writer has at most one unit outstanding, so one group of the write queue holds at most
 * `putLoops + txnLoops` units and appends at most that many log records. A writer stops at the
 * first error that is not its own deliberate abort (after a power cut every write fails).
 *
 * Sub-databases: the default one (msgpack), "users" (msgpack), "bin" (binary values) and "js"
 * (json values), so replay and openTxLog decode through several encodings.
 */
import type { Database, SubDatabase } from "../../src/index.js";
import type { Rng } from "./rng.js";
import type { Unit, WalHistory, WalOp } from "./walHistory.js";

export const WAL_SUBS: ReadonlyArray<{ name: string; encoding?: "binary" | "json" }> = [
  { name: "" },
  { name: "users" },
  { name: "bin", encoding: "binary" },
  { name: "js", encoding: "json" },
];

export interface WalWriterOptions {
  putLoops: number;
  txnLoops: number;
  /** Units each writer issues (it stops earlier at an error). */
  unitsPerWriter: number;
  /** Keys per sub-database. */
  keySpace: number;
  /** Probability that a value is large (overflow pages). */
  bigValues: number;
  /** Probability that a put-loop unit is a remove. */
  removeRate?: number;
  /** Probability that a transaction aborts (throws). */
  abortRate?: number;
  /** Probability that a transaction callback is async (awaits inside, holding the write lock). */
  asyncRate?: number;
  /** Probability that a writer yields to the event loop (setImmediate) before a unit (default 0). */
  yieldRate?: number;
  /** Called (synchronously) just before a unit is enqueued, and when it is acknowledged. */
  onEnqueue?: (u: Unit) => void;
  onAck?: (u: Unit) => void;
}

export class DeliberateAbort extends Error {
  constructor() {
    super("deliberate abort");
    this.name = "DeliberateAbort";
  }
}

export function subHandles(db: Database): Map<string, SubDatabase> {
  const m = new Map<string, SubDatabase>();
  for (const s of WAL_SUBS) m.set(s.name, s.name === "" ? db : db.openDB(s.name, s.encoding ? { encoding: s.encoding } : {}));
  return m;
}

export function walKey(n: number): string {
  return `k${String(n).padStart(3, "0")}`;
}

/** A value for sub-database `db`, tagged with the unit id (so different prefixes differ). */
export function walValue(rng: Rng, db: string, tag: string, big: boolean): unknown {
  const len = big ? 1500 + rng.int(6000) : 4 + rng.int(120);
  const text = `${tag}|${rng.text(len)}`;
  if (db === "bin") return Buffer.from(text, "latin1");
  if (db === "js") return { t: tag, s: text.slice(0, 64), n: rng.int(1000) };
  return text;
}

export function genOp(rng: Rng, o: WalWriterOptions, tag: string, removeRate: number): WalOp {
  const sub = rng.pick(WAL_SUBS).name;
  const key = walKey(rng.int(o.keySpace));
  if (rng.bool(removeRate)) return { db: sub, key };
  return { db: sub, key, value: walValue(rng, sub, tag, rng.bool(o.bigValues)) };
}

export interface WriterResult {
  /** The first unexpected error of each writer that stopped early. */
  errors: unknown[];
}

/** Run the writers to completion (or to their first error). */
export async function runWalWriters(db: Database, rng: Rng, hist: WalHistory, o: WalWriterOptions, label = "w"): Promise<WriterResult> {
  const subs = subHandles(db);
  const errors: unknown[] = [];
  const loops: Promise<void>[] = [];
  for (let w = 0; w < o.putLoops; w++) {
    const r = rng.fork();
    loops.push(
      (async () => {
        await Promise.resolve();
        for (let i = 0; i < o.unitsPerWriter; i++) {
          if (o.yieldRate && r.bool(o.yieldRate)) await new Promise<void>((res) => setImmediate(res));
          const tag = `${label}p${w}.${i}`;
          const op = genOp(r, o, tag, o.removeRate ?? 0.15);
          const u = hist.add(op.value === undefined ? "remove" : "put", [op], tag);
          o.onEnqueue?.(u);
          const sub = subs.get(op.db)!;
          try {
            if (op.value === undefined) await sub.remove(op.key);
            else await sub.put(op.key, op.value);
          } catch (e) {
            errors.push(e);
            return;
          }
          hist.ack(u);
          o.onAck?.(u);
        }
      })(),
    );
  }
  for (let w = 0; w < o.txnLoops; w++) {
    const r = rng.fork();
    loops.push(
      (async () => {
        await Promise.resolve();
        for (let i = 0; i < o.unitsPerWriter; i++) {
          if (o.yieldRate && r.bool(o.yieldRate)) await new Promise<void>((res) => setImmediate(res));
          const tag = `${label}t${w}.${i}`;
          const n = 1 + r.int(5);
          const ops: WalOp[] = [];
          for (let j = 0; j < n; j++) ops.push(genOp(r, o, `${tag}.${j}`, o.removeRate ?? 0.15));
          const abort = r.bool(o.abortRate ?? 0.1);
          const isAsync = r.bool(o.asyncRate ?? 0.3);
          const apply = (tx: import("../../src/index.js").Transaction): void => {
            for (const op of ops) {
              const t = tx.for(subs.get(op.db)!);
              if (op.value === undefined) t.remove(op.key);
              else t.put(op.key, op.value);
            }
          };
          const u = abort ? undefined : hist.add("txn", ops, tag);
          if (u) o.onEnqueue?.(u);
          try {
            await db.transaction(
              isAsync
                ? async (tx) => {
                    apply(tx);
                    await new Promise<void>((res) => setImmediate(res));
                    if (abort) throw new DeliberateAbort();
                  }
                : (tx) => {
                    apply(tx);
                    if (abort) throw new DeliberateAbort();
                  },
            );
          } catch (e) {
            if (abort && e instanceof DeliberateAbort) continue;
            errors.push(e);
            return;
          }
          if (abort) {
            errors.push(new Error(`transaction ${tag} was meant to abort but committed`));
            return;
          }
          hist.ack(u!);
          o.onAck?.(u!);
        }
      })(),
    );
  }
  await Promise.all(loops);
  return { errors };
}
