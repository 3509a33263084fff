/**
 * KeelError: the one error class the engine throws on purpose.
 *
 * Callers branch on `code`, never on `message`. Each code carries the data needed to act on it
 * in `details` (a page number, a segment and offset, a limit, a pid...).
 */
export type KeelErrorCode =
  | "CORRUPT" // on-disk damage found: details say where (file, page, segment, offset)
  | "LOCKED" // another live process holds the database: details.pid
  | "CLOSED" // the database was closed
  | "FULL" // the disk is full (ENOSPC) or a size limit of the file was reached
  | "READERS_FULL" // maxReaders read snapshots are open
  | "VERSION" // file format version or page size differs: details name both
  | "INVALID_ARGUMENT" // bad input from the caller: details name the argument and the limit
  | "IO" // an I/O error from the operating system: details.op, details.path, details.errno
  | "ABORTED" // an operation was cancelled through its AbortSignal
  | "NOT_FOUND" // a named thing (sub-database, snapshot, file) does not exist
  | "EXISTS" // a destination that must not exist does
  | "TXN" // misuse of a transaction (used after it ended, transactionSync while the lock is held)
  | "READ_ONLY" // a write on a database opened with readOnly: true
  | "INTERNAL"; // a broken internal invariant: a bug, reported with its context

export class KeelError extends Error {
  readonly code: KeelErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: KeelErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "KeelError";
    this.code = code;
    this.details = details;
  }
}

export function isKeelError(e: unknown, code?: KeelErrorCode): e is KeelError {
  return e instanceof KeelError && (code === undefined || e.code === code);
}

/** The code of an OS error: a full disk or quota (ENOSPC, EDQUOT, EFBIG) is FULL, any other IO. */
export function codeOfErrno(errno: string): "FULL" | "IO" {
  return errno === "ENOSPC" || errno === "EDQUOT" || errno === "EFBIG" ? "FULL" : "IO";
}

/** Map an error thrown by a FileSystem call to a KeelError (ENOSPC -> FULL, other errno -> IO). */
export function ioError(e: unknown, op: string, path: string): KeelError {
  if (e instanceof KeelError) return e;
  const err = e as NodeJS.ErrnoException;
  const errno = typeof err?.code === "string" ? err.code : "UNKNOWN";
  return new KeelError(codeOfErrno(errno), `${op} failed on ${path}: ${errno}${err?.message ? ` (${err.message})` : ""}`, { op, path, errno }, { cause: e });
}

export function corrupt(message: string, where: Record<string, unknown>): KeelError {
  return new KeelError("CORRUPT", message, where);
}

export function invalidArgument(message: string, details: Record<string, unknown> = {}): KeelError {
  return new KeelError("INVALID_ARGUMENT", message, details);
}
