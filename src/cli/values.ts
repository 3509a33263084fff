/**
 * values: keys and values typed on the command line, and how stored ones are printed.
 *
 * Input: a key is a string by default; --key-type number|json|hex reads it as a number, a JSON
 * value (e.g. an array key) or hex bytes. A value is a string by default; --value-type json|hex
 * reads JSON or hex bytes. A string or hex given for a `binary` sub-database becomes its bytes.
 * A value read from stdin (`-`) is those same bytes as given: a string value stays raw bytes for a
 * `binary` sub-database (never decoded, so any bytes go through) and is UTF-8 text otherwise;
 * json and hex are text (hex may end with a newline).
 *
 * Output, by the sub-database's encodings: values as JSON (msgpack, json), text (string) or hex
 * (binary); keys as text (a string), JSON (another ordered-binary key) or hex (binary keys).
 * In --json documents binary keys and values are hex strings, other values are JSON, and bytes
 * nested in a msgpack value are {"$binary": hex}.
 */
import type { Key, KeyEncodingName, ValueEncodingName } from "../index.js";
import { usage } from "./CliError.js";
import { hexOf, toJson } from "./output.js";

export const KEY_TYPES = ["string", "number", "json", "hex"] as const;
export const VALUE_TYPES = ["string", "json", "hex"] as const;
export type KeyType = (typeof KEY_TYPES)[number];
export type ValueType = (typeof VALUE_TYPES)[number];

export function parseHex(text: string, what: string): Buffer {
  const t = text.startsWith("0x") || text.startsWith("0X") ? text.slice(2) : text;
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(t)) throw usage(`${what} is not hex bytes (an even number of 0-9a-f digits): ${JSON.stringify(text)}`, { argument: what, value: text });
  return Buffer.from(t, "hex");
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw usage(`${what} is not valid JSON: ${(e as Error).message}`, { argument: what, value: text });
  }
}

/** A key read by its --key-type: a usage error when it does not parse, before any database is opened. */
export function readKey(text: string, type: KeyType, what = "key"): Key {
  switch (type) {
    case "string":
      return text;
    case "number": {
      const n = Number(text);
      if (text.trim() === "" || !Number.isFinite(n)) throw usage(`${what} is not a finite number: ${JSON.stringify(text)}`, { argument: what, value: text });
      return n;
    }
    case "json":
      return parseJson(text, what) as Key;
    case "hex":
      return parseHex(text, what);
  }
}

/** A key read by readKey, fitted to the sub-database's key encoding. */
export function fitKey(key: Key, enc: KeyEncodingName, what = "key"): Key {
  if (enc === "binary" && typeof key === "string") return Buffer.from(key, "utf8");
  if (enc === "binary" && !(key instanceof Uint8Array)) throw usage(`this sub-database has binary keys: give ${what} as a string or with --key-type hex`, { argument: what, keyEncoding: enc });
  if (enc === "string" && typeof key !== "string") {
    if (key instanceof Uint8Array) return Buffer.from(key).toString("utf8");
    throw usage(`this sub-database has string keys: give ${what} as a string`, { argument: what, keyEncoding: enc });
  }
  return key;
}

export function parseKey(text: string, type: KeyType, enc: KeyEncodingName, what = "key"): Key {
  return fitKey(readKey(text, type, what), enc, what);
}

/**
 * A value read by its --value-type (a usage error when it does not parse, before any database is
 * opened). `input` is the value's text, or the bytes read from stdin: a string value from stdin
 * stays those bytes until fitValue knows whether the sub-database stores bytes or text.
 */
export function readValue(input: string | Buffer, type: ValueType): unknown {
  if (type === "string") return input;
  // Text from stdin may end with a newline (echo), which hex would refuse.
  const text = typeof input === "string" ? input : input.toString("utf8").trim();
  return type === "json" ? parseJson(text, "value") : parseHex(text, "value");
}

/** A value read by readValue with the same `type`, fitted to the sub-database's value encoding. */
export function fitValue(read: unknown, type: ValueType, enc: ValueEncodingName): unknown {
  let value = read;
  if (type === "string" && Buffer.isBuffer(value)) {
    if (enc === "binary") return value;
    value = value.toString("utf8");
  }
  if (enc === "binary" && typeof value === "string") return Buffer.from(value, "utf8");
  if (enc === "binary" && !(value instanceof Uint8Array)) throw usage("this sub-database stores binary values: give the value as a string or with --value-type hex", { argument: "value", encoding: enc });
  if (enc === "string" && typeof value !== "string") {
    if (value instanceof Uint8Array) return Buffer.from(value).toString("utf8");
    throw usage("this sub-database stores string values: give the value as a string", { argument: "value", encoding: enc });
  }
  return value;
}

export function parseValue(input: string | Buffer, type: ValueType, enc: ValueEncodingName): unknown {
  return fitValue(readValue(input, type), type, enc);
}

function hex(v: unknown): string {
  return v instanceof Uint8Array ? hexOf(v) : String(v);
}

export function keyText(key: unknown, enc: KeyEncodingName | undefined): string {
  if (enc === "binary" || key instanceof Uint8Array) return hex(key);
  if (typeof key === "string") return key;
  return toJson(key);
}

export function valueText(value: unknown, enc: ValueEncodingName | undefined): string {
  if (enc === "binary" || value instanceof Uint8Array) return hex(value);
  if (enc === "string" && typeof value === "string") return value;
  return toJson(value);
}

/** A key as it appears in a --json document. */
export function keyJson(key: unknown, enc: KeyEncodingName | undefined): unknown {
  return enc === "binary" && key instanceof Uint8Array ? hex(key) : key;
}

/** A value as it appears in a --json document. */
export function valueJson(value: unknown, enc: ValueEncodingName | undefined): unknown {
  return enc === "binary" && value instanceof Uint8Array ? hex(value) : value;
}
