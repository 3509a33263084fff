/**
 * CommandContext: what a command handler may see besides its arguments: the calling client's state
 * and a handle on the server. Handlers mutate only `client` (SELECT, AUTH, HELLO, CLIENT SETNAME).
 */
import type { Keyspace } from "../keyspace/Keyspace.js";
import type { RespServerOptions, RespServerStats } from "../ServerContext.js";
import type { Command } from "./Command.js";
import type { ScanCursors } from "./ScanCursors.js";

export interface ClientState {
  readonly id: number;
  name: string | null;
  db: number;
  proto: 2 | 3;
  authenticated: boolean;
  readonly addr: string;
  readonly laddr: string;
  readonly createdAt: number;
  lastCommandAt: number;
  lastCommand: string;
  /** Inside MULTI (for CLIENT LIST flags). */
  inMulti: boolean;
  watching: number;
}

export interface ServerHandle {
  readonly keyspace: Keyspace;
  readonly options: RespServerOptions;
  readonly startedAt: number;
  readonly commands: ReadonlyMap<string, Command>;
  readonly scanCursors: ScanCursors;
  readonly port: number;
  stats(): RespServerStats;
  clients(): Iterable<ClientState>;
  /** Counters for INFO stats. */
  readonly counters: { expiredKeys(): number; keyspaceHits: number; keyspaceMisses: number };
  /** CONFIG RESETSTAT: zero every counter of INFO stats (connections, commands, hits, expiries...). */
  resetStats(): void;
}

export interface CommandContext {
  readonly client: ClientState;
  readonly server: ServerHandle;
}
