// Durable single-writer commits: one writer, each commit is one put of a fresh random 16-byte key
// with a 100-byte value, awaited before the next one starts. Bounded by the disk's sync latency.
import { RandomPool, timedLoops } from "../lib/util.mjs";
import { latencyRecorder } from "./concurrent-writers.mjs";

export default {
  name: "single-writer",
  title: "durable single-writer commits (one awaited put per commit)",
  unit: "commits/s",
  requires: ["put"],
  describe: (p) => `${p.seconds} s, 1 writer, ${p.keySize}-byte random key + ${p.valueSize}-byte value per commit`,
  async run(ctx) {
    const { keySize, valueSize, seconds } = ctx.params;
    const keys = new RandomPool(keySize);
    const values = new RandomPool(valueSize);
    const db = await ctx.openDb();
    for (let i = 0; i < 20; i++) await db.put(keys.next(), values.next()); // warm-up
    const lat = latencyRecorder();
    const r = await timedLoops(1, seconds, async () => {
      const t = performance.now();
      await db.put(keys.next(), values.next());
      lat.add(performance.now() - t);
    });
    await ctx.closeDb();
    return { ...r, bytes: r.ops * (keySize + valueSize), extra: lat.summary() };
  },
};
