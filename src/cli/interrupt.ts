/**
 * interrupt: what SIGINT, SIGTERM and SIGHUP do to a `keel` command that has no handler of its own.
 *
 * Installed first thing (keel.ts, before the commands' modules load), so a signal at any point of
 * a command exits with status 130 and `keel: interrupted` on stderr instead of the default death
 * (143, 129), and a database the command has open leaves no LOCK or READER file:
 *   1. A command with long work (Context.signal) or `keel serve` adds its own listener: this one
 *      then does nothing, and that one stops the work gracefully (removing partial output).
 *   2. While a database is being opened (a log replay may take a while), the exit waits for the
 *      open to settle: its files exist only once it has, and are released at the exit.
 *   3. Otherwise the process exits at once; the 'exit' hook releases every database still open,
 *      then runs the undo steps registered for an interrupted command (a database `put --create`
 *      made is removed again: created.ts).
 * Only Node's own start-up (before keel.ts runs) is not covered.
 */
import { ExitCode } from "./exitCodes.js";

/** What the exit hook needs of an open database (Database.releaseForExit). */
export interface Releasable {
  releaseForExit(): void;
}

const SIGNALS: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
const open = new Set<Releasable>();
const undoIfInterrupted = new Set<() => void>();
let opening = 0;
let interrupted = false;

/**
 * `statusAlone`: the exit status when no handler of the command's own is in yet: 130, but 0 for
 * `keel serve`, where a signal before its handlers is a stop before anything is served (README).
 */
let statusAlone: number = ExitCode.INTERRUPTED;

export function installInterruptHandling(o: { statusAlone?: number } = {}): void {
  statusAlone = o.statusAlone ?? ExitCode.INTERRUPTED;
  process.on("exit", () => {
    for (const db of open) db.releaseForExit();
    if (interrupted) for (const undo of undoIfInterrupted) undo();
  });
  for (const sig of SIGNALS) process.on(sig, onSignal);
}

function onSignal(sig: NodeJS.Signals): void {
  // 1.
  if (process.listenerCount(sig) > 1) return;
  if (!interrupted) {
    interrupted = true;
    try {
      process.stderr.write("keel: interrupted\n");
    } catch {
      // stderr is gone: the status says it
    }
  }
  // 2.
  if (opening > 0) return;
  // 3.
  process.exit(statusAlone);
}

/** Open a database for a command (step 2); released at any exit (a no-op once the command closed it). */
export async function trackOpen<T extends Releasable>(openIt: () => Promise<T>): Promise<T> {
  opening++;
  let db: T;
  try {
    db = await openIt();
  } catch (e) {
    opening--;
    if (interrupted && opening === 0) process.exit(statusAlone);
    throw e;
  }
  opening--;
  open.add(db);
  if (interrupted && opening === 0) process.exit(statusAlone);
  return db;
}

/** Run `undo` if the process exits interrupted before the returned function is called. */
export function undoOnInterrupt(undo: () => void): () => void {
  undoIfInterrupted.add(undo);
  return () => void undoIfInterrupted.delete(undo);
}
