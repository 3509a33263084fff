/**
 * checkpointIntact: whether every page a one-sync checkpoint wrote reached the disk whole.
 *
 * A small checkpoint syncs its pages and its meta in one fdatasync and marks the meta
 * META_FLAG_ONE_SYNC (Checkpoint.ts, "One sync"). A power cut during that sync may leave the meta
 * on disk and some of those pages not: they hold what was there before (an older txn, or zeros
 * past the old end of the file) or are torn. Open and verify run this check on such a meta before
 * trusting it; when it fails they use the other slot, whose state was durable before the
 * checkpoint began.
 *
 * Which pages: those the checkpoint wrote are exactly those the meta reaches through references
 * carrying the meta's txn (copy on write gives every new page a parent written by the same
 * checkpoint, up to the catalog root and the sub-database roots in its records), plus its free
 * list segment. Pages of earlier checkpoints are not read: they were durable before it began.
 * Each page is verified as a read would (checksum, page number, type, the txn its parent names).
 *
 * trustNewestMeta applies it at open: it picks the meta slot open may trust.
 *
 * Invariant: checkpointIntact writes nothing; only CORRUPT means "not intact", an I/O error is
 * thrown. trustNewestMeta writes nothing but an fdatasync of the pages it trusts.
 */
import { OverflowValue, type Node } from "../btree/Node.js";
import { corrupt, ioError, isKeelError } from "../errors.js";
import type { FileHandle } from "../io/FileSystem.js";
import { META_FLAG_ONE_SYNC, mayBeTorn, type Meta } from "../pager/Meta.js";
import { PageType, pageLimits } from "../pager/PageLayout.js";
import { Pager } from "../pager/Pager.js";
import { decodeCatalogRecord } from "./CatalogRecord.js";

const TWO32 = 0x100000000;

export type IntactResult = { ok: true; pages: number } | { ok: false; page: number | undefined; reason: string; message: string };

export function checkpointIntact(file: FileHandle, path: string, meta: Meta): IntactResult {
  const pager = new Pager(file, path, pageLimits(meta.pageSize), 64, meta.highWater, meta.txn);
  const T = meta.txn % TWO32;
  const ours = (txn: number) => txn % TWO32 === T;
  let pages = 0;
  const walk = (root: number, catalog: boolean): void => {
    const stack: Node[] = [pager.load(root, T)];
    while (stack.length) {
      const n = stack.pop()!;
      pages++;
      if (!n.leaf) {
        for (let i = 0; i < n.children.length; i++) {
          const c = n.children[i]!;
          if (typeof c === "number" && ours(n.childTxn[i]!)) stack.push(pager.load(c, T));
        }
        continue;
      }
      for (let i = 0; i < n.vals.length; i++) {
        const v = n.vals[i]!;
        if (v instanceof OverflowValue) {
          if (ours(v.pageTxn)) {
            pager.readOverflow(v);
            pages++;
          }
        } else if (catalog) {
          const rec = decodeCatalogRecord(Buffer.from(v, "latin1"), { file: path, name: Buffer.from(n.keys[i]!, "latin1").toString("utf8") });
          if (rec.root && ours(rec.rootTxn)) walk(rec.root, false);
        }
      }
    }
  };
  try {
    if (meta.freelistPage && ours(meta.freelistTxn)) {
      pager.readRun(meta.freelistPage, meta.freelistPages, PageType.FreeList, T);
      pages++;
    }
    if (meta.catalogRoot && ours(meta.catalogRootTxn)) walk(meta.catalogRoot, true);
  } catch (e) {
    if (!isKeelError(e, "CORRUPT")) throw e;
    const d = e.details as { page?: number; reason?: string };
    return { ok: false, page: d.page, reason: d.reason ?? "corrupt", message: e.message };
  }
  return { ok: true, pages };
}

/** Both meta slots as open read them, and which one it takes (readDataFileMetas, dataFileMetas.ts). */
export interface MetaChoice {
  metas: [Meta | null, Meta | null];
  newest: 0 | 1;
  fallback: { slot: 0 | 1; reason: string; claimedTxn: number } | undefined;
}

/**
 * The meta slot open may trust. When the newest meta may be torn (mayBeTorn: ONE_SYNC, written in
 * another boot) and a page of its checkpoint did not reach the disk whole, the other slot: its
 * state was durable before that checkpoint began, whose commits were never acknowledged (its one
 * sync did not return). The torn slot is set to null, so the next checkpoint writes there and
 * never over the slot in use. Otherwise a writer fdatasyncs the file first: the pages of a ONE_SYNC
 * checkpoint may sit in the page cache only, if its process died before its sync returned.
 */
export function trustNewestMeta(file: FileHandle, path: string, read: MetaChoice, thisBoot: number, readOnly: boolean): MetaChoice {
  const { metas, newest } = read;
  const meta = metas[newest]!;
  if (!(meta.flags & META_FLAG_ONE_SYNC)) return read;
  let check: IntactResult = { ok: true, pages: 0 };
  try {
    if (mayBeTorn(meta, thisBoot)) check = checkpointIntact(file, path, meta);
  } catch (e) {
    throw ioError(e, "read", path);
  }
  if (!check.ok) {
    const other: 0 | 1 = newest === 0 ? 1 : 0;
    const older = metas[other];
    if (!older) {
      throw corrupt(`${path}: the newest meta (slot ${newest}, txn ${meta.txn}) names a page that did not reach the disk whole (${check.message}), and the other meta slot is not valid`, {
        file: path,
        page: check.page,
        reason: "torn-checkpoint",
      });
    }
    const slots: [Meta | null, Meta | null] = [...metas];
    slots[newest] = null;
    return { metas: slots, newest: other, fallback: { slot: newest, reason: `torn-checkpoint: ${check.message}`, claimedTxn: meta.txn } };
  }
  if (!readOnly) {
    try {
      file.sync();
    } catch (e) {
      throw ioError(e, "fdatasync", path);
    }
  }
  return read;
}
