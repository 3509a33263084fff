/**
 * SIGKILL of a real `keel serve` (appendfsync always) under load from many ioredis clients:
 * after each restart, every SET that was acknowledged is there with its value. Rounds append to
 * the same directory (each restart also replays the log the kill left). KEEL_SERVER_KILL_ROUNDS
 * sets the number of `always` rounds (default 3); one `everysec` round follows (a process kill
 * loses nothing acknowledged there either: replies wait for the write to the OS).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Redis } from "ioredis";
import { client, startServe } from "./serveChild.js";

const ROUNDS = Number(process.env.KEEL_SERVER_KILL_ROUNDS ?? 3);
const CLIENTS = 24;

/**
 * Every acknowledged key holds its last acknowledged value, or a value written to it after that
 * one (sent, maybe made durable, but killed before its reply: unacknowledged, so either way).
 */
async function verify(port: number, acked: Map<string, string>, issued: Map<string, string[]>): Promise<void> {
  const r = client(port);
  try {
    const keys = [...acked.keys()];
    for (let i = 0; i < keys.length; i += 500) {
      const batch = keys.slice(i, i + 500);
      const got = await r.mget(...batch);
      batch.forEach((k, j) => {
        const values = issued.get(k)!;
        const allowed = values.slice(values.indexOf(acked.get(k)!));
        assert.ok(got[j] !== null && allowed.includes(got[j]!), `acknowledged ${k}: got ${got[j]}, expected ${acked.get(k)} or a later write`);
      });
    }
  } finally {
    r.disconnect();
  }
}

test(`SIGKILL under load (${ROUNDS} rounds with appendfsync always + 1 with everysec, ${CLIENTS} clients): every acknowledged SET survives`, { timeout: 120_000 }, async (t) => {
  const root = mkdtempSync(join(tmpdir(), "keel-kill-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, "data");
  const acked = new Map<string, string>();
  const issued = new Map<string, string[]>();
  const children: Array<{ kill: (s: NodeJS.Signals) => boolean }> = [];
  t.after(() => {
    for (const c of children) c.kill("SIGKILL");
  });
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  // ROUNDS rounds with appendfsync always, then one with everysec: its replies wait for the
  // write to the OS (not the sync), which a process kill cannot undo either.
  for (let round = 0; round <= ROUNDS; round++) {
    const fsync = round < ROUNDS ? "always" : "everysec";
    const s = await startServe(["--dir", dir, "--http-port", "0", "--appendfsync", fsync]);
    children.push(s.child);
    if (round > 0) await verify(s.port, acked, issued);
    const clients: Redis[] = [];
    for (let c = 0; c < CLIENTS; c++) clients.push(client(s.port));
    let stop = false;
    const work = clients.map(async (r, c) => {
      let n = 0;
      while (!stop) {
        // Half the clients pipeline 8 SETs at a time, half send one at a time.
        const depth = c % 2 === 0 ? 8 : 1;
        const batch: Array<Promise<void>> = [];
        for (let d = 0; d < depth; d++) {
          const key = `r${round}:c${c}:${n++}`;
          // Overwrite some earlier keys too: the newest acknowledged value must win.
          const target = n % 7 === 0 && n > 10 ? `r${round}:c${c}:${n - 10}` : key;
          const value = `${key}:${"v".repeat(n % 50)}`;
          const list = issued.get(target) ?? [];
          list.push(value);
          issued.set(target, list);
          batch.push(
            r.set(target, value).then(
              (ok) => {
                if (ok === "OK") acked.set(target, value);
              },
              () => {
                stop = true;
              },
            ),
          );
        }
        await Promise.all(batch);
      }
    });
    const before = acked.size;
    // Killed under load: after enough acknowledged writes (a fixed wait saw anything from 0 to 400
    // of them on a busy machine), then at a random moment.
    for (let i = 0; i < 3000 && acked.size <= before + 50; i++) await new Promise((res) => setTimeout(res, 10));
    await new Promise((res) => setTimeout(res, Math.floor(rand() * 500)));
    s.child.kill("SIGKILL");
    const e = await s.exit;
    assert.equal(e.signal, "SIGKILL");
    stop = true;
    await Promise.all(work);
    for (const r of clients) r.disconnect();
    assert.ok(acked.size > before + 50, `round ${round} (${fsync}): writes were acknowledged before the kill (${acked.size - before})`);
  }
  const s = await startServe(["--dir", dir, "--http-port", "0"]);
  children.push(s.child);
  try {
    await verify(s.port, acked, issued);
  } finally {
    s.child.kill("SIGTERM");
    await s.exit;
  }
});
