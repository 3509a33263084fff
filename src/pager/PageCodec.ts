/**
 * PageCodec: writes and checks the common page header and the checksum.
 *
 * Invariant kept here (I6): a page whose checksum, page number, type or txn does not match what the
 * caller expects raises KeelError CORRUPT naming the page; it is never decoded into data.
 */
import { corrupt } from "../errors.js";
import { crc32 } from "../util/crc32.js";
import {
  OFF_AUX1,
  OFF_AUX2,
  OFF_CHECKSUM,
  OFF_COUNT,
  OFF_FLAGS,
  OFF_PAGENO,
  OFF_TXN_HI,
  OFF_TXN_LO,
  OFF_TYPE,
  PAGE_TYPE_NAMES,
  PageType,
} from "./PageLayout.js";

export interface PageHeader {
  type: number;
  flags: number;
  count: number;
  pageNo: number;
  txn: number;
  aux1: number;
  aux2: number;
}

const TWO32 = 0x100000000;

export function writeHeader(buf: Buffer, h: PageHeader): void {
  buf[OFF_TYPE] = h.type;
  buf[OFF_FLAGS] = h.flags;
  buf.writeUInt16LE(h.count, OFF_COUNT);
  buf.writeUInt32LE(h.pageNo >>> 0, OFF_PAGENO);
  buf.writeUInt32LE(h.txn % TWO32, OFF_TXN_LO);
  buf.writeUInt32LE(Math.floor(h.txn / TWO32), OFF_TXN_HI);
  buf.writeUInt32LE(h.aux1 >>> 0, OFF_AUX1);
  buf.writeUInt32LE(h.aux2 >>> 0, OFF_AUX2);
}

export function readHeader(buf: Buffer): PageHeader {
  return {
    type: buf[OFF_TYPE]!,
    flags: buf[OFF_FLAGS]!,
    count: buf.readUInt16LE(OFF_COUNT),
    pageNo: buf.readUInt32LE(OFF_PAGENO),
    txn: buf.readUInt32LE(OFF_TXN_LO) + buf.readUInt32LE(OFF_TXN_HI) * TWO32,
    aux1: buf.readUInt32LE(OFF_AUX1),
    aux2: buf.readUInt32LE(OFF_AUX2),
  };
}

/** CRC-32 of the whole buffer with the 4 checksum bytes left out. */
export function pageChecksum(buf: Buffer): number {
  return crc32(buf.subarray(OFF_CHECKSUM + 4), crc32(buf.subarray(0, OFF_CHECKSUM)));
}

/** Compute and store the checksum; call after every other byte of the page (or run) is final. */
export function seal(buf: Buffer): void {
  buf.writeUInt32LE(pageChecksum(buf), OFF_CHECKSUM);
}

export interface Expect {
  pageNo: number;
  /** Accepted page types. */
  types: readonly number[];
  /** The txn id the referencing parent recorded (low 32 bits are compared), or undefined. */
  txn?: number | undefined;
  /** The newest txn any page of this file may carry (the meta's). */
  maxTxn?: number | undefined;
  file: string;
}

/**
 * Check a page (or the first page of a run, with the whole run in `buf`) and return its header.
 * Order: checksum first, since a header field of a damaged page means nothing.
 */
export function verifyPage(buf: Buffer, e: Expect): PageHeader {
  const stored = buf.readUInt32LE(OFF_CHECKSUM);
  const actual = pageChecksum(buf);
  if (stored !== actual) {
    throw corrupt(`page ${e.pageNo} of ${e.file} fails its checksum (stored ${hex(stored)}, computed ${hex(actual)})`, {
      file: e.file,
      page: e.pageNo,
      reason: "checksum",
    });
  }
  const h = readHeader(buf);
  if (h.pageNo !== e.pageNo) {
    throw corrupt(`page ${e.pageNo} of ${e.file} holds page ${h.pageNo} (misdirected write)`, { file: e.file, page: e.pageNo, reason: "page-number", found: h.pageNo });
  }
  if (!e.types.includes(h.type)) {
    const want = e.types.map((t) => PAGE_TYPE_NAMES[t] ?? t).join("|");
    throw corrupt(`page ${e.pageNo} of ${e.file} is a ${PAGE_TYPE_NAMES[h.type] ?? `type-${h.type}`} page where a ${want} page was expected`, {
      file: e.file,
      page: e.pageNo,
      reason: "page-type",
      found: h.type,
    });
  }
  if (e.txn !== undefined && e.txn !== 0 && (h.txn % TWO32) !== (e.txn % TWO32)) {
    throw corrupt(`page ${e.pageNo} of ${e.file} was written by txn ${h.txn} but its parent expects txn ${e.txn} (lost or stale write)`, {
      file: e.file,
      page: e.pageNo,
      reason: "stale-page",
      found: h.txn,
      expected: e.txn,
    });
  }
  if (e.maxTxn !== undefined && h.txn > e.maxTxn) {
    throw corrupt(`page ${e.pageNo} of ${e.file} claims txn ${h.txn}, newer than the database's ${e.maxTxn}`, {
      file: e.file,
      page: e.pageNo,
      reason: "future-txn",
      found: h.txn,
    });
  }
  return h;
}

export function isTreePage(type: number): boolean {
  return type === PageType.Branch || type === PageType.Leaf;
}

function hex(n: number): string {
  return "0x" + n.toString(16).padStart(8, "0");
}
