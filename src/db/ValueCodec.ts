/**
 * ValueCodec: user values <-> stored bytes.
 *
 * - "msgpack" (default): any structured-clone-like value, via msgpackr. Decoded binary fields
 *   are copies, never views into the page cache.
 * - "json": JSON text.  - "string": UTF-8 text.  - "binary": Buffer/Uint8Array, returned as a copy.
 */
import { Packr } from "msgpackr";
import { KeelError, invalidArgument } from "../errors.js";
import type { ValueEncodingName } from "../txn/Snapshot.js";
import { wellFormed } from "../util/wellFormed.js";

const packr = new Packr({ copyBuffers: true, useRecords: false, moreTypes: true });

export function encodeValue(value: unknown, enc: ValueEncodingName): Buffer | Uint8Array {
  if (value === undefined) throw invalidArgument("value is undefined (use remove to delete a key)", { argument: "value" });
  // msgpackr would store a function as undefined: the key would exist with no value to read back.
  if (typeof value === "function") throw invalidArgument("value is a function, which cannot be stored", { argument: "value" });
  try {
    return encode(value, enc);
  } catch (e) {
    if (e instanceof KeelError) throw e;
    // A cycle, a BigInt under json, a Symbol...: the caller's value, not the database, is at fault.
    throw invalidArgument(`value cannot be encoded as ${enc}: ${(e as Error)?.message ?? e}`, { argument: "value", encoding: enc });
  }
}

function encode(value: unknown, enc: ValueEncodingName): Buffer | Uint8Array {
  switch (enc) {
    case "msgpack":
      return packr.pack(value);
    case "json": {
      const s = JSON.stringify(value);
      if (s === undefined) throw invalidArgument("value cannot be encoded as JSON", { argument: "value", encoding: enc });
      return Buffer.from(s, "utf8");
    }
    case "string":
      if (typeof value !== "string") throw invalidArgument('encoding "string" takes string values', { argument: "value", encoding: enc });
      // UTF-8 has no form for a lone surrogate: stored as U+FFFD, the value would read back changed.
      if (!wellFormed(value)) throw invalidArgument('encoding "string" takes well-formed strings (this one holds a lone surrogate)', { argument: "value", encoding: enc });
      return Buffer.from(value, "utf8");
    case "binary":
      if (!(value instanceof Uint8Array)) throw invalidArgument('encoding "binary" takes Buffer or Uint8Array values', { argument: "value", encoding: enc });
      // As given: the write path copies it (into a string) before the caller can change it.
      return value;
  }
}

export function decodeValue(buf: Buffer, enc: ValueEncodingName): unknown {
  try {
    return decode(buf, enc);
  } catch (e) {
    // The page checksum passed, so the bytes are what was stored: a value written under another
    // encoding, not disk damage.
    throw invalidArgument(`stored value cannot be decoded as ${enc}: ${(e as Error).message}`, { encoding: enc });
  }
}

function decode(buf: Buffer, enc: ValueEncodingName): unknown {
  switch (enc) {
    case "msgpack":
      return packr.unpack(buf);
    case "json":
      return JSON.parse(buf.toString("utf8"));
    case "string":
      return buf.toString("utf8");
    case "binary":
      return Buffer.from(buf);
  }
}
