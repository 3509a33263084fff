/**
 * SegmentHeader: the fixed 64-byte header at the start of every log segment file.
 *
 * Invariants kept:
 * - A header is accepted only when its magic and checksum validate; then a format version other
 *   than ours is a VERSION error naming both versions (a torn header never reaches that check, so a
 *   half-written header is never mistaken for a newer format).
 * - Decoding never throws anything but KeelError.
 *
 * Layout: magic u32 "KLWS" | version u16 | headerSize u16 | firstLsn u64 | createdAt u64 (ms) |
 *         reserved (zero) to byte 60 | crc32 of bytes 0..60 u32.
 */
import { KeelError } from "../errors.js";
import { crc32 } from "./Crc32.js";

export const SEGMENT_MAGIC = 0x53574c4b; // bytes "KLWS"
export const SEGMENT_FORMAT_VERSION = 1;
export const SEGMENT_HEADER_SIZE = 64;
const CRC_AT = 60;
const TWO32 = 0x1_0000_0000;

export interface SegmentHeader {
  version: number;
  firstLsn: number;
  /** ms since the epoch when the segment was created; drives age-based rolling. */
  createdAt: number;
}

export function encodeSegmentHeader(firstLsn: number, createdAt: number): Uint8Array {
  const out = new Uint8Array(SEGMENT_HEADER_SIZE);
  const view = new DataView(out.buffer);
  view.setUint32(0, SEGMENT_MAGIC, true);
  view.setUint16(4, SEGMENT_FORMAT_VERSION, true);
  view.setUint16(6, SEGMENT_HEADER_SIZE, true);
  view.setUint32(8, firstLsn % TWO32, true);
  view.setUint32(12, Math.floor(firstLsn / TWO32), true);
  const t = Math.max(0, Math.floor(createdAt));
  view.setUint32(16, t % TWO32, true);
  view.setUint32(20, Math.floor(t / TWO32), true);
  view.setUint32(CRC_AT, crc32(out.subarray(0, CRC_AT)), true);
  return out;
}

export type HeaderProbe =
  | { status: "ok"; header: SegmentHeader }
  /** Short, zero, wrong magic or bad checksum: never (completely) written, or damaged. */
  | { status: "torn"; reason: string };

/**
 * Examine the first bytes of a segment file. Returns "torn" for anything that is not a complete
 * header; throws KeelError VERSION for a valid header of another format version.
 */
export function probeSegmentHeader(bytes: Uint8Array, segment: string): HeaderProbe {
  if (bytes.length < SEGMENT_HEADER_SIZE) return { status: "torn", reason: `header cut short at ${bytes.length} bytes` };
  const view = new DataView(bytes.buffer, bytes.byteOffset, SEGMENT_HEADER_SIZE);
  if (view.getUint32(0, true) !== SEGMENT_MAGIC) return { status: "torn", reason: "no segment magic" };
  if (view.getUint32(CRC_AT, true) !== crc32(bytes.subarray(0, CRC_AT))) return { status: "torn", reason: "header checksum mismatch" };
  const version = view.getUint16(4, true);
  if (version !== SEGMENT_FORMAT_VERSION) {
    throw new KeelError(
      "VERSION",
      `log segment ${segment} has format version ${version}; this KeelDB reads version ${SEGMENT_FORMAT_VERSION}`,
      { segment, fileVersion: version, supportedVersion: SEGMENT_FORMAT_VERSION },
    );
  }
  if (view.getUint16(6, true) !== SEGMENT_HEADER_SIZE) return { status: "torn", reason: "unexpected header size" };
  const lowLsn = view.getUint32(8, true);
  const highLsn = view.getUint32(12, true);
  const firstLsn = highLsn * TWO32 + lowLsn;
  const createdAt = view.getUint32(20, true) * TWO32 + view.getUint32(16, true);
  if (!Number.isSafeInteger(firstLsn) || firstLsn <= 0 || !Number.isSafeInteger(createdAt)) {
    return { status: "torn", reason: "header fields out of range" };
  }
  for (let i = 24; i < CRC_AT; i++) if (bytes[i] !== 0) return { status: "torn", reason: "reserved header bytes are not zero" };
  return { status: "ok", header: { version, firstLsn, createdAt } };
}
