// N concurrent awaited writers: N async loops, each `await put(fresh random key, 100-byte value)`
// back to back for a fixed time. Engines with group commit share syncs between writers; an engine
// with a synchronous API (sqlite) blocks the event loop in each commit, so its writers serialize.
import { RandomPool, timedLoops } from "../lib/util.mjs";

export function latencyRecorder(max = 1 << 20) {
  const xs = new Float64Array(max);
  let n = 0;
  return {
    add(ms) {
      if (n < max) xs[n++] = ms;
    },
    summary() {
      if (!n) return {};
      const s = xs.subarray(0, n).sort();
      const q = (p) => s[Math.min(n - 1, Math.floor(p * n))];
      return { p50Ms: q(0.5), p99Ms: q(0.99), maxMs: s[n - 1] };
    },
  };
}

export function concurrentWriters(writers) {
  return {
    name: `writers-${writers}`,
    family: "concurrent-writers",
    title: `${writers} concurrent awaited writer${writers > 1 ? "s" : ""} (each loops: await put)`,
    unit: "commits/s",
    requires: ["put"],
    describe: (p) =>
      `${p.seconds} s, ${writers} writer(s), ${p.keySize}-byte random key + ${p.valueSize}-byte value per put`,
    async run(ctx) {
      const { keySize, valueSize, seconds } = ctx.params;
      const keys = new RandomPool(keySize);
      const values = new RandomPool(valueSize);
      const db = await ctx.openDb();
      await timedLoops(writers, Math.min(0.2, seconds / 10), () => db.put(keys.next(), values.next())); // warm-up
      const lat = latencyRecorder();
      const r = await timedLoops(writers, seconds, async () => {
        const t = performance.now();
        await db.put(keys.next(), values.next());
        lat.add(performance.now() - t);
      });
      await ctx.closeDb();
      const notes = ctx.engine.syncApi && writers > 1 ? ["synchronous API: writers serialize"] : [];
      return { ...r, bytes: r.ops * (keySize + valueSize), notes, extra: lat.summary() };
    },
  };
}
