/**
 * rawClient: a bare TCP client for the server tests: send exact bytes, read what comes back, see
 * whether the server closed the connection. No RESP library in between.
 */
import { connect, type Socket } from "node:net";

export interface Raw {
  readonly socket: Socket;
  send(data: string | Buffer): void;
  /** Resolves with everything received once `pred` holds for it, or on close, or after `ms`. */
  until(pred: (s: string) => boolean, ms?: number): Promise<string>;
  readonly closed: boolean;
  received(): string;
  close(): void;
}

export function rawConnect(port: number): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let buf = Buffer.alloc(0);
    let closed = false;
    const waiters = new Set<() => void>();
    const poke = () => {
      for (const w of [...waiters]) w();
    };
    socket.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      poke();
    });
    socket.on("close", () => {
      closed = true;
      poke();
    });
    socket.on("error", () => undefined);
    socket.once("connect", () =>
      resolve({
        socket,
        send: (d) => void socket.write(d),
        get closed() {
          return closed;
        },
        received: () => buf.toString("latin1"),
        until(pred, ms = 5000) {
          return new Promise((res) => {
            const check = () => {
              const s = buf.toString("latin1");
              if (pred(s) || closed) {
                waiters.delete(check);
                clearTimeout(timer);
                res(s);
              }
            };
            const timer = setTimeout(() => {
              waiters.delete(check);
              res(buf.toString("latin1"));
            }, ms);
            waiters.add(check);
            check();
          });
        },
        close: () => socket.destroy(),
      }),
    );
    socket.once("error", reject);
  });
}
