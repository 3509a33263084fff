/**
 * Copy a database directory as a user's file copy would, for tests that start from a template or a
 * killed process's files. A holder killed with SIGKILL leaves its LOCK's Unix socket
 * (io/HolderSocket.ts), which node's cpSync refuses to copy (GNU cp recreates it, tar skips it):
 * sockets are skipped here; the copy's LOCK then names a socket nobody listens on, as after a crash.
 */
import { cpSync, lstatSync } from "node:fs";

export function copyDir(from: string, to: string): void {
  cpSync(from, to, { recursive: true, filter: (src) => !lstatSync(src).isSocket() });
}
