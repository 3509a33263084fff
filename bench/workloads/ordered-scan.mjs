// Full ordered scan of the loaded database (keys and values), counted in entries/s and MB/s.
import { now } from "../lib/util.mjs";
import { datasetOf } from "./bulk-load.mjs";

export default {
  name: "ordered-scan",
  group: "dataset",
  dependsOn: "bulk-load",
  title: "full ordered scan (keys and values)",
  unit: "entries/s",
  requires: ["bulkLoad", "scan"],
  describe: (p) => `one pass over the ${p.bulkKeys.toLocaleString("en-US")} loaded entries in key order`,
  async run(ctx) {
    const ds = datasetOf(ctx);
    const db = await ctx.openDb();
    const t0 = now();
    const { count, bytes } = await db.scan();
    const seconds = (now() - t0) / 1000;
    if (count !== ds.count) throw new Error(`scan returned ${count} entries, expected ${ds.count}`);
    return { ops: count, seconds, bytes };
  },
};
