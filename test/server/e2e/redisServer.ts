/**
 * redisServer: a real redis-server for the comparison tests, started on a free port with no
 * persistence in a temp dir, and the path where it is expected.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ReplyReader } from "./replyReader.js";

export const REDIS = "/usr/bin/redis-server";

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export async function startRedis(): Promise<{ port: number; proc: ChildProcess; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), "keel-redis-"));
  const port = await freePort();
  const proc = spawn(REDIS, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], { stdio: "ignore" });
  for (let i = 0; i < 100; i++) {
    try {
      const r = await ReplyReader.open(port);
      r.close();
      return { port, proc, dir };
    } catch {
      await sleep(50);
    }
  }
  proc.kill("SIGKILL");
  throw new Error("redis-server did not start");
}

