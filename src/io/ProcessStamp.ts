/**
 * ProcessStamp: who a LOCK or READER file names, precisely enough that a file left behind by a
 * process that is gone reads as stale even when its pid now belongs to another process.
 *
 * A stamp is the pid, the host's boot id and the process's start time (clock ticks after boot:
 * field 22 of /proc/<pid>/stat). A stamp is live only when all of these hold:
 *   1. kill(pid, 0) finds the process (EPERM counts as found: it exists, it is not ours), and
 *      /proc does not show it as a zombie (it ended; its parent has not reaped it yet) with no
 *      thread left running;
 *   2. its boot id, when the stamp and this host both have one, is this boot's: a file left by a
 *      power cut names pids of the boot before, which a new boot hands out again from the start;
 *   3. its start time, when the stamp and /proc both have one, is that pid's start time now: a
 *      recycled pid belongs to a process that started later (containers restart at small pids).
 * Where /proc is missing (not Linux) steps 2 and 3 are skipped and liveness is kill(pid, 0) alone,
 * as it is for files written before stamps were (they name the pid only).
 *
 * This file reads /proc directly, not through FileSystem: it asks the operating system about
 * processes, it does no database I/O, and a simulated crash must not change its answers.
 */
import { readdirSync, readFileSync } from "node:fs";

export interface ProcessStamp {
  pid: number;
  /** /proc/sys/kernel/random/boot_id; "" when unknown. */
  boot: string;
  /** Start time of the process in clock ticks after boot; "" when unknown. */
  start: string;
}

function readProc(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

const BOOT = readProc("/proc/sys/kernel/random/boot_id")?.trim() ?? "";

/** The start time of `pid` now, from /proc; "" when unknown (no /proc, or no such process). */
export function startTimeOf(pid: number): string {
  const text = readProc(`/proc/${pid}/stat`);
  if (text === undefined) return "";
  // Field 2 (the command name) is in parentheses and may hold spaces and ")": fields 3.. follow the last ")".
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const start = rest[22 - 3];
  return start !== undefined && /^\d+$/.test(start) ? start : "";
}

let own: ProcessStamp | undefined;

/** This process's stamp. */
export function ownStamp(): ProcessStamp {
  return (own ??= { pid: process.pid, boot: BOOT, start: startTimeOf(process.pid) });
}

/** The "boot" and "start" lines a LOCK or READER file carries after its own lines. */
export function stampLines(s: ProcessStamp = ownStamp()): string {
  return `boot ${s.boot}\nstart ${s.start}\n`;
}

/** The stamp a file's text names for `pid`; boot and start are "" when the text lacks them. */
export function parseStamp(pid: number, text: string): ProcessStamp {
  return {
    pid,
    boot: /^boot (.*)$/m.exec(text)?.[1]?.trim() ?? "",
    start: /^start (\d*)$/m.exec(text)?.[1] ?? "",
  };
}

/** Field 3 of /proc/<pid>/stat: R, S, D, Z (zombie), X (dead)...; "" when unknown. */
function stateOf(pid: number): string {
  const text = readProc(`/proc/${pid}/stat`);
  return text === undefined ? "" : (text.slice(text.lastIndexOf(")") + 2).split(" ")[0] ?? "");
}

/**
 * Step 1 alone: whether a process with this pid runs on this host. A zombie (killed, not yet
 * reaped by its parent: in a container whose pid 1 never reaps, for good) is gone once its last
 * thread has ended: kill(pid, 0) still finds it, /proc tells.
 */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  const state = stateOf(pid);
  if (state !== "Z" && state !== "X") return true;
  // A zombie leader whose other threads still run (its main thread called pthread_exit) is a
  // running process: /proc lists its threads under task/.
  return threadCount(pid) > 1;
}

function threadCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/task`).length;
  } catch {
    return 0;
  }
}

/** Steps 1-3: whether the process a file names is still the one running under its pid. */
export function stampIsLive(s: ProcessStamp): boolean {
  if (!isAlive(s.pid)) return false;
  if (s.boot !== "" && BOOT !== "" && s.boot !== BOOT) return false;
  if (s.start !== "") {
    const now = startTimeOf(s.pid);
    if (now !== "" && now !== s.start) return false;
  }
  return true;
}
