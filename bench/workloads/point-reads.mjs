// Random point reads of existing keys: after the bulk load (and a close + reopen, whose time is
// reported), read keys chosen uniformly at random from the loaded set. Every read must hit; a sample
// of values is compared byte for byte before timing.
import { now, xorshift32 } from "../lib/util.mjs";
import { datasetOf } from "./bulk-load.mjs";

export default {
  name: "point-reads",
  group: "dataset",
  dependsOn: "bulk-load",
  title: "random point reads of existing keys",
  unit: "reads/s",
  requires: ["bulkLoad", "get"],
  describe: (p) => `${p.reads.toLocaleString("en-US")} reads, keys uniformly at random from the ${p.bulkKeys.toLocaleString("en-US")} loaded`,
  async run(ctx) {
    const ds = datasetOf(ctx);
    const t0 = now();
    const db = await ctx.openDb();
    const openMs = now() - t0;

    const rand = xorshift32(ctx.params.seed);
    for (let j = 0; j < 1000; j++) {
      const i = rand() % ds.count;
      let v = db.get(ds.key(i));
      if (v && typeof v.then === "function") v = await v;
      if (!v || Buffer.compare(Buffer.from(v.buffer, v.byteOffset, v.byteLength), ds.value(i)) !== 0) {
        throw new Error(`wrong value read back for key #${i} (${ds.key(i).toString("hex")})`);
      }
    }
    const read = async (count) => {
      let misses = 0;
      for (let j = 0; j < count; j++) {
        let v = db.get(ds.key(rand() % ds.count));
        if (v === undefined || (typeof v.then === "function" && (await v) === undefined)) misses++;
      }
      if (misses) throw new Error(`${misses} of ${count} reads of existing keys found nothing`);
    };
    await read(Math.min(100_000, Math.ceil(ctx.params.reads / 10))); // warm-up
    const t1 = now();
    await read(ctx.params.reads);
    const seconds = (now() - t1) / 1000;
    return {
      ops: ctx.params.reads,
      seconds,
      notes: [`reopen ${openMs.toFixed(1)} ms`],
      extra: { openMs },
    };
  },
};
