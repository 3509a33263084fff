/**
 * healthCheck: what GET /health answers. Healthy only when every check passes:
 *   - read: a real read through the database (a range read of one entry, then a point read of
 *     a key that walks the tree to a leaf): a CLOSED, CORRUPT or IO error fails it;
 *   - log: the log has not failed (a failed sync refuses every write until a restart);
 *   - lag: committed-but-not-durable and durable-but-not-checkpointed records within the limits
 *     (a limit of 0 disables that check);
 *   - disk: the data directory's file system (fs.statfs) has at least health.min_free_bytes free.
 *
 * Invariants: the check never writes; it never throws (a failing probe is a reason in the
 * answer); each reason has a stable `check` name to branch on.
 */
import { statfsSync } from "node:fs";
import type { Database } from "../../db/Database.js";
import { KeelError } from "../../errors.js";
import type { HealthSettings } from "../config/ServeConfig.js";

export interface HealthReason {
  readonly check: "read" | "log" | "lag" | "disk" | "shutdown";
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

export function healthCheck(db: Database, dir: string, limits: HealthSettings, shuttingDown: boolean): HealthReport {
  const reasons: HealthReason[] = [];
  if (shuttingDown) reasons.push({ check: "shutdown", message: "the server is shutting down" });
  const t0 = performance.now();
  try {
    for (const _ of db.getRange({ limit: 1 })) break;
    db.get(PROBE_KEY);
  } catch (e) {
    const code = e instanceof KeelError ? e.code : undefined;
    reasons.push({ check: "read", message: `read probe failed: ${(e as Error)?.message ?? String(e)}`, code });
  }
  const readMs = performance.now() - t0;
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
    if (disk.freeBytes < limits.minFreeBytes) reasons.push({ check: "disk", message: `${disk.freeBytes} bytes free on the data directory's file system (minimum ${limits.minFreeBytes})` });
  } catch (e) {
    reasons.push({ check: "disk", message: `statfs failed: ${(e as Error)?.message ?? String(e)}`, code: (e as NodeJS.ErrnoException)?.code });
  }
  return { status: reasons.length ? "fail" : "ok", reasons, readMs, lsn, lag, disk };
}
