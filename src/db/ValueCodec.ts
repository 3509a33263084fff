/**
 * ValueCodec: user values <-> stored bytes.
 *
 * - "msgpack" (default): any structured-clone-like value, via msgpackr, except a Map (refused:
 *   it would read back as a plain object). Decoded binary fields are copies, never views into
 *   the page cache.
 * - "json": JSON text.  - "string": UTF-8 text.  - "binary": Buffer/Uint8Array, returned as a copy.
 */
import { Packr } from "msgpackr";
import { KeelError, invalidArgument } from "../errors.js";
import type { ValueEncodingName } from "../txn/Snapshot.js";
import { wellFormed } from "../util/wellFormed.js";

const packr = new Packr({ copyBuffers: true, useRecords: false, moreTypes: true });
/**
 * Reads back a value whose maps have keys an object cannot hold (written before Maps were
 * refused, see refuseMaps): as Maps, instead of an error that also stops every range over it.
 */
const mapsPackr = new Packr({ copyBuffers: true, useRecords: false, moreTypes: true, mapsAsObjects: false });

/**
 * msgpack stores a Map as a map, and reading it back (mapsAsObjects, the default without records)
 * gives a plain object: its keys become strings (1 and "1" collide), and a key that is an object
 * makes the stored value unreadable. A write the read cannot give back is refused instead.
 */
function refuseMaps(value: unknown): void {
  if (value === null || typeof value !== "object") return;
  // Each object once: a cycle (which msgpackr then refuses) is walked once, not forever.
  const seen = new Set<object>();
  const stack: object[] = [value];
  while (stack.length) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    if (v instanceof Map) {
      throw invalidArgument("value holds a Map, which msgpack reads back as a plain object (keys turned into strings): store Object.fromEntries(map), or [...map] as an array of entries", {
        argument: "value",
        encoding: "msgpack",
      });
    }
    if (ArrayBuffer.isView(v) || v instanceof Date || v instanceof ArrayBuffer) continue;
    const children: Iterable<unknown> = v instanceof Set || Array.isArray(v) ? v : Object.values(v);
    for (const c of children) if (c !== null && typeof c === "object") stack.push(c);
  }
}

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
      refuseMaps(value);
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
      try {
        return packr.unpack(buf);
      } catch (e) {
        try {
          return mapsPackr.unpack(buf);
        } catch {
          throw e;
        }
      }
    case "json":
      return JSON.parse(buf.toString("utf8"));
    case "string":
      return buf.toString("utf8");
    case "binary":
      return Buffer.from(buf);
  }
}
