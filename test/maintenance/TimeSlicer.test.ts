/**
 * TimeSlicer: slices bounded by the budget; ABORTED and CLOSED at a pause; stepping back for
 * writers (a sleep that keeps the job's share of the event loop) only while the activity counter
 * moves, full speed once it stops.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { KeelError } from "../../src/index.js";
import { TimeSlicer } from "../../src/maintenance/TimeSlicer.js";

function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // busy
  }
}

test("TimeSlicer: due() after the budget; pause() yields to the event loop; abort and close are raised there", async () => {
  const s = new TimeSlicer({ budgetMs: 2 });
  assert.equal(s.due(), false);
  spin(3);
  assert.equal(s.due(), true);
  let ran = false;
  setImmediate(() => (ran = true));
  await s.pause();
  assert.ok(ran, "other callbacks ran during the pause");
  assert.equal(s.due(), false, "a new slice starts after the pause");

  const ac = new AbortController();
  const a = new TimeSlicer({ signal: ac.signal });
  ac.abort("stop");
  await assert.rejects(a.pause(), (e: unknown) => e instanceof KeelError && e.code === "ABORTED");
  let closed = false;
  const c = new TimeSlicer({ isClosed: () => closed });
  closed = true;
  assert.throws(() => c.check(), (e: unknown) => e instanceof KeelError && e.code === "CLOSED");
});

test("TimeSlicer: while the activity counter moves, the job sleeps to keep its share; full speed once it stops", async () => {
  let txn = 0;
  const s = new TimeSlicer({ budgetMs: 2, share: 0.2, activity: () => txn });
  // Writers active: each pause after a slice of at least 2 ms sleeps at least 8 ms (2 x 0.8 / 0.2).
  let pausedMs = 0;
  for (let i = 0; i < 5; i++) {
    spin(2);
    txn++;
    const t0 = performance.now();
    await s.pause();
    pausedMs += performance.now() - t0;
  }
  assert.equal(s.backoffs, 5);
  assert.ok(s.sleptMs >= 5 * 8, `stepped back while writers committed (${s.sleptMs} ms of sleep for 5 slices)`);
  // The sleeps happened (a lower bound only: a timer never fires before its delay, give or take
  // a millisecond of rounding).
  assert.ok(pausedMs >= s.sleptMs - 5, `paused ${pausedMs.toFixed(1)} ms for ${s.sleptMs} ms of sleep`);
  // Writers stopped: no more sleeping.
  const slept = s.sleptMs;
  for (let i = 0; i < 5; i++) {
    spin(2);
    await s.pause();
  }
  assert.equal(s.backoffs, 5, "full speed without writers");
  assert.equal(s.sleptMs, slept);
  assert.equal(s.slices, 10);
});
