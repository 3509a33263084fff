// Bulk load: N random 16-byte keys with 100-byte random values, written in ONE durable transaction
// through each engine's fastest path (see the adapters). Timed from the start of the transaction
// until it is durable. The database is then closed; its size on disk is reported.
// It also leaves the loaded database behind for point-reads and ordered-scan (same group).
import { Dataset, dirSize, fmtBytes, now } from "../lib/util.mjs";

export function datasetOf(ctx) {
  const p = ctx.params;
  return (ctx.state.dataset ??= new Dataset(p.bulkKeys, p.keySize, p.valueSize));
}

export default {
  name: "bulk-load",
  group: "dataset",
  title: "bulk load of random keys in one transaction",
  unit: "keys/s",
  requires: ["bulkLoad"],
  describe: (p) => `${p.bulkKeys.toLocaleString("en-US")} random ${p.keySize}-byte keys, ${p.valueSize}-byte values, one transaction`,
  async run(ctx) {
    const ds = datasetOf(ctx);
    const db = await ctx.openDb();
    const t0 = now();
    await db.bulkLoad(ds);
    const seconds = (now() - t0) / 1000;
    await ctx.closeDb();
    const diskBytes = dirSize(ctx.dir);
    ctx.state.loaded = true;
    return {
      ops: ds.count,
      seconds,
      bytes: ds.bytes,
      notes: [`${fmtBytes(diskBytes)} on disk`],
      extra: { diskBytes },
    };
  },
};
