/**
 * Real `kill -9` of a child process writing in `wal: false` mode (test/helpers/killChild.ts).
 *
 * Each round spawns the child on the same directory (state accumulates over rounds), lets it
 * commit from several concurrent writers (group commits, a sub-database, removes, a multi-key
 * transaction, overflow values), and SIGKILLs it after a random delay: usually once it is running,
 * sometimes early, while it opens or creates the database. Then the parent:
 *   - while the child runs, checks that open() is refused with LOCKED naming the child's pid;
 *   - after the kill, checks that the LOCK names the dead child and that open() takes it over;
 *   - checks every key: per key the child's writes are sequential, so the value must be the last
 *     acknowledged write, or the one write issued after it (its ack may have been lost with the
 *     process); a key not written this round keeps the value the parent saw after the previous round;
 *     every value is byte-exact (valueFor(id)); the three keys of each transaction carry one id.
 * A real kill keeps the OS page cache, so this checks the process-kill half of I4 (acknowledged =
 * durable across a crash of the process) and that open needs no recovery step.
 *
 * Rounds: KEEL_KILL_ROUNDS (default 20). Replay: KEEL_SEED=<n>.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { open, KeelError, type Database } from "../../src/index.js";
import { describeError } from "../helpers/crashCheck.js";
import { valueFor } from "../helpers/killValues.js";
import { Rng, seedList } from "../helpers/rng.js";

const CHILD = fileURLToPath(new URL("../helpers/killChild.js", import.meta.url));
const ROUNDS = Number(process.env.KEEL_KILL_ROUNDS ?? 20);
const WRITERS = 6;

interface RoundResult {
  lines: string[];
  pid: number;
  sawReady: boolean;
  lockedChecked: boolean;
  stderr: string;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function runChild(dir: string, round: number, rng: Rng): Promise<RoundResult> {
  const child = spawn(process.execPath, [CHILD, dir, String(round), String(WRITERS)], { stdio: ["ignore", "pipe", "pipe"] });
  let buf = "";
  let stderr = "";
  const lines: string[] = [];
  let sawReady = false;
  let readyResolve: () => void = () => {};
  const ready = new Promise<void>((r) => (readyResolve = r));
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      lines.push(line);
      if (line.startsWith("ready ")) {
        sawReady = true;
        readyResolve();
      }
    }
  });
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d: string) => (stderr += d));
  const closed = new Promise<void>((r) => child.on("close", () => r()));
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  let lockedChecked = false;
  const early = rng.bool(0.15);
  if (early) {
    // Kill while the child starts, opens or creates the database.
    await sleep(rng.int(120));
  } else {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<string>((res) => (timer = setTimeout(() => res("timeout"), 10_000)));
    const r = await Promise.race([ready.then(() => "ready"), timeout, exited.then(() => "exited")]);
    clearTimeout(timer);
    if (r !== "ready") {
      child.kill("SIGKILL");
      await closed;
      throw new Error(`round ${round}: the child did not get ready (${r}); stderr:\n${stderr}`);
    }
    await sleep(rng.range(10, 60));
    // The database is held by a live process: refused, naming it.
    try {
      const db = await open(dir, { wal: false, pageSize: 1024 });
      await db.close();
      throw new Error(`round ${round}: open() succeeded while the child held the database`);
    } catch (e) {
      if (!(e instanceof KeelError)) throw e;
      assert.equal(e.code, "LOCKED", `round ${round}: ${describeError(e)}`);
      assert.equal(e.details.pid, child.pid, `round ${round}: LOCKED names pid ${String(e.details.pid)}, not the child's ${child.pid}`);
      lockedChecked = true;
    }
    await sleep(rng.range(10, 200));
  }
  child.kill("SIGKILL");
  await closed;
  if (buf.length > 0) buf = ""; // a line cut by the kill was never completely printed: ignore it
  if (stderr.trim() && !early) throw new Error(`round ${round}: the child wrote to stderr:\n${stderr}`);
  return { lines, pid: child.pid!, sawReady, lockedChecked, stderr };
}

/** Per key ("db/key"): the writes issued this round in order, and how many were acknowledged. */
interface KeyLog {
  tries: string[]; // id or "-" (remove)
  acked: number; // index + 1 of the last acknowledged try
}

function parse(lines: string[], round: number): Map<string, KeyLog> {
  const logs = new Map<string, KeyLog>();
  for (const line of lines) {
    const [kind, db, key, id] = line.split(" ");
    if (kind === "ready") continue;
    assert.ok((kind === "try" || kind === "ack") && db && key && id, `round ${round}: bad line ${JSON.stringify(line)}`);
    const k = `${db === "-" ? "" : db}/${key}`;
    let log = logs.get(k);
    if (!log) logs.set(k, (log = { tries: [], acked: 0 }));
    if (kind === "try") {
      assert.equal(log.acked, log.tries.length, `round ${round}: ${k}: a write was issued before the previous one was acknowledged`);
      log.tries.push(id);
    } else {
      assert.equal(log.tries[log.tries.length - 1], id, `round ${round}: ${k}: ack of ${id} does not follow its try`);
      log.acked = log.tries.length;
    }
  }
  return logs;
}

