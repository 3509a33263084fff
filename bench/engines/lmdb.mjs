// lmdb-js (LMDB). Default sync settings: on Linux lmdb-js enables overlappingSync, where a commit
// is made visible first and flushed (fsync) right after, outside the write lock. The put promise
// resolves at commit; we also await that commit's `flushed` promise (separateFlushed: true only
// changes which promise the JS side hands out), so an awaited put means "durable", as for the others.
import fs from "node:fs";
import path from "node:path";
import { packageVersion } from "../lib/util.mjs";

export default {
  name: "lmdb",
  kind: "peer",
  description: "lmdb-js, compression off, encoding/keyEncoding binary, default sync (overlappingSync)",
  durability: "put awaited until its commit is flushed (fdatasync); bulk load = transactionSync + await flushed",
  syncApi: false,
  capabilities: ["put", "get", "bulkLoad", "scan", "backup"],
  async version() {
    return packageVersion("lmdb");
  },
  async open(dir) {
    const { open } = await import("lmdb");
    const db = open({
      path: dir,
      compression: false,
      encoding: "binary",
      keyEncoding: "binary",
      separateFlushed: true,
    });
    return {
      raw: db,
      async put(key, value) {
        const p = db.put(key, value);
        await p;
        await (p.flushed ?? db.flushed);
      },
      get(key) {
        return db.get(key);
      },
      async bulkLoad(ds) {
        db.transactionSync(() => {
          for (let i = 0; i < ds.count; i++) db.putSync(ds.key(i), ds.value(i));
        });
        await db.flushed;
      },
      async scan() {
        let count = 0;
        let bytes = 0;
        for (const { key, value } of db.getRange({})) {
          count++;
          bytes += key.length + value.length;
        }
        return { count, bytes };
      },
      // lmdb-js backup(path, compact): mdb_env_copy2 into the directory dest (data.mdb), off the main thread
      async backup(dest, { compact }) {
        fs.mkdirSync(dest, { recursive: true });
        await db.backup(dest, !!compact);
      },
      dataFiles() {
        return [path.join(dir, "data.mdb")];
      },
      async close() {
        await db.close();
      },
    };
  },
};
