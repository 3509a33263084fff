// classic-level (LevelDB). { sync: true } on every write: LevelDB fsyncs its log before the write
// resolves; concurrent writers are grouped by LevelDB's writer queue (one log write + sync per group).
// Reads use getSync (the fastest path); snappy compression is LevelDB's default and stays on.
import { packageVersion } from "../lib/util.mjs";

export default {
  name: "level",
  kind: "peer",
  description: "classic-level (LevelDB), keyEncoding/valueEncoding buffer, defaults otherwise",
  durability: "put(k, v, { sync: true }); bulk load = one chained batch written with { sync: true }",
  syncApi: false,
  capabilities: ["put", "get", "bulkLoad", "scan"],
  async version() {
    return packageVersion("classic-level");
  },
  async open(dir) {
    const { ClassicLevel } = await import("classic-level");
    const db = new ClassicLevel(dir, { keyEncoding: "buffer", valueEncoding: "buffer" });
    await db.open();
    const sync = { sync: true };
    return {
      raw: db,
      async put(key, value) {
        await db.put(key, value, sync);
      },
      get(key) {
        return db.getSync(key);
      },
      async bulkLoad(ds) {
        const batch = db.batch();
        for (let i = 0; i < ds.count; i++) batch.put(ds.key(i), ds.value(i));
        await batch.write(sync);
      },
      async scan() {
        let count = 0;
        let bytes = 0;
        const it = db.iterator();
        try {
          for (;;) {
            const entries = await it.nextv(1000);
            if (entries.length === 0) break;
            for (const [k, v] of entries) {
              count++;
              bytes += k.length + v.length;
            }
          }
        } finally {
          await it.close();
        }
        return { count, bytes };
      },
      async close() {
        await db.close();
      },
    };
  },
};
