// Runs the compiled tests (dist/test/**/*.test.js) with node's built-in runner.
// Usage: node scripts/run-tests.mjs [subdir-or-file ...]   (paths relative to test/, or dist/test/)
import { readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { spawnSync } from "node:child_process";

const root = resolve(import.meta.dirname, "..", "dist", "test");
function walk(p, out) {
  const s = statSync(p);
  if (s.isDirectory()) for (const e of readdirSync(p).sort()) walk(join(p, e), out);
  else if (p.endsWith(".test.js")) out.push(p);
  return out;
}
const args = process.argv.slice(2);
const targets = args.length ? args.map((a) => resolve(root, a.replace(/^(dist\/)?test\/?/, "").replace(/\.ts$/, ".js"))) : [root];
const files = targets.flatMap((t) => walk(t, []));
if (files.length === 0) {
  console.error("no test files found under", targets.join(", "));
  process.exit(1);
}
const r = spawnSync(process.execPath, ["--test", "--test-concurrency=2", ...files], { stdio: "inherit" });
process.exit(r.status ?? 1);
