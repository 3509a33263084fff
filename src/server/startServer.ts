/**
 * startServer: `keel serve`'s start-up and shutdown sequences (the CLI command and the tests call
 * it; signals are the caller's, see cli/commands/serve.ts).
 *
 * Start-up, in order (a failure at any step undoes the steps before it and rejects):
 *   0. bind and http_bind resolve to local addresses (INVALID_ARGUMENT naming the key otherwise,
 *      before the data directory is touched); maxclients is lowered to what the descriptor limit
 *      allows (clientsForFdLimit, logged as a warning); leftovers of an interrupted restore are
 *      removed.
 *   1. restore_from: an EMPTY data directory is loaded from the dump first (all or nothing);
 *      a missing or damaged dump rejects (the directory stays empty); a directory holding a
 *      database ignores restore_from (logged); one holding anything else is refused.
 *   2. open the database with the durability appendfsync maps to (config/loadConfig.ts).
 *   3. persistence (save rules, rewrite rule), metrics, the RESP server, the HTTP listener.
 *   4. log the "ready" line: dir, bind, port, http port, appendfsync and durability.
 *
 * Shutdown (SIGTERM, SIGINT, SHUTDOWN [SAVE|NOSAVE]), in order:
 *   1. stop the automatic jobs; 2. RespServer.close(): stop accepting, let in-flight commands
 *   finish and reply (each reply still waits for its durability), close connections;
 *   3. wait for a running BGSAVE/BACKUP/rewrite; 4. save if asked (SAVE, or default with save
 *   rules and unsaved changes); 5. checkpoint; 6. db.close() (final log sync, LOCK released);
 *   7. close HTTP. `done` then resolves with the exit status (0, or the failing step's code).
 *
 * Invariant: no step of either sequence acknowledges a write; acknowledgement is the RESP side's,
 * after the commit's durability. Killing the process at any point loses nothing acknowledged.
 */
import type { Logger } from "pino";
import { open } from "../db/open.js";
import type { Database } from "../db/Database.js";
import { KeelError } from "../errors.js";
import { createLogger } from "./config/createLogger.js";
import { openOptionsFor } from "./config/loadConfig.js";
import type { ServeConfig } from "./config/ServeConfig.js";
import { startHttpServer, type HttpServer } from "./http/startHttpServer.js";
import { memoryInfo } from "./http/memoryInfo.js";
import { ServerMetrics } from "./metrics/ServerMetrics.js";
import { KeelPersistence } from "./persistence/KeelPersistence.js";
import { removeRestoreLeftovers, restoreFromDump } from "./persistence/restoreFromDump.js";
import { checkBindAddress, listenError } from "./config/checkBindAddress.js";
import { clientsForFdLimit, FD_RESERVE } from "../util/clientsForFdLimit.js";
import type { RespServer, RespServerOptions, ShutdownMode } from "./ServerContext.js";
import { startRespServer } from "./RespServer.js";

export interface RunningServer {
  readonly db: Database;
  readonly logger: Logger;
  readonly persistence: KeelPersistence;
  readonly metrics: ServerMetrics;
  readonly resp: RespServer;
  readonly http: HttpServer | null;
  /** Run the shutdown sequence (once; later calls return the same promise). */
  shutdown(mode: ShutdownMode, reason: string): Promise<number>;
  /** Resolves with the exit status once a shutdown finished. */
  readonly done: Promise<number>;
  readonly shuttingDown: boolean;
}

export interface StartServerOptions {
  readonly logger?: Logger;
  /** Persistence timer period (tests use a short one). */
  readonly tickMs?: number;
  /** The exit status a failed shutdown step maps to (the CLI passes its exitCodeFor). */
  readonly exitCodeFor?: (e: unknown) => number;
  /**
   * Stops a start that is still working (a SIGTERM before the server serves): a restore_from load
   * in progress ends with ABORTED and leaves nothing, and the start rejects with ABORTED before
   * the database is opened or a port is.
   */
  readonly signal?: AbortSignal;
}

/**
 * As Redis at start: clients past the descriptor limit would take the descriptors the engine needs
 * for its next log segment or snapshot (EMFILE), where refusing them costs only those clients.
 */
function fitMaxclients(s: ServeConfig["server"], logger: Logger): void {
  const fitted = clientsForFdLimit();
  if (fitted === null || s.maxclients <= fitted) return;
  // Redis exits when the limit leaves no client; Node cannot even load this code with 32
  // descriptors, so that case never gets here: 1 only keeps the value valid.
  const fit = Math.max(1, fitted);
  const limit = fitted + FD_RESERVE;
  logger.warn(
    { event: "maxclients-reduced", requested: s.maxclients, maxclients: fit, openFilesLimit: limit, reserved: FD_RESERVE },
    `maxclients ${s.maxclients} needs at least ${s.maxclients + FD_RESERVE} open files; the limit is ${limit}: maxclients reduced to ${fit}. Raise 'ulimit -n' for more clients`,
  );
  s.maxclients = fit;
}

function errInfo(e: unknown): Record<string, unknown> {
  if (e instanceof KeelError) return { code: e.code, message: e.message, details: e.details };
  return { message: (e as Error)?.message ?? String(e) };
}

