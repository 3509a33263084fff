/**
 * salvage: builds a new database from whatever a damaged one still holds: every leaf page that
 * verifies, and every log record that verifies, in order (DESIGN.md section 5).
 *
 * The steps, in order:
 *   1. Scan every page below the end of data.keel (salvageScan.ts): keep the leaf and branch pages
 *      and the overflow runs whose checksums verify; list the pages that do not.
 *   2. Walk the trees that are still reachable: from each meta page (the valid ones, and a damaged
 *      newest one whose fields still lead to pages that verify), the catalog, then each
 *      sub-database's root, following only child pages whose header carries the txn its parent
 *      recorded. A leaf reached from sub-database X's root belongs to X; the range of keys its
 *      parents give it, as of that meta's txn, is "vouched for" by it.
 *   3. Choose, for each key of each sub-database, the entry of the leaf with the highest txn (the
 *      newest surviving version), unless a tree at least as new vouches for the key's range and no
 *      longer holds the key (it was deleted since); when its overflow value is lost, the newest
 *      readable older version. Leaves no walk reached are orphans: their entries go to the
 *      sub-database "salvaged-orphans" (raw encoded bytes), unless every sub-database of a complete
 *      catalog at least as new vouches for the key (then the page is a stale free page), or the page
 *      is newer than every meta and no damaged meta claims it (an interrupted checkpoint, never
 *      durable), or the log covers it.
 *   4. Write the chosen entries into `<dest>.partial-<pid>` with a new Engine.
 *   5. Replay the log, in LSN order, stopping at the first gap or damaged record. Every record after
 *      the newest valid meta's applied LSN is needed; replay starts earlier, at the older meta's
 *      applied LSN, when the log still holds it (ranges only the older tree vouches for are that
 *      old, and replaying a record the pages already include does no harm: the last write wins).
 *   6. Checkpoint, fsync, rename to `dest`, fsync the parent (I7). On failure, the partial
 *      directory is removed.
 *
 * Invariants:
 * - The source is only read (opened "r"); its LOCK is not taken; nothing in it changes.
 * - Only verified bytes reach the new database: every page, run and record is checked again when
 *   its data is copied.
 * - What cannot be known is said: a key deleted after the newest surviving version of it was
 *   written, where no intact tree vouches for its range, may come back; the report says so.
 */
import { dirname, join } from "node:path";
import { KeelError, ioError } from "../errors.js";
import type { FileHandle, FileSystem } from "../io/FileSystem.js";
import { nodeFileSystem } from "../io/NodeFileSystem.js";
import type { LeafNode } from "../btree/Node.js";
import { applyLogRecord } from "../db/LogDurability.js";
import { DEFAULT_PAGE_SIZE } from "../pager/PageLayout.js";
import { decodeCatalogRecord } from "../txn/CatalogRecord.js";
import { DATA_FILE, Engine } from "../txn/Engine.js";
import { DEFAULT_DB, type KeyEncodingName, type ValueEncodingName } from "../txn/Snapshot.js";
import type { WriteTxn } from "../txn/WriteTxn.js";
import type { LogRecord } from "../wal/LogRecord.js";
import { inferPageSize, readFreePages, readLeafPage, readRunValue, runMatches, scanPages, type PageScan, type ScannedLeaf } from "./salvageScan.js";
import { claimedTxn, readMetaSlots, unsafeMetaFields, type MetaSlots } from "./verifyMeta.js";
import { Aborted, Progress, errorText, runAsync, type VerifyProgress, type Work } from "./verifyTypes.js";
import { scanWal, type WalBreak } from "./verifyWal.js";

export const ORPHANS_DB = "salvaged-orphans";

export interface SalvageOptions {
  fs?: FileSystem | undefined;
  signal?: AbortSignal | undefined;
  /** Pages scanned so far out of the source's pages (then entries written, then records replayed). */
  onProgress?: ((p: VerifyProgress) => void) | undefined;
}

