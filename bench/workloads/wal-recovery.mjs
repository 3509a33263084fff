// Recovery time after a crash with a large log: a grandchild process writes ~1 GB of log records
// (scaled) with checkpoints pushed out of reach, is killed with SIGKILL, and the time of the next
// open() (newest valid meta + replay of every record after it) is the figure. KeelDB's log modes
// only: the peers have no comparable knob ("n/a").
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const writer = fileURLToPath(new URL("../lib/wal-recovery-writer.mjs", import.meta.url));

export default {
  name: "wal-recovery",
  title: "recovery time after SIGKILL with a large unreplayed log",
  unit: "ms",
  better: "lower",
  requires: ["walRecovery"],
  describe: (p) => `${Math.round(p.walRecoveryBytes / 1e6)} MB of log (1000 x 1 KB puts per record), SIGKILL, then time open()`,
  async run(ctx) {
    const bytes = ctx.params.walRecoveryBytes;
    const options = ctx.engine.options;
    await new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [writer, ctx.dir, String(bytes), JSON.stringify(options)], { stdio: ["ignore", "pipe", "inherit"] });
      let out = "";
      child.stdout.on("data", (d) => {
        out += d;
        if (out.includes("written")) child.kill("SIGKILL");
      });
      child.on("exit", (code, signal) => (signal === "SIGKILL" ? resolve() : reject(new Error(`writer exited with ${code ?? signal}: ${out}`))));
    });
    const keel = await import(new URL("../../dist/src/index.js", import.meta.url).href);
    const t = performance.now();
    const db = await keel.open(ctx.dir, { ...options, keyEncoding: "binary", encoding: "binary" });
    const ms = performance.now() - t;
    const w = db.txlogWatermarks();
    const entries = db.getCount();
    await db.close();
    return {
      ops: w.replay.records,
      seconds: ms / 1000,
      value: ms,
      bytes,
      notes: [`replayed ${w.replay.records} records (${entries} entries) in ${ms.toFixed(0)} ms`],
    };
  },
};
