/**
 * RespParser: an incremental parser of client requests (RESP multibulk arrays of bulk strings, and
 * inline commands as telnet and redis-cli send them) over Buffers that arrive in arbitrary chunks.
 *
 * Invariants:
 * - A frame split at any byte position parses exactly as the whole frame does.
 * - Memory held per connection is bounded: a header or inline line longer than MAX_LINE, a bulk
 *   longer than `maxBulkLen`, an array longer than `maxMultibulkLen`, or one command whose
 *   arguments' bytes together exceed `maxBulkLen + MAX_LINE` (exactly the documented limit: the
 *   bytes a client sends, nothing else) is a ProtocolError before it is buffered. The per-argument
 *   cost (a Buffer view each) is bounded by `maxMultibulkLen`, as in Redis.
 * - A large bulk is gathered as a list of chunks and joined once (no quadratic re-copying).
 * - While `authPending` is set (the client has not authenticated), a "*<n>" above
 *   UNAUTH_MAX_MULTIBULK or a "$<n>" above UNAUTH_MAX_BULK stops parsing at that header, before
 *   anything of it is buffered (`stalled`): the parser reads ahead of the commands that run, so an
 *   AUTH pipelined just before it may not have run yet. The connection decides once every command
 *   before it has run: `resume()` (the client may send it) or `fail()` (it may not, as Redis 7
 *   refuses it).
 * - After a ProtocolError the parser is dead: the connection must answer it and close.
 * - Arguments are views into received chunks (no copy); callers must copy what they keep.
 */

export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

export interface ParserLimits {
  maxBulkLen: number;
  maxMultibulkLen: number;
}

/**
 * Redis 7's limits on a request from a client that must still authenticate (networking.c): what a
 * client that has not given the password can make the server buffer.
 */
export const UNAUTH_MAX_MULTIBULK = 10;
export const UNAUTH_MAX_BULK = 16384;
/** Redis refuses a multibulk count above this before anything else. */
const INT_MAX = 2 ** 31 - 1;

/** Longest header line ("*<n>", "$<n>") or inline command, as in Redis (PROTO_INLINE_MAX_SIZE). */
export const MAX_LINE = 64 * 1024;
const EMPTY = Buffer.alloc(0);
const CR = 13;
const LF = 10;

export class RespParser {
  #buf: Buffer = EMPTY;
  #pos = 0;
  /** Arguments still expected in the current multibulk, or -1 between commands. */
  #argsLeft = -1;
  #args: Buffer[] = [];
  #argBytes = 0;
  /** Length of the bulk being read, or -1 when a "$<n>" header comes next. */
  #bulkLen = -1;
  /** Chunks of a large bulk still arriving, and their total length. */
  #parts: Buffer[] | null = null;
  #partsLen = 0;
  #dead = false;
  /** Set by the connection while its client has not authenticated (see the invariants). */
  authPending = false;
  /** The error for the header parsing stopped at (authPending), or null. */
  #stalled: string | null = null;
  /** resume() was called: the header parsing stopped at is let through, once. */
  #authPassed = false;

  constructor(readonly limits: ParserLimits) {}

  /**
   * While parsing is stopped at a header beyond the unauthenticated limits: the protocol error that
   * applies if the client must still authenticate. Otherwise null.
   */
  get stalled(): string | null {
    return this.#stalled;
  }

  /** Bytes held by the parser (tests check that it stays bounded). */
  get bufferedBytes(): number {
    return this.#buf.length - this.#pos + this.#partsLen + this.#argBytes;
  }

