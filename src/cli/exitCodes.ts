/**
 * exitCodes: the exit status of every `keel` command, and the one place where an error becomes one.
 *
 *   0   ok
 *   1   problems found (`keel verify` found damage; `keel doctor --strict` printed a WARN)
 *   2   usage error: unknown command or option, a bad argument, a destination that already exists
 *       (EXISTS), a bad value for the sub-database's encoding (INVALID_ARGUMENT)
 *   3   the database is in use by another process (LOCKED); the message names its pid
 *   4   not found: no database at the directory, no such key (`keel get`), a log record or snapshot
 *       that does not exist (NOT_FOUND)
 *   5   corrupt: damage found while reading (CORRUPT), or a format version this keel cannot read
 *       (VERSION)
 *   6   I/O error or disk full (IO, FULL), stdout included (stdoutErrors.ts)
 *   10  internal error: a bug (INTERNAL, an untyped exception, or a code not listed here)
 *   130 interrupted (Ctrl-C): the partial output of a copy, compaction or dump was removed (ABORTED)
 */
import { KeelError } from "../errors.js";
import { CliError } from "./CliError.js";

export const ExitCode = {
  OK: 0,
  PROBLEMS: 1,
  USAGE: 2,
  LOCKED: 3,
  NOT_FOUND: 4,
  CORRUPT: 5,
  IO: 6,
  INTERNAL: 10,
  INTERRUPTED: 130,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

const BY_KEEL_CODE: Record<string, ExitCodeValue> = {
  INVALID_ARGUMENT: ExitCode.USAGE,
  EXISTS: ExitCode.USAGE,
  LOCKED: ExitCode.LOCKED,
  NOT_FOUND: ExitCode.NOT_FOUND,
  CORRUPT: ExitCode.CORRUPT,
  VERSION: ExitCode.CORRUPT,
  IO: ExitCode.IO,
  FULL: ExitCode.IO,
  ABORTED: ExitCode.INTERRUPTED,
  // CLOSED, READERS_FULL, TXN, READ_ONLY and INTERNAL cannot follow from what a user typed: a bug.
};

/** The exit status for an error thrown by a command. */
export function exitCodeFor(e: unknown): ExitCodeValue {
  if (e instanceof CliError) return e.exit;
  if (e instanceof KeelError) return BY_KEEL_CODE[e.code] ?? ExitCode.INTERNAL;
  const errno = (e as NodeJS.ErrnoException | undefined)?.code;
  if (errno === "ENOSPC" || errno === "EDQUOT" || errno === "EFBIG") return ExitCode.IO;
  if (errno === "ENOENT") return ExitCode.NOT_FOUND;
  if (typeof errno === "string" && /^E[A-Z]+$/.test(errno)) return ExitCode.IO;
  return ExitCode.INTERNAL;
}

/** The text of the `keel --help` epilogue. */
export const EXIT_CODES_HELP = `Exit codes:
  0    ok
  1    problems found (verify found damage; doctor --strict printed a WARN)
  2    usage error (unknown command or option, bad argument, destination exists)
  3    database in use by another process (the message names its pid)
  4    not found (no database at the directory; key not found for get)
  5    corrupt (damage found), or a format version this keel cannot read
  6    I/O error or disk full (stdout too)
  10   internal error (a bug: please report it)
  130  interrupted (Ctrl-C, SIGTERM, SIGHUP); partial output removed
       (a second signal exits at once, as kill -9 would)`;
