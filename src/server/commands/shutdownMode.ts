/**
 * shutdownMode: SHUTDOWN's flags read as Redis 7 reads them. SAVE with NOSAVE, or ABORT with
 * anything, is a syntax error (not settled by argument order); ABORT alone has nothing to abort,
 * since a shutdown here starts and finishes without waiting for replicas.
 */
import { err, type Reply } from "../resp/Reply.js";
import type { ShutdownMode } from "../ServerContext.js";

/** The mode SHUTDOWN's arguments ask for, or the error reply they get. */
export function shutdownMode(args: readonly Buffer[]): ShutdownMode | Reply {
  const flags = new Set<string>();
  for (let i = 1; i < args.length; i++) {
    const o = args[i]!.toString("latin1").toUpperCase();
    if (!["SAVE", "NOSAVE", "NOW", "FORCE", "ABORT"].includes(o)) return err("ERR syntax error");
    flags.add(o);
  }
  if ((flags.has("SAVE") && flags.has("NOSAVE")) || (flags.has("ABORT") && flags.size > 1)) return err("ERR syntax error");
  if (flags.has("ABORT")) return err("ERR No shutdown in progress.");
  return flags.has("SAVE") ? "save" : flags.has("NOSAVE") ? "nosave" : "default";
}
