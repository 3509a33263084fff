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
 *   4. Write the chosen entries into `<dest>.partial-<pid>-<n>` (partialPath) with a new Engine.
 *   5. Replay the log, in LSN order, stopping at the first gap or damaged record. Every record after
 *      the newest valid meta's applied LSN is needed; replay starts earlier, at the older meta's
 *      applied LSN, when the log still holds it (ranges only the older tree vouches for are that
 *      old, and replaying a record the pages already include does no harm: the last write wins).
 *      A record writing to a sub-database that neither a readable catalog nor an earlier replayed
 *      record creates gets the encodings of the newest unreachable old catalog page that names it;
 *      with none, its writes go to "salvaged-orphans" as raw bytes: never a guessed encoding.
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
import { nodeFileSystem, pinnedPath } from "../io/NodeFileSystem.js";
import type { LeafNode } from "../btree/Node.js";
import { DEFAULT_PAGE_SIZE } from "../pager/PageLayout.js";
import { DATA_FILE, Engine } from "../txn/Engine.js";
import { DEFAULT_DB } from "../txn/Snapshot.js";
import type { WriteTxn } from "../txn/WriteTxn.js";
import { inferPageSize, readFreePages, readLeafPage, readRunValue, runMatches, scanPages, type PageScan } from "./salvageScan.js";
import { claimedTxn, readMetaSlots, unsafeMetaFields, type MetaSlots } from "./verifyMeta.js";
import { Progress, errorText, runAsync, type VerifyProgress, type Work } from "./verifyTypes.js";
import { CATALOG, catalogHints, findInterval, sortedHas, walkSource, type DbInfo, type EncodingHint, type Interval, type Source, type Vouch } from "./salvageTrees.js";
import { planReplay } from "./salvageReplay.js";
import { destPath, partialPath, publishOutput } from "./partialPath.js";
import { setOwn } from "../util/ownRecord.js";
import { checkedStat } from "../io/checkedStat.js";
import { refuseOtherVersion } from "../db/migrations/index.js";
import { methodOptions } from "../db/options.js";

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
  /**
   * Entries in the "salvaged-orphans" sub-database: from pages no sub-database reaches, and from log
   * writes to a sub-database whose encodings are unknown.
   */
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

const DROPPED = "\u0000dropped";

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

