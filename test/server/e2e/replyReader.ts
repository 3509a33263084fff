/**
 * replyReader: one request, one raw reply, over a bare socket: the reply's exact bytes (as latin1
 * text) are what the comparison and fuzz tests compare. Knows RESP2 and RESP3 reply framing.
 */
import { connect, type Socket } from "node:net";

/** End offset of the reply starting at `pos`, or -1 if incomplete. */
export function replyEnd(buf: Buffer, pos: number): number {
  if (pos >= buf.length) return -1;
  const cr = buf.indexOf("\r\n", pos);
  if (cr < 0) return -1;
  const type = String.fromCharCode(buf[pos]!);
  const line = buf.toString("latin1", pos + 1, cr);
  const next = cr + 2;
  switch (type) {
    case "+":
    case "-":
    case ":":
    case "_":
    case "#":
    case ",":
    case "(":
      return next;
    case "$":
    case "=":
    case "!": {
      const n = Number(line);
      if (n < 0) return next;
      return buf.length >= next + n + 2 ? next + n + 2 : -1;
    }
    case "*":
    case "~":
    case ">":
    case "%": {
      let n = Number(line);
      if (n < 0) return next;
      if (type === "%") n *= 2;
      let p = next;
      for (let i = 0; i < n; i++) {
        p = replyEnd(buf, p);
        if (p < 0) return -1;
      }
      return p;
    }
    default:
      throw new Error(`bad reply type ${JSON.stringify(type)} in ${JSON.stringify(buf.toString("latin1", pos, pos + 40))}`);
  }
}

export function encodeCommand(args: ReadonlyArray<string | Buffer>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === "string" ? Buffer.from(a) : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from("\r\n"));
  }
  return Buffer.concat(parts);
}

export class ReplyReader {
  #buf = Buffer.alloc(0);
  #wake: (() => void) | null = null;
  #closed = false;
  private constructor(readonly socket: Socket) {
    socket.on("data", (d) => {
      this.#buf = Buffer.concat([this.#buf, d]);
      this.#wake?.();
    });
    socket.on("close", () => {
      this.#closed = true;
      this.#wake?.();
    });
    socket.on("error", () => undefined);
  }

  static open(port: number): Promise<ReplyReader> {
    return new Promise((resolve, reject) => {
      const s = connect(port, "127.0.0.1", () => resolve(new ReplyReader(s)));
      s.once("error", reject);
    });
  }

  /** The next complete reply, or null if the connection closed first. */
  async next(timeoutMs = 5000): Promise<string | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = replyEnd(this.#buf, 0);
      if (end >= 0) {
        const r = this.#buf.toString("latin1", 0, end);
        this.#buf = this.#buf.subarray(end);
        return r;
      }
      if (this.#closed) return null;
      if (Date.now() > deadline) throw new Error(`no reply within ${timeoutMs} ms; have ${JSON.stringify(this.#buf.toString("latin1"))}`);
      await new Promise<void>((r) => {
        this.#wake = r;
        setTimeout(r, 50);
      });
      this.#wake = null;
    }
  }

  async call(...args: Array<string | Buffer>): Promise<string | null> {
    this.socket.write(encodeCommand(args));
    return this.next();
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    this.socket.destroy();
  }
}
