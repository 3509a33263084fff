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
  // Writers active: each pause after a 2 ms slice sleeps about 8 ms (2 x 0.8 / 0.2).
  const t0 = performance.now();
  for (let i = 0; i < 5; i++) {
    spin(2);
    txn++;
    await s.pause();
  }
  const busyMs = performance.now() - t0;
  assert.equal(s.backoffs, 5);
  assert.ok(busyMs >= 5 * (2 + 7), `stepped back while writers committed (${busyMs.toFixed(1)} ms for 5 slices)`);
  // Writers stopped: no more sleeping.
  const t1 = performance.now();
  for (let i = 0; i < 5; i++) {
    spin(2);
    await s.pause();
  }
  const idleMs = performance.now() - t1;
  assert.equal(s.backoffs, 5);
  assert.ok(idleMs < 5 * (2 + 7), `full speed without writers (${idleMs.toFixed(1)} ms for 5 slices)`);
});
