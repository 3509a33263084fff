/** Real processes for the liveness tests (LOCK, READER files, process stamps). */
import { spawnSync } from "node:child_process";
import { isAlive } from "../../src/io/ProcessStamp.js";

/** The pid of a child process that has exited (and not been reused since). */
export function deadPid(): number {
  for (let i = 0; i < 5; i++) {
    const r = spawnSync(process.execPath, ["-e", ""], { timeout: 20000 });
    if (r.pid && !isAlive(r.pid)) return r.pid;
  }
  throw new Error("could not find a dead pid");
}
