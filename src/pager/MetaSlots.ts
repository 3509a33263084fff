/**
 * MetaSlots: both meta slots of a data file, read without trusting either. Open (Engine), verify
 * and salvage all start here, so they agree on which slot is newest: the valid meta with the
 * higher txn. Never throws on damage: each slot's probe result is returned for the caller to act on.
 *
 * Invariant: nothing here writes.
 */
import type { FileHandle } from "../io/FileSystem.js";
import { probeMeta, type Meta, type MetaProbe } from "./Meta.js";
import { isValidPageSize } from "./PageLayout.js";

const TWO32 = 0x100000000;

export interface MetaSlots {
  fileSize: number;
  /** 0 when no slot gives a usable page size. */
  pageSize: number;
  probes: [MetaProbe, MetaProbe];
  metas: [Meta | null, Meta | null];
  /** Slot of the valid meta with the higher txn; -1 when neither is valid. */
  newest: 0 | 1 | -1;
  /** The raw bytes of both slots (as far as the file holds them). */
  raw: [Buffer, Buffer];
}

export function readMetaSlots(handle: FileHandle): MetaSlots {
  const fileSize = handle.size();
  const head = Buffer.alloc(Math.min(fileSize, 2 * 65536));
  handle.read(head, 0, head.length, 0);
  const p0 = probeMeta(head, 0);
  let pageSize = p0.ok ? p0.meta.pageSize : "pageSize" in p0 && p0.pageSize && isValidPageSize(p0.pageSize) ? p0.pageSize : 0;
  let p1: MetaProbe = { ok: false, reason: "short" };
  if (pageSize) p1 = probeMeta(head.subarray(pageSize), 1);
  // Slot 0's page size can be trusted only when its checksum passed. When slot 0 is damaged and
  // slot 1 is not where its page size points (that field may be the damage), every page size is
  // tried, as when slot 0 gives none (FORMAT.md).
  const hintTrusted = p0.ok || (p0.reason !== "checksum" && p0.reason !== "page-size");
  if (!pageSize || (!p1.ok && !hintTrusted)) {
    for (let ps = 1024; ps <= 65536; ps *= 2) {
      const probe = probeMeta(head.subarray(ps), 1);
      const claims = probe.ok ? probe.meta.pageSize : "pageSize" in probe ? probe.pageSize : undefined;
      if (claims === ps && (probe.ok || probe.reason === "version" || probe.reason === "checksum") && (pageSize === 0 || probe.ok)) {
        p1 = probe;
        pageSize = ps;
        if (probe.ok) break;
      }
    }
  }
  const m0 = p0.ok ? p0.meta : null;
  const m1 = p1.ok ? p1.meta : null;
  const newest: 0 | 1 | -1 = m0 && (!m1 || m0.txn >= m1.txn) ? 0 : m1 ? 1 : -1;
  const ps = pageSize || 1024;
  const raw: [Buffer, Buffer] = [head.subarray(0, Math.min(ps, head.length)), head.subarray(Math.min(ps, head.length), Math.min(2 * ps, head.length))];
  return { fileSize, pageSize, probes: [p0, p1], metas: [m0, m1], newest, raw };
}

/** The txn a meta page's header claims (meaningful only as a hint when the page is damaged). */
export function claimedTxn(page: Buffer): number {
  return page.length >= 16 ? page.readUInt32LE(8) + page.readUInt32LE(12) * TWO32 : 0;
}

