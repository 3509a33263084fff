/**
 * CliError: an error the command line itself raises (a bad argument, a key that is not there),
 * with the exit status and the code it is reported with (`{"error":{"code","message","details"}}`).
 */
import type { ExitCodeValue } from "./exitCodes.js";

export class CliError extends Error {
  readonly code: string;
  readonly exit: ExitCodeValue;
  readonly details: Record<string, unknown>;

  constructor(exit: ExitCodeValue, code: string, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = "CliError";
    this.exit = exit;
    this.code = code;
    this.details = details;
  }
}

/** A usage error (exit 2): a bad argument or option value. */
export function usage(message: string, details: Record<string, unknown> = {}): CliError {
  return new CliError(2, "USAGE", message, details);
}
