/**
 * dbUtil: helpers for the db unit tests: databases on an in-memory CrashFileSystem or in a real
 * temp directory, and assertions on KeelError codes (never on message text).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KeelError, openSync, type Database, type KeelErrorCode, type OpenOptions } from "../../src/index.js";
import { CrashFileSystem } from "../../src/io/CrashFileSystem.js";

export const DIR = "/db";

export function memDb(opts: OpenOptions = {}, fs = new CrashFileSystem()): { db: Database; fs: CrashFileSystem } {
  const db = openSync(DIR, { fs, ...opts });
  return { db, fs };
}

export function tempDir(t: { after: (fn: () => void) => void }, prefix = "keel-db-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The KeelError `fn` throws (synchronously); fails if it throws anything else or nothing. */
export function throwsKeel(fn: () => unknown, code: KeelErrorCode, label = ""): KeelError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, `${label}: expected KeelError ${code}, nothing was thrown`);
  assert.ok(caught instanceof KeelError, `${label}: expected KeelError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, `${label}: ${caught.message}`);
  return caught;
}

/** The KeelError a promise rejects with. */
export async function rejectsKeel(p: Promise<unknown> | (() => Promise<unknown>), code: KeelErrorCode, label = ""): Promise<KeelError> {
  let caught: unknown;
  let resolved = false;
  try {
    await (typeof p === "function" ? p() : p);
    resolved = true;
  } catch (e) {
    caught = e;
  }
  assert.ok(!resolved, `${label}: expected a rejection with KeelError ${code}, it resolved`);
  assert.ok(caught instanceof KeelError, `${label}: expected KeelError ${code}, got ${caught instanceof Error ? `${caught.name}: ${caught.message}` : String(caught)}`);
  assert.equal(caught.code, code, `${label}: ${caught.message}`);
  return caught;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
