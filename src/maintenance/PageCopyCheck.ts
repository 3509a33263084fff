/**
 * PageCopyCheck: the checksum check of a page-by-page backup (backupPages step 2). Every page the
 * copied meta may reach is checked as its chunk goes by, so that a backup of a damaged file fails
 * CORRUPT instead of copying the damage into a file that looks like a good backup.
 *
 * Which pages are checked: every page in [2, high water) that the meta's free list does not list.
 * Below the high water a page is either listed free or reachable (verify reports any other page
 * as leaked), so this is every page of the meta's trees, overflow runs and free-list segments.
 * Free pages are skipped: their bytes do not matter (a checkpoint cut short by a crash may have
 * left them torn) and writers may be rewriting them while they are read.
 *
 * Runs (overflow values, free-list segments) carry one checksum over all their pages, with the
 * run's length in the first page's header (aux1); the check follows a run across chunk
 * boundaries. A first page whose header names a run past the high water, or another page number
 * (a valid page written at the wrong place), fails like a checksum.
 */
import { corrupt, type KeelError } from "../errors.js";
import type { FreeList } from "../pager/FreeList.js";
import { OFF_AUX1, OFF_CHECKSUM, OFF_PAGENO, OFF_TYPE, PageType } from "../pager/PageLayout.js";
import { pageChecksum } from "../pager/PageCodec.js";
import { crc32 } from "../util/crc32.js";

/** Damaged page numbers named in the error (the count covers all of them). */
const MAX_NAMED = 20;

export class PageCopyCheck {
  readonly #free: FreeList;
  readonly #pageSize: number;
  readonly #highWater: number;
  readonly #file: string;
  /** The run being checked: its first page, pages still to come, CRC so far, stored checksum. */
  #run: { page: number; left: number; crc: number; stored: number } | null = null;
  readonly #damaged: number[] = [];
  #damagedCount = 0;
  /** Pages checked (not free), for the report. */
  checked = 0;

  constructor(free: FreeList, pageSize: number, highWater: number, file: string) {
    this.#free = free;
    this.#pageSize = pageSize;
    this.#highWater = highWater;
    this.#file = file;
  }

  /** Check `pages` whole pages in `buf`, the first of them page number `first` (in order, no gap). */
  check(buf: Buffer, first: number, pages: number): void {
    const ps = this.#pageSize;
    for (let i = 0; i < pages; i++) {
      const page = buf.subarray(i * ps, (i + 1) * ps);
      const run = this.#run;
      if (run) {
        run.crc = crc32(page, run.crc);
        if (--run.left === 0) this.#endRun(run);
        continue;
      }
      const no = first + i;
      if (this.#free.hasAny(no, 1)) continue;
      this.checked++;
      const stored = page.readUInt32LE(OFF_CHECKSUM);
      // A whole valid page written at the wrong place (a misdirected write) passes its checksum.
      if (page.readUInt32LE(OFF_PAGENO) !== no >>> 0) {
        this.#damage(no);
        continue;
      }
      const type = page[OFF_TYPE];
      if (type === PageType.Overflow || type === PageType.FreeList) {
        const length = page.readUInt32LE(OFF_AUX1);
        if (length < 1 || no + length > this.#highWater) {
          this.#damage(no);
          continue;
        }
        if (length > 1) {
          const crc = crc32(page.subarray(OFF_CHECKSUM + 4), crc32(page.subarray(0, OFF_CHECKSUM)));
          this.#run = { page: no, left: length - 1, crc, stored };
          continue;
        }
      }
      if (pageChecksum(page) !== stored) this.#damage(no);
    }
  }

  /** CORRUPT naming the damaged pages, or null when every checked page was intact. */
  result(): KeelError | null {
    if (this.#run) this.#damage(this.#run.page); // cannot happen: runs are bounded by the high water
    this.#run = null;
    if (this.#damagedCount === 0) return null;
    const named = this.#damaged.join(", ") + (this.#damagedCount > this.#damaged.length ? ", ..." : "");
    return corrupt(
      `${this.#file} has ${this.#damagedCount} damaged page${this.#damagedCount === 1 ? "" : "s"} (${named}) that its newest checkpoint reaches: ` +
        `a page-by-page backup would copy the damage, so none was made (\`keel verify\` names what they hold; \`keel salvage\` copies out what is readable)`,
      { file: this.#file, reason: "checksum", page: this.#damaged[0], pages: [...this.#damaged], damagedPages: this.#damagedCount },
    );
  }

  #endRun(run: { page: number; crc: number; stored: number }): void {
    this.#run = null;
    if (run.crc !== run.stored) this.#damage(run.page);
  }

  #damage(page: number): void {
    this.#damagedCount++;
    if (this.#damaged.length < MAX_NAMED) this.#damaged.push(page);
  }
}
