/**
 * info: the text of INFO. Sections: server, clients, memory, persistence (from the operations side's
 * Persistence.info()), stats, replication, keyspace, plus any section the operations side supplies
 * in options.infoSections (which replaces a built-in one of the same name, e.g. "memory").
 */
import { arch, platform, release } from "node:os";
import type { CommandContext } from "./CommandContext.js";
import { SERVER_VERSION_INFO } from "./version.js";

type Pairs = Array<[string, string | number]>;

function human(n: number): string {
  const units = ["B", "K", "M", "G", "T"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 2)}${units[i]}`;
}

export function infoSections(ctx: CommandContext): Array<[string, () => Pairs]> {
  const s = ctx.server;
  const o = s.options;
  const builtIn: Array<[string, () => Pairs]> = [
    [
      "server",
      () => {
        const up = Math.floor((Date.now() - s.startedAt) / 1000);
        return [
          ["redis_version", SERVER_VERSION_INFO],
          ["keeldb_version", "0.1.0"],
          ["redis_mode", "standalone"],
          ["os", `${platform()} ${release()} ${arch()}`],
          ["arch_bits", 64],
          ["process_id", process.pid],
          ["tcp_port", s.port],
          ["server_time_usec", Date.now() * 1000],
          ["uptime_in_seconds", up],
          ["uptime_in_days", Math.floor(up / 86400)],
          ["executable", process.argv[1] ?? ""],
        ];
      },
    ],
    [
      "clients",
      () => [
        ["connected_clients", s.stats().connectedClients],
        ["maxclients", o.config.maxclients],
        ["blocked_clients", 0],
      ],
    ],
    [
      "memory",
      () => {
        const m = process.memoryUsage();
        return [
          ["used_memory", m.heapUsed + m.external],
          ["used_memory_human", human(m.heapUsed + m.external)],
          ["used_memory_rss", m.rss],
          ["used_memory_rss_human", human(m.rss)],
          ["maxmemory", 0],
          ["maxmemory_policy", "noeviction"],
        ];
      },
    ],
    ["persistence", () => o.persistence.info()],
    [
      "stats",
      () => {
        const st = s.stats();
        return [
          ["total_connections_received", st.totalConnectionsReceived],
          ["total_commands_processed", st.totalCommandsProcessed],
          ["rejected_connections", st.rejectedConnections],
          ["expired_keys", s.counters.expiredKeys()],
          ["keyspace_hits", s.counters.keyspaceHits],
          ["keyspace_misses", s.counters.keyspaceMisses],
          ["total_protocol_errors", st.protocolErrors],
        ];
      },
    ],
    [
      "replication",
      () => [
        ["role", "master"],
        ["connected_slaves", 0],
      ],
    ],
    ["keyspace", () => s.keyspace.stats().map((d) => [`db${d.db}`, `keys=${d.keys},expires=${d.expires},avg_ttl=0`] as [string, string])],
  ];
  const extra = o.infoSections ?? {};
  const out = builtIn.map(([name, fn]) => [name, extra[name] ?? fn] as [string, () => Pairs]);
  for (const [name, fn] of Object.entries(extra)) if (!builtIn.some(([n]) => n === name)) out.push([name, fn]);
  return out;
}

export function infoText(ctx: CommandContext, wanted: string[]): string {
  const all = wanted.length === 0 || wanted.some((w) => w === "all" || w === "everything" || w === "default");
  const parts: string[] = [];
  for (const [name, fn] of infoSections(ctx)) {
    if (!all && !wanted.includes(name)) continue;
    const lines = [`# ${name[0]!.toUpperCase()}${name.slice(1)}`];
    for (const [k, v] of fn()) lines.push(`${k}:${v}`);
    parts.push(lines.join("\r\n"));
  }
  return parts.length === 0 ? "" : parts.join("\r\n\r\n") + "\r\n";
}