export interface SalvageReport {
  /** Entries in the new database, over every sub-database, after the log replay. */
  entries: number;
  /** Entries per sub-database of the new database ("" is the default one). */
  perDb: Record<string, number>;
  /** Leaf pages of the source that verified (catalog pages not counted). */
  leafPagesRead: number;
  /** Source pages that failed verification (all-zero pages and payload pages of damaged runs not listed). */
  badPages: number[];
  /** Entries written to the "salvaged-orphans" sub-database. */
  orphanEntries: number;
  logRecordsReplayed: number;
  /** The first LSN that could not be replayed because of a gap or damage, when there are records after it. */
  lostLogFrom?: number;
  notes: string[];
  /** Keys whose newest surviving version has an overflow value that did not verify (an older readable version was used where one survived). */
  lostValues: number;
  /**
   * Entries set aside as stale: found on pages that a newer intact tree shows were replaced or
   * deleted since, or written by a checkpoint that never completed (or that the log covers).
   */
  staleEntries: number;
  /**
   * Entries the catalog records counted that no surviving page held (summed over the
   * sub-databases, before the log replay, which may have restored some of them).
   */
  missingEntries: number;
}

const TWO32 = 0x100000000;
const CATALOG = "\u0000catalog";
const DROPPED = "\u0000dropped";

interface Source {
  label: string;
  txn: number;
  catalogRoot: number;
  catalogRootTxn: number;
}

interface Interval {
  lo: string | null;
  hi: string | null;
  /** Leaf page that vouches for the range; 0 for an empty tree. */
  page: number;
}

interface Vouch {
  txn: number;
  intervals: Interval[];
}

interface Candidate {
  txn: number;
  page: number;
  idx: number;
  /** Its value is an overflow run that did not verify. */
  lost: boolean;
}

/** The versions of one key: the newest, and the newest whose value can be read. */
interface Slot {
  best: Candidate;
  readable: Candidate | undefined;
}

interface DbInfo {
  keyEncoding: KeyEncodingName;
  valueEncoding: ValueEncodingName;
  /** Entries its catalog record counted, and the txn of that catalog (undefined for the orphans). */
  entries?: number;
  txn?: number;
}

/** Salvage `srcDir` into a new database at `destDir` (which must not exist). */
export async function salvage(srcDir: string, destDir: string, opts: SalvageOptions = {}): Promise<SalvageReport> {
  const fs = opts.fs ?? nodeFileSystem;
  for (const [arg, v] of [["srcDir", srcDir], ["destDir", destDir]] as const) {
    if (typeof v !== "string" || v.length === 0) throw new KeelError("INVALID_ARGUMENT", `${arg} must be a non-empty string`, { argument: arg });
  }
  const st = fs.stat(srcDir);
  if (!st || !st.isDirectory) throw new KeelError("NOT_FOUND", `no database directory at ${srcDir}`, { path: srcDir });
  const dataPath = join(srcDir, DATA_FILE);
  const walDir = join(srcDir, "wal");
  const hasData = !!fs.stat(dataPath);
  if (!hasData && !fs.stat(walDir)) throw new KeelError("NOT_FOUND", `no database at ${srcDir} (neither ${DATA_FILE} nor wal/)`, { path: srcDir });
  if (fs.stat(destDir)) throw new KeelError("EXISTS", `${destDir} already exists; salvage never overwrites`, { dest: destDir });

  let handle: FileHandle | null = null;
  if (hasData) {
    try {
      handle = fs.open(dataPath, "r");
    } catch (e) {
      throw ioError(e, "open", dataPath);
    }
  }
  const parent = dirname(destDir);
  const tmp = `${destDir}.partial-${process.pid}`;
  let out: Engine | null = null;
  const progress = new Progress(opts.onProgress, opts.signal);
  try {
    fs.mkdir(parent);
    fs.removeDir(tmp);
    fs.mkdir(tmp);
    const report = await runAsync(
      salvageWork(fs, handle, dataPath, walDir, tmp, progress, (e) => {
        out = e;
      }),
      opts.signal,
    );
    out = null;
    try {
      fs.syncDir(tmp);
      fs.rename(tmp, destDir);
      fs.syncDir(parent);
    } catch (e) {
      throw ioError(e, "rename", destDir);
    }
    return report;
  } catch (e) {
    try {
      (out as Engine | null)?.close();
    } catch {
      // the salvage error is the one to report
    }
    try {
      fs.removeDir(tmp);
    } catch {
      // the salvage error is the one to report
    }
    throw e instanceof KeelError ? e : ioError(e, "salvage", destDir);
  } finally {
    try {
      handle?.close();
    } catch {
      // read-only descriptor
    }
  }
}

