// KeelDB, imported from the parent package's build output (../dist/src/index.js; build it with
// `npm --prefix .. run build`, which `npm run bench` does first). KEEL_MODULE overrides the path.
// makeKeelEngine() is shared by the keel-* adapters, which differ only in their open options.
import fs from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import path from "node:path";
import { EngineUnavailable } from "../lib/util.mjs";

const distUrl = process.env.KEEL_MODULE
  ? pathToFileURL(process.env.KEEL_MODULE)
  : new URL("../../dist/src/index.js", import.meta.url);

// engineMissing: the runner skips this engine for the rest of the run instead of retrying each job
const missing = (message) => Object.assign(new Error(message), { engineMissing: true });

async function loadKeel() {
  const file = fileURLToPath(distUrl);
  if (!fs.existsSync(file)) {
    throw missing(
      `KeelDB is not built: ${file} does not exist. Build it with \`npm --prefix .. run build\` ` +
        `from bench/ (\`npm run bench\` does this first), or point KEEL_MODULE at a built index.js.`,
    );
  }
  const mod = await import(distUrl.href);
  if (typeof mod.open !== "function") {
    throw missing(`KeelDB build at ${file} does not export open() (exports: ${Object.keys(mod).join(", ") || "none"})`);
  }
  return mod;
}

export function makeKeelEngine({ name, options, description, durability }) {
  return {
    name,
    kind: "keel",
    description,
    durability,
    syncApi: false,
    capabilities: ["put", "get", "bulkLoad", "scan", "backup", "dumpLoad", ...(options.wal === false ? [] : ["walRecovery"])],
    options,
    async version() {
      try {
        const pkg = JSON.parse(fs.readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
        return pkg.version;
      } catch {
        return "?";
      }
    },
    async open(dir) {
      const keel = await loadKeel();
      let db;
      try {
        db = await keel.open(dir, { ...options, encoding: "binary", keyEncoding: "binary" });
      } catch (e) {
        if (e && e.code === "INVALID_ARGUMENT") {
          throw new EngineUnavailable(`open options ${JSON.stringify(options)} not supported: ${e.message}`, { cause: e });
        }
        throw e;
      }
      return {
        raw: db,
        async put(key, value) {
          await db.put(key, value);
        },
        get(key) {
          return db.get(key);
        },
        // db.batch: one transaction, applied in an order that walks the tree left to right
        // (README, "Batches"); the same final state as ds.count tx.put calls in a transaction.
        async bulkLoad(ds) {
          const ops = new Array(ds.count);
          for (let i = 0; i < ds.count; i++) ops[i] = { type: "put", key: ds.key(i), value: ds.value(i) };
          await db.batch(ops);
        },
        async scan() {
          let count = 0;
          let bytes = 0;
          const range = db.getRange({});
          if (range && typeof range[Symbol.iterator] === "function") {
            for (const { key, value } of range) {
              count++;
              bytes += key.length + value.length;
            }
          } else {
            for await (const { key, value } of range) {
              count++;
              bytes += key.length + value.length;
            }
          }
          return { count, bytes };
        },
        // backup(dest, { compact }): db.backup; { compact: false } is the page-by-page copy. A build
        // whose backup() ignores it (compacts anyway: no `compacted: false` in the result) or refuses it
        // (INVALID_ARGUMENT) throws an error marked `backupUnsupported`, which the backup workloads report as n/a.
        async backup(dest, { compact }) {
          let r;
          try {
            r = await db.backup(dest, { compact });
          } catch (e) {
            if (e && e.code === "INVALID_ARGUMENT") throw Object.assign(new Error(`db.backup(dest, { compact: ${compact} }): ${e.message}`), { backupUnsupported: true });
            throw e;
          }
          if (compact === false && r?.compacted !== false) {
            fs.rmSync(dest, { recursive: true, force: true });
            throw Object.assign(new Error("this build's db.backup() ignores { compact: false }"), { backupUnsupported: true });
          }
          return r;
        },
        // dump(file, format): dumpToFile (temp name, fsync, rename); loadInto(dir, file, format): a fresh
        // database with the same options, loadFromFile timed until its last batch is durable, then closed.
        async dump(file, format) {
          return keel.dumpToFile(db, file, { format });
        },
        async loadInto(dir2, file, format) {
          const db2 = await keel.open(dir2, { ...options, encoding: "binary", keyEncoding: "binary" });
          try {
            const t0 = performance.now();
            const report = await keel.loadFromFile(db2, file, { format });
            return { report, seconds: (performance.now() - t0) / 1000 };
          } finally {
            await db2.close();
          }
        },
        dataFiles() {
          return [path.join(dir, "data.keel")];
        },
        async close() {
          await db.close();
        },
      };
    },
  };
}

export default makeKeelEngine({
  name: "keel",
  options: { wal: false },
  description: "KeelDB { wal: false } (sync mode: every commit is a checkpoint, LMDB's model), binary keys and values",
  durability: "put/transaction resolve once the data pages and the meta page are synced",
});
