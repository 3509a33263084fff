/**
 * keel serve [--config FILE] [--dir DIR] [--port N] [--bind ADDR] [--http-port N]
 *            [--appendfsync always|everysec|no] [--log-level LEVEL]
 * The Redis-compatible server (server/startServer.ts). Flags override the TOML file; with no
 * file and no flags it serves ./keel-data on 127.0.0.1:7878 (HTTP 7879) with appendfsync always.
 *
 * Exit statuses (cli/exitCodes.ts): 0 after a clean shutdown (SIGTERM, SIGINT, SHUTDOWN; a
 * signal during the start stops it before it serves, a restore_from load abandoned whole);
 * 2 bad configuration (unknown key, bad value: the message names the key); 3 the data directory
 * is locked by another process; 4 the configuration file or the restore_from dump is missing;
 * 5 the data or the restore_from dump is corrupt (the message names the file and line/offset);
 * 6 I/O error, disk full, or the port is in use; 130 a second signal during shutdown (forced
 * exit: nothing acknowledged is lost, since every reply already waited for its durability).
 *
 * Invariant: the process never serves an empty database in place of a damaged or missing one:
 * every start-up error ends the process with a non-zero status before a port is opened.
 */
import type { Command } from "commander";
import { KeelError } from "../../errors.js";
import { loadConfig } from "../../server/config/loadConfig.js";
import { createLogger } from "../../server/config/createLogger.js";
import { startServer, type RunningServer } from "../../server/startServer.js";
import { ExitCode, exitCodeFor } from "../exitCodes.js";
import { setExitStatus } from "../context.js";

interface ServeCliOptions {
  config?: string;
  dir?: string;
  port?: string;
  bind?: string;
  httpPort?: string;
  appendfsync?: string;
  logLevel?: string;
}

async function serve(opts: ServeCliOptions): Promise<number> {
  let config;
  try {
    config = loadConfig(opts.config ?? null, { dir: opts.dir, port: opts.port, bind: opts.bind, httpPort: opts.httpPort, appendfsync: opts.appendfsync, logLevel: opts.logLevel });
  } catch (e) {
    const logger = createLogger("info");
    logger.fatal({ event: "config-error", err: errInfo(e) }, `keel serve: configuration refused: ${(e as Error)?.message ?? String(e)}`);
    process.stderr.write(`keel serve: ${(e as Error)?.message ?? String(e)}\n`);
    return exitCodeFor(e);
  }
  const logger = createLogger(config.server.logLevel);
  // The handlers go in before the start: a signal while a restore_from load or the log replay
  // runs stops the start cleanly (nothing half-restored is left; exit 0), not with Node's
  // default death by signal.
  let server: RunningServer | undefined;
  const starting = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      // Forced: exit now. Replies are only ever sent after their commit's durability, so
      // nothing acknowledged is lost; unacknowledged writes may or may not be there.
      logger.warn({ event: "forced-exit", signal: sig }, "second signal during shutdown: exiting now");
      process.exit(ExitCode.INTERRUPTED);
    }
    if (server) void server.shutdown("default", sig);
    else {
      logger.info({ event: "shutdown", mode: "default", reason: sig, during: "start" }, "signal during start-up: stopping before serving");
      starting.abort(sig);
    }
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  // A closed terminal or ssh session: a clean shutdown, as SIGTERM (the default action kills at once).
  process.on("SIGHUP", onSignal);
  try {
    try {
      server = await startServer(config, { logger, exitCodeFor, signal: starting.signal });
    } catch (e) {
      if (starting.signal.aborted && e instanceof KeelError && e.code === "ABORTED") {
        logger.info({ event: "shutdown-complete", mode: "default", code: 0, during: "start" }, "stopped before serving");
        return ExitCode.OK;
      }
      logger.fatal({ event: "start-failed", err: errInfo(e) }, `keel serve: cannot start: ${(e as Error)?.message ?? String(e)}`);
      process.stderr.write(`keel serve: cannot start: ${(e as Error)?.message ?? String(e)}\n`);
      return exitCodeFor(e);
    }
    // A signal after the last check of the start, while the ports opened: shut down now.
    if (starting.signal.aborted) void server.shutdown("default", String(starting.signal.reason));
    return await server.done;
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
    process.off("SIGHUP", onSignal);
  }
}

function errInfo(e: unknown): Record<string, unknown> {
  if (e instanceof KeelError) return { code: e.code, message: e.message, details: e.details };
  return { message: (e as Error)?.message ?? String(e), code: (e as NodeJS.ErrnoException)?.code };
}

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("run the Redis-compatible server (RESP on --port, HTTP /health /metrics /stats on --http-port)")
    .option("-c, --config <file>", "TOML configuration file (see keel.toml)")
    .option("-d, --dir <dir>", "data directory (default ./keel-data)")
    .option("-p, --port <port>", "RESP port (default 7878; 0 picks a free one, logged in the ready line)")
    .option("--bind <addr>", "address to listen on (default 127.0.0.1)")
    .option("--http-port <port>", "HTTP port for /health, /metrics, /stats (default 7879; 0 disables)")
    .option("--appendfsync <policy>", "always | everysec | no (default always)")
    .option("--log-level <level>", "fatal | error | warn | info | debug | trace | silent (default info)")
    .action(async (opts: ServeCliOptions) => {
      setExitStatus(await serve(opts));
    });
}
