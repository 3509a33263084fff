/**
 * walUtil: small shared pieces of the write-ahead-log test suites.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

let quieted = false;

/**
 * Policy checkpoints that fail after a simulated power cut report a process warning
 * (KEEL_CHECKPOINT), and so does a throwing commit listener (KEEL_LISTENER). Crash suites make
 * thousands of them: count them instead of printing each one.
 */
export const warningCounts = new Map<string, number>();
export function quietWarnings(): void {
  if (quieted) return;
  quieted = true;
  process.removeAllListeners("warning");
  process.on("warning", (w: Error & { code?: string }) => {
    const code = w.code ?? w.name;
    warningCounts.set(code, (warningCounts.get(code) ?? 0) + 1);
  });
}

/** Every file under `dir` (relative path -> bytes), for "nothing was changed or deleted" checks. */
export function treeBytes(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (rel: string): void => {
    const p = join(dir, rel);
    if (statSync(p).isDirectory()) {
      for (const e of readdirSync(p).sort()) walk(rel ? join(rel, e) : e);
    } else out.set(rel, readFileSync(p));
  };
  walk("");
  return out;
}

/** Wait until `cond()` holds, polling; fails after `timeoutMs`. */
export async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<number> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
  return Date.now() - t0;
}