  /**
   * Feed one chunk; returns the commands completed by it (each an array of arguments), in order.
   * Throws ProtocolError on malformed input; commands completed before the error are in `err.commands`.
   */
  feed(chunk: Buffer, out: Buffer[][] = []): Buffer[][] {
    if (this.#dead) throw new ProtocolError("parser closed after a protocol error");
    if (this.#parts) {
      this.#parts.push(chunk);
      this.#partsLen += chunk.length;
      if (this.#partsLen < this.#bulkLen + 2) return out;
      this.#buf = Buffer.concat(this.#parts, this.#partsLen);
      this.#pos = 0;
      this.#parts = null;
      this.#partsLen = 0;
    } else if (this.#pos < this.#buf.length) {
      this.#buf = Buffer.concat([this.#buf.subarray(this.#pos), chunk]);
      this.#pos = 0;
    } else {
      this.#buf = chunk;
      this.#pos = 0;
    }
    return this.#run(out);
  }

  /** Parsing stopped at a header beyond the unauthenticated limits: the client may send it; go on. */
  resume(out: Buffer[][] = []): Buffer[][] {
    if (this.#dead) throw new ProtocolError("parser closed after a protocol error");
    if (this.#stalled === null) return out;
    this.#stalled = null;
    this.#authPassed = true;
    return this.#run(out);
  }

  /** Parsing stopped at a header beyond the unauthenticated limits: the client may not send it. */
  fail(): ProtocolError {
    const e = new ProtocolError(this.#stalled ?? "parser closed");
    this.#kill();
    return e;
  }

  #run(out: Buffer[][]): Buffer[][] {
    try {
      this.#parse(out);
    } catch (e) {
      this.#kill();
      throw e;
    }
    if (this.#pos >= this.#buf.length) {
      this.#buf = EMPTY;
      this.#pos = 0;
    }
    return out;
  }

  #kill(): void {
    this.#dead = true;
    this.#stalled = null;
    this.#buf = EMPTY;
    this.#pos = 0;
    this.#parts = null;
    this.#partsLen = 0;
    this.#args = [];
    this.#argBytes = 0;
  }

  /**
   * A header beyond the unauthenticated limits, at `lineStart`: if the client has not authenticated,
   * stop before it (true), to be re-read once the connection has decided; let it through after resume().
   */
  #stopForAuth(lineStart: number, what: string): boolean {
    if (!this.authPending) return false;
    if (this.#authPassed) {
      this.#authPassed = false;
      return false;
    }
    this.#pos = lineStart;
    this.#stalled = `Protocol error: ${what}`;
    return true;
  }

  #parse(out: Buffer[][]): void {
    const buf = this.#buf;
    for (;;) {
      if (this.#argsLeft < 0) {
        if (this.#pos >= buf.length) return;
        if (buf[this.#pos] !== 0x2a /* '*' */) {
          if (!this.#inline(out)) return;
          continue;
        }
        const n = this.#line("too big mbulk count string");
        if (n === null) return;
        const count = parseLen(buf, n.start + 1, n.end);
        // INT_MAX and then the unauthenticated limit before our own, in Redis's order, for its wording.
        if (count === null || count > INT_MAX) throw new ProtocolError("Protocol error: invalid multibulk length");
        if (count > UNAUTH_MAX_MULTIBULK && this.#stopForAuth(n.start, "unauthenticated multibulk length")) return;
        if (count > this.limits.maxMultibulkLen) throw new ProtocolError("Protocol error: invalid multibulk length");
        if (count <= 0) continue; // "*0" and "*-1" are empty requests, skipped as Redis does
        this.#argsLeft = count;
        this.#args = [];
        this.#argBytes = 0;
      }
      while (this.#argsLeft > 0) {
        if (this.#bulkLen < 0) {
          if (this.#pos >= buf.length) return;
          const c = buf[this.#pos]!;
          if (c !== 0x24 /* '$' */) throw new ProtocolError(`Protocol error: expected '$', got '${printable(c)}'`);
          const n = this.#line("too big bulk count string");
          if (n === null) return;
          const len = parseLen(buf, n.start + 1, n.end);
          if (len === null || len < 0 || len > this.limits.maxBulkLen) throw new ProtocolError("Protocol error: invalid bulk length");
          if (len > UNAUTH_MAX_BULK && this.#stopForAuth(n.start, "unauthenticated bulk length")) return;
          if (this.#argBytes + len > this.limits.maxBulkLen + MAX_LINE) throw new ProtocolError("Protocol error: request too large");
          this.#bulkLen = len;
        }
        const need = this.#bulkLen + 2;
        const have = buf.length - this.#pos;
        if (have < need) {
          if (need > MAX_LINE) {
            // Gather the rest of a large bulk as chunks; feed() joins them once it is complete.
            this.#parts = [buf.subarray(this.#pos)];
            this.#partsLen = have;
            this.#buf = EMPTY;
            this.#pos = 0;
          }
          return;
        }
        const end = this.#pos + this.#bulkLen;
        if (buf[end] !== CR || buf[end + 1] !== LF) throw new ProtocolError("Protocol error: bulk string not terminated by CRLF");
        this.#args.push(buf.subarray(this.#pos, end));
        this.#argBytes += this.#bulkLen;
        this.#pos = end + 2;
        this.#bulkLen = -1;
        this.#argsLeft--;
      }
      out.push(this.#args);
      this.#args = [];
      this.#argBytes = 0;
      this.#argsLeft = -1;
    }
  }

  /** The next CRLF-terminated line from #pos: its [start, end) without CRLF, advancing past it. */
  #line(what: string): { start: number; end: number } | null {
    const buf = this.#buf;
    const cr = buf.indexOf(CR, this.#pos);
    if (cr < 0 || cr + 1 >= buf.length) {
      if (buf.length - this.#pos > MAX_LINE) throw new ProtocolError(`Protocol error: ${what}`);
      return null;
    }
    if (cr - this.#pos > MAX_LINE) throw new ProtocolError(`Protocol error: ${what}`);
    if (buf[cr + 1] !== LF) throw new ProtocolError("Protocol error: line not terminated by CRLF");
    const start = this.#pos;
    this.#pos = cr + 2;
    return { start, end: cr };
  }

  /** One inline command (a line split on blanks, with quotes); false if the line is incomplete. */
  #inline(out: Buffer[][]): boolean {
    const buf = this.#buf;
    const lf = buf.indexOf(LF, this.#pos);
    // The limit is on the line itself: its CR (and LF) may come on top.
    if (lf < 0) {
      const cr = buf[buf.length - 1] === CR ? 1 : 0;
      if (buf.length - cr - this.#pos > MAX_LINE) throw new ProtocolError("Protocol error: too big inline request");
      return false;
    }
    let end = lf;
    if (end > this.#pos && buf[end - 1] === CR) end--;
    if (end - this.#pos > MAX_LINE) throw new ProtocolError("Protocol error: too big inline request");
    const args = splitArgs(buf.subarray(this.#pos, end));
    this.#pos = lf + 1;
    if (args === null) throw new ProtocolError("Protocol error: unbalanced quotes in request");
    if (args.length > 0) out.push(args);
    return true;
  }
}

/**
 * The length in buf[start, end), read as Redis's string2ll reads it: an optional '-', then "0" alone
 * or a digit 1-9 followed by digits, within 64 bits. Anything else ("01", "-0", "+1", " 1", "") is
 * null, so "*01" and "$04" are protocol errors as in Redis, not silently read as 1 and 4. A value
 * beyond 17 digits is null too when positive (over every limit anyway: the same error); a negative
 * one is only ever "none" (an empty multibulk, an invalid bulk length), so its magnitude is -1.
 * On the hot path: one loop over the digits, no allocation.
 */
function parseLen(buf: Buffer, start: number, end: number): number | null {
  let i = start;
  const neg = buf[i] === 0x2d; /* '-' */
  if (neg) i++;
  const digits = end - i;
  if (digits <= 0) return null;
  let n = buf[i]! - 0x30;
  if (n < 1 || n > 9) return n === 0 && digits === 1 && !neg ? 0 : null;
  if (digits > 17) return neg && digits <= 19 && allDigits(buf, i, end) && (digits < 19 || buf.toString("latin1", i, end) <= "9223372036854775808") ? -1 : null;
  for (i++; i < end; i++) {
    const d = buf[i]! - 0x30;
    if (d < 0 || d > 9) return null;
    n = n * 10 + d;
  }
  return neg ? -n : n;
}

function allDigits(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buf[i]! < 0x30 || buf[i]! > 0x39) return false;
  return true;
}

/** The byte as Redis quotes it (%c, raw), except CR and LF, which would end the error line early. */
function printable(c: number): string {
  return c === 0x0d || c === 0x0a ? " " : String.fromCharCode(c);
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0b || c === 0x0c;
}

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/**
 * Split an inline line into arguments as Redis's sdssplitargs does: blanks separate, "double quotes"
 * allow \n \r \t \b \a \\ \" and \xHH escapes, 'single quotes' allow \'. A closing quote must be
 * followed by a blank or the end. null: unbalanced quotes. As there, any isspace() blank (\v and \f
 * too) is skipped between words and after a closing quote, but only space, \t, \r and \n end an
 * unquoted word: "ECHO\va" is one word.
 */
export function splitArgs(line: Buffer): Buffer[] | null {
  const out: Buffer[] = [];
  let i = 0;
  const n = line.length;
  for (;;) {
    while (i < n && isSpace(line[i]!)) i++;
    if (i >= n) return out;
    const cur: number[] = [];
    let inDq = false;
    let inSq = false;
    let done = false;
    while (!done) {
      if (i >= n) {
        if (inDq || inSq) return null;
        break;
      }
      const c = line[i]!;
      if (inDq) {
        if (c === 0x5c && i + 3 < n && line[i + 1] === 0x78 && hexVal(line[i + 2]!) >= 0 && hexVal(line[i + 3]!) >= 0) {
          cur.push(hexVal(line[i + 2]!) * 16 + hexVal(line[i + 3]!));
          i += 3;
        } else if (c === 0x5c && i + 1 < n) {
          i++;
          const e = line[i]!;
          cur.push(e === 0x6e ? 10 : e === 0x72 ? 13 : e === 0x74 ? 9 : e === 0x62 ? 8 : e === 0x61 ? 7 : e);
        } else if (c === 0x22) {
          if (i + 1 < n && !isSpace(line[i + 1]!)) return null;
          done = true;
        } else cur.push(c);
      } else if (inSq) {
        if (c === 0x5c && i + 1 < n && line[i + 1] === 0x27) {
          i++;
          cur.push(0x27);
        } else if (c === 0x27) {
          if (i + 1 < n && !isSpace(line[i + 1]!)) return null;
          done = true;
        } else cur.push(c);
      } else if (c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a) {
        done = true;
      } else if (c === 0x22) inDq = true;
      else if (c === 0x27) inSq = true;
      else cur.push(c);
      i++;
    }
    out.push(Buffer.from(cur));
  }
}
