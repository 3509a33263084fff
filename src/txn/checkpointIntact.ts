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
 * Invariant: nothing here writes. Only CORRUPT means "not intact"; an I/O error is thrown.
 */
import { OverflowValue, type Node } from "../btree/Node.js";
import { isKeelError } from "../errors.js";
import type { FileHandle } from "../io/FileSystem.js";
import type { Meta } from "../pager/Meta.js";
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