export async function startServer(config: ServeConfig, opts: StartServerOptions = {}): Promise<RunningServer> {
  const s = config.server;
  const logger = opts.logger ?? createLogger(s.logLevel);
  const options = openOptionsFor(config);

  // 0. nothing the server would open is left unchecked: the addresses first (a typo must not
  // create a data directory), then what an interrupted restore_from left behind.
  await checkBindAddress(s.bind, "bind");
  if (s.httpPort !== 0) await checkBindAddress(s.httpBind, "http_bind");
  fitMaxclients(s, logger);
  removeRestoreLeftovers(s.dir);

  const stopRequested = () => {
    if (opts.signal?.aborted) throw new KeelError("ABORTED", "the start was stopped (a signal) before the server served", { reason: String(opts.signal.reason ?? "") });
  };
  stopRequested();

  // 1. restore_from
  if (s.restoreFrom !== null) {
    const r = await restoreFromDump(s.dir, s.restoreFrom, options, opts.signal);
    if (r.kind === "restored") logger.info({ event: "restore", file: s.restoreFrom, dir: s.dir, entries: r.report.entries, format: r.report.format, ms: Math.round(r.ms) }, "data directory restored from dump");
    else logger.info({ event: "restore-skipped", file: s.restoreFrom, dir: s.dir, reason: r.reason }, "restore_from ignored: the data directory already holds a database");
  }

  // 2. the database
  stopRequested();
  const db = await open(s.dir, options);
  let metrics: ServerMetrics | null = null;
  let persistence: KeelPersistence | null = null;
  let resp: RespServer | null = null;
  let http: HttpServer | null = null;
  let shuttingDown = false;
  let shutdownPromise: Promise<number> | null = null;
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));

  const shutdown = (mode: ShutdownMode, reason: string): Promise<number> => {
    if (shutdownPromise) return shutdownPromise;
    shuttingDown = true;
    shutdownPromise = (async () => {
      const t0 = performance.now();
      let code = 0;
      const fail = (step: string, e: unknown) => {
        logger.error({ event: "shutdown-step-failed", step, err: errInfo(e) }, `shutdown: ${step} failed`);
        if (code === 0) code = opts.exitCodeFor?.(e) ?? 1;
      };
      logger.info({ event: "shutdown", mode, reason }, "shutting down");
      persistence?.stop();
      if (resp) await resp.close().catch((e: unknown) => fail("close RESP server", e));
      if (persistence) await persistence.drain();
      if (persistence && (mode === "save" || (mode === "default" && persistence.wantsShutdownSave))) {
        // The data is durable in the log already; the snapshot is a restore point.
        await persistence.shutdownSave().catch((e: unknown) => fail("save", e));
      }
      if (!db.isClosed) {
        await db.checkpoint().catch((e: unknown) => fail("checkpoint", e));
        await db.close().catch((e: unknown) => fail("close database", e));
      }
      metrics?.detach();
      if (http) await http.close().catch((e: unknown) => fail("close HTTP", e));
      logger.info({ event: "shutdown-complete", mode, code, ms: Math.round(performance.now() - t0) }, "shut down");
      resolveDone(code);
      return code;
    })();
    return shutdownPromise;
  };

  try {
    // The open's log replay runs without a pause: a signal that came meanwhile is delivered by the
    // next poll phase of the event loop (two setImmediates pass one whatever phase this is), and
    // must stop the start before a port opens.
    for (let i = 0; i < 2; i++) await new Promise<void>((r) => setImmediate(r));
    stopRequested();
    // 3. persistence, metrics, RESP, HTTP
    metrics = new ServerMetrics(db);
    metrics.attach();
    persistence = new KeelPersistence(db, s, logger, { tickMs: opts.tickMs, observe: metrics.observePersistence });
    const p = persistence;
    const respOptions: RespServerOptions = {
      db,
      config: s,
      persistence: p,
      logger,
      onShutdown: (mode) => void shutdown(mode, "SHUTDOWN command"),
      infoSections: { memory: () => memoryInfo(db) },
    };
    resp = await startRespServer(respOptions).catch((e: unknown) => {
      throw listenError(e, s.bind, s.port, { host: "bind", port: "port" });
    });
    const r = resp;
    metrics.setRespStats(() => r.stats());
    if (s.httpPort !== 0) {
      http = await startHttpServer({
        db,
        dir: s.dir,
        bind: s.httpBind,
        port: s.httpPort,
        health: config.health,
        metrics,
        persistence: p,
        respStats: () => r.stats(),
        shuttingDown: () => shuttingDown,
        logger,
      }).catch((e: unknown) => {
        throw listenError(e, s.httpBind, s.httpPort, { host: "http_bind", port: "http_port" });
      });
    }
    persistence.start();
  } catch (e) {
    persistence?.stop();
    metrics?.detach();
    await resp?.close().catch(() => {});
    await http?.close().catch(() => {});
    await db.close().catch(() => {});
    throw e;
  }

  // 4. ready: printed at every log level but "silent" (it names the bound port: --port 0).
  const w = db.txlogWatermarks();
  const announce = logger.level === "silent" || logger.isLevelEnabled("info") ? logger : logger.child({}, { level: "info" });
  announce.info(
    {
      event: "ready",
      dir: s.dir,
      bind: s.bind,
      port: resp.port,
      httpBind: http ? s.httpBind : null,
      httpPort: http?.port ?? null,
      appendfsync: s.appendfsync,
      durability: w.durability,
      maxclients: s.maxclients,
      config: config.configFile,
      lsn: w.lastCommittedLsn,
      replayed: w.replay,
      saveRules: s.saveRules,
    },
    `keel serve ready on ${s.bind}:${resp.port} (appendfsync ${s.appendfsync})`,
  );

  const running: RunningServer = {
    db,
    logger,
    persistence,
    metrics,
    resp,
    http,
    shutdown,
    done,
    get shuttingDown() {
      return shuttingDown;
    },
  };
  return running;
}
