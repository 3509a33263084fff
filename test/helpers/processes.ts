/** Real processes for the liveness tests (LOCK, READER files, process stamps). */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { isAlive } from "../../src/io/ProcessStamp.js";

/** The pid of a child process that has exited (and not been reused since). */
export function deadPid(): number {
  for (let i = 0; i < 5; i++) {
    const r = spawnSync(process.execPath, ["-e", ""], { timeout: 20000 });
    if (r.pid && !isAlive(r.pid)) return r.pid;
  }
  throw new Error("could not find a dead pid");
}

/**
 * The command prefix that runs a program in a pid namespace of its own (there it is pid 1: a
 * container sharing a directory with this process), or undefined where the machine refuses it.
 * Tried as is (root), then in a user namespace of its own.
 */
export function unsharePidPrefix(): string[] | undefined {
  if (process.platform !== "linux") return undefined;
  for (const prefix of [["unshare", "--pid", "--fork", "--mount-proc"], ["unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount-proc"]]) {
    const r = spawnSync(prefix[0]!, [...prefix.slice(1), "true"], { timeout: 10000 });
    if (r.status === 0) return prefix;
  }
  return undefined;
}

/**
 * Wait (up to 20 s) until process `pid` catches SIGHUP, as the kernel reports it (bit 0 of SigCgt
 * in /proc/<pid>/status): keel's own signal handlers are in then. (Node itself catches SIGINT and
 * SIGTERM from its start, to reset the terminal before dying of them, so those bits say nothing.)
 * Returns whether it does.
 */
export async function untilCatchesSighup(pid: number | undefined): Promise<boolean> {
  const catches = () => {
    try {
      const m = /^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      return m !== null && (BigInt(`0x${m[1]}`) & 1n) !== 0n;
    } catch {
      return false;
    }
  };
  const deadline = Date.now() + 20_000;
  while (!catches() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1));
  return catches();
}
