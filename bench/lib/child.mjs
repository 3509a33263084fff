// Child process: runs one job (one engine, one workload or one group of workloads) in a fresh
// directory and sends the results to the parent over IPC. Forked by run.mjs; never run by hand.
import { engineByName } from "../engines/index.mjs";
import { workloadByName } from "../workloads/index.mjs";
import { EngineUnavailable, errorMessage } from "./util.mjs";

async function runJob(job) {
  const engine = job.engine ? engineByName(job.engine) : null;
  const results = [];
  let handle = null;
  const ctx = {
    engine,
    dir: job.dir,
    params: job.params,
    state: {},
    log: (msg) => process.stderr.write(`    [${job.engine ?? "-"}] ${msg}\n`),
    async openDb() {
      if (!handle) {
        try {
          handle = await engine.open(job.dir);
        } catch (e) {
          if (e && typeof e === "object") e.inOpen = true;
          throw e;
        }
      }
      return handle;
    },
    async closeDb() {
      if (handle) {
        const h = handle;
        handle = null;
        await h.close();
      }
    },
  };
  let failure = null; // once something fails, the rest of the job is reported with the same status
  for (const { name, report } of job.workloads) {
    const w = workloadByName(name);
    const base = { workload: name, engine: job.engine ?? name };
    if (failure) {
      if (report) {
        const error = failure.status === "error" && !failure.engineFailed && failure.in ? `not run: ${failure.in} failed` : failure.error;
        results.push({ ...base, status: failure.status, error, engineFailed: failure.engineFailed });
      }
      continue;
    }
    try {
      const r = await w.run(ctx);
      if (report) results.push({ ...base, status: "ok", ...r });
    } catch (e) {
      failure =
        e instanceof EngineUnavailable
          ? { status: "n/a", error: e.message }
          : { status: "error", error: `${e?.inOpen ? "open: " : ""}${errorMessage(e)}`, stack: e?.stack, engineFailed: !!e?.engineMissing };
      failure.in = name;
      if (failure.stack && !failure.engineFailed) process.stderr.write(`${failure.stack}\n`);
      if (report) results.push({ ...base, status: failure.status, error: failure.error, engineFailed: failure.engineFailed });
      else failure.error = `setup (${name}) failed: ${failure.error}`;
    }
  }
  try {
    await ctx.closeDb();
  } catch (e) {
    process.stderr.write(`close failed: ${errorMessage(e)}\n`);
  }
  return results;
}

process.once("message", async (job) => {
  let results;
  try {
    results = await runJob(job);
  } catch (e) {
    results = job.workloads
      .filter((w) => w.report)
      .map((w) => ({ workload: w.name, engine: job.engine, status: "error", error: errorMessage(e) }));
  }
  process.send({ results }, () => process.exit(0));
});
