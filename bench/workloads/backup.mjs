// Online backup and compaction: how fast each engine copies a loaded database while it stays open,
// against `cp` of the same data files (+ fdatasync) on the same disk, and what a running backup costs
// the writers. Three workloads in one group (one child process per engine, one load):
//
//   backup-copy     non-compacting online backup: KeelDB db.backup(dest, { compact: false }) (page by
//                   page), lmdb-js backup(dest, false) (mdb_env_copy2), better-sqlite3 db.backup(file)
//                   (SQLite's online backup API)
//   backup-compact  compacting copy: KeelDB db.backup(dest) (entries rewritten in key order),
//                   lmdb-js backup(dest, true) (MDB_CP_COMPACT), SQLite VACUUM INTO
//   backup-writers  throughput of 4 writers doing awaited puts (fresh random keys) while non-compacting
//                   backups run back to back, as a % of their throughput without a backup
//   backup-writers-compact  the same while compacting backups run back to back
//
// The figure of the first two is MB/s of SOURCE data-file bytes (the engine's data files, as `cp`
// would copy them): "how long to back up a database of this size". Notes: the same files copied by
// `cp` then fdatasync'ed (and by `cp` alone), the ratio to it, the size of the copy.
// The database is the bulk-load dataset (bulkKeys random 16-byte keys, 100-byte values), loaded
// in one transaction, then made durable in the data file (KeelDB checkpoint, SQLite wal_checkpoint)
// so that no backup pays for the load's deferred work.
// A KeelDB build whose db.backup() does not do { compact: false } shows n/a in the notes of
// backup-copy (blank figure), and backup-writers then uses the compacting backup (noted).
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { RandomPool, dirSize, fmtBytes, fmtNum, now, timedLoops } from "../lib/util.mjs";
import { datasetOf } from "./bulk-load.mjs";

const WRITERS = 4;

/** Loaded once per child; later workloads of the group reuse it. */
async function loaded(ctx) {
  const db = await ctx.openDb();
  if (!ctx.state.backupLoaded) {
    await db.bulkLoad(datasetOf(ctx));
    const raw = db.raw;
    if (ctx.engine.kind === "keel" && typeof raw?.checkpoint === "function") await raw.checkpoint();
    if (typeof raw?.pragma === "function") raw.pragma("wal_checkpoint(TRUNCATE)");
    if (raw?.flushed) await raw.flushed;
    ctx.state.backupLoaded = true;
  }
  return db;
}

/** A scratch directory next to the job's directory (the runner removes only the job's one). */
function scratch(ctx) {
  if (!ctx.state.scratch) {
    ctx.state.scratch = `${ctx.dir}-backups`;
    fs.rmSync(ctx.state.scratch, { recursive: true, force: true });
    fs.mkdirSync(ctx.state.scratch, { recursive: true });
    process.once("exit", () => fs.rmSync(ctx.state.scratch, { recursive: true, force: true }));
  }
  return ctx.state.scratch;
}

let seq = 0;
const freshDest = (ctx, tag) => path.join(scratch(ctx), `${tag}-${++seq}`);

function allocated(file) {
  const st = fs.statSync(file);
  return Math.min(st.size, st.blocks * 512);
}

