/**
 * output: how `keel` prints. Human text by default (the form meant for a terminal); with --json,
 * exactly one JSON document on stdout, errors included: {"error":{"code","message","details"}}.
 * A document streamed in pieces (scan, txlog) that an error interrupts is closed, not followed by
 * a second one: the error becomes its last field, {..., "count":N, "error":{...}}.
 * Human errors go to stderr as "keel: <message>". Writes respect back-pressure; what a failing
 * stdout does (a closed pipe, a full disk) is stdoutErrors.ts's.
 */
import { constants as bufferConstants } from "node:buffer";
import { once } from "node:events";
import type { Writable } from "node:stream";
import { KeelError, codeOfErrno, invalidArgument } from "../errors.js";
import { CliError } from "./CliError.js";
import { setDataOnStdout } from "./stdoutErrors.js";

export interface OutputStreams {
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable & { isTTY?: boolean };
}

/** What keel prints must fit one JavaScript string; a stored value can be larger (up to 2³¹ − 1 bytes). */
function tooLargeToPrint(what: string, details: Record<string, unknown>): KeelError {
  return invalidArgument(`${what} is too large to print (over the largest JavaScript string); copy the value out with keel dump --format binary`, { ...details, max: bufferConstants.MAX_STRING_LENGTH });
}

/**
 * Room left beside a value's hex in the largest string: the line or JSON document printing it also
 * holds its key (at most a few KiB of text) and separators.
 */
const PRINT_MARGIN = 64 * 1024;

/** Bytes as hex, or INVALID_ARGUMENT (exit 2) when the hex, with the text around it, would pass the largest JavaScript string. */
export function hexOf(v: Uint8Array): string {
  if (2 * v.byteLength > bufferConstants.MAX_STRING_LENGTH - PRINT_MARGIN) throw tooLargeToPrint(`a value of ${v.byteLength} bytes, as hex,`, { size: v.byteLength });
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("hex");
}

/** JSON.stringify replacer: Buffers as {"$binary": hex}, bigints as strings, Maps and Sets as arrays, errors as {code,message}. */
export function jsonReplacer(this: unknown, _key: string, value: unknown): unknown {
  const raw = (this as Record<string, unknown> | undefined)?.[_key];
  const v = raw instanceof Uint8Array ? raw : value;
  if (v instanceof Uint8Array) return { $binary: hexOf(v) };
  if (typeof v === "bigint") return v.toString();
  if (v instanceof Map) return { $map: [...v.entries()] };
  if (v instanceof Set) return [...v];
  if (v instanceof KeelError) return { code: v.code, message: v.message, details: v.details };
  if (v instanceof Error) return { name: v.name, message: v.message };
  if (typeof v === "number" && !Number.isFinite(v)) return String(v);
  return v;
}

export function toJson(value: unknown, indent?: number): string {
  try {
    return JSON.stringify(value, jsonReplacer, indent) ?? "null";
  } catch (e) {
    // Each piece fit, the whole did not (hex just under the limit, plus the rest of the line).
    if (e instanceof RangeError) throw tooLargeToPrint("this output, as JSON,", {});
    throw e;
  }
}

/** The error as reported: the code, the message, the details. */
export function errorDocument(e: unknown): { error: { code: string; message: string; details: Record<string, unknown> } } {
  if (e instanceof KeelError) return { error: { code: e.code, message: describeError(e), details: { ...e.details } } };
  if (e instanceof CliError) return { error: { code: e.code, message: e.message, details: e.details } };
  const err = e as NodeJS.ErrnoException | undefined;
  if (err && typeof err.code === "string" && /^E[A-Z]+$/.test(err.code)) {
    // As ioError maps them: a full disk or quota is FULL, whatever reported it.
    return { error: { code: err.code === "ENOENT" ? "NOT_FOUND" : codeOfErrno(err.code), message: err.message, details: { errno: err.code, path: err.path, op: err.syscall } } };
  }
  return { error: { code: "INTERNAL", message: err?.message ?? String(e), details: err?.stack ? { stack: err.stack } : {} } };
}

/** The message a user reads for a KeelError; LOCKED says who holds the database and what to do. */
export function describeError(e: KeelError): string {
  if (e.code === "LOCKED" && typeof e.details.pid === "number") {
    return `database ${String(e.details.dir ?? "")} is in use by process ${e.details.pid}; stop it or use \`keel\` commands against the server instead`;
  }
  return e.message;
}

export class Output {
  readonly json: boolean;
  readonly stdout: Writable & { isTTY?: boolean };
  readonly stderr: Writable & { isTTY?: boolean };
  /** Set when stdout carries data (dump without -f): the JSON summary then goes to stderr. */
  get stdoutIsData(): boolean {
    return this.#stdoutIsData;
  }
  set stdoutIsData(on: boolean) {
    this.#stdoutIsData = on;
    if (this.stdout === process.stdout) setDataOnStdout(on);
  }
  #stdoutIsData = false;
  /** While a streamed --json document is open: what closes its array and adds the fields after it. */
  #openDocument: (() => string) | undefined;

