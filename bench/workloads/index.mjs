// Registry of workloads, in the order they run and print. One file per workload (or family).
//
// A workload is an object:
//   name         id used with --only, in output and in JSON
//   family       optional: a shared id so that --only selects all its members (e.g. "concurrent-writers")
//   title        one line for the table header
//   unit         unit of the headline figure ("commits/s", "reads/s", "ms", ...)
//   better       "higher" (default) or "lower": how ratios and "best peer" are read
//   engineless   true: runs once without an engine (a reference row, like the disk's fdatasync rate)
//   requires     capabilities an engine adapter must have (see engines/index.mjs); else "n/a"
//   group        workloads with the same group run in ONE child process per engine, in registry order,
//                sharing ctx.state (e.g. load once, then read the loaded data)
//   dependsOn    a workload of the same group that must run first; it runs as setup (not reported)
//                when only the dependent one was selected
//   describe(params)  optional: a longer header line with the sizes used
//   run(ctx)     async; ctx = { engine, dir, params, state, log, openDb(), closeDb() }; returns
//                { ops, seconds, bytes?, value?, notes?: string[], extra?: object }
//                The figure is value if given, else ops / seconds; MB/s = bytes / seconds / 1e6.
import fdatasync, { fdatasyncWithCpu } from "./fdatasync.mjs";
import singleWriter from "./single-writer.mjs";
import { concurrentWriters } from "./concurrent-writers.mjs";
import bulkLoad from "./bulk-load.mjs";
import pointReads from "./point-reads.mjs";
import orderedScan from "./ordered-scan.mjs";
import walRecovery from "./wal-recovery.mjs";
import backupWorkloads from "./backup.mjs";
import dumpLoadWorkloads from "./dump-load.mjs";

export const workloads = [
  fdatasync,
  fdatasyncWithCpu(15),
  singleWriter,
  ...[1, 4, 16, 64].map((n) => concurrentWriters(n)),
  bulkLoad,
  pointReads,
  orderedScan,
  walRecovery,
  ...backupWorkloads,
  ...dumpLoadWorkloads,
];

export function workloadByName(name) {
  return workloads.find((w) => w.name === name);
}
