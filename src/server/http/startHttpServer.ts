/**
 * startHttpServer: the operations HTTP listener of `keel serve` (node:http, its own port):
 *   GET /health   200 {"status":"ok",...} or 503 {"status":"fail","reasons":[...]} (healthCheck.ts)
 *   GET /metrics  Prometheus text format (ServerMetrics)
 *   GET /stats    JSON: db.getStats(), db.txlogWatermarks(), RESP server stats, persistence INFO
 * Anything else is 404; a method other than GET/HEAD is 405.
 *
 * Invariants: no route writes to the database; a handler error is a 500 with a JSON body, never
 * a crash of the process; close() stops accepting and at once ends the connections with no request
 * in progress (idle keep-alive ones, and ones that never sent a byte), and those with one after its
 * answer or a grace of closeGraceMs (a request still arriving too); at most HTTP_MAX_CONNECTIONS connections are open
 * at once, and none stays silent past HTTP_IDLE_MS.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Logger } from "pino";
import type { Database } from "../../db/Database.js";
import type { HealthSettings } from "../config/ServeConfig.js";
import type { ServerMetrics } from "../metrics/ServerMetrics.js";
import type { Persistence, RespServerStats } from "../ServerContext.js";
import { healthCheck } from "./healthCheck.js";
import { HTTP_MAX_CONNECTIONS } from "../../util/clientsForFdLimit.js";

/** A connection of the HTTP port with no traffic for this long is closed. */
export const HTTP_IDLE_MS = 30_000;

export interface HttpServerOptions {
  readonly db: Database;
  readonly dir: string;
  readonly bind: string;
  readonly port: number;
  readonly health: HealthSettings;
  readonly metrics: ServerMetrics;
  /** Idle connection timeout (default HTTP_IDLE_MS; tests shorten it). */
  readonly idleMs?: number;
  /** How long close() lets a request in progress finish before its connection is cut (default 1000). */
  readonly closeGraceMs?: number;
  readonly persistence: Persistence;
  readonly respStats: () => RespServerStats | null;
  readonly shuttingDown: () => boolean;
  readonly logger: Logger;
}

export interface HttpServer {
  readonly port: number;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, body: string, type: string): void {
  res.writeHead(status, { "content-type": type, "cache-control": "no-store", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

function json(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, `${JSON.stringify(value, (_k, v) => (v instanceof Error ? { code: (v as { code?: string }).code, message: v.message } : v), 2)}\n`, "application/json; charset=utf-8");
}

export async function startHttpServer(o: HttpServerOptions): Promise<HttpServer> {
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      return json(res, 405, { error: "method not allowed" });
    }
    switch (path) {
      case "/health": {
        const h = healthCheck(o.db, o.dir, o.health, o.shuttingDown(), o.persistence.lastWriteError());
        return json(res, h.status === "ok" ? 200 : 503, h);
      }
      case "/metrics": {
        const text = await o.metrics.text();
        return send(res, 200, text, o.metrics.contentType);
      }
      case "/stats": {
        let stats: unknown = null;
        let watermarks: unknown = null;
        try {
          stats = o.db.getStats();
          watermarks = o.db.txlogWatermarks();
        } catch (e) {
          return json(res, 503, { error: (e as Error)?.message ?? String(e) });
        }
        return json(res, 200, { stats, watermarks, server: o.respStats(), persistence: Object.fromEntries(o.persistence.info()), memory: process.memoryUsage(), uptimeSec: Math.round(process.uptime()) });
      }
      default:
        return json(res, 404, { error: "not found", routes: ["/health", "/metrics", "/stats"] });
    }
  };
  // Requests in progress per connection: close() ends the connections without one at once.
  // (Node's closeIdleConnections skips a connection that never sent a request, so a silent client
  // would hold a shutdown for the whole grace.)
  const inProgress = new Map<Socket, number>();
  let closing = false;
  const server: Server = createServer((req, res) => {
    const socket = req.socket;
    inProgress.set(socket, (inProgress.get(socket) ?? 0) + 1);
    res.once("close", () => {
      const n = inProgress.get(socket);
      if (n === undefined) return; // the connection is gone
      inProgress.set(socket, n - 1);
      // end, not destroy: the answer may still be in the socket's buffer.
      if (n === 1 && closing) socket.end();
    });
    handle(req, res).catch((e: unknown) => {
      o.logger.error({ event: "http-error", url: req.url, err: { message: (e as Error)?.message } }, "HTTP handler failed");
      if (!res.headersSent) json(res, 500, { error: (e as Error)?.message ?? String(e) });
      else res.destroy();
    });
  });
  server.on("connection", (socket: Socket) => {
    inProgress.set(socket, 0);
    socket.once("close", () => inProgress.delete(socket));
  });
  server.keepAliveTimeout = 5000;
  // Bounded, so the port cannot take the descriptors the database needs (they are counted in the
  // reserve that maxclients leaves: clientsForFdLimit.ts): connections past the limit are closed
  // at accept, and one silent for HTTP_IDLE_MS (never sending a request, or stalled) is closed.
  server.maxConnections = HTTP_MAX_CONNECTIONS;
  server.timeout = o.idleMs ?? HTTP_IDLE_MS;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, o.bind, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        closing = true;
        // Also ends keep-alive connections that are idle between requests (closeIdleConnections).
        server.close(() => resolve());
        // A connection that never sent a byte is ended, after one turn of the event loop: a request
        // already in the socket's buffer is read (and counted) by then.
        setImmediate(() => {
          for (const [socket, n] of inProgress) if (n === 0 && socket.bytesRead === 0) socket.destroy();
        });
        setTimeout(() => server.closeAllConnections(), o.closeGraceMs ?? 1000).unref();
      }),
  };
}