  constructor(json: boolean, streams: OutputStreams = { stdout: process.stdout, stderr: process.stderr }) {
    this.json = json;
    this.stdout = streams.stdout;
    this.stderr = streams.stderr;
  }

  get isTTY(): boolean {
    return !!this.stdout.isTTY;
  }

  /** Write text to stdout, waiting when the stream asks for it. */
  async write(text: string): Promise<void> {
    if (!this.stdout.write(text)) await once(this.stdout, "drain");
  }

  /**
   * Begin a --json document written in pieces: `head` opens it up to its array's "[", and
   * `close()` returns the text after the array's last element up to (not including) the final
   * "}", as of the moment it is called. Until endDocument(), an error goes inside this document.
   */
  async beginDocument(head: string, close: () => string): Promise<void> {
    this.#openDocument = close;
    await this.write(head);
  }

  /** End the document beginDocument opened (nothing when none is open). */
  async endDocument(): Promise<void> {
    const close = this.#openDocument;
    this.#openDocument = undefined;
    if (close) await this.write(close() + "}\n");
  }

  /** Human output only: one line. */
  async line(text = ""): Promise<void> {
    if (!this.json) await this.write(text + "\n");
  }

  /** The result of a command: the JSON document with --json, else the human text. */
  async result(doc: unknown, human: () => string | string[]): Promise<void> {
    if (this.json) {
      const text = toJson(doc, this.isTTY ? 2 : undefined) + "\n";
      if (this.stdoutIsData) this.stderr.write(text);
      else await this.write(text);
      return;
    }
    let line: string;
    try {
      const h = human();
      const text = Array.isArray(h) ? h.join("\n") : h;
      if (!text.length) return;
      line = text + "\n";
    } catch (e) {
      // Past the largest JavaScript string (a string value near it): as hexOf refuses a binary one.
      if (e instanceof RangeError) throw tooLargeToPrint("this output", {});
      throw e;
    }
    if (this.stdoutIsData) this.stderr.write(line);
    else await this.write(line);
  }

  /**
   * A write that is durable although closing the database failed afterwards (the next open
   * replays it from the log): the result carries `closeError`, and a person is told on stderr.
   */
  closeFailedAfterWrite(e: unknown): { closeError: ReturnType<typeof errorDocument>["error"] } {
    const doc = errorDocument(e);
    this.note(`keel: warning: the write is durable, but closing the database failed: ${doc.error.message} [${doc.error.code}]`);
    return { closeError: doc.error };
  }

  /** A note for a person (never part of the JSON document): stderr. */
  note(text: string): void {
    if (!this.json) this.stderr.write(text + "\n");
  }

  /**
   * Report an error: JSON on stdout with --json (inside the open streamed document if there is one;
   * stderr when stdout carries data), else "keel: ..." on stderr.
   */
  error(e: unknown): void {
    const doc = errorDocument(e);
    const open = this.#openDocument;
    if (this.json && open) {
      this.#openDocument = undefined;
      this.stdout.write(`${open()},"error":${toJson(doc.error)}}\n`);
      return;
    }
    if (this.json) {
      (this.stdoutIsData ? this.stderr : this.stdout).write(toJson(doc) + "\n");
      return;
    }
    const { code, message, details } = doc.error;
    let text = `keel: ${message}`;
    if (code !== "USAGE" && code !== "INTERNAL") text += ` [${code}]`;
    if (code === "CORRUPT") {
      const where = Object.entries(details).filter(([, v]) => v !== undefined && typeof v !== "object").map(([k, v]) => `${k}=${String(v)}`);
      if (where.length) text += `\n  where: ${where.join(" ")}`;
    }
    if (code === "INTERNAL" && typeof details.stack === "string") text += `\n${details.stack}\nThis is a bug in keel: please report it with the command you ran.`;
    this.stderr.write(text + "\n");
  }
}

// ---- human formatting helpers ----

export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[i]}`;
}

export function formatTime(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms) || ms <= 0) return "never";
  return new Date(ms).toISOString();
}

/** Two columns, the first padded: [["entries", "12"], ...]. */
export function table(rows: Array<[string, string]>, indent = ""): string[] {
  const w = rows.reduce((m, [k]) => Math.max(m, k.length), 0);
  return rows.map(([k, v]) => `${indent}${k.padEnd(w)}  ${v}`);
}

/** Columns with a header row, each padded to its widest cell. */
export function columns(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => rows.reduce((m, r) => Math.max(m, (r[i] ?? "").length), h.length));
  const fmt = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join("  ").trimEnd();
  return [fmt(header), ...rows.map(fmt)];
}