function* salvageWork(fs: FileSystem, handle: FileHandle | null, dataPath: string, walDir: string, tmp: string, progress: Progress, setOut: (e: Engine | null) => void): Work<SalvageReport> {
  const notes: string[] = [];
  const report: SalvageReport = { entries: 0, perDb: {}, leafPagesRead: 0, badPages: [], orphanEntries: 0, logRecordsReplayed: 0, notes, lostValues: 0, staleEntries: 0, missingEntries: 0 };

  // ---- 1. metas and the page scan ----
  let slots: MetaSlots | null = null;
  let pageSize = 0;
  if (handle) {
    try {
      slots = readMetaSlots(handle);
      pageSize = slots.pageSize;
    } catch (e) {
      notes.push(`the meta pages could not be read: ${errorText(e)}`);
    }
    if (!pageSize) {
      pageSize = inferPageSize(handle);
      notes.push(pageSize ? `no meta page gives the page size; ${pageSize}-byte pages verify` : "no meta page gives the page size and no page verifies under any page size: no page could be read");
    }
  } else {
    notes.push(`${dataPath} is missing: only the log could be salvaged`);
  }
  const newestValid = slots && slots.newest !== -1 ? slots.metas[slots.newest]! : null;
  if (slots) {
    for (const s of [0, 1] as const) {
      const p = slots.probes[s];
      if (!p.ok && !(s === 1 && slots.metas[0]?.txn === 0)) notes.push(`meta page ${s} is damaged (${p.reason})`);
    }
    if (!newestValid && handle) notes.push("no meta page is valid: the applied LSN is unknown, and the whole log that is left is replayed");
  }
  let scan: PageScan | null = null;
  if (handle && pageSize) scan = yield* scanPages(handle, dataPath, pageSize, progress);
  if (scan) {
    // Free pages keep whatever they held (parts of old runs, torn writes of checkpoints whose meta
    // never landed), and so do pages past the high-water mark: they are not damage.
    const free = new Set<number>();
    let end = Infinity;
    if (newestValid) {
      end = Math.max(...slots!.metas.map((m) => m?.highWater ?? 0));
      if (newestValid.freelistPage) {
        for (const p of readFreePages(handle!, dataPath, scan, newestValid.freelistPage, newestValid.freelistPages, newestValid.freelistTxn)) free.add(p);
      }
    }
    report.badPages = scan.badPages.filter((p) => p < end && !free.has(p));
    if (scan.damagedRunPages && report.badPages.length) notes.push(`${scan.damagedRunPages} pages lie inside overflow or free-list runs whose checksum fails`);
  }

  // ---- 2. the trees still reachable ----
  const sources: Source[] = [];
  if (slots && scan) {
    for (const s of [0, 1] as const) {
      const m = slots.metas[s];
      if (m) sources.push({ label: `meta page ${s} (txn ${m.txn})`, txn: m.txn, catalogRoot: m.catalogRoot, catalogRootTxn: m.catalogRootTxn });
    }
    // A damaged meta that claims to be the newest: its fields are only hints, but every page they
    // lead to must still verify and carry the txn recorded for it.
    for (const s of [0, 1] as const) {
      const p = slots.probes[s];
      if (p.ok || p.reason !== "checksum") continue;
      const f = unsafeMetaFields(slots.raw[s], pageSize);
      if (f && f.catalogRoot && (!newestValid || f.txn > newestValid.txn) && f.catalogRoot < scan.filePages) {
        sources.push({ label: `damaged meta page ${s} (claims txn ${f.txn})`, txn: f.txn, catalogRoot: f.catalogRoot, catalogRootTxn: f.catalogRootTxn });
      }
    }
    sources.sort((a, b) => b.txn - a.txn);
  }
  const leafOwner = new Map<number, string>();
  const vouches = new Map<string, Vouch[]>();
  const dbInfo = new Map<string, DbInfo>();
  const completeCatalogs: Array<{ txn: number; dbs: string[] }> = [];
  let dbSetFinal = false;
  for (const src of sources) {
    const r = walkSource(scan!, handle!, dataPath, src, leafOwner, vouches);
    if (r.catalogPages === 0 && src.catalogRoot) {
      notes.push(`the catalog of ${src.label} could not be read (its root page is lost)`);
      continue;
    }
    for (const [name, info] of r.dbs) {
      if (dbInfo.has(name)) continue;
      if (dbSetFinal) {
        // Not in a newer complete catalog: dropped since. Its leaves are stale.
        for (const page of r.leavesOf.get(name) ?? []) if (leafOwner.get(page) === name) leafOwner.set(page, DROPPED);
        continue;
      }
      dbInfo.set(name, info);
    }
    if (r.complete) {
      completeCatalogs.push({ txn: src.txn, dbs: [...r.dbs.keys()] });
      dbSetFinal = true;
    } else {
      notes.push(`the catalog of ${src.label} is damaged: sub-databases listed on its lost pages are unknown`);
    }
  }
  yield;

  // ---- 3. choose entries ----
  const lostOverflow = new Map<number, Set<number>>();
  if (scan) {
    for (const [page, leaf] of scan.leaves) {
      for (const [idx, rp, rt, len] of leaf.overflow) {
        if (!runMatches(scan, rp, rt, len)) {
          let s = lostOverflow.get(page);
          if (!s) lostOverflow.set(page, (s = new Set()));
          s.add(idx);
        }
      }
    }
  }
  const owned = new Map<string, Map<string, Slot>>();
  const orphans = new Map<string, Slot>();
  let staleCatalogPages = 0;
  let uncovered = 0;
  if (scan) {
    for (const [page, leaf] of scan.leaves) {
      const owner = leafOwner.get(page);
      if (owner === CATALOG) continue;
      if (owner === undefined && leaf.catalogLike) {
        staleCatalogPages++;
        continue;
      }
      report.leafPagesRead++;
      if (owner === DROPPED) {
        report.staleEntries += leaf.keys.length;
        continue;
      }
      let target: Map<string, Slot>;
      if (owner === undefined) target = orphans;
      else {
        let m = owned.get(owner);
        if (!m) owned.set(owner, (m = new Map()));
        target = m;
      }
      const lost = lostOverflow.get(page);
      for (let i = 0; i < leaf.keys.length; i++) {
        const k = leaf.keys[i]!;
        const c: Candidate = { txn: leaf.txn, page, idx: i, lost: !!lost?.has(i) };
        const slot = target.get(k);
        if (!slot) target.set(k, { best: c, readable: c.lost ? undefined : c });
        else {
          if (c.txn > slot.best.txn) slot.best = c;
          if (!c.lost && (!slot.readable || c.txn > slot.readable.txn)) slot.readable = c;
        }
      }
      if (progress.wantsYield) yield;
    }
  }
  if (staleCatalogPages) notes.push(`${staleCatalogPages} unreachable pages hold old catalog records and were skipped`);

  const vouchFor = (db: string, key: string, txn: number): Interval | undefined => {
    for (const v of vouches.get(db) ?? []) {
      if (v.txn < txn) break;
      const iv = findInterval(v.intervals, key);
      if (iv) return iv;
    }
    return undefined;
  };
  const holds = (page: number, key: string): boolean => {
    if (page === 0) return false;
    const leaf = scan?.leaves.get(page);
    return !!leaf && sortedHas(leaf.keys, key);
  };
  /** The entry to keep for a key: the newest version unless a tree at least as new shows it deleted; an older readable one when its value is lost. */
  const choose = (slot: Slot, isStale: (c: Candidate) => boolean): Candidate | undefined => {
    if (isStale(slot.best)) {
      report.staleEntries++;
      return undefined;
    }
    if (!slot.best.lost) return slot.best;
    report.lostValues++;
    return slot.readable && !isStale(slot.readable) ? slot.readable : undefined;
  };
  const finalDbs = new Map<string, Array<[string, Candidate]>>();
  for (const [db, m] of owned) {
    if (!dbInfo.has(db)) continue;
    const list: Array<[string, Candidate]> = [];
    for (const [key, slot] of m) {
      const c = choose(slot, (x) => {
        const iv = vouchFor(db, key, x.txn);
        return !!iv && !holds(iv.page, key);
      });
      if (!c) continue;
      if (!vouchFor(db, key, c.txn)) uncovered++;
      list.push([key, c]);
    }
    finalDbs.set(db, list);
  }

  // ---- the log: where replay starts and whether it reaches the end ----
  // Replay is idempotent, so it starts as early as the log allows (down to the older meta's applied
  // LSN: pages only the older tree still vouches for are that old); it must reach the newest's.
  const validMetas = slots ? slots.metas.filter((m): m is NonNullable<typeof m> => m !== null) : [];
  const required = newestValid ? newestValid.appliedLsn + 1 : undefined;
  const earliest = validMetas.length ? Math.min(...validMetas.map((m) => m.appliedLsn)) + 1 : undefined;
  const plan = yield* planReplay(fs, walDir, earliest, required, null, progress);
  const logCovers = plan.exists && plan.lostLogFrom === undefined && plan.reachedStart;

  const orphanList: Array<[string, Candidate]> = [];
  let newerOrphans = 0;
  let interrupted = 0;
  // The txn a damaged meta slot claims: evidence that a checkpoint newer than the newest valid meta
  // completed (its meta reached the disk and was damaged since, or was torn while being written).
  const damagedClaim = slots ? Math.max(0, ...([0, 1] as const).map((s) => (slots!.probes[s].ok ? 0 : claimedTxn(slots!.raw[s])))) : 0;
  for (const [key, slot] of orphans) {
    const c = choose(slot, (x) => {
      if (newestValid && x.txn > newestValid.txn) {
        // Written by a checkpoint after the newest valid meta. With the log covering it, the log has
        // every such commit; without a damaged meta that claims it, its meta never reached the disk:
        // an interrupted checkpoint, whose commit was never acknowledged as durable.
        if (logCovers) return true;
        if (x.txn > damagedClaim) {
          interrupted++;
          return true;
        }
        return false;
      }
      return completeCatalogs.some((cat) => cat.txn >= x.txn && cat.dbs.every((db) => vouchFor(db, key, x.txn) !== undefined));
    });
    if (!c) continue;
    if (newestValid && c.txn > newestValid.txn) newerOrphans++;
    orphanList.push([key, c]);
  }
  if (interrupted) notes.push(`${interrupted} entries on pages of an interrupted checkpoint (newer than every meta page, and not in the log) were not used: that commit never became durable`);
  if (newerOrphans) notes.push(`${newerOrphans} orphan entries were written after the newest valid meta (whose successor is damaged) and the log does not cover them`);
  yield;

  // ---- 4. write the new database ----
  const sourceMeta = newestValid;
  const engine = Engine.open(fs, tmp, { pageSize: pageSize || DEFAULT_PAGE_SIZE, noSync: true, flags: sourceMeta?.flags ?? 0, cacheBytes: 64 * 1024 * 1024 });
  setOut(engine);
  let w: WriteTxn = engine.beginWrite();
  w.logging = false;
  let inBatch = 0;
  const flushBatch = function* (): Work<void> {
    engine.commitWrite(w, 0);
    engine.publish(engine.head);
    engine.checkpoint();
    inBatch = 0;
    yield;
    w = engine.beginWrite();
    w.logging = false;
  };
  const leafCache = new Map<number, LeafNode | null>();
  const leafAt = (page: number): LeafNode | null => {
    let n = leafCache.get(page);
    if (n === undefined) {
      n = readLeafPage(handle!, dataPath, scan!, page);
      if (leafCache.size >= 512) leafCache.delete(leafCache.keys().next().value!);
      leafCache.set(page, n);
    }
    return n;
  };
  const valueOf = (c: Candidate, key: string): string | Buffer | null => {
    const leaf = leafAt(c.page);
    if (!leaf || leaf.keys[c.idx] !== key) return null;
    const v = leaf.vals[c.idx]!;
    if (typeof v === "string") return v;
    return readRunValue(handle!, dataPath, scan!, v.page, v.pageTxn, v.length);
  };
  let orphansDb = ORPHANS_DB;
  while (dbInfo.has(orphansDb)) orphansDb += "-";
  const writeDb = function* (db: string, info: DbInfo, list: Array<[string, Candidate]>): Work<number> {
    w.createDB(db, info.keyEncoding, info.valueEncoding);
    list.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    let written = 0;
    for (const [key, c] of list) {
      const v = valueOf(c, key);
      if (v === null) {
        report.lostValues++;
        continue;
      }
      try {
        w.put(db, key, v);
        written++;
      } catch (e) {
        if (e instanceof KeelError && e.code === "INVALID_ARGUMENT") {
          report.lostValues++;
          continue;
        }
        throw e;
      }
      progress.step();
      if (++inBatch >= 20_000) yield* flushBatch();
    }
    return written;
  };
  for (const db of [...dbInfo.keys()].sort()) {
    const info = dbInfo.get(db)!;
    const written = yield* writeDb(db, info, finalDbs.get(db) ?? []);
    if (info.entries !== undefined && info.entries > written) {
      report.missingEntries += info.entries - written;
      notes.push(`sub-database "${db}": the catalog at txn ${info.txn} counted ${info.entries} entries; ${written} were recovered from pages`);
    }
  }
  if (!w.entry(DEFAULT_DB)) w.createDB(DEFAULT_DB, "ordered-binary", "msgpack");
  if (orphanList.length) report.orphanEntries = yield* writeDb(orphansDb, { keyEncoding: "binary", valueEncoding: "binary" }, orphanList);
  engine.commitWrite(w, sourceMeta?.appliedLsn ?? 0);
  engine.publish(engine.head);
  engine.checkpoint();
  yield;

  // ---- 5. replay the log ----
  const replayed = yield* planReplay(fs, walDir, earliest, required, engine, progress);
  report.logRecordsReplayed = replayed.records;
  if (replayed.lostLogFrom !== undefined) report.lostLogFrom = replayed.lostLogFrom;
  notes.push(...replayed.notes);

  // ---- 6. make it durable (the caller renames it into place) ----
  engine.checkpoint();
  engine.sync();
  for (const [name, e] of engine.head.dbs) {
    report.perDb[name] = e.tree.entries;
    report.entries += e.tree.entries;
  }
  engine.close();
  setOut(null);

  if (report.badPages.length || report.lostValues || uncovered || orphanList.length || (slots && slots.newest === -1)) {
    notes.push(
      "keys deleted after the newest surviving version of them was written cannot be known where no intact tree vouches for their range: " +
        `such keys may have come back (${uncovered + orphanList.length} entries come from pages no intact tree vouches for)`,
    );
  }
  if (report.lostValues) notes.push(`${report.lostValues} keys have a newest version whose overflow value failed its checksum (an older version was kept where one survived)`);
  if (report.orphanEntries) notes.push(`${report.orphanEntries} entries from pages no sub-database reaches are in "${orphansDb}" (keys and values as raw encoded bytes)`);
  if (report.badPages.length) notes.push(`${report.badPages.length} pages failed verification; their entries are lost unless an older copy or the log held them`);
  progress.done = Math.max(progress.done, progress.total);
  progress.report();
  return report;
}

