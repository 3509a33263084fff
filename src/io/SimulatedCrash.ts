/**
 * SimulatedCrash: the error every CrashFileSystem call throws once the simulated power is cut, until
 * crash(seed) resolves the state. Engine code may wrap it (as a `cause`); isSimulatedCrash looks through.
 */
import type { CallKind } from "./CallKind.js";

/** Thrown by every call once the power is cut (crashAfterCalls / cutPower), until crash(). */
export class SimulatedCrash extends Error {
  readonly call: number;
  readonly kind: CallKind;

  constructor(call: number, kind: CallKind, path: string) {
    super(`simulated power loss at call ${call} (${kind} ${path})`);
    this.name = "SimulatedCrash";
    this.call = call;
    this.kind = kind;
  }
}

/** True if `e` or any error in its `cause` chain is a SimulatedCrash (the engine may wrap it). */
export function isSimulatedCrash(e: unknown): boolean {
  for (let cur = e, depth = 0; cur !== undefined && cur !== null && depth < 32; depth++) {
    if (cur instanceof SimulatedCrash) return true;
    cur = (cur as { cause?: unknown }).cause;
  }
  return false;
}