/** Salvage `srcDir` into a new database at `destDir` (which must not exist). */
export async function salvage(srcDir: string, dest: string, options?: SalvageOptions): Promise<SalvageReport> {
  const opts = methodOptions(options, "salvage", { fs: "fs", signal: "signal", onProgress: "function" });
  const fs = opts.fs ?? nodeFileSystem;
  for (const [arg, v] of [["srcDir", srcDir], ["destDir", dest]] as const) {
    if (typeof v !== "string" || v.length === 0) throw new KeelError("INVALID_ARGUMENT", `${arg} must be a non-empty string`, { argument: arg });
  }
  srcDir = pinnedPath(fs, srcDir);
  const destDir = destPath(pinnedPath(fs, dest)); // `out/.` and `out/` name `out`
  const st = checkedStat(fs, srcDir);
  if (!st || !st.isDirectory) throw new KeelError("NOT_FOUND", `no database directory at ${srcDir}`, { path: srcDir });
  const dataPath = join(srcDir, DATA_FILE);
  const walDir = join(srcDir, "wal");
  const hasData = !!checkedStat(fs, dataPath);
  if (!hasData && !checkedStat(fs, walDir)) throw new KeelError("NOT_FOUND", `no database at ${srcDir} (neither ${DATA_FILE} nor wal/)`, { path: srcDir });
  if (checkedStat(fs, destDir)) throw new KeelError("EXISTS", `${destDir} already exists; salvage never overwrites`, { dest: destDir });
  // Another format is not damage: read with this format's layout, an intact database of an older
  // one would come out as orphans and lost sub-databases (and a newer one is never read at all).
  if (hasData) refuseOtherVersion(fs, srcDir);

  let handle: FileHandle | null = null;
  if (hasData) {
    try {
      handle = fs.open(dataPath, "r");
    } catch (e) {
      throw ioError(e, "open", dataPath);
    }
  }
  const parent = dirname(destDir);
  const tmp = partialPath(destDir);
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
    } catch (e) {
      throw ioError(e, "fsync", tmp);
    }
    publishOutput(fs, tmp, destDir, "salvage", "dir");
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
    // A zeroed page in use is damage like any other (a lost write, a zeroing device): reported,
    // so that whatever older copy stands in for its entries is flagged, never silent.
    const inUse = (p: number) => p < end && !free.has(p);
    report.badPages = [...scan.badPages.filter(inUse), ...(Number.isFinite(end) ? scan.zeroList.filter(inUse) : [])].sort((a, b) => a - b);
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
    if (newestValid && src.txn === newestValid.txn && src.catalogRoot === newestValid.catalogRoot) {
      // The newest valid tree references pages that are not what it recorded (verify: stale-page).
      // Their entries can only come from older copies: said, never served silently as current.
      const known = new Set(report.badPages);
      const stale = [...new Set(r.broken)].filter((p) => !known.has(p));
      if (stale.length) {
        report.badPages = [...report.badPages, ...stale].sort((a, b) => a - b);
        notes.push(
          `${stale.length} pages the newest tree (${src.label}) references hold another version than the one it recorded ` +
            `(a lost or misdirected write; verify reports stale-page): their entries come from older copies where any survive, so changes made since may be lost`,
        );
      }
    }
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
  const staleCatalogPages: number[] = [];
  let uncovered = 0;
  if (scan) {
    for (const [page, leaf] of scan.leaves) {
      const owner = leafOwner.get(page);
      if (owner === CATALOG) continue;
      if (owner === undefined && leaf.catalogLike) {
        staleCatalogPages.push(page);
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
  if (staleCatalogPages.length) notes.push(`${staleCatalogPages.length} unreachable pages hold old catalog records and were skipped`);
  // What they say about the encodings of sub-databases no readable catalog lists: the log may still
  // write to such a sub-database and not hold its createDB record (step 5).
  const hints = scan ? catalogHints(scan, handle!, dataPath, staleCatalogPages) : new Map<string, EncodingHint>();
  for (const name of dbInfo.keys()) hints.delete(name);

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
        // A stored value was accepted by the open that wrote it, whatever this one's maxValueSize.
        w.putCommitted(db, key, v);
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
  if (!w.entry(DEFAULT_DB)) {
    // No readable catalog lists it: an old catalog record's encodings, else open()'s defaults.
    const h = hints.get(DEFAULT_DB);
    if (h) notes.push(`the default sub-database was in no readable catalog: it was created with the encodings of an old catalog record (txn ${h.txn}: ${h.keyEncoding} keys, ${h.valueEncoding} values)`);
    w.createDB(DEFAULT_DB, h?.keyEncoding ?? "ordered-binary", h?.valueEncoding ?? "msgpack");
  }
  let pageOrphans = 0;
  if (orphanList.length) report.orphanEntries = pageOrphans = yield* writeDb(orphansDb, { keyEncoding: "binary", valueEncoding: "binary" }, orphanList);
  engine.commitWrite(w, sourceMeta?.appliedLsn ?? 0);
  engine.publish(engine.head);
  engine.checkpoint();
  yield;

  // ---- 5. replay the log ----
  // A put to a sub-database that does not exist: its createDB record is gc'd or before where replay
  // starts, and no readable catalog lists it. Its encodings come from the newest old catalog record naming it; with
  // none, its entries go to the orphans as raw bytes: decoding them with guessed encodings would
  // make them unreadable, or worse, read as something else.
  const fromHint = new Map<string, EncodingHint>();
  const toOrphans = new Map<string, number>();
  const missingDb = (tx: WriteTxn, db: string): string => {
    const h = db === orphansDb ? undefined : hints.get(db);
    if (h) {
      tx.createDB(db, h.keyEncoding, h.valueEncoding);
      fromHint.set(db, h);
      return db;
    }
    if (!tx.entry(orphansDb)) tx.createDB(orphansDb, "binary", "binary");
    toOrphans.set(db, (toOrphans.get(db) ?? 0) + 1);
    return orphansDb;
  };
  const replayed = yield* planReplay(fs, walDir, earliest, required, engine, progress, missingDb);
  for (const [db, h] of fromHint) {
    notes.push(`sub-database "${db}" was in no readable catalog and the log replayed does not create it: it was created with the encodings of the newest old catalog record naming it (txn ${h.txn}: ${h.keyEncoding} keys, ${h.valueEncoding} values)`);
  }
  for (const [db, n] of toOrphans) {
    notes.push(`${n} log writes to sub-database "${db}", whose encodings no catalog or log record left gives, went to "${orphansDb}" (keys and values as raw encoded bytes)`);
  }
  report.logRecordsReplayed = replayed.records;
  if (replayed.lostLogFrom !== undefined) report.lostLogFrom = replayed.lostLogFrom;
  notes.push(...replayed.notes);

  // ---- 6. make it durable (the caller renames it into place) ----
  engine.checkpoint();
  engine.sync();
  for (const [name, e] of engine.head.dbs) {
    setOwn(report.perDb, name, e.tree.entries); // a sub-database may be named "__proto__"
    report.entries += e.tree.entries;
  }
  if (toOrphans.size) report.orphanEntries = engine.head.dbs.get(orphansDb)?.tree.entries ?? report.orphanEntries;
  engine.close();
  setOut(null);

  if (report.badPages.length || report.lostValues || uncovered || orphanList.length || (slots && slots.newest === -1)) {
    notes.push(
      "keys deleted after the newest surviving version of them was written cannot be known where no intact tree vouches for their range: " +
        `such keys may have come back (${uncovered + orphanList.length} entries come from pages no intact tree vouches for)`,
    );
  }
  if (report.lostValues) notes.push(`${report.lostValues} keys have a newest version whose overflow value failed its checksum (an older version was kept where one survived)`);
  if (pageOrphans) notes.push(`${pageOrphans} entries from pages no sub-database reaches are in "${orphansDb}" (keys and values as raw encoded bytes)`);
  if (report.badPages.length) notes.push(`${report.badPages.length} pages failed verification; their entries are lost unless an older copy or the log held them`);
  progress.done = Math.max(progress.done, progress.total);
  progress.report();
  return report;
}

/** Walk one meta's catalog and trees over the scanned pages; record owners and vouched ranges. */
