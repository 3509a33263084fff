/**
 * healthCheck: what GET /health answers. Healthy only when every check passes:
 *   - read: real reads of the data the server serves: in every sub-database that holds entries
 *     (the keyspace's resp:N:keys, resp:N:hash, resp:N:ttl, and the default one), the first and
 *     the last key (each walks the tree from the root down to a leaf; values are not read, so a
 *     large one costs nothing) and a point read of a key that is absent (a third path down the
 *     tree): a CLOSED, CORRUPT or IO error fails it. A few page reads per sub-database, from the
 *     page cache when it is warm;
 *   - log: the log has not failed (a failed sync refuses every write until a restart);
 *   - write: the last commit did not fail to write or sync (FULL, IO: a full disk refuses writes
 *     while reads work); it passes again once a commit succeeds;
 *   - lag: committed-but-not-durable and durable-but-not-checkpointed records within the limits
 *     (a limit of 0 disables that check);
 *   - disk: the data directory's file system (fs.statfs) has at least health.min_free_bytes free.
 *
 * Invariants: the check never writes; it never throws (a failing probe is a reason in the
 * answer); each reason has a stable `check` name to branch on.
 */
import { statfsSync } from "node:fs";
import type { Database } from "../../db/Database.js";
import type { SubDatabase } from "../../db/SubDatabase.js";
import { KeelError } from "../../errors.js";
import type { HealthSettings } from "../config/ServeConfig.js";

export interface HealthReason {
  readonly check: "read" | "log" | "write" | "lag" | "disk" | "shutdown";
  readonly message: string;
  readonly code?: string | undefined;
}

export interface HealthReport {
  readonly status: "ok" | "fail";
  readonly reasons: HealthReason[];
  readonly readMs: number;
  readonly lsn: { committed: number; durable: number; applied: number } | null;
  readonly lag: { durable: number; applied: number } | null;
  readonly disk: { freeBytes: number; totalBytes: number } | null;
}

const PROBE_KEY = "\u0000keel:health-probe";
const PROBE_BYTES = Buffer.from(PROBE_KEY);

/** The reads of one sub-database: first entry, last entry, an absent key in between. */
function probe(sub: SubDatabase): void {
  if (sub.getCount() === 0) return;
  // Keys only: the walk reads each page down to the leaf, but not a large value's overflow run
  // (a 200 MB value read and decoded per probe held the event loop for half a second).
  for (const _ of sub.getKeys({ limit: 1 })) break;
  for (const _ of sub.getKeys({ limit: 1, reverse: true })) break;
  // Sub-databases are opened with their stored encodings; only a binary one needs a Buffer key.
  sub.get(sub.keyEncoding === "binary" ? PROBE_BYTES : PROBE_KEY);
}

/** Where the read probe failed, for the reason's message. */
function readProbe(db: Database): void {
  let at = "(default)";
  try {
    probe(db);
    for (const name of db.listDBs()) {
      at = name;
      probe(db.openDB(name));
    }
  } catch (e) {
    if (e instanceof KeelError) throw new KeelError(e.code, `${at}: ${e.message}`, { ...e.details, subDatabase: at }, { cause: e });
    throw e;
  }
}

export function healthCheck(db: Database, dir: string, limits: HealthSettings, shuttingDown: boolean, writeError: KeelError | null = null): HealthReport {
  const reasons: HealthReason[] = [];
  if (shuttingDown) reasons.push({ check: "shutdown", message: "the server is shutting down" });
  const t0 = performance.now();
  try {
    readProbe(db);
  } catch (e) {
    const code = e instanceof KeelError ? e.code : undefined;
    reasons.push({ check: "read", message: `read probe failed: ${(e as Error)?.message ?? String(e)}`, code });
  }
  const readMs = performance.now() - t0;
  if (writeError) reasons.push({ check: "write", message: `the last write failed, and none has succeeded since: ${writeError.message}`, code: writeError.code });
  let lsn: HealthReport["lsn"] = null;
  let lag: HealthReport["lag"] = null;
  try {
    const w = db.txlogWatermarks();
    lsn = { committed: w.lastCommittedLsn, durable: w.lastDurableLsn, applied: w.lastAppliedLsn };
    lag = w.lag;
    if (w.failed) reasons.push({ check: "log", message: `the log failed and refuses writes until a restart: ${w.failed.message}`, code: w.failed.code });
    if (limits.maxDurableLag > 0 && w.lag.durable > limits.maxDurableLag) {
      reasons.push({ check: "lag", message: `${w.lag.durable} records committed but not yet durable (limit ${limits.maxDurableLag})` });
    }
    if (limits.maxAppliedLag > 0 && w.lag.applied > limits.maxAppliedLag) {
      reasons.push({ check: "lag", message: `${w.lag.applied} records not yet checkpointed (limit ${limits.maxAppliedLag})` });
    }
  } catch (e) {
    if (!reasons.some((r) => r.check === "read")) reasons.push({ check: "log", message: `log state unavailable: ${(e as Error)?.message ?? String(e)}`, code: e instanceof KeelError ? e.code : undefined });
  }
  let disk: HealthReport["disk"] = null;
  try {
    const s = statfsSync(dir);
    disk = { freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
    const short = diskShortage(disk, limits.minFreeBytes);
    if (short !== undefined) reasons.push({ check: "disk", message: short });
  } catch (e) {
    reasons.push({ check: "disk", message: `statfs failed: ${(e as Error)?.message ?? String(e)}`, code: (e as NodeJS.ErrnoException)?.code });
  }
  return { status: reasons.length ? "fail" : "ok", reasons, readMs, lsn, lag, disk };
}

/**
 * Why the free space fails the health check, or undefined. A file system that reports no size at
 * all (ramfs: statfs gives 0 blocks) cannot be judged: failing it would fail the check for good
 * while writes work (a liveness probe restarting the server forever).
 */
export function diskShortage(disk: { freeBytes: number; totalBytes: number }, minFreeBytes: number): string | undefined {
  if (disk.totalBytes === 0) return undefined;
  return disk.freeBytes < minFreeBytes ? `${disk.freeBytes} bytes free on the data directory's file system (minimum ${minFreeBytes})` : undefined;
}
