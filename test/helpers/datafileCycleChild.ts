/**
 * datafileCycleChild: runs the forged-cycle trial (helpers/datafileFuzz.ts runCycleTrial) in its own
 * process, because a runaway descent may end in a fatal V8 error that would take the test runner
 * (and any worker thread's process) down with it. Prints one line: `result <outcome>`.
 */
import { buildFixture, runCycleTrial } from "./datafileFuzz.js";

const fx = await buildFixture(Number(process.argv[2] ?? 1));
const outcome = await runCycleTrial(fx);
process.stdout.write(`result ${outcome}\n`);
