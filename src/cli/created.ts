/**
 * created: undo the database a command created (`keel put --create`; `keel load` undoes only its
 * staging directory, commands/load.ts) when that
 * command then fails or is interrupted, so that a rerun finds the directory as it was.
 *
 * Invariants:
 * - "Created" means: <dir> held no database (no data.keel) before the command. It says nothing
 *   about whether <dir> existed: an existing empty directory is the usual target.
 * - Nothing the directory held before the command is removed. A directory the command made goes
 *   whole; in one that existed, only the entries that were not there before (data.keel, wal/,
 *   LOCK, ...) go.
 * - An open refused with LOCKED removes nothing: another process holds the directory and may be
 *   creating a database there at this moment.
 */
import { readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { KeelError } from "../errors.js";

export class CreatedDatabase {
  readonly #dir: string;
  /** The entries of <dir> before the command; undefined when <dir> did not exist. */
  readonly #before: Set<string> | undefined;

  private constructor(dir: string, before: Set<string> | undefined) {
    this.#dir = dir;
    this.#before = before;
  }

  /**
   * Record <dir>, which holds no database, before the command creates one there: undefined when it
   * is not a directory (open refuses it, and there is nothing to undo).
   */
  static before(dir: string): CreatedDatabase | undefined {
    const st = statSync(dir, { throwIfNoEntry: false });
    if (st === undefined) return new CreatedDatabase(dir, undefined);
    if (!st.isDirectory()) return undefined;
    return new CreatedDatabase(dir, new Set(readdirSync(dir)));
  }

  /** Run the open that creates the database; when it fails, remove what it left. */
  async open<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof KeelError && e.code === "LOCKED")) this.remove();
      throw e;
    }
  }

  /** Remove what the command added; the database must be closed. */
  remove(): void {
    try {
      if (this.#before === undefined) {
        rmSync(this.#dir, { recursive: true, force: true });
        return;
      }
      for (const name of readdirSync(this.#dir)) {
        if (!this.#before.has(name)) rmSync(join(this.#dir, name), { recursive: true, force: true });
      }
    } catch {
      // The command's own error is the one to report; a rerun meets whatever is left.
    }
  }
}
