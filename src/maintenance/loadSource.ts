/**
 * LoadSource: the load's input side. It pulls chunks from the stream only when the parser needs
 * more bytes (so a slow consumer applies backpressure and memory stays bounded by what one entry
 * and one batch need), and keeps the byte offset and the running CRC-32 of everything consumed.
 *
 * Invariants:
 * - `offset` and `crc` cover exactly the bytes consumed so far, in order.
 * - No read allocates more than the bytes actually received: a damaged length field that claims
 *   gigabytes makes the read run into the end of the input (a short result), never a huge
 *   allocation up front.
 */
import { ioError, KeelError } from "../errors.js";
import { crc32 } from "../util/crc32.js";

const EMPTY = Buffer.alloc(0);

export class LoadSource {
  #it: AsyncIterator<unknown>;
  #signal: AbortSignal | undefined;
  #cur: Buffer = EMPTY;
  #pos = 0;
  #eof = false;
  /** A read of the input has not answered yet. */
  #pending = false;
  /** Bytes consumed, and their CRC-32. */
  offset = 0;
  crc = 0;

  constructor(input: NodeJS.ReadableStream | AsyncIterable<unknown>, signal: AbortSignal | undefined) {
    const iterable = input as AsyncIterable<unknown>;
    if (!iterable || typeof iterable[Symbol.asyncIterator] !== "function") {
      throw new KeelError("INVALID_ARGUMENT", "input must be a readable stream (or an async iterable of Buffers)", { argument: "input" });
    }
    this.#it = iterable[Symbol.asyncIterator]();
    this.#signal = signal;
  }

  /**
   * Stop reading: the stream's iterator is returned (a node Readable is destroyed). Not awaited
   * while a read the abort cut short is still pending: an async iterator's return() waits behind
   * its pending next(), which a silent producer may never answer.
   */
  async close(): Promise<void> {
    try {
      const done = this.#it.return?.();
      if (this.#pending) void Promise.resolve(done).catch(() => {});
      else await done;
    } catch {
      // the load's own error is the one to report
    }
  }

  checkAborted(): void {
    if (this.#signal?.aborted) throw this.#abortedError();
  }

  #abortedError(): KeelError {
    return new KeelError("ABORTED", "the load was aborted", { reason: String(this.#signal?.reason ?? "") });
  }

  /**
   * The input's next chunk, or ABORTED as soon as the signal fires: a producer that sends nothing
   * for a while (`slow | keel load`) must not keep an interrupted load waiting for its next byte.
   */
  #read(): Promise<IteratorResult<unknown>> {
    const signal = this.#signal;
    const next = this.#it.next();
    if (!signal) return next;
    this.#pending = true;
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(this.#abortedError());
      signal.addEventListener("abort", onAbort, { once: true });
      const settled = () => {
        this.#pending = false;
        signal.removeEventListener("abort", onAbort);
      };
      next.then(
        (r) => {
          settled();
          resolve(r);
        },
        (e: unknown) => {
          settled();
          reject(e);
        },
      );
    });
  }

  /** The next non-empty chunk, or null at the end of the input. */
  async #next(): Promise<Buffer | null> {
    while (!this.#eof) {
      this.checkAborted();
      let r: IteratorResult<unknown>;
      try {
        r = await this.#read();
      } catch (e) {
        // The stream's own error (EIO of a file, a destroyed socket): coded like any I/O error.
        throw e instanceof KeelError ? e : ioError(e, "read", "the load's input stream");
      }
      this.checkAborted();
      if (r.done) {
        this.#eof = true;
        return null;
      }
      const v = r.value;
      const b = Buffer.isBuffer(v)
        ? v
        : typeof v === "string"
          ? Buffer.from(v, "utf8")
          : v instanceof Uint8Array
            ? Buffer.from(v.buffer, v.byteOffset, v.byteLength)
            : null;
      if (!b) throw new KeelError("INVALID_ARGUMENT", "the input stream yielded something other than bytes", { argument: "input" });
      if (b.length) return b;
    }
    return null;
  }

  #consumed(b: Buffer): void {
    this.crc = crc32(b, this.crc);
    this.offset += b.length;
  }

  /** Up to `n` (small) bytes ahead, not consumed: fewer only at the end of the input. */
  async peek(n: number): Promise<Buffer> {
    while (this.#cur.length - this.#pos < n) {
      const c = await this.#next();
      if (!c) break;
      this.#cur = Buffer.concat([this.#cur.subarray(this.#pos), c]);
      this.#pos = 0;
    }
    return this.#cur.subarray(this.#pos, Math.min(this.#cur.length, this.#pos + n));
  }

  /** Whether the input has no byte left. */
  async atEnd(): Promise<boolean> {
    return (await this.peek(1)).length === 0;
  }

  /** Consume `n` bytes: fewer only at the end of the input. */
  async take(n: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let need = n;
    let got = 0;
    while (need > 0) {
      if (this.#pos >= this.#cur.length) {
        const c = await this.#next();
        if (!c) break;
        this.#cur = c;
        this.#pos = 0;
      }
      const k = Math.min(need, this.#cur.length - this.#pos);
      const part = this.#cur.subarray(this.#pos, this.#pos + k);
      this.#pos += k;
      this.#consumed(part);
      parts.push(part);
      need -= k;
      got += k;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, got);
  }

  /**
   * Consume and drop `n` bytes (they still count in `crc`). Returns how many there were and
   * their CRC-32 continued from `crc` (to check a record without keeping it in memory).
   */
  async skip(n: number, crc = 0): Promise<{ count: number; crc: number }> {
    let need = n;
    while (need > 0) {
      if (this.#pos >= this.#cur.length) {
        const c = await this.#next();
        if (!c) break;
        this.#cur = c;
        this.#pos = 0;
      }
      const k = Math.min(need, this.#cur.length - this.#pos);
      const part = this.#cur.subarray(this.#pos, this.#pos + k);
      this.#consumed(part);
      crc = crc32(part, crc);
      this.#pos += k;
      need -= k;
    }
    return { count: n - need, crc };
  }

  /**
   * Consume one line and its "\n". `bytes` excludes the "\n"; `terminated` is false when the
   * input ended first. null at the end of the input. A line longer than `max` bytes is not
   * gathered: `tooLong` is set and the rest of it is left unread.
   */
  async readLine(max: number): Promise<{ bytes: Buffer; terminated: boolean; tooLong: boolean } | null> {
    const parts: Buffer[] = [];
    let len = 0;
    for (;;) {
      if (this.#pos >= this.#cur.length) {
        const c = await this.#next();
        if (!c) {
          if (parts.length === 0) return null;
          return { bytes: Buffer.concat(parts, len), terminated: false, tooLong: false };
        }
        this.#cur = c;
        this.#pos = 0;
      }
      const nl = this.#cur.indexOf(10, this.#pos);
      const end = nl < 0 ? this.#cur.length : nl;
      if (len + (end - this.#pos) > max) return { bytes: EMPTY, terminated: false, tooLong: true };
      const part = this.#cur.subarray(this.#pos, end);
      parts.push(part);
      len += part.length;
      if (nl >= 0) {
        this.#consumed(this.#cur.subarray(this.#pos, nl + 1));
        this.#pos = nl + 1;
        return { bytes: parts.length === 1 ? parts[0]! : Buffer.concat(parts, len), terminated: true, tooLong: false };
      }
      this.#consumed(part);
      this.#pos = this.#cur.length;
    }
  }
}
