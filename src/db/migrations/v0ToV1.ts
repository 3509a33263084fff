/**
 * v0ToV1: the migration from data-file format version 0 to version 1.
 *
 * Format version 0 is the layout KeelDB wrote before the "big-endian magic" change: byte for byte
 * the layout of version 1 (docs/FORMAT.md), except that the meta magic 0x4B45454C at offset 32 of
 * the two meta pages is stored little-endian (the bytes read "LEEK" in a hex dump). The u16 at
 * offset 36 of such a meta holds 0 or 1 (the code of that time wrote its FORMAT_VERSION there):
 * the magic's byte order, not that field, is what marks version 0. Every other page is identical in
 * both versions, so the migration rewrites the two meta pages only: big-endian magic, version 1,
 * checksum resealed. A meta slot that is not a valid version-0 meta (the zero slot of a new file, a
 * torn meta) is copied as it is: it was not chosen at open before, and is not after.
 *
 * rewriteMetas (metaRewrite.ts) applies it to every snapshot and then to data.keel.
 */
import { MAGIC } from "../../pager/PageLayout.js";
import { seal } from "../../pager/PageCodec.js";
import type { Migration } from "./index.js";
import { isV0Meta } from "../../pager/formatVersionOf.js";
import { checkConverted, rewriteMetas, type MetaConverter } from "./metaRewrite.js";

export { MIGRATING_SUFFIX } from "./metaRewrite.js";
export { isV0Meta } from "../../pager/formatVersionOf.js";

/** Convert one version-0 meta page to version 1 in place. */
function convertMeta(page: Buffer, slot: 0 | 1, file: string): void {
  page.writeUInt32BE(MAGIC, 32);
  page.writeUInt16LE(1, 36);
  seal(page);
  checkConverted(page, slot, 1, file);
}

const converter: MetaConverter = { matches: isV0Meta, convert: convertMeta };

export const v0ToV1: Migration = {
  from: 0,
  to: 1,
  describe: "meta magic stored big-endian (bytes read \"KEEL\"); meta pages rewritten with version 1, checksums resealed",
  migrate: (fs, dir) => rewriteMetas(fs, dir, converter),
};
