/**
 * RespWriter: encodes Replies as RESP2 or RESP3 into a list of buffers, written to the socket as one
 * batch (cork/uncork: one writev for all the replies produced by one read).
 *
 * Invariants: replies are encoded in the order they are added; RESP2 never receives a RESP3-only type
 * (maps become flat arrays, sets arrays, booleans integers, null the null bulk or null array).
 */
import type { Reply } from "./Reply.js";

const CRLF = "\r\n";
/** Replies smaller than this are gathered into one string before conversion to bytes. */
const SMALL = 16 * 1024;

export class RespWriter {
  #parts: Array<Buffer | string> = [];
  #bytes = 0;

  constructor(public proto: 2 | 3 = 2) {}

  get pendingBytes(): number {
    return this.#bytes;
  }

  add(r: Reply): void {
    this.#encode(r);
  }

  /** Write everything gathered so far to `sink` as one batch and forget it. */
  flush(sink: { cork(): void; uncork(): void; write(b: Buffer | string, enc?: BufferEncoding): boolean }): void {
    if (this.#parts.length === 0) return;
    const parts = this.#parts;
    this.#parts = [];
    this.#bytes = 0;
    sink.cork();
    let text = "";
    for (const p of parts) {
      if (typeof p === "string") {
        text += p;
        if (text.length >= SMALL) {
          sink.write(text, "latin1");
          text = "";
        }
      } else {
        if (text) sink.write(text, "latin1");
        text = "";
        sink.write(p);
      }
    }
    if (text) sink.write(text, "latin1");
    sink.uncork();
  }

  /** Everything gathered, as one Buffer (tests). */
  take(): Buffer {
    const out = Buffer.concat(this.#parts.map((p) => (typeof p === "string" ? Buffer.from(p, "latin1") : p)));
    this.#parts = [];
    this.#bytes = 0;
    return out;
  }

  #str(s: string): void {
    this.#parts.push(s);
    this.#bytes += s.length;
  }

  #bulk(b: Buffer): void {
    // Bytes go as latin1 text when small (cheap to join), as the Buffer itself when large.
    if (b.length <= 256) this.#str(`$${b.length}${CRLF}${b.toString("latin1")}${CRLF}`);
    else {
      this.#str(`$${b.length}${CRLF}`);
      this.#parts.push(b);
      this.#bytes += b.length;
      this.#str(CRLF);
    }
  }

  #encode(r: Reply): void {
    const v3 = this.proto === 3;
    switch (r.t) {
      case "simple":
        return this.#str(`+${r.s}${CRLF}`);
      case "err":
        return this.#str(`-${r.s}${CRLF}`);
      case "int":
        return this.#str(`:${r.n}${CRLF}`);
      case "bulk":
        return this.#bulk(r.b);
      case "bulkLatin1":
        return this.#str(`$${r.s.length}${CRLF}${r.s}${CRLF}`);
      case "null":
        return this.#str(v3 ? `_${CRLF}` : `$-1${CRLF}`);
      case "nullarr":
        return this.#str(v3 ? `_${CRLF}` : `*-1${CRLF}`);
      case "bool":
        return this.#str(v3 ? `#${r.v ? "t" : "f"}${CRLF}` : `:${r.v ? 1 : 0}${CRLF}`);
      case "verbatim":
        if (v3) {
          const b = Buffer.from(r.s);
          this.#str(`=${b.length + 4}${CRLF}txt:`);
          this.#parts.push(b);
          this.#bytes += b.length;
          return this.#str(CRLF);
        }
        return this.#bulk(Buffer.from(r.s));
      case "arr":
      case "set":
        this.#str(`${v3 && r.t === "set" ? "~" : "*"}${r.items.length}${CRLF}`);
        for (const it of r.items) this.#encode(it);
        return;
      case "map":
        this.#str(v3 ? `%${r.entries.length}${CRLF}` : `*${r.entries.length * 2}${CRLF}`);
        for (const [k, v] of r.entries) {
          this.#encode(k);
          this.#encode(v);
        }
        return;
    }
  }
}
