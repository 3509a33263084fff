/**
 * walKillChild: the process the wal kill and phase suites start and kill (or that kills itself
 * through KEEL_CRASH_AT). It opens a database on the real file system and runs concurrent awaited
 * writers (helpers/walWorkload.ts), optionally with a maintenance loop (checkpoint, createSnapshot,
 * gcTxlogSegments), and reports on stdout, one line per fact, with a blocking write (so that a line
 * is out before the next step, and nothing is buffered in the process when it is killed):
 *
 *   R <json {lsn}>            open returned; the log ends at lsn
 *   E <json {tag,kind,ops}>   a unit is about to be enqueued (printed before the put/transaction call)
 *   A <tag>                   the unit was acknowledged (its promise resolved)
 *   C <lsn> <ops>             a commit event
 *   S <json snapshot info>    createSnapshot resolved
 *   G <json gc result>        gcTxlogSegments resolved
 *   X <message>               an unexpected error (the parent fails the test)
 *   D                         the workload is over (the process then idles until killed, unless exitWhenDone)
 *
 * Usage: node walKillChild.js '<json ChildConfig>'
 */
import { writeSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { open, type OpenOptions } from "../../src/index.js";
import { Rng } from "./rng.js";
import { WalHistory } from "./walHistory.js";
import { runWalWriters, type WalWriterOptions } from "./walWorkload.js";
import { emptyState } from "./dbModel.js";

export interface ChildConfig {
  dir: string;
  seed: number;
  /** Prefix of the unit tags (unique per run, so that tags are unique across runs). */
  label: string;
  options: Omit<OpenOptions, "fs" | "onPhase">;
  writers: Omit<WalWriterOptions, "onEnqueue" | "onAck">;
  /** Run checkpoint / createSnapshot / gcTxlogSegments in a loop beside the writers. */
  maintenance?: { rounds: number; gap: number; actions?: Array<"snapshot" | "gc" | "checkpoint"> } | undefined;
  exitWhenDone?: boolean | undefined;
}

/** Values travel as JSON; binary ones as {"$b": hex}. */
export function encodeForLine(v: unknown): unknown {
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return { $b: Buffer.from(v).toString("hex") };
  return v;
}

export function decodeFromLine(v: unknown): unknown {
  if (v && typeof v === "object" && "$b" in (v as Record<string, unknown>)) return Buffer.from((v as { $b: string }).$b, "hex");
  return v;
}

function out(line: string): void {
  const b = Buffer.from(line + "\n");
  let off = 0;
  while (off < b.length) off += writeSync(1, b, off, b.length - off);
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? "{}") as ChildConfig;
  const db = await open(cfg.dir, cfg.options);
  db.on("commit", (r) => {
    if (r.lsn !== 0) out(`C ${r.lsn} ${r.ops}`);
  });
  out(`R ${JSON.stringify({ lsn: db.txlogWatermarks().lastCommittedLsn })}`);
  const rng = new Rng(cfg.seed);
  // The child's own history is not checked here; the parent rebuilds it from the lines.
  const hist = new WalHistory(emptyState(), 0);
  const loops: Promise<unknown>[] = [
    runWalWriters(
      db,
      rng,
      hist,
      {
        ...cfg.writers,
        onEnqueue: (u) => out(`E ${JSON.stringify({ tag: u.tag, kind: u.kind, ops: u.ops.map((o) => ({ db: o.db, key: o.key, ...(o.value === undefined ? {} : { value: encodeForLine(o.value) }) })) })}`),
        onAck: (u) => out(`A ${u.tag}`),
      },
      cfg.label,
    ).then((r) => {
      for (const e of r.errors) out(`X writer failed: ${String((e as Error)?.stack ?? e).replace(/\n/g, " | ")}`);
    }),
  ];
  if (cfg.maintenance) {
    const m = cfg.maintenance;
    const mr = rng.fork();
    loops.push(
      (async () => {
        for (let i = 0; i < m.rounds; i++) {
          for (let t = m.gap + mr.int(m.gap); t > 0; t--) await new Promise<void>((r) => setImmediate(r));
          const actions = m.actions ?? ["snapshot", "gc", "checkpoint"];
          const what = actions[i % actions.length];
          try {
            if (what === "snapshot") {
              const s = await db.createSnapshot();
              out(`S ${JSON.stringify(s)}`);
            } else if (what === "gc") {
              const g = await db.gcTxlogSegments();
              out(`G ${JSON.stringify(g)}`);
            } else await db.checkpoint();
          } catch (e) {
            out(`X maintenance failed: ${String((e as Error)?.stack ?? e).replace(/\n/g, " | ")}`);
            return;
          }
        }
      })(),
    );
  }
  await Promise.all(loops);
  out("D");
  if (cfg.exitWhenDone) {
    await db.close();
    return;
  }
  setInterval(() => {}, 1000);
}

// Run only as a script (the parent imports this module for its types and line codec).
if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    out(`X ${String((e as Error)?.stack ?? e).replace(/\n/g, " | ")}`);
    process.exit(3);
  });
}
