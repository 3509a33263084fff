// The physical limit: how many "write 100 bytes + fdatasync" rounds the disk under BENCH_DIR does
// per second, from one thread, in a preallocated file (appending in place, wrapping around).
// A durable single-writer commit cannot beat this rate; group commit can, by sharing a sync.
//
// fdatasyncWithCpu(us) is the same loop with `us` microseconds of busy CPU before each round
// (and 176-byte writes, the size of a single-put log record): the ceiling of an awaited single
// writer whose commit costs that much CPU, since it cannot overlap its own work with its sync.
import fs from "node:fs";
import path from "node:path";
import { now } from "../lib/util.mjs";

const FILE_SIZE = 16 << 20;

async function syncLoop(ctx, { recordBytes, cpuUs }) {
  const file = path.join(ctx.dir, "fdatasync.bin");
  const fd = fs.openSync(file, "w+");
  try {
    const chunk = Buffer.alloc(1 << 20);
    for (let off = 0; off < FILE_SIZE; off += chunk.length) fs.writeSync(fd, chunk, 0, chunk.length, off);
    fs.fsyncSync(fd);
    const rec = Buffer.alloc(recordBytes, 0x5a);
    let off = 0;
    let syncMs = 0;
    const round = () => {
      if (cpuUs > 0) {
        const busyUntil = now() + cpuUs / 1000;
        while (now() < busyUntil);
      }
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
    return {
      ops,
      seconds,
      notes: cpuUs > 0 ? [`mean fdatasync ${((syncMs / ops) * 1000).toFixed(0)} µs`] : undefined,
      extra: { meanLatencyMs: (seconds * 1000) / ops, meanSyncMs: syncMs / ops },
    };
  } finally {
    fs.closeSync(fd);
  }
}

export default {
  name: "fdatasync",
  title: "raw disk: write 100 bytes at an offset + fdatasync, in a loop (physical limit)",
  unit: "syncs/s",
  engineless: true,
  describe: (p) => `${p.seconds} s, one thread, preallocated ${FILE_SIZE >> 20} MiB file, sequential 100-byte writes`,
  run: (ctx) => syncLoop(ctx, { recordBytes: 100, cpuUs: 0 }),
};

export function fdatasyncWithCpu(cpuUs) {
  return {
    name: `fdatasync-cpu${cpuUs}`,
    title: `raw disk with ${cpuUs} µs of CPU per round: busy ${cpuUs} µs, write 176 bytes + fdatasync (ceiling of a commit costing that much CPU)`,
    unit: "syncs/s",
    engineless: true,
    describe: (p) => `${p.seconds} s, one thread, preallocated ${FILE_SIZE >> 20} MiB file`,
    run: (ctx) => syncLoop(ctx, { recordBytes: 176, cpuUs }),
  };
}
