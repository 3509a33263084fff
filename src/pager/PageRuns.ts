/**
 * PageRuns: a set of page numbers held as ascending, disjoint, non-adjacent runs (first, count).
 *
 * Invariants kept by every method:
 * - starts is strictly ascending; counts[i] >= 1; starts[i] + counts[i] < starts[i + 1] (two runs
 *   that touch are always merged into one), so the runs are the set's canonical encoding.
 * - A page is never added twice: adding a page already in the set throws INTERNAL, because a page
 *   listed twice in a free list would one day be handed to two trees at once.
 *
 * Why runs and not a list of pages: the pages a checkpoint frees were, most of the time,
 * allocated together (a path copy at the end of the file, an overflow value). A long-lived reader
 * can leave hundreds of thousands of free pages that form a few runs, and every checkpoint copies,
 * updates and encodes the free list: with runs that costs what the fragmentation costs, not what
 * the page count costs.
 */
import { KeelError } from "../errors.js";

/** takeNarrowest weighs windows that start in this many of the lowest runs. */
export const NARROWEST_SCAN_RUNS = 4096;

export class PageRuns {
  starts: number[] = [];
  counts: number[] = [];
  /** Pages in the set. */
  size = 0;

  clone(): PageRuns {
    const c = new PageRuns();
    c.starts = this.starts.slice();
    c.counts = this.counts.slice();
    c.size = this.size;
    return c;
  }

  get runCount(): number {
    return this.starts.length;
  }

