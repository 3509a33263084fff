/**
 * RespServer: the RESP2/RESP3 listener (node:net) on config.bind:config.port, serving the keyspace
 * of a KeelDB database to Redis clients.
 *
 * Invariants:
 * - Every write is replied to only after its commit is as durable as the database's profile makes
 *   it (Connection); acknowledged writes are reported to persistence.noteChanges.
 * - maxclients is checked on accept: one client too many gets "-ERR max number of clients reached"
 *   and its socket is destroyed as soon as that is written (as Redis closes it at once): a refused
 *   peer that never closes its side must not keep a file descriptor. It counts as a rejected
 *   connection, not in total_connections_received (Redis counts only accepted clients there).
 * - CONFIG RESETSTAT (host.resetStats) zeroes every counter INFO stats shows; /metrics turns the
 *   drop into a restart of its counters (ServerMetrics), never into a decrease.
 * - close() stops accepting, lets every connection finish and reply to what it has already read,
 *   then closes the sockets and stops the expiry sweeper; it does not close the database (the
 *   operations side owns it).
 */
import { createServer, type Server, type Socket } from "node:net";
import type { ClientState } from "./commands/CommandContext.js";
import { ScanCursors } from "./commands/ScanCursors.js";
import { buildCommandTable } from "./CommandTable.js";
import { Connection, type ConnectionHost } from "./Connection.js";
import { Keyspace } from "./keyspace/Keyspace.js";
import type { RespServer, RespServerOptions, RespServerStats, ShutdownMode } from "./ServerContext.js";

export type { RespServer, RespServerOptions } from "./ServerContext.js";

export interface StartOptions {
  /** Active expiry sweep period in ms (default 100). */
  readonly sweepIntervalMs?: number;
}

export async function startRespServer(options: RespServerOptions, extra: StartOptions = {}): Promise<RespServer> {
  const keyspace = new Keyspace(options.db, options.config.databases);
  keyspace.onWriteError = (e) => options.persistence.noteWriteError(e);
  const conns = new Set<Connection>();
  let nextId = 1;
  let totalConnections = 0;
  let totalCommands = 0;
  let rejected = 0;
  let protocolErrors = 0;
  let statsEpoch = 0;
  let closing: Promise<void> | null = null;
  // Half-open: a client's FIN ends only its side; Connection ends ours once its replies are out.
  const net: Server = createServer({ allowHalfOpen: true });
  const stats = (): RespServerStats => ({
    connectedClients: conns.size,
    totalConnectionsReceived: totalConnections,
    totalCommandsProcessed: totalCommands,
    rejectedConnections: rejected,
    protocolErrors,
    statsEpoch,
    keyspace: keyspace.stats(),
  });

  const host: ConnectionHost = {
    keyspace,
    options,
    startedAt: Date.now(),
    commands: buildCommandTable(),
    scanCursors: new ScanCursors(),
    port: 0,
    inflightWrites: 0,
    stats,
    clients: function* (): Iterable<ClientState> {
      for (const c of conns) yield c.client;
    },
    counters: { expiredKeys: () => keyspace.expiredKeys, keyspaceHits: 0, keyspaceMisses: 0 },
    resetStats: () => {
      statsEpoch++;
      totalConnections = 0;
      totalCommands = 0;
      rejected = 0;
      protocolErrors = 0;
      keyspace.expiredKeys = 0;
      host.counters.keyspaceHits = 0;
      host.counters.keyspaceMisses = 0;
    },
    commandProcessed: () => void totalCommands++,
    protocolError: () => void protocolErrors++,
    shutdown: (mode: ShutdownMode) => options.onShutdown(mode),
  };

  net.on("connection", (socket: Socket) => {
    if (closing) {
      socket.destroy();
      return;
    }
    if (conns.size >= options.config.maxclients) {
      rejected++;
      socket.on("error", () => socket.destroy());
      // end() alone waits for the peer's FIN, which a peer need never send.
      socket.end("-ERR max number of clients reached\r\n", () => socket.destroy());
      return;
    }
    totalConnections++;
    const conn = new Connection(socket, host, nextId++);
    conns.add(conn);
    void conn.closed.then(() => conns.delete(conn));
  });

  await new Promise<void>((resolve, reject) => {
    net.once("error", reject);
    net.listen(options.config.port, options.config.bind, () => {
      net.off("error", reject);
      resolve();
    });
  });
  net.on("error", (e) => options.logger.error({ err: e }, "RESP listener error"));
  const addr = net.address();
  const port = typeof addr === "object" && addr !== null ? addr.port : options.config.port;
  (host as { port: number }).port = port;
  keyspace.startSweeper(extra.sweepIntervalMs ?? 100);
  options.logger.info({ bind: options.config.bind, port }, "RESP server listening");

  return {
    port,
    stats,
    close(): Promise<void> {
      closing ??= (async () => {
        const stopped = new Promise<void>((r) => net.close(() => r()));
        await Promise.all([...conns].map((c) => c.shutdown()));
        await stopped;
        await keyspace.stopSweeper();
      })();
      return closing;
    },
  };
}
