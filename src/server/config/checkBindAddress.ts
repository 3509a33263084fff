/**
 * checkBindAddress: whether `bind` / `http_bind` can be listened on, found out before the server
 * touches the data directory; listenError: what a failed listen() becomes.
 *
 * Invariants: a name that does not resolve or an address that is not local (ENOTFOUND,
 * EADDRNOTAVAIL...) is a bad configuration value: KeelError INVALID_ARGUMENT whose details name the
 * key (`bind`, `http_bind`) and the value, as every refused configuration value does (exit 2). A port
 * in use (EADDRINUSE) or refused (EACCES) is IO naming the port's key (exit 6). The probe listens on
 * port 0 of the address, so the configured port is never taken by it.
 */
import { createServer } from "node:net";
import { KeelError } from "../../errors.js";

export type HostKey = "bind" | "http_bind";
export type PortKey = "port" | "http_port";

/** errno values that mean "this host is not something this machine can listen on". */
const BAD_ADDRESS = new Set(["ENOTFOUND", "EAI_AGAIN", "EAI_FAIL", "EAI_NONAME", "EAI_NODATA", "EADDRNOTAVAIL", "EAFNOSUPPORT", "EINVAL"]);

export function listenError(e: unknown, host: string, port: number, keys: { host: HostKey; port: PortKey }): KeelError {
  if (e instanceof KeelError) return e;
  const errno = (e as NodeJS.ErrnoException)?.code ?? "UNKNOWN";
  const why = (e as Error)?.message ?? String(e);
  if (BAD_ADDRESS.has(errno)) {
    return new KeelError("INVALID_ARGUMENT", `${keys.host}: cannot listen on ${JSON.stringify(host)}: ${why} (it must be a local IP address or a host name that resolves to one)`, {
      key: keys.host,
      value: host,
      errno,
    });
  }
  return new KeelError("IO", `${keys.port}: cannot listen on ${host}:${port}: ${why}`, { key: keys.port, value: port, host, errno }, { cause: e });
}

/** Resolve `host` and bind port 0 on it once; see the invariants above. */
export async function checkBindAddress(host: string, key: HostKey): Promise<void> {
  const probe = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      probe.once("error", reject);
      probe.listen(0, host, () => resolve());
    });
  } catch (e) {
    throw listenError(e, host, 0, { host: key, port: key === "bind" ? "port" : "http_port" });
  } finally {
    await new Promise<void>((r) => probe.close(() => r()));
  }
}