function fdatasync(file) {
  const fd = fs.openSync(file, "r+");
  try {
    fs.fdatasyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** `cp` of the data files into a fresh directory, with and without fdatasync of the copies. */
function cpReference(ctx, files) {
  const bytes = files.reduce((n, f) => n + allocated(f), 0);
  const run = (sync) => {
    const dest = freshDest(ctx, sync ? "cp-sync" : "cp");
    fs.mkdirSync(dest);
    const t0 = now();
    execFileSync("cp", [...files, dest]);
    if (sync) {
      for (const f of files) fdatasync(path.join(dest, path.basename(f)));
      const dfd = fs.openSync(dest, "r");
      fs.fsyncSync(dfd);
      fs.closeSync(dfd);
    }
    const seconds = (now() - t0) / 1000;
    fs.rmSync(dest, { recursive: true, force: true });
    return bytes / seconds / 1e6;
  };
  run(false); // warm the path (page cache of the source, cp binary)
  return { bytes, plain: run(false), synced: run(true) };
}

async function timedBackup(ctx, db, compact) {
  const files = db.dataFiles();
  const ref = cpReference(ctx, files);
  const dest = freshDest(ctx, compact ? "compact" : "copy");
  const t0 = now();
  await db.backup(dest, { compact });
  const seconds = (now() - t0) / 1000;
  const outBytes = dirSize(dest);
  fs.rmSync(dest, { recursive: true, force: true });
  const mbps = ref.bytes / seconds / 1e6;
  return {
    ops: 1,
    seconds,
    value: mbps,
    notes: [
      `${fmtNum(mbps / ref.synced, 2)}x cp+fdatasync (${fmtNum(ref.synced)} MB/s)`,
      `cp alone ${fmtNum(ref.plain)} MB/s`,
      `${fmtBytes(ref.bytes)} -> ${fmtBytes(outBytes)} in ${fmtNum(seconds * 1000)} ms`,
    ],
    extra: { srcBytes: ref.bytes, outBytes, cpMBps: ref.plain, cpSyncMBps: ref.synced, ms: seconds * 1000 },
  };
}

const na = (e) => ({ ops: 0, seconds: 0, value: undefined, notes: [`n/a: ${e.message}`], extra: { unsupported: e.message } });

export const backupCopy = {
  name: "backup-copy",
  group: "backup",
  title: "online backup without compaction (MB/s of source data files)",
  unit: "MB/s",
  requires: ["bulkLoad", "backup"],
  describe: (p) => `${p.bulkKeys.toLocaleString("en-US")} random ${p.keySize}-byte keys, ${p.valueSize}-byte values; vs cp of the same files + fdatasync`,
  async run(ctx) {
    const db = await loaded(ctx);
    try {
      return await timedBackup(ctx, db, false);
    } catch (e) {
      if (e?.backupUnsupported) return na(e);
      throw e;
    }
  },
};

export const backupCompact = {
  name: "backup-compact",
  group: "backup",
  title: "online compacting copy (MB/s of source data files)",
  unit: "MB/s",
  requires: ["bulkLoad", "backup"],
  describe: (p) => `same database; KeelDB backup(dest), lmdb-js backup(dest, true), SQLite VACUUM INTO`,
  async run(ctx) {
    const db = await loaded(ctx);
    return timedBackup(ctx, db, true);
  },
};

/**
 * Writers' throughput while backups of one kind run back to back, as a % of their throughput
 * without. `compact: false` falls back to the compacting backup (noted) for a build without it.
 */
function writersDuring(name, compactWanted) {
  return {
    name,
    group: "backup",
    title: `throughput of ${WRITERS} writers while ${compactWanted ? "compacting" : "non-compacting"} backups run, % of without`,
    unit: "% of writes/s",
    requires: ["bulkLoad", "backup", "put"],
    describe: (p) =>
      `${WRITERS} writers, awaited put(fresh 16-byte key, 100-byte value), windows interleaved without/with/without/with/without (${p.seconds} s in all on each side) with ${compactWanted ? "compacting" : "non-compacting"} backups back to back`,
    async run(ctx) {
      const db = await loaded(ctx);
      const keys = new RandomPool(ctx.params.keySize);
      const values = new RandomPool(ctx.params.valueSize);
      const put = () => db.put(keys.next(), values.next());
      await timedLoops(WRITERS, Math.min(0.5, ctx.params.seconds / 4), put); // warm-up
      let compact = compactWanted;
      if (!compact) {
        try {
          const probe = freshDest(ctx, "probe");
          await db.backup(probe, { compact: false });
          fs.rmSync(probe, { recursive: true, force: true });
        } catch (e) {
          if (!e?.backupUnsupported) throw e;
          compact = true;
        }
      }
      let backups = 0;
      const withBackups = async (seconds) => {
        let stop = false;
        let failure = null;
        const loop = (async () => {
          while (!stop) {
            const dest = freshDest(ctx, "w");
            await db.backup(dest, { compact });
            backups++;
            // Off the event loop: freeing a copy of a few hundred MB takes ext4 tens to hundreds of
            // ms, which would be charged to the writers although it is no part of the backup.
            await fs.promises.rm(dest, { recursive: true, force: true });
            await new Promise((r) => setImmediate(r));
          }
        })().catch((e) => {
          failure = e;
        });
        let r;
        try {
          r = await timedLoops(WRITERS, seconds, put);
        } finally {
          stop = true;
          await loop;
        }
        if (failure) throw failure;
        return r;
      };
      // Windows interleaved without/with/without/with/without (half of --seconds each, so each
      // side gets --seconds in all): the machine's drift (disk sync rate, neighbours) then weighs
      // on both sides alike instead of on whichever window came second.
      const half = ctx.params.seconds / 2;
      const base = { ops: 0, seconds: 0 };
      const during = { ops: 0, seconds: 0 };
      const add = (acc, r) => {
        acc.ops += r.ops;
        acc.seconds += r.seconds;
      };
      const without = [];
      const withs = [];
      for (let k = 0; k < 5; k++) {
        const r = k % 2 === 0 ? await timedLoops(WRITERS, k === 0 || k === 4 ? half / 2 : half, put) : await withBackups(half);
        add(k % 2 === 0 ? base : during, r);
        (k % 2 === 0 ? without : withs).push(Math.round(r.ops / r.seconds));
      }
      const r0 = base.ops / base.seconds;
      const r1 = during.ops / during.seconds;
      const pct = (100 * r1) / r0;
      return {
        ops: during.ops,
        seconds: during.seconds,
        value: pct,
        notes: [
          `${fmtNum(r1)} vs ${fmtNum(r0)} writes/s`,
          `${backups} ${compact ? "compacting" : "non-compacting"} backup(s) during the windows`,
          `windows without ${without.map((x) => fmtNum(x)).join(" / ")}, with ${withs.map((x) => fmtNum(x)).join(" / ")}`,
        ],
        extra: { baseRate: r0, duringRate: r1, backups, compact, without, withs },
      };
    },
  };
}

export const backupWriters = writersDuring("backup-writers", false);
export const backupWritersCompact = writersDuring("backup-writers-compact", true);

export default [backupCopy, backupCompact, backupWriters, backupWritersCompact];
