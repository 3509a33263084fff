/**
 * SegmentName: the file name of a log segment is the first LSN it holds, zero-padded to 20 digits.
 *
 * Invariants kept:
 * - The name <-> LSN mapping is a bijection on positive safe integers, and the byte order of names
 *   is LSN order, so a sorted directory listing is log order (every safe integer fits 20 digits,
 *   the width of the largest u64).
 */
import { invalidArgument } from "../errors.js";

export const SEGMENT_SUFFIX = ".wal";
const DIGITS = 20;
const NAME_RE = /^(\d{20})\.wal$/;

export function segmentName(firstLsn: number): string {
  if (!Number.isSafeInteger(firstLsn) || firstLsn <= 0) {
    throw invalidArgument("a segment's first LSN must be a positive safe integer", { argument: "firstLsn", value: firstLsn });
  }
  return String(firstLsn).padStart(DIGITS, "0") + SEGMENT_SUFFIX;
}

/** The first LSN a segment name stands for, or undefined when the name is not a well-formed segment name. */
export function parseSegmentName(name: string): number | undefined {
  const m = NAME_RE.exec(name);
  if (m === null) return undefined;
  const lsn = Number(m[1]);
  return Number.isSafeInteger(lsn) && lsn > 0 ? lsn : undefined;
}

/** Files in the wal directory that claim to be segments (and must then be well-formed). */
export function looksLikeSegment(name: string): boolean {
  return name.endsWith(SEGMENT_SUFFIX);
}
