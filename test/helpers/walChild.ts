/**
 * walChild: start helpers/walKillChild.js, read its report lines, kill it, and rebuild the commit
 * history it reported (see walKillChild.ts for the line format); then check a database directory
 * against that history after the child died.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { open, type Database, type OpenOptions } from "../../src/index.js";
import { checkSnapshot } from "../../src/maintenance/Snapshots.js";
import type { SnapshotInfo } from "../../src/maintenance/Snapshots.js";
import { describeError } from "./crashCheck.js";
import { canon, diffStates, readState, type DbState } from "./dbModel.js";
import { WalHistory, type WalOp } from "./walHistory.js";
import { decodeFromLine, type ChildConfig } from "./walKillChild.js";

export const CHILD_SCRIPT = fileURLToPath(new URL("./walKillChild.js", import.meta.url));

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Complete lines (a line cut by the kill is dropped). */
  lines: string[];
  stderr: string;
}

export interface ChildRun {
  /** Resolves when the child printed its first line (R: open returned) or died. */
  ready: Promise<void>;
  /** Resolves when the child printed D (workload over) or died. */
  done: Promise<void>;
  exited: Promise<ChildExit>;
  /** Resolves once the child acknowledged `n` units (or died, or `timeoutMs` passed). */
  untilAcked(n: number, timeoutMs?: number): Promise<void>;
  kill(): void;
  readonly pid: number | undefined;
}

export function startChild(cfg: ChildConfig, env: Record<string, string> = {}): ChildRun {
  const child = spawn(process.execPath, [CHILD_SCRIPT, JSON.stringify(cfg)], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let buf = "";
  let stderr = "";
  let acks = 0;
  let dead = false;
  const ackWaiters: Array<{ n: number; resolve: () => void }> = [];
  const wakeAckWaiters = (): void => {
    for (let i = ackWaiters.length - 1; i >= 0; i--) {
      if (dead || acks >= ackWaiters[i]!.n) ackWaiters.splice(i, 1)[0]!.resolve();
    }
  };
  const lines: string[] = [];
  let onReady!: () => void;
  let onDone!: () => void;
  const ready = new Promise<void>((r) => (onReady = r));
  const done = new Promise<void>((r) => (onDone = r));
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => {
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      lines.push(line);
      if (line.startsWith("R ")) onReady();
      if (line === "D") onDone();
      if (line.startsWith("A ")) {
        acks++;
        wakeAckWaiters();
      }
    }
  });
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (c: string) => (stderr += c));
  const exited = new Promise<ChildExit>((resolve) => {
    child.on("close", (code, signal) => {
      dead = true;
      wakeAckWaiters();
      onReady();
      onDone();
      resolve({ code, signal, lines, stderr });
    });
  });
  return {
    ready,
    done,
    exited,
    untilAcked: (n, timeoutMs = 20_000) =>
      new Promise<void>((resolve) => {
        const t = setTimeout(resolve, timeoutMs);
        ackWaiters.push({
          n,
          resolve: () => {
            clearTimeout(t);
            resolve();
          },
        });
        wakeAckWaiters();
      }),
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
    get pid() {
      return child.pid;
    },
  };
}

export interface ParsedRun {
  hist: WalHistory;
  readyLsn: number | undefined;
  done: boolean;
  snapshots: SnapshotInfo[];
  errors: string[];
}

/**
 * The history a child reported: units, acknowledgements and commit events, on top of `base` (the
 * verified state the child started from). The history starts at the LSN the child's open reported
 * (R line), or at `prevLsn` if it died before open returned.
 */
export function parseLines(lines: readonly string[], base: DbState, prevLsn: number): ParsedRun {
  const rLine = lines.find((l) => l.startsWith("R "));
  const readyLsn = rLine ? (JSON.parse(rLine.slice(2)) as { lsn: number }).lsn : undefined;
  const hist = new WalHistory(base, readyLsn ?? prevLsn);
  const byTag = new Map<string, ReturnType<WalHistory["add"]>>();
  const r: ParsedRun = { hist, readyLsn, done: false, snapshots: [], errors: [] };
  for (const line of lines) {
    const sp = line.indexOf(" ");
    const kind = sp < 0 ? line : line.slice(0, sp);
    const rest = sp < 0 ? "" : line.slice(sp + 1);
    switch (kind) {
      case "R":
        break;
      case "E": {
        const u = JSON.parse(rest) as { tag: string; kind: "put" | "remove" | "txn"; ops: Array<{ db: string; key: string; value?: unknown }> };
        const ops: WalOp[] = u.ops.map((o) => (o.value === undefined ? { db: o.db, key: o.key } : { db: o.db, key: o.key, value: decodeFromLine(o.value) }));
        byTag.set(u.tag, hist.add(u.kind, ops, u.tag));
        break;
      }
      case "A": {
        const u = byTag.get(rest);
        if (!u) r.errors.push(`ack of unknown unit ${rest}`);
        else hist.ack(u);
        break;
      }
      case "C": {
        const [lsn, ops] = rest.split(" ").map(Number);
        hist.event(lsn!, ops!);
        break;
      }
      case "S":
        r.snapshots.push(JSON.parse(rest) as SnapshotInfo);
        break;
      case "G":
        break;
      case "D":
        r.done = true;
        break;
      case "X":
        r.errors.push(rest);
        break;
      default:
        r.errors.push(`unexpected line: ${line.slice(0, 200)}`);
    }
  }
  return r;
}

export interface Verified {
  state: DbState;
  lsn: number;
}

/**
 * Open `dir` after the child died and check it against `hist`: a prefix of the history (I3), exactly
 * the state at the recovered LSN when the commit events reach it, and (requireAcked) holding every
 * acknowledged unit (I4). Then listSnapshots() must list only snapshots whose data file matches the
 * CRC recorded in their snapshot.json. Returns the recovered state and LSN; the database is closed.
 */
export async function verifyAfterDeath(dir: string, hist: WalHistory, opts: { requireAcked: boolean; options?: OpenOptions; context: string }): Promise<Verified & { snapshots: SnapshotInfo[] }> {
  const ctx = opts.context;
  let db: Database;
  try {
    db = await open(dir, opts.options ?? {});
  } catch (e) {
    assert.fail(`${ctx}: open after the kill failed: ${describeError(e)}`);
  }
  try {
    hist.checkEventsContiguous(ctx);
    const state = readState(db);
    const w = db.txlogWatermarks();
    const R = w.lastCommittedLsn;
    assert.equal(w.lastDurableLsn, R, `${ctx}: after recovery every record is durable`);
    hist.checkPrefix(state, opts.requireAcked ? hist.maxAcked + 1 : 0, ctx);
    const exact = hist.stateAtLsn(R, ctx);
    if (exact !== undefined && canon(exact) !== canon(state)) {
      assert.fail(`${ctx}: the state is not the state at the recovered LSN ${R}:\n  ${diffStates(state, exact).join("\n  ")}`);
    }
    const snapshots = db.listSnapshots();
    for (const s of snapshots) {
      try {
        checkSnapshot(db.fs, s);
      } catch (e) {
        assert.fail(`${ctx}: listSnapshots lists ${s.name} (LSN ${s.lsn}), which is not a complete snapshot: ${describeError(e)}`);
      }
    }
    return { state, lsn: R, snapshots };
  } finally {
    await db.close();
  }
}

export function childConfigBase(dir: string, seed: number, label: string): Pick<ChildConfig, "dir" | "seed" | "label"> {
  return { dir, seed, label };
}