/** Walk one meta's catalog and trees over the scanned pages; record owners and vouched ranges. */
function walkSource(
  scan: PageScan,
  handle: FileHandle,
  file: string,
  src: Source,
  leafOwner: Map<number, string>,
  vouches: Map<string, Vouch[]>,
): { complete: boolean; catalogPages: number; dbs: Map<string, DbInfo>; leavesOf: Map<string, number[]> } {
  const dbs = new Map<string, DbInfo>();
  const leavesOf = new Map<string, number[]>();
  let catalogPages = 0;
  const walk = (root: number, rootTxn: number, onLeaf: (page: number, leaf: ScannedLeaf, lo: string | null, hi: string | null) => void, onBranch?: () => void): boolean => {
    const path = new Set<number>();
    const visit = (page: number, txn: number, lo: string | null, hi: string | null, depth: number): boolean => {
      if (depth > 64 || path.has(page)) return false;
      const leaf = scan.leaves.get(page);
      const br = leaf ? undefined : scan.branches.get(page);
      const node = leaf ?? br;
      if (!node) return false;
      if (txn !== 0 && node.txn % TWO32 !== txn % TWO32) return false; // a stale or reused page
      if (leaf) {
        onLeaf(page, leaf, lo, hi);
        return true;
      }
      onBranch?.();
      path.add(page);
      let ok = true;
      for (let i = 0; i < br!.children.length; i++) {
        ok = visit(br!.children[i]!, br!.childTxn[i]!, i === 0 ? lo : br!.keys[i - 1]!, i < br!.keys.length ? br!.keys[i]! : hi, depth + 1) && ok;
      }
      path.delete(page);
      return ok;
    };
    return visit(root, rootTxn, null, null, 1);
  };
  if (!src.catalogRoot) return { complete: true, catalogPages: 0, dbs, leavesOf };
  const records: Array<[string, string]> = [];
  let complete = walk(
    src.catalogRoot,
    src.catalogRootTxn,
    (page) => {
      catalogPages++;
      if (!leafOwner.has(page)) leafOwner.set(page, CATALOG);
      const node = readLeafPage(handle, file, scan, page);
      if (!node) return;
      for (let i = 0; i < node.keys.length; i++) {
        const v = node.vals[i]!;
        if (typeof v === "string") records.push([node.keys[i]!, v]);
      }
    },
    () => catalogPages++,
  );
  for (const [key, val] of records) {
    const name = Buffer.from(key, "latin1").toString("utf8");
    let rec;
    try {
      rec = decodeCatalogRecord(Buffer.from(val, "latin1"), { file, name });
    } catch {
      complete = false;
      continue;
    }
    dbs.set(name, { keyEncoding: rec.keyEncoding, valueEncoding: rec.valueEncoding, entries: rec.entries, txn: src.txn });
    const intervals: Interval[] = [];
    const mine: number[] = [];
    if (rec.root === 0) intervals.push({ lo: null, hi: null, page: 0 });
    else {
      walk(rec.root, rec.rootTxn, (page, _leaf, lo, hi) => {
        intervals.push({ lo, hi, page });
        mine.push(page);
        if (!leafOwner.has(page)) leafOwner.set(page, name);
      });
    }
    leavesOf.set(name, mine);
    let list = vouches.get(name);
    if (!list) vouches.set(name, (list = []));
    list.push({ txn: src.txn, intervals });
    list.sort((a, b) => b.txn - a.txn);
  }
  return { complete, catalogPages, dbs, leavesOf };
}

