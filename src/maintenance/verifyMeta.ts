/**
 * verifyMeta: meta helpers for verify and salvage on top of pager/MetaSlots (the slot reading
 * that open uses too).
 *
 * Invariant: nothing here writes; a damaged slot is described (reason, the txn its header claims),
 * never repaired.
 */
import { readMetaFields, type Meta } from "../pager/Meta.js";

export { readMetaSlots, claimedTxn, type MetaSlots } from "../pager/MetaSlots.js";

export function isZero(buf: Buffer): boolean {
  for (let i = 0; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

/**
 * The fields of a meta page read without any check (salvage uses them as hints from a meta whose
 * checksum failed; every page they lead to is still verified).
 */
export function unsafeMetaFields(page: Buffer, pageSize: number): Meta | null {
  return page.length < 128 ? null : readMetaFields(page, pageSize);
}
