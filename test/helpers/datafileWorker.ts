/**
 * datafileWorker: runs datafile fuzz trials in a worker thread, so that the test's main thread can
 * stop a trial that hangs (a synchronous infinite loop cannot be interrupted from inside) and name it.
 * Messages to the parent: {type: "start", trial}, {type: "done", trial, outcome, kind},
 * {type: "fail", trial, message}, {type: "end"}.
 */
import { parentPort, workerData } from "node:worker_threads";
import { quietExpectedWarnings } from "./crashCheck.js";
import { buildFixture, runTrial } from "./datafileFuzz.js";

quietExpectedWarnings();

const { fixtureSeed, trials } = workerData as { fixtureSeed: number; trials: number[] };
const port = parentPort!;
const fx = await buildFixture(fixtureSeed);
for (const trial of trials) {
  port.postMessage({ type: "start", trial });
  try {
    const r = await runTrial(fx, trial);
    port.postMessage({ type: "done", trial, ...r });
  } catch (e) {
    port.postMessage({ type: "fail", trial, message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  }
}
port.postMessage({ type: "end" });