/** The interval of a walk's in-order list that holds `key` (intervals are disjoint and sorted). */
function findInterval(intervals: Interval[], key: string): Interval | undefined {
  let lo = 0;
  let hi = intervals.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const l = intervals[mid]!.lo;
    if (l === null || l <= key) lo = mid + 1;
    else hi = mid;
  }
  const iv = intervals[lo - 1];
  if (!iv) return undefined;
  if (iv.lo !== null && key < iv.lo) return undefined;
  if (iv.hi !== null && key >= iv.hi) return undefined;
  return iv;
}

function sortedHas(keys: string[], key: string): boolean {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return keys[lo] === key;
}

interface ReplayOutcome {
  exists: boolean;
  records: number;
  /** The first needed record was found (or nothing was needed). */
  reachedStart: boolean;
  lostLogFrom: number | undefined;
  notes: string[];
}

/**
 * Read the log in order and (with an engine) apply each record from the first one at or after
 * `earliest` on, one write transaction per record, stopping at the first gap or damage. The replay
 * must start at or before `required` (the newest meta's applied LSN + 1), or the records in between
 * are lost. Without an engine, only find out where that replay would stop. With neither bound (no
 * valid meta), the replay starts at the oldest record left.
 */
function* planReplay(fs: FileSystem, walDir: string, earliest: number | undefined, required: number | undefined, engine: Engine | null, progress: Progress): Work<ReplayOutcome> {
  const o: ReplayOutcome = { exists: false, records: 0, reachedStart: false, lostLogFrom: undefined, notes: [] };
  let next: number | undefined;
  let stopped = false;
  let sinceCheckpoint = 0;
  const stop = (lsn: number | undefined, note: string) => {
    stopped = true;
    if (lsn !== undefined) o.lostLogFrom = lsn;
    o.notes.push(note);
  };
  const onRecord = (rec: LogRecord, segment: string, offset: number) => {
    if (stopped) return;
    if (earliest !== undefined && rec.lsn < earliest) return; // older than every tree salvaged
    if (next === undefined) {
      if (required !== undefined && rec.lsn > required) {
        stop(required, `the log has no record ${required} (the oldest one left after it is ${rec.lsn}, in segment ${segment}); nothing was replayed`);
        return;
      }
      next = rec.lsn;
    }
    if (rec.lsn < next) return;
    if (rec.lsn > next) {
      stop(next, `the log has no record ${next} (the next one found is ${rec.lsn}, in segment ${segment}); replay stopped there`);
      return;
    }
    o.reachedStart = true;
    if (engine) {
      const w = engine.beginWrite();
      w.logging = false;
      try {
        applyLogRecord(w, rec);
      } catch (e) {
        engine.abortWrite(w);
        if (e instanceof Aborted) throw e;
        stop(rec.lsn, `log record ${rec.lsn} (segment ${segment}, offset ${offset}) could not be applied: ${errorText(e)}; replay stopped there`);
        return;
      }
      engine.commitWrite(w, rec.lsn);
      if (++sinceCheckpoint >= 10_000 || engine.dirtyBytes > 64 * 1024 * 1024) {
        engine.publish(engine.head);
        engine.checkpoint();
        sinceCheckpoint = 0;
      }
      progress.step(0);
    }
    o.records++;
    next = rec.lsn + 1;
  };
  const onBreak = (b: WalBreak) => {
    if (stopped) return;
    const E = b.expectedLsn;
    if (next === undefined) {
      // Not started yet: a break below what replay needs does not matter.
      if (E !== undefined && ((earliest !== undefined && E < earliest) || (required !== undefined && E < required))) return;
    } else if (E !== undefined && E < next) return;
    if (b.torn) {
      stopped = true;
      o.notes.push(
        b.kind === "wal-torn-segment"
          ? `the newest log segment ${b.segment} has a torn header and no record (an interrupted roll: nothing is lost)`
          : `the log ends with a torn record in segment ${b.segment} at offset ${b.offset} (an interrupted append: nothing acknowledged is lost)`,
      );
      return;
    }
    stop(E ?? next ?? required, `replay stopped at ${b.kind} in segment ${b.segment}, offset ${b.offset}: ${b.message}`);
  };
  const res = yield* scanWal(fs, walDir, null, { onRecord, onBreak }, progress);
  o.exists = res.exists && res.segments > 0;
  if (!o.reachedStart && o.lostLogFrom === undefined) {
    // No record was needed: complete when the log simply ends before `required`.
    const last = res.lastLsn ?? (res.firstLsn !== undefined ? res.firstLsn - 1 : undefined);
    if (required === undefined) o.reachedStart = true;
    else if (o.exists && res.firstLsn !== undefined && res.firstLsn > required) {
      o.lostLogFrom = required;
      o.notes.push(`the log starts at LSN ${res.firstLsn}: records ${required}..${res.firstLsn - 1} are gone`);
    } else o.reachedStart = last !== undefined && last <= required - 1;
  }
  if (engine && o.records) engine.publish(engine.head);
  return o;
}
