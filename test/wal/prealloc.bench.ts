/**
 * Benchmark (not a test): the cost of one strict commit (append + fdatasync) into preallocated
 * segment space versus a segment that grows with every append. Run after a build:
 *   node dist/test/wal/prealloc.bench.js [rounds] [commitsPerRound]
 * The two logs take turns, round by round, so that drift of the machine hits both alike; the
 * median round is reported.
 *
 * Invariants kept: none (measurement only); it writes in temp directories and removes them.
 */
import { performance } from "node:perf_hooks";
import { nodeFileSystem } from "../../src/io/NodeFileSystem.js";
import { WriteAheadLog } from "../../src/wal/WriteAheadLog.js";
import { cleanup, tempDir } from "./helpers.js";

const rounds = Number(process.argv[2] ?? 10);
const perRound = Number(process.argv[3] ?? 500);
const rec = { ops: [{ type: "put" as const, db: "bench", key: new Uint8Array(16), value: new Uint8Array(100) }] };

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const variants = [
  { label: "growing file (walPreallocBytes: 0)", prealloc: 0 },
  { label: "preallocated (4 MiB chunks)", prealloc: 4 * 1024 * 1024 },
].map((v) => {
  const dir = tempDir("keel-wal-bench-");
  return { ...v, dir, wal: WriteAheadLog.open(nodeFileSystem, dir, { walPreallocBytes: v.prealloc }), us: [] as number[] };
});

try {
  for (let r = 0; r < rounds; r++) {
    for (const v of r % 2 === 0 ? variants : [...variants].reverse()) {
      const t0 = performance.now();
      for (let i = 0; i < perRound; i++) await v.wal.waitDurable(v.wal.append(rec));
      v.us.push(((performance.now() - t0) * 1000) / perRound);
    }
  }
  for (const v of variants) console.log(`${v.label.padEnd(36)} median ${median(v.us).toFixed(1).padStart(7)} us/commit  (rounds: ${v.us.map((x) => x.toFixed(0)).join(" ")})`);
  console.log(`growing / preallocated: ${(median(variants[0]!.us) / median(variants[1]!.us)).toFixed(2)}x`);
} finally {
  for (const v of variants) {
    await v.wal.close();
    cleanup(v.dir);
  }
}
