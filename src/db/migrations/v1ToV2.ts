/**
 * v1ToV2: the migration from data-file format version 1 to version 2.
 *
 * Version 2 persists the free list as a chain of segments (pager/FreeListChain.ts, docs/FORMAT.md
 * "Free list"): a base segment, the only kind version 1 wrote, is laid out exactly as version 1's
 * free-list run, and delta segments (page flag 1) are new. Every version-1 file is therefore a valid
 * version-2 file once its metas say so: the migration rewrites the version field of each valid
 * version-1 meta to 2 and reseals its checksum. Version 1 code must never open a version-2 file (it
 * would read a delta segment as a whole list and hand out pages in use): the version field is what
 * stops it (VERSION, naming both versions).
 *
 * rewriteMetas (metaRewrite.ts) applies it to every snapshot and then to data.keel.
 */
import { seal } from "../../pager/PageCodec.js";
import type { Migration } from "./index.js";
import { checkConverted, isMetaOfVersion, rewriteMetas, type MetaConverter } from "./metaRewrite.js";

const isV1Meta = (page: Buffer, slot: 0 | 1): boolean => isMetaOfVersion(page, slot, 1);

function convertMeta(page: Buffer, slot: 0 | 1, file: string): void {
  page.writeUInt16LE(2, 36);
  seal(page);
  checkConverted(page, slot, 2, file);
}

const converter: MetaConverter = { matches: isV1Meta, convert: convertMeta };

export const v1ToV2: Migration = {
  from: 1,
  to: 2,
  describe: "free list persisted as a chain of base and delta segments; meta pages rewritten with version 2, checksums resealed",
  migrate: (fs, dir) => rewriteMetas(fs, dir, converter),
};
