/**
 * loadConfig: read the TOML file (if any) and resolve it with the flags; openOptionsFor: the
 * open() options a ServeConfig asks for.
 *
 * Invariants: a missing or unreadable file is an error naming it (NOT_FOUND / IO), never "run
 * with defaults"; appendfsync maps to exactly one durability profile:
 *   always   -> wal: true, durability "strict"   (the reply waits for the log's fdatasync)
 *   everysec -> wal: true, durability "relaxed", groupCommitMs 1000, groupCommit 10000 (at most
 *               ~1 s, and at most 10,000 records, lost at power loss; nothing at a process crash)
 *   no       -> wal: true, durability "none"     (the OS decides when the log reaches the disk)
 */
import { readFileSync } from "node:fs";
import { KeelError, ioError } from "../../errors.js";
import type { OpenOptions } from "../../db/options.js";
import type { AppendFsync } from "../ServerContext.js";
import { resolveConfig, type ConfigFlags } from "./resolveConfig.js";
import type { ServeConfig } from "./ServeConfig.js";

export function loadConfig(file: string | null, flags: ConfigFlags = {}): ServeConfig {
  let text: string | null = null;
  if (file !== null) {
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new KeelError("NOT_FOUND", `configuration file ${file} does not exist`, { file, path: file });
      throw ioError(e, "read", file);
    }
  }
  return resolveConfig(text, file, flags);
}

export function durabilityFor(appendfsync: AppendFsync): Pick<OpenOptions, "wal" | "durability" | "groupCommitMs" | "groupCommit"> {
  switch (appendfsync) {
    case "always":
      return { wal: true, durability: "strict" };
    case "everysec":
      return { wal: true, durability: "relaxed", groupCommitMs: 1000, groupCommit: 10_000 };
    case "no":
      return { wal: true, durability: "none" };
  }
}

export function openOptionsFor(config: ServeConfig): OpenOptions {
  return { ...config.engine, ...durabilityFor(config.server.appendfsync) };
}
