/**
 * DumpSink: the dump's output side. It gathers small pieces into chunks of about 64 KiB, keeps
 * the running CRC-32 and byte count of everything handed to the stream, and writes with
 * backpressure: when `out.write` returns false, `flush` waits for 'drain' (or fails on 'error',
 * 'close' or an abort) before going on.
 *
 * Invariants:
 * - A buffer handed to `out.write` is never written to again (the stream may hold it): every
 *   flush starts a new chunk.
 * - `crc` and `bytes` cover exactly the bytes handed to the stream, in order.
 * - An 'error' listener is attached for the sink's lifetime, and stays after it on a destroyed or
 *   failed stream, so a failing stream makes the dump fail with IO (or FULL) instead of crashing
 *   the process with an unhandled 'error' event.
 */
import { KeelError, codeOfErrno } from "../errors.js";
import { crc32 } from "../util/crc32.js";

export class DumpSink {
  static readonly CHUNK = 64 * 1024;
  #out: NodeJS.WritableStream;
  #signal: AbortSignal | undefined;
  #chunk: Buffer | null = null;
  #pos = 0;
  #ready: Buffer[] = [];
  #readyBytes = 0;
  #error: KeelError | null = null;
  #onError = (e: unknown) => {
    this.#error ??= streamError(e);
  };
  /** CRC-32 and count of the bytes handed to the stream. */
  crc = 0;
  bytes = 0;
  /** Set whenever a flush waited for the stream (the event loop ran): the caller re-checks state. */
  yielded = false;

  constructor(out: NodeJS.WritableStream, signal: AbortSignal | undefined) {
    this.#out = out;
    this.#signal = signal;
    out.on("error", this.#onError);
  }

  /**
   * Stop listening, unless the stream is destroyed or failed: Node emits the 'error' of a
   * destroy(err) on a later tick, and with no listener left it would crash the process.
   */
  detach(): void {
    if ((this.#out as { destroyed?: boolean }).destroyed || this.#error !== null) return;
    this.#out.removeListener("error", this.#onError);
  }

  /** Bytes gathered and not yet handed to the stream. */
  get pending(): number {
    return this.#readyBytes + this.#pos;
  }

  #rotate(): void {
    if (this.#chunk && this.#pos > 0) {
      this.#ready.push(this.#chunk.subarray(0, this.#pos));
      this.#readyBytes += this.#pos;
    }
    this.#chunk = null;
    this.#pos = 0;
  }

  /** Room for `n` bytes, written by the caller at buf[at..at+n). */
  reserve(n: number): { buf: Buffer; at: number } {
    if (!this.#chunk || this.#chunk.length - this.#pos < n) {
      this.#rotate();
      this.#chunk = Buffer.allocUnsafe(Math.max(DumpSink.CHUNK, n));
    }
    const at = this.#pos;
    this.#pos += n;
    return { buf: this.#chunk, at };
  }

  bytesOf(b: Uint8Array): void {
    if (b.length === 0) return;
    const r = this.reserve(b.length);
    r.buf.set(b, r.at);
  }

  u32(n: number): void {
    const r = this.reserve(4);
    r.buf.writeUInt32LE(n >>> 0, r.at);
  }

  /** A buffer nobody will change: handed to the stream as it is, after what is gathered. */
  direct(b: Buffer): void {
    this.#rotate();
    if (b.length) {
      this.#ready.push(b);
      this.#readyBytes += b.length;
    }
  }

  /** UTF-8 text. */
  text(s: string): void {
    if (s.length > DumpSink.CHUNK / 4) {
      this.direct(Buffer.from(s, "utf8"));
      return;
    }
    // At most 3 bytes per UTF-16 unit.
    if (!this.#chunk || this.#chunk.length - this.#pos < s.length * 3) {
      this.#rotate();
      this.#chunk = Buffer.allocUnsafe(DumpSink.CHUNK);
    }
    this.#pos += this.#chunk.write(s, this.#pos, "utf8");
  }

  /** Hand everything gathered to the stream, waiting for 'drain' whenever it asks to. */
  async flush(): Promise<void> {
    this.#rotate();
    const ready = this.#ready;
    this.#ready = [];
    this.#readyBytes = 0;
    for (const b of ready) {
      this.#check();
      this.crc = crc32(b, this.crc);
      this.bytes += b.length;
      if (!this.#out.write(b)) await this.#drain();
    }
    this.#check();
  }

  #check(): void {
    if (this.#error) throw this.#error;
    if (this.#signal?.aborted) throw new KeelError("ABORTED", "the dump was aborted", { reason: String(this.#signal.reason ?? "") });
  }

  #drain(): Promise<void> {
    this.yielded = true;
    const out = this.#out;
    const signal = this.#signal;
    // A destroyed stream emits neither 'drain' nor (again) 'close': do not wait for it. The error
    // it was destroyed with (`errored`, set at once; its 'error' event comes a tick later) is the
    // one to report, with its errno.
    if ((out as { destroyed?: boolean }).destroyed) {
      const errored = (out as { errored?: unknown }).errored;
      this.#error ??= errored
        ? streamError(errored)
        : new KeelError("IO", "the output stream was destroyed before the dump was complete", { op: "write" });
    }
    this.#check();
    return new Promise<void>((resolve, reject) => {
      const done = (err?: KeelError) => {
        out.removeListener("drain", onDrain);
        out.removeListener("error", onError);
        out.removeListener("close", onClose);
        signal?.removeEventListener("abort", onAbort);
        if (err) reject(err);
        else resolve();
      };
      const onDrain = () => done();
      const onError = (e: unknown) => done((this.#error ??= streamError(e)));
      const onClose = () => done((this.#error ??= new KeelError("IO", "the output stream closed before the dump was complete", { op: "write" })));
      const onAbort = () => done(new KeelError("ABORTED", "the dump was aborted", { reason: String(signal?.reason ?? "") }));
      out.on("drain", onDrain);
      out.on("error", onError);
      out.on("close", onClose);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }
}

function streamError(e: unknown): KeelError {
  if (e instanceof KeelError) return e;
  const err = e as NodeJS.ErrnoException;
  const errno = typeof err?.code === "string" ? err.code : "UNKNOWN";
  return new KeelError(codeOfErrno(errno), `writing the dump failed: ${err?.message ?? String(e)}`, { op: "write", errno }, { cause: e });
}
