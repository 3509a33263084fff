/**
 * crashCheck: reopen a database on a crashed CrashFileSystem and check it holds one of the
 * allowed states, read back every way (see dbModel.checkDb).
 *
 * Invariants checked (DESIGN.md I1, I4, I6): open after a power cut needs no human and no recovery
 * step and never fails; every page reachable from the chosen meta checks out (any error while
 * reading, CORRUPT included, is a failure); the state is exactly one of the allowed ones.
 */
import { posix } from "node:path";
import { open, KeelError, type Database, type OpenOptions } from "../../src/index.js";
import type { CrashFileSystem } from "../../src/io/CrashFileSystem.js";
import { checkDb, matchState, readState, type Candidate, type DbState } from "./dbModel.js";

export function describeError(e: unknown): string {
  if (e instanceof KeelError) return `KeelError ${e.code}: ${e.message} ${JSON.stringify(e.details)}`;
  if (e instanceof Error) return `${e.name}: ${e.message}\n${e.stack ?? ""}`;
  return String(e);
}

/**
 * The process that "crashed" was this test process, so the LOCK it left behind names our own
 * pid, which Lock.acquire rightly refuses (LOCKED: "already open in this process"). In reality
 * the crashed process is dead and its LOCK is taken over on open; removing the file models that.
 */
export function removeStaleLock(fs: CrashFileSystem, dir: string): void {
  fs.remove(posix.join(dir, "LOCK"));
}

export interface Recovered {
  db: Database;
  label: string;
  state: DbState;
}

export async function reopenAndMatch(
  fs: CrashFileSystem,
  dir: string,
  options: OpenOptions,
  candidates: readonly Candidate[],
  universe: ReadonlyMap<string, readonly string[]>,
  context: string,
): Promise<Recovered> {
  removeStaleLock(fs, dir);
  let db: Database;
  try {
    db = await open(dir, { ...options, fs });
  } catch (e) {
    throw new Error(`${context}: open failed: ${describeError(e)}`, { cause: e });
  }
  try {
    let actual: DbState;
    try {
      actual = readState(db);
    } catch (e) {
      throw new Error(`${context}: reading the recovered database failed: ${describeError(e)}`, { cause: e });
    }
    const label = matchState(actual, candidates, `${context}: `);
    const state = candidates.find((c) => c.label === label)!.state;
    try {
      checkDb(db, state, universe, `${context} [${label}]: `);
    } catch (e) {
      if (e instanceof KeelError) throw new Error(`${context} [${label}]: reading back failed: ${describeError(e)}`, { cause: e });
      throw e;
    }
    return { db, label, state };
  } catch (e) {
    await db.close().catch(() => {});
    throw e;
  }
}

let quieted = false;
/**
 * The engine warns (process.emitWarning) when it opens the older meta because the newest one is
 * damaged: after a simulated crash or damage that is the expected case, so the crash and fuzz suites
 * silence those warnings; any other warning is still printed.
 */
export function quietExpectedWarnings(codes: readonly string[] = ["KEEL_META_FALLBACK"]): void {
  if (quieted) return;
  quieted = true;
  process.removeAllListeners("warning");
  process.on("warning", (w: Error & { code?: string }) => {
    if (w.code !== undefined && codes.includes(w.code)) return;
    process.stderr.write(`${w.name}${w.code ? ` [${w.code}]` : ""}: ${w.message}\n`);
  });
}
