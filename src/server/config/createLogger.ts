/**
 * createLogger: the server's pino logger: structured JSON, one object per line, on stdout.
 *
 * Invariant: lines are written synchronously, so the last lines before an exit (a refused start,
 * the end of a shutdown) are never lost in a buffer.
 */
import { pino, type Logger } from "pino";

export function createLogger(level: string): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid, service: "keel" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ dest: 1, sync: true }),
  );
}