  /** Index of the last run starting at or before `page`, or -1. */
  #floor(page: number): number {
    const s = this.starts;
    let lo = 0;
    let hi = s.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (s[mid]! <= page) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }

  has(page: number): boolean {
    const i = this.#floor(page);
    return i >= 0 && page < this.starts[i]! + this.counts[i]!;
  }

  /** Add pages [first, first + count); none of them may be in the set already. */
  add(first: number, count: number): void {
    if (count < 1) return;
    const s = this.starts;
    const c = this.counts;
    const i = this.#floor(first);
    const end = first + count;
    if ((i >= 0 && s[i]! + c[i]! > first) || (i + 1 < s.length && s[i + 1]! < end)) {
      throw new KeelError("INTERNAL", `pages ${first}..${end - 1} are already free`, { first, count });
    }
    const joinsPrev = i >= 0 && s[i]! + c[i]! === first;
    const joinsNext = i + 1 < s.length && s[i + 1]! === end;
    if (joinsPrev && joinsNext) {
      c[i] = c[i]! + count + c[i + 1]!;
      s.splice(i + 1, 1);
      c.splice(i + 1, 1);
    } else if (joinsPrev) {
      c[i] = c[i]! + count;
    } else if (joinsNext) {
      s[i + 1] = first;
      c[i + 1] = c[i + 1]! + count;
    } else {
      s.splice(i + 1, 0, first);
      c.splice(i + 1, 0, count);
    }
    this.size += count;
  }

  /**
   * Add every page of `other` (disjoint from this set). A few runs are inserted in place; more
   * are merged in one linear pass, so releasing a large fragmented group (the end of a long
   * reader) costs the two lists' lengths, not their product.
   */
  addAll(other: PageRuns): void {
    if (other.starts.length <= 16) {
      for (let i = 0; i < other.starts.length; i++) this.add(other.starts[i]!, other.counts[i]!);
      return;
    }
    const starts: number[] = [];
    const counts: number[] = [];
    const push = (s: number, c: number): void => {
      const last = starts.length - 1;
      if (last >= 0) {
        const end = starts[last]! + counts[last]!;
        if (s < end) throw new KeelError("INTERNAL", `pages ${s}..${s + c - 1} are already free`, { first: s, count: c });
        if (s === end) {
          counts[last] = counts[last]! + c;
          return;
        }
      }
      starts.push(s);
      counts.push(c);
    };
    const a = this;
    let i = 0;
    let j = 0;
    while (i < a.starts.length || j < other.starts.length) {
      if (j >= other.starts.length || (i < a.starts.length && a.starts[i]! < other.starts[j]!)) {
        push(a.starts[i]!, a.counts[i]!);
        i++;
      } else {
        push(other.starts[j]!, other.counts[j]!);
        j++;
      }
    }
    this.starts = starts;
    this.counts = counts;
    this.size += other.size;
  }

  /** Remove page `page` if present; returns whether it was. */
  delete(page: number): boolean {
    const i = this.#floor(page);
    if (i < 0) return false;
    const s = this.starts;
    const c = this.counts;
    const start = s[i]!;
    const end = start + c[i]!;
    if (page >= end) return false;
    if (c[i] === 1) {
      s.splice(i, 1);
      c.splice(i, 1);
    } else if (page === start) {
      s[i] = start + 1;
      c[i] = c[i]! - 1;
    } else if (page === end - 1) {
      c[i] = c[i]! - 1;
    } else {
      c[i] = page - start;
      s.splice(i + 1, 0, page + 1);
      c.splice(i + 1, 0, end - page - 1);
    }
    this.size--;
    return true;
  }

  /** Remove and return up to `n` pages, lowest first. */
  takeLowest(n: number): number[] {
    const out: number[] = [];
    const s = this.starts;
    const c = this.counts;
    let whole = 0;
    while (out.length < n && whole < s.length) {
      const start = s[whole]!;
      const take = Math.min(c[whole]!, n - out.length);
      for (let p = start; p < start + take; p++) out.push(p);
      if (take === c[whole]) whole++;
      else {
        s[whole] = start + take;
        c[whole] = c[whole]! - take;
      }
    }
    if (whole) {
      s.splice(0, whole);
      c.splice(0, whole);
    }
    this.size -= out.length;
    return out;
  }

  /**
   * Remove and return `n` pages, ascending: the `n` consecutive members of the set that span the
   * fewest page numbers (the lowest such window on a tie); all of them when the set holds fewer.
   * Why not lowest-first: a checkpoint's pages are written and then fdatasync'ed together, and
   * on the disk measured (FreeList.takeMany) that costs less the closer together
   * they lie. One pass over the runs: a narrowest window always starts at a run's first page.
   * Only windows starting in the lowest NARROWEST_SCAN_RUNS runs are weighed, so a list left in
   * hundreds of thousands of pieces (a long-lived reader let go) costs each checkpoint a bounded
   * scan, not one over every piece (500,000 runs took about 5 ms a call).
   */
  takeNarrowest(n: number): number[] {
    if (n <= 0) return [];
    if (n >= this.size) return this.takeLowest(n);
    const s = this.starts;
    const c = this.counts;
    let best = 0;
    let bestSpan = Infinity;
    let sum = 0; // pages in runs [i, j)
    for (let i = 0, j = 0; i < s.length && i < NARROWEST_SCAN_RUNS; i++) {
      while (j < s.length && sum < n) sum += c[j++]!;
      if (sum < n) break;
      // Window: runs i .. j-2 whole, then what is still needed from run j-1.
      const last = s[j - 1]! + (n - (sum - c[j - 1]!)) - 1;
      if (last - s[i]! < bestSpan) {
        bestSpan = last - s[i]!;
        best = i;
      }
      sum -= c[i]!;
    }
    const out: number[] = [];
    let k = best;
    while (out.length < n) {
      const start = s[k]!;
      const take = Math.min(c[k]!, n - out.length);
      for (let p = start; p < start + take; p++) out.push(p);
      if (take < c[k]!) {
        s[k] = start + take;
        c[k] = c[k]! - take;
        break;
      }
      k++;
    }
    // Runs best .. k-1 were taken whole (run k, if it was cut, stays).
    const whole = k - best;
    if (whole > 0) {
      s.splice(best, whole);
      c.splice(best, whole);
    }
    this.size -= n;
    return out;
  }

  /** Remove the first `n` pages of the first run at least `n` long (first fit); 0 when none is. */
  takeRun(n: number): number {
    const s = this.starts;
    const c = this.counts;
    for (let i = 0; i < s.length; i++) {
      if (c[i]! < n) continue;
      const first = s[i]!;
      if (c[i] === n) {
        s.splice(i, 1);
        c.splice(i, 1);
      } else {
        s[i] = first + n;
        c[i] = c[i]! - n;
      }
      this.size -= n;
      return first;
    }
    return 0;
  }

  *pages(): Iterable<number> {
    for (let i = 0; i < this.starts.length; i++) {
      const start = this.starts[i]!;
      for (let p = start; p < start + this.counts[i]!; p++) yield p;
    }
  }
}
