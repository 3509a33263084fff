// The physical limit: how many "write 100 bytes + fdatasync" rounds the disk under BENCH_DIR does
// per second, from one thread, in a preallocated file (appending in place, wrapping around).
// A durable single-writer commit cannot beat this rate; group commit can, by sharing a sync.
import fs from "node:fs";
import path from "node:path";
import { now } from "../lib/util.mjs";

const FILE_SIZE = 16 << 20;

export default {
  name: "fdatasync",
  title: "raw disk: write 100 bytes at an offset + fdatasync, in a loop (physical limit)",
  unit: "syncs/s",
  engineless: true,
  describe: (p) => `${p.seconds} s, one thread, preallocated ${FILE_SIZE >> 20} MiB file, sequential 100-byte writes`,
  async run(ctx) {
    const file = path.join(ctx.dir, "fdatasync.bin");
    const fd = fs.openSync(file, "w+");
    try {
      const chunk = Buffer.alloc(1 << 20);
      for (let off = 0; off < FILE_SIZE; off += chunk.length) fs.writeSync(fd, chunk, 0, chunk.length, off);
      fs.fsyncSync(fd);
      const rec = Buffer.alloc(100, 0x5a);
      let off = 0;
      const write = () => {
        fs.writeSync(fd, rec, 0, rec.length, off);
        fs.fdatasyncSync(fd);
        off += rec.length;
        if (off + rec.length > FILE_SIZE) off = 0;
      };
      for (let i = 0; i < 20; i++) write(); // warm-up
      const t0 = now();
      const deadline = t0 + ctx.params.seconds * 1000;
      let ops = 0;
      while (now() < deadline) {
        write();
        ops++;
      }
      const seconds = (now() - t0) / 1000;
      return { ops, seconds, extra: { meanLatencyMs: (seconds * 1000) / ops } };
    } finally {
      fs.closeSync(fd);
    }
  },
};
