/**
 * progressCallback: a caller's `onProgress` as the copy jobs call it.
 *
 * - Anything but a function (or undefined) is INVALID_ARGUMENT before any work.
 * - What the callback throws is the caller's own error: it rejects the job as it was thrown (the
 *   job still removes its partial output), not reported as an I/O error of the copy. The jobs call
 *   it for the last time before they publish, so a throw there leaves no destination.
 * - A promise it returns is not awaited. If it rejects, the rejection is handled here (never left
 *   to crash the process) and the job fails with that error at its next progress report.
 */
import { invalidArgument } from "../errors.js";
import { isThenable } from "../util/isThenable.js";

/** Carries a callback's own error through the job's error handling (unwrap with `callerError`). */
class CallbackThrew {
  constructor(readonly error: unknown) {}
}

export function progressCallback<P>(cb: unknown, job: string): ((p: P) => void) | undefined {
  if (cb === undefined) return undefined;
  if (typeof cb !== "function") throw invalidArgument(`onProgress of ${job} must be a function`, { argument: "onProgress", job });
  let rejected: { error: unknown } | null = null;
  return (p: P) => {
    if (rejected) throw new CallbackThrew(rejected.error);
    let r: unknown;
    try {
      r = (cb as (p: P) => unknown)(p);
    } catch (e) {
      throw new CallbackThrew(e);
    }
    if (isThenable(r)) {
      r.then(undefined, (e: unknown) => {
        rejected ??= { error: e };
      });
    }
  };
}

/** The callback's own error if `e` carries one, else `e`; the second value says which. */
export function callerError(e: unknown): [unknown, boolean] {
  return e instanceof CallbackThrew ? [e.error, true] : [e, false];
}
