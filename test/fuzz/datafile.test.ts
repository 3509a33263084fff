/**
 * Fuzz of a damaged data file (wal: false database, 1024-byte pages, a few hundred keys with
 * overflow values in three sub-databases; see helpers/datafileFuzz.ts for the kinds of damage).
 *
 * Each trial damages the closed file one way, opens it and reads every key (get, forward and
 * reverse ranges, every sub-database) and tries one write. Each operation either returns exactly
 * the right value or throws KeelError CORRUPT with details.page; never a wrong value, never another
 * exception, never a hang (trials run in a worker thread under a watchdog). Damage to the newest
 * meta page may make open fall back to the other slot: the state must then be exactly the previous
 * commit's. Forged pages (rewritten with a valid checksum) may only raise KeelErrors.
 *
 * Also: a file of another format version is refused with VERSION naming both versions, and so is
 * opening with another page size.
 *
 * KEEL_FUZZ_TRIALS=n for more trials (default 1500); KEEL_SEED=<trial>[,<trial>...] replays trials.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { open, KeelError } from "../../src/index.js";
import { FORMAT_VERSION } from "../../src/pager/PageLayout.js";
import { probeMeta } from "../../src/pager/Meta.js";
import { seal } from "../../src/pager/PageCodec.js";
import { buildFixture, DATA, DIR, PAGE } from "../helpers/datafileFuzz.js";
import { seedList } from "../helpers/rng.js";

const WORKER = new URL("../helpers/datafileWorker.js", import.meta.url);
const FIXTURE_SEED = Number(process.env.KEEL_FUZZ_FIXTURE ?? 1);
const TRIAL_TIMEOUT_MS = 20_000;

interface Done {
  trial: number;
  outcome: string;
  kind: string;
}

/** Run trials in a worker; a trial silent for TRIAL_TIMEOUT_MS is a hang: the worker is stopped. */
function runInWorker(mode: "trials", trials: number[]): Promise<{ done: Done[]; failures: Array<{ trial: number; message: string }> }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(WORKER, { workerData: { fixtureSeed: FIXTURE_SEED, trials, mode } });
    const done: Done[] = [];
    const failures: Array<{ trial: number; message: string }> = [];
    let current = -2;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        void w.terminate();
        const name = current === -2 ? "building the fixture" : `trial ${current}`;
        reject(new Error(`${name} did not finish in ${TRIAL_TIMEOUT_MS} ms: a hang (replay: KEEL_SEED=${current} node --test dist/test/fuzz/datafile.test.js)`));
      }, TRIAL_TIMEOUT_MS);
    };
    arm(); // building the fixture
    w.on("message", (m: { type: string; trial: number; outcome?: string; kind?: string; message?: string }) => {
      if (m.type === "start") {
        current = m.trial;
        arm();
      } else if (m.type === "done") done.push({ trial: m.trial, outcome: m.outcome!, kind: m.kind! });
      else if (m.type === "fail") failures.push({ trial: m.trial, message: m.message! });
      else if (m.type === "end") {
        clearTimeout(timer);
        void w.terminate();
        resolve({ done, failures });
      }
    });
    w.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

test("a damaged data file: every read is right or CORRUPT (with its page), never wrong, never a hang", { timeout: 3_600_000 }, async (t) => {
  const trials = seedList(1500, "KEEL_FUZZ_TRIALS");
  const { done, failures } = await runInWorker("trials", trials);
  const tally: Record<string, number> = {};
  for (const d of done) tally[`${d.kind}: ${d.outcome}`] = (tally[`${d.kind}: ${d.outcome}`] ?? 0) + 1;
  t.diagnostic(`outcomes: ${JSON.stringify(tally)}`);
  if (failures.length) {
    assert.fail(
      `${failures.length} of ${trials.length} trials failed (trials ${failures.map((f) => f.trial).slice(0, 20).join(", ")}; replay: KEEL_SEED=<trial>):\n` +
        failures.slice(0, 5).map((f) => f.message).join("\n---\n"),
    );
  }
  if (trials.length >= 500) {
    const count = (o: string) => done.filter((d) => d.outcome === o).length;
    for (const o of ["intact", "corrupt-open", "corrupt-read", "fell-back"]) assert.ok(count(o) > 0, `no trial ended "${o}": the fuzzer does not reach it`);
  }
});

