// Dump and load (KeelDB only): how fast the loaded dataset goes to a dump file and back into a
// fresh database, in both formats, against KeelDB's own bulk load of the same data in the same run.
// Five workloads in one group (one child process per engine, one dataset):
//
//   dump-load-bulk  reference: the dataset (bulkKeys random 16-byte keys, 100-byte values) written
//                   in ONE durable transaction (the bulk-load path); the database the dumps read
//   dump-jsonl      db dumpToFile(path, { format: "jsonl" }): JSON Lines, written to a temp name,
//                   fsynced, renamed
//   load-jsonl      loadFromFile(fresh db, that file): parsed and committed in durable batches
//                   (load's default: 10,000 entries per transaction)
//   dump-binary     the same with { format: "binary" }
//   load-binary
//
// The figure is MB/s of DUMP FILE bytes (what the disk and the parser see); the notes give
// entries/s, the ratio of entries/s to the bulk load's entries/s in this run, and the file size.
// Timed until durable: the dump until its file is renamed and the directory synced, the load until
// its last batch has committed durably (the database's close, which may checkpoint, is not timed).
import fs from "node:fs";
import path from "node:path";
import { fmtBytes, fmtNum, now } from "../lib/util.mjs";
import { datasetOf } from "./bulk-load.mjs";

function scratch(ctx) {
  if (!ctx.state.dumpScratch) {
    ctx.state.dumpScratch = `${ctx.dir}-dumps`;
    fs.rmSync(ctx.state.dumpScratch, { recursive: true, force: true });
    fs.mkdirSync(ctx.state.dumpScratch, { recursive: true });
    process.once("exit", () => fs.rmSync(ctx.state.dumpScratch, { recursive: true, force: true }));
  }
  return ctx.state.dumpScratch;
}

async function loadedDb(ctx) {
  const db = await ctx.openDb();
  if (!ctx.state.dumpLoaded) {
    const ds = datasetOf(ctx);
    const t0 = now();
    await db.bulkLoad(ds);
    const seconds = (now() - t0) / 1000;
    ctx.state.dumpLoaded = { seconds, entries: ds.count, bytes: ds.bytes };
  }
  return db;
}

const bulk = {
  name: "dump-load-bulk",
  group: "dumpload",
  title: "reference for dump/load: KeelDB bulk load of the dataset in one transaction",
  unit: "entries/s",
  requires: ["bulkLoad", "dumpLoad"],
  describe: (p) => `${p.bulkKeys.toLocaleString("en-US")} random ${p.keySize}-byte keys, ${p.valueSize}-byte values, one durable transaction`,
  async run(ctx) {
    await loadedDb(ctx);
    const r = ctx.state.dumpLoaded;
    return { ops: r.entries, seconds: r.seconds, bytes: r.bytes, notes: [`${fmtNum(r.bytes / r.seconds / 1e6)} MB/s of key+value bytes`] };
  },
};

function dumpWorkload(format) {
  return {
    name: `dump-${format}`,
    group: "dumpload",
    dependsOn: "dump-load-bulk",
    title: `dump of the dataset to a ${format === "jsonl" ? "JSON Lines" : "binary"} file (MB/s of dump file)`,
    unit: "MB/s",
    requires: ["bulkLoad", "dumpLoad"],
    describe: () => `dumpToFile(db, file, { format: "${format}" }): temp name, fsync, rename; vs the bulk load's entries/s`,
    async run(ctx) {
      const db = await loadedDb(ctx);
      const file = path.join(scratch(ctx), `dump.${format}`);
      fs.rmSync(file, { force: true });
      const t0 = now();
      const r = await db.dump(file, format);
      const seconds = (now() - t0) / 1000;
      (ctx.state.dumps ??= {})[format] = { file, entries: r.entries, bytes: r.bytes };
      return entriesNotes(ctx, r.entries, r.bytes, seconds);
    },
  };
}

function loadWorkload(format) {
  return {
    name: `load-${format}`,
    group: "dumpload",
    dependsOn: `dump-${format}`,
    title: `load of that ${format === "jsonl" ? "JSON Lines" : "binary"} dump into a fresh database (MB/s of dump file)`,
    unit: "MB/s",
    requires: ["bulkLoad", "dumpLoad"],
    describe: () => `loadFromFile(fresh db, file): durable batches of 10,000 entries; vs the bulk load's entries/s`,
    async run(ctx) {
      await loadedDb(ctx);
      const d = ctx.state.dumps?.[format];
      if (!d) throw new Error(`dump-${format} did not run`);
      const dest = path.join(scratch(ctx), `load-${format}`);
      fs.rmSync(dest, { recursive: true, force: true });
      const db = await ctx.openDb();
      const { report, seconds } = await db.loadInto(dest, d.file, format);
      fs.rmSync(dest, { recursive: true, force: true });
      if (report.entries !== d.entries) throw new Error(`load-${format}: ${report.entries} entries loaded, ${d.entries} dumped`);
      return entriesNotes(ctx, report.entries, d.bytes, seconds);
    },
  };
}

function entriesNotes(ctx, entries, fileBytes, seconds) {
  const ref = ctx.state.dumpLoaded;
  const eps = entries / seconds;
  const refEps = ref.entries / ref.seconds;
  return {
    ops: entries,
    seconds,
    value: fileBytes / seconds / 1e6,
    notes: [`${fmtNum(eps)} entries/s`, `${fmtNum(eps / refEps, 2)}x bulk load (${fmtNum(refEps)} entries/s)`, `file ${fmtBytes(fileBytes)}`],
    extra: { entries, entriesPerSecond: eps, bulkEntriesPerSecond: refEps, fileBytes, ms: seconds * 1000 },
  };
}

export default [bulk, dumpWorkload("jsonl"), loadWorkload("jsonl"), dumpWorkload("binary"), loadWorkload("binary")];