/** Every entry of the default database and of "s", as "db/key" -> id (values checked byte-exact). */
function readAll(db: Database, round: number): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of ["", "s"]) {
    const sub = name === "" ? db : db.openDB(name);
    for (const { key, value } of sub.getRange()) {
      assert.equal(typeof value, "string", `round ${round}: ${name}/${String(key)} holds a ${typeof value}`);
      const id = (value as string).split("|")[0]!;
      assert.equal(value, valueFor(id), `round ${round}: ${name}/${String(key)}: the value of write ${id} is damaged`);
      assert.equal(sub.get(key as string), value, `round ${round}: get and getRange disagree on ${name}/${String(key)}`);
      out.set(`${name}/${String(key)}`, id);
    }
  }
  return out;
}

test("SIGKILL of a writing child process: every acknowledged write survives, the LOCK is taken over", { timeout: 600_000 }, async (t) => {
  const seed = seedList(1)[0]!;
  const rng = new Rng(seed);
  const root = mkdtempSync(join(tmpdir(), "keel-kill-"));
  const dir = join(root, "db");
  let observed = new Map<string, string>(); // "db/key" -> id, after the previous round
  let acks = 0;
  let unackedSeen = 0;
  let earlyKills = 0;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const r = await runChild(dir, round, rng);
      if (!r.sawReady) earlyKills++;
      const ctx = `seed ${seed} (replay: KEEL_SEED=${seed}), round ${round}`;
      const lockPath = join(dir, "LOCK");
      if (r.sawReady) {
        assert.ok(existsSync(lockPath), `${ctx}: the LOCK of the killed child is missing`);
        assert.equal(Number.parseInt(readFileSync(lockPath, "utf8"), 10), r.pid, `${ctx}: the LOCK does not name the killed child`);
      }
      if (!existsSync(join(dir, "data.keel"))) {
        assert.ok(!r.sawReady, `${ctx}: no data file after the child was ready`);
        continue;
      }
      let db: Database;
      try {
        db = await open(dir, { wal: false, pageSize: 1024 });
      } catch (e) {
        throw new Error(`${ctx}: open after the kill failed: ${describeError(e)}`, { cause: e });
      }
      try {
        assert.equal(Number.parseInt(readFileSync(lockPath, "utf8"), 10), process.pid, `${ctx}: the LOCK was not taken over`);
        const logs = parse(r.lines, round);
        let actual: Map<string, string>;
        try {
          actual = readAll(db, round);
        } catch (e) {
          if (e instanceof KeelError) throw new Error(`${ctx}: reading after the kill failed: ${describeError(e)}`, { cause: e });
          throw e;
        }
        const keys = new Set([...observed.keys(), ...actual.keys(), ...logs.keys()]);
        for (const k of keys) {
          const got = actual.get(k) ?? "-";
          const log = logs.get(k);
          const before = observed.get(k) ?? "-";
          if (!log) {
            assert.equal(got, before, `${ctx}: ${k} was not written this round, yet changed`);
            continue;
          }
          acks += log.acked;
          const lastAcked = log.acked > 0 ? log.tries[log.acked - 1]! : before;
          const allowed = [lastAcked];
          if (log.tries.length > log.acked) allowed.push(log.tries[log.acked]!);
          assert.ok(
            allowed.includes(got),
            `${ctx}: ${k} holds ${got}; allowed: the last acknowledged write ${lastAcked}${allowed.length > 1 ? ` or the write in flight ${allowed[1]}` : ""} (tries: ${log.tries.slice(-4).join(", ")}; acked ${log.acked})`,
          );
          if (got !== lastAcked) unackedSeen++;
        }
        for (let i = 0; i < WRITERS; i++) {
          if (i % 4 !== 3) continue;
          const ids = ["a", "b", "c"].map((x) => actual.get(`/t${i}-${x}`) ?? "-");
          assert.ok(ids.every((id) => id === ids[0]), `${ctx}: the keys of one transaction hold different writes: ${ids.join(", ")}`);
        }
        assert.equal(db.getCount(), [...actual.keys()].filter((k) => k.startsWith("/")).length, `${ctx}: getCount`);
        observed = actual;
      } finally {
        await db.close();
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  t.diagnostic(`${ROUNDS} rounds (${earlyKills} killed before ready), ${acks} acknowledged writes checked, ${unackedSeen} unacknowledged writes found durable`);
  assert.ok(acks > ROUNDS, "too few acknowledged writes: the child did not get to write");
});