test("a forged branch page that is its own child: reads end with a KeelError, no hang, no process crash", { timeout: 120_000 }, async (t) => {
  // In a child process: a runaway descent can end in a fatal V8 error, which no worker contains.
  const child = fileURLToPath(new URL("../helpers/datafileCycleChild.js", import.meta.url));
  const r = spawnSync(process.execPath, ["--max-old-space-size=200", child, String(FIXTURE_SEED)], { encoding: "utf8", timeout: 30_000 });
  const out = `${r.stdout ?? ""}${r.stderr ?? ""}`;
  const tail = out.split("\n").slice(0, 12).join("\n");
  assert.ok(!r.error, `the reader did not finish in 30 s (a hang): ${String(r.error)}`);
  assert.equal(r.status, 0, `the reading process died (status ${r.status}, signal ${r.signal}) instead of reporting CORRUPT:\n${tail}`);
  assert.match(r.stdout, /^result (open: KeelError|reads: KeelError)/m, `reads of a tree with a cycle must fail with a KeelError:\n${tail}`);
  t.diagnostic(`forged cycle: ${r.stdout.trim()}`);
});

async function patchedCopy(patch: (img: Buffer) => void) {
  const fx = await buildFixture(FIXTURE_SEED);
  const fs = fx.fs.clone();
  const img = Buffer.from(fx.image);
  patch(img);
  const f = fs.open(DATA, "rw");
  f.write(img, 0, img.length, 0);
  f.sync();
  f.close();
  return fs;
}

function setVersion(img: Buffer, slot: 0 | 1, version: number): void {
  const pg = img.subarray(slot * PAGE, (slot + 1) * PAGE);
  pg.writeUInt16LE(version, 36);
  seal(pg);
}

test("a data file of another format version is refused with VERSION naming both versions", async () => {
  for (const version of [FORMAT_VERSION + 1, 0, 999]) {
    const fs = await patchedCopy((img) => {
      setVersion(img, 0, version);
      setVersion(img, 1, version);
    });
    await assert.rejects(open(DIR, { wal: false, fs }), (e: unknown) => {
      assert.ok(e instanceof KeelError, String(e));
      assert.equal(e.code, "VERSION", e.message);
      assert.equal(e.details.found, version);
      assert.equal(e.details.supported, FORMAT_VERSION);
      return true;
    });
    // Refused, not "repaired", and nothing left behind: refused again the same way.
    await assert.rejects(open(DIR, { wal: false, fs }), (e: unknown) => e instanceof KeelError && e.code === "VERSION");
  }
  // A newer version in the newest meta only: refused too, never a silent fall back to the older one.
  const fs = await patchedCopy((img) => {
    const m0 = probeMeta(img, 0);
    const m1 = probeMeta(img.subarray(PAGE), 1);
    assert.ok(m0.ok && m1.ok);
    setVersion(img, m0.meta.txn > m1.meta.txn ? 0 : 1, FORMAT_VERSION + 1);
  });
  await assert.rejects(open(DIR, { wal: false, fs }), (e: unknown) => {
    assert.ok(e instanceof KeelError, String(e));
    assert.equal(e.code, "VERSION", e.message);
    assert.equal(e.details.found, FORMAT_VERSION + 1);
    assert.equal(e.details.supported, FORMAT_VERSION);
    return true;
  });
});

test("opening with another pageSize than the file's is VERSION, naming both", async () => {
  const fs = await patchedCopy(() => {});
  for (const pageSize of [2048, 4096, 65536]) {
    await assert.rejects(open(DIR, { wal: false, fs, pageSize }), (e: unknown) => {
      assert.ok(e instanceof KeelError, String(e));
      assert.equal(e.code, "VERSION", e.message);
      assert.equal(e.details.pageSize, PAGE);
      assert.equal(e.details.requested, pageSize);
      return true;
    });
  }
  // The right page size (or none) still opens it: the refusals left nothing behind (no LOCK).
  const db = await open(DIR, { wal: false, fs, pageSize: PAGE });
  await db.close();
  const db2 = await open(DIR, { wal: false, fs });
  await db2.close();
});

test("a forged (resealed) meta naming a run past the end of the file is CORRUPT, not a RangeError", async () => {
  // Found by the fuzz above (trial 105454): a meta with a valid checksum whose high water and free
  // list run are huge makes open allocate the run before checking it against the file.
  const fs = await patchedCopy((img) => {
    const m0 = probeMeta(img, 0);
    const m1 = probeMeta(img.subarray(PAGE), 1);
    assert.ok(m0.ok && m1.ok);
    const slot = m0.meta.txn > m1.meta.txn ? 0 : 1;
    const pg = img.subarray(slot * PAGE, (slot + 1) * PAGE);
    pg.writeUInt32LE(0xfffffff0, 44); // high water
    pg.writeUInt32LE(5_000_000, 64); // free list pages: 5e6 pages of 1 KiB = 5 GB
    seal(pg);
  });
  await assert.rejects(open(DIR, { wal: false, fs }), (e: unknown) => {
    assert.ok(e instanceof KeelError, `open threw a non-KeelError: ${e instanceof Error ? e.stack : String(e)}`);
    assert.equal(e.code, "CORRUPT", e.message);
    return true;
  });
});
