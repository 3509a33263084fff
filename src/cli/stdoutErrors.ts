/**
 * stdoutErrors: what `keel` does when its stdout or stderr fails.
 *
 * - While a dump streams its data to stdout, the dump's own sink owns the error: the dump fails with
 *   IO or FULL (exit 6) and says so on stderr, since a cut-short dump must never look like a whole one
 *   (`keel dump db | head -c 100` and `keel dump db > /full/disk` both exit 6).
 * - Otherwise a reader that went away (EPIPE: `keel scan db | head`) ends the command quietly with
 *   the status it has so far (0 unless it already failed), as `git log | head` does.
 * - Any other error (ENOSPC on `> file`, EIO) is reported on stderr as `keel: cannot write to
 *   stdout ... [FULL]` with exit 6. Never an uncaught exception; the document `--json` promises
 *   cannot reach a stdout that fails, so this one message goes to stderr.
 */
import { ioError } from "../errors.js";
import { ExitCode } from "./exitCodes.js";

let dataOnStdout = false;
let failed = false;

/** A command streams data to stdout (dump without -f): its sink handles stdout's errors. */
export function setDataOnStdout(on: boolean): void {
  dataOnStdout = on;
}

export function installStdioErrorHandlers(): void {
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (failed || dataOnStdout) return; // reported once; a dump's sink reports its own
    failed = true;
    if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
    const code = ioError(e, "write", "stdout").code; // FULL for ENOSPC and kin, as everywhere
    try {
      process.stderr.write(`keel: cannot write to stdout: ${e.message} [${code}]\n`);
    } catch {
      // stderr is gone too: the status says it
    }
    process.exit(ExitCode.IO);
  });
  // Nothing can be reported once stderr fails; the command goes on and exits with its status.
  process.stderr.on("error", () => {});
}
