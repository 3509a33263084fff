/**
 * respServer: a real RESP server on a real database in a temp dir, on port 0, for the server tests.
 * Persistence is the real KeelPersistence of the operations side (snapshots and backups for real).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { open, type Database, type OpenOptions } from "../../src/index.js";
import { startRespServer } from "../../src/server/RespServer.js";
import { KeelPersistence } from "../../src/server/persistence/KeelPersistence.js";
import type { RespServer, ServerConfig, ShutdownMode } from "../../src/server/ServerContext.js";

export function testConfig(dir: string, over: Partial<ServerConfig> = {}): ServerConfig {
  return {
    dir,
    bind: "127.0.0.1",
    port: 0,
    requirepass: null,
    maxclients: 100,
    protoMaxBulkLen: 8 * 1024 * 1024,
    protoMaxMultibulkLen: 1024 * 1024,
    databases: 16,
    appendfsync: "always",
    saveRules: [{ seconds: 3600, changes: 1 }],
    autoAofRewritePercentage: 100,
    autoAofRewriteMinSize: 64 * 1024 * 1024,
    restoreFrom: null,
    httpBind: "127.0.0.1",
    httpPort: 0,
    logLevel: "silent",
    ...over,
  };
}

export interface TestServer {
  readonly dir: string;
  db: Database;
  server: RespServer;
  persistence: KeelPersistence;
  config: ServerConfig;
  readonly port: number;
  shutdowns: ShutdownMode[];
  /** Close server and database, open both again on the same directory (a new port). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestServer(over: Partial<ServerConfig> = {}, keepDir?: string, dbOptions: OpenOptions = {}): Promise<TestServer> {
  const dir = keepDir ?? mkdtempSync(join(tmpdir(), "keel-resp-"));
  const config = testConfig(join(dir, "db"), over);
  const shutdowns: ShutdownMode[] = [];
  const logger = pino({ level: "silent" });
  const boot = async () => {
    const db = await open(config.dir, { durability: "strict", ...dbOptions });
    const persistence = new KeelPersistence(db, config, logger);
    const server = await startRespServer({ db, config, persistence, logger, onShutdown: (m) => void shutdowns.push(m) });
    return { db, persistence, server };
  };
  const first = await boot();
  const ts: TestServer = {
    dir,
    config,
    shutdowns,
    ...first,
    get port() {
      return this.server.port;
    },
    async restart() {
      await this.server.close();
      this.persistence.stop();
      await this.persistence.drain();
      await this.db.close();
      Object.assign(this, await boot());
    },
    async stop() {
      await this.server.close();
      this.persistence.stop();
      await this.persistence.drain();
      await this.db.close();
      if (!keepDir) rmSync(dir, { recursive: true, force: true });
    },
  };
  return ts;
}
