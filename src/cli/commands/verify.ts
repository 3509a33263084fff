/**
 * keel verify <dir> [--strict]: walk every page of data.keel and every record of the log and
 * report each problem with where it is (verify()). Exit 1 when a problem of severity "error" is
 * found (with --strict: any problem, warnings too). The database must not be open in another
 * process (exit 3): its files would change under the walk.
 */
import type { Command } from "commander";
import { verify } from "../../maintenance/verify.js";
import { action } from "../context.js";
import { hasDatabase, notFound, refuseIfLocked } from "../database.js";
import { ExitCode } from "../exitCodes.js";

interface Problem {
  severity: string;
  kind: string;
  file: string;
  page?: number;
  segment?: string;
  offset?: number;
  tree?: string;
  message: string;
}

export function problemLine(p: Problem): string {
  const where = [p.file, p.page !== undefined ? `page ${p.page}` : "", p.segment !== undefined ? `segment ${p.segment}` : "", p.offset !== undefined ? `offset ${p.offset}` : "", p.tree !== undefined ? `tree ${p.tree === "" ? "(default)" : p.tree}` : ""]
    .filter(Boolean)
    .join(" ");
  return `${(p.severity === "error" ? "ERROR" : "WARN").padEnd(5)}  ${p.kind}  ${where}: ${p.message}`;
}

export function registerVerify(program: Command): void {
  program
    .command("verify")
    .description("check every page and log record; report each problem with its location")
    .argument("<dir>", "database directory (no process may have it open)")
    .option("--strict", "exit 1 for warnings too")
    .action(
      action(async (ctx, dir: string, opts: { strict?: boolean }) => {
        if (!hasDatabase(dir)) throw notFound(dir);
        refuseIfLocked(dir);
        const progress = ctx.progress("verify");
        const options = { onProgress: progress.update, signal: ctx.signal };
        const r = await verify(dir, options);
        progress.stop();
        const problems = r.problems as Problem[];
        const errors = problems.filter((p) => p.severity === "error").length;
        const warnings = problems.length - errors;
        await ctx.out.result({ path: dir, ...r }, () => {
          const s = r.stats;
          const lines = problems.map(problemLine);
          lines.push(
            `${dir}: ${problems.length ? `${errors} error(s), ${warnings} warning(s)` : "no problems found"}`,
            `  pages ${s.pages} (tree ${s.treePages}, overflow ${s.overflowPages}, free ${s.freePages}, free list ${s.freelistPages}, leaked ${s.leakedPages}); ` +
              `${s.entries} entries in ${s.dbs} sub-database(s); log ${s.logRecords} record(s) in ${s.logSegments} segment(s)`,
          );
          return lines;
        });
        if (!r.ok || errors > 0) return ExitCode.PROBLEMS;
        return opts.strict && problems.length ? ExitCode.PROBLEMS : ExitCode.OK;
      }),
    );
}
