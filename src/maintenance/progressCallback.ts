/**
 * progressCallback: a caller's `onProgress` as the copy jobs call it.
 *
 * - Anything but a function (or undefined) is INVALID_ARGUMENT before any work.
 * - What the callback throws is the caller's own error: it rejects the job as it was thrown (the
 *   job still removes its partial output), not reported as an I/O error of the copy. The jobs call
 *   it for the last time before they publish, so a throw there leaves no destination.
 */
import { invalidArgument } from "../errors.js";

/** Carries a callback's own error through the job's error handling (unwrap with `callerError`). */
class CallbackThrew {
  constructor(readonly error: unknown) {}
}

export function progressCallback<P>(cb: unknown, method: string): ((p: P) => void) | undefined {
  if (cb === undefined) return undefined;
  if (typeof cb !== "function") throw invalidArgument(`${method}: onProgress must be a function`, { argument: "onProgress", method });
  return (p: P) => {
    try {
      (cb as (p: P) => void)(p);
    } catch (e) {
      throw new CallbackThrew(e);
    }
  };
}

/** The callback's own error if `e` carries one, else `e`; the second value says which. */
export function callerError(e: unknown): [unknown, boolean] {
  return e instanceof CallbackThrew ? [e.error, true] : [e, false];
}
