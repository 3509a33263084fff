/**
 * clientsForFdLimit: the most clients of `keel serve` the process's descriptor limit leaves room
 * for, as Redis fits maxclients to RLIMIT_NOFILE: the soft limit minus FD_RESERVE descriptors kept
 * for the server's own files (data file, log segments, snapshots, backups, Node's own handles)
 * and for the HTTP port's connections (at most HTTP_MAX_CONNECTIONS). Start-up and CONFIG SET both use it, so it sits outside both sides of the server.
 *
 * Invariants:
 * - Node has no getrlimit: the soft limit is read from /proc/self/limits (Linux). Where that file is
 *   missing or unreadable, or the limit is "unlimited", there is no fitting (null): maxclients is
 *   used as configured, as before.
 * - Read at start and at every CONFIG SET maxclients, so a limit changed meanwhile (prlimit) counts.
 */
import { readFileSync } from "node:fs";

/** Connections the HTTP port (/health, /metrics, /stats) holds at once; more are dropped at accept. */
export const HTTP_MAX_CONNECTIONS = 16;

/** Redis's CONFIG_MIN_RESERVED_FDS (32), plus the HTTP port's connections. */
export const FD_RESERVE = 32 + HTTP_MAX_CONNECTIONS;

/** The soft RLIMIT_NOFILE, or null where it cannot be read or is unlimited. */
export function openFilesSoftLimit(): number | null {
  let text: string;
  try {
    text = readFileSync("/proc/self/limits", "latin1");
  } catch {
    return null;
  }
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(text);
  if (!m || m[1] === "unlimited") return null;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : null;
}

/** The highest maxclients the descriptor limit allows, or null if it sets none. */
export function clientsForFdLimit(): number | null {
  const limit = openFilesSoftLimit();
  return limit === null ? null : limit - FD_RESERVE;
}
