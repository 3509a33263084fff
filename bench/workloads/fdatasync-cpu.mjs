// The physical limit of a commit path that does some CPU work per commit: the `fdatasync` loop
// (write 176 bytes, the size of a single-put log record, + fdatasync) with CPU_US microseconds of
// busy work before each write. An awaited single writer cannot overlap its own CPU work with its
// sync (the next commit starts after the previous one is acknowledged), so this row is the
// ceiling of any single-writer commit that costs that much CPU, and its ratio to the plain
// `fdatasync` row says how far the disk alone would let it get.
import fs from "node:fs";
import path from "node:path";
import { now } from "../lib/util.mjs";

const FILE_SIZE = 16 << 20;
const RECORD = 176;

export function fdatasyncWithCpu(cpuUs) {
  return {
    name: `fdatasync-cpu${cpuUs}`,
    title: `raw disk with ${cpuUs} µs of CPU per round: busy ${cpuUs} µs, write ${RECORD} bytes + fdatasync (ceiling of a commit costing that much CPU)`,
    unit: "syncs/s",
    engineless: true,
    describe: (p) => `${p.seconds} s, one thread, preallocated ${FILE_SIZE >> 20} MiB file`,
    async run(ctx) {
      const file = path.join(ctx.dir, "fdatasync-cpu.bin");
      const fd = fs.openSync(file, "w+");
      try {
        const chunk = Buffer.alloc(1 << 20);
        for (let off = 0; off < FILE_SIZE; off += chunk.length) fs.writeSync(fd, chunk, 0, chunk.length, off);
        fs.fsyncSync(fd);
        const rec = Buffer.alloc(RECORD, 0x5a);
        let off = 0;
        let syncMs = 0;
        const round = () => {
          const busyUntil = now() + cpuUs / 1000;
          while (now() < busyUntil);
          fs.writeSync(fd, rec, 0, rec.length, off);
          const s = now();
          fs.fdatasyncSync(fd);
          syncMs += now() - s;
          off += rec.length;
          if (off + rec.length > FILE_SIZE) off = 0;
        };
        for (let i = 0; i < 20; i++) round(); // warm-up
        syncMs = 0;
        const t0 = now();
        const deadline = t0 + ctx.params.seconds * 1000;
        let ops = 0;
        while (now() < deadline) {
          round();
          ops++;
        }
        const seconds = (now() - t0) / 1000;
        return { ops, seconds, notes: [`mean fdatasync ${((syncMs / ops) * 1000).toFixed(0)} µs`], extra: { meanSyncMs: syncMs / ops } };
      } finally {
        fs.closeSync(fd);
      }
    },
  };
}
