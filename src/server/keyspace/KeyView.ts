/**
 * KeyView: the data operations of one logical db at one instant (`now`), over a Store (a write
 * transaction or the published state). Commands are written against this class only.
 *
 * Invariants:
 * - An expired key is never returned: every read checks expireAt against `now`.
 * - A write that finds an expired value purges it first (its hash fields and expiry index entry), so
 *   stale fields can never reappear under a new hash of the same name.
 * - Every write touches the key's WATCH version (Keyspace.touch) in the same callback.
 * - Type checks happen before any write, so a WRONGTYPE error leaves the transaction unchanged.
 * - A string is stored after its HEADER bytes, so the longest string is the engine's maxValueSize
 *   minus HEADER; refusals say so in the client's terms (its string's length, that limit).
 */
import { isKeelError, KeelError } from "../../errors.js";
import { RespError, WRONGTYPE } from "../resp/RespError.js";
import type { Keyspace, LogicalDb } from "./Keyspace.js";
import { TxStore, type KV, type Store } from "./Store.js";
import { encodeHash, encodeString, expiryKey, fieldPrefix, hashCount, HEADER, prefixEnd, readExpireAt, readExpireAtLatin1, T_HASH, T_STRING, withExpireAt } from "./ValueHeader.js";

const EMPTY = Buffer.alloc(0);

export type KeyType = "none" | "string" | "hash";

export class KeyView {
  constructor(
    readonly ks: Keyspace,
    readonly ldb: LogicalDb,
    readonly store: Store,
    readonly now: number,
  ) {}

  /** Keys changed through this view (what persistence.noteChanges counts). */
  dirty = 0;
  /**
   * Key lookups through this view that found a live key, and that did not (INFO keyspace_hits and
   * keyspace_misses; the connection adds them for read commands only, as Redis counts read lookups).
   */
  hits = 0;
  misses = 0;

  touch(key: Buffer): void {
    this.dirty++;
    this.ks.touch(this.ldb.index, key);
  }

  /** A key, or a hash's key and field (whose limit is 4 bytes more: the field entry has no expiry prefix). */
  checkKey(key: Buffer, field?: Buffer): void {
    const max = this.ks.maxKeyLen;
    if (field === undefined) {
      if (key.length > max) throw new RespError(`ERR key too long for KeelDB (at most ${max} bytes)`);
    } else if (key.length + field.length > max + 4) {
      throw new RespError(`ERR key too long for KeelDB (at most ${max + 4} bytes of key and field)`);
    }
  }

  /**
   * Refuse a string the engine could not store, before the command writes anything: a command
   * error fails that command alone (inside EXEC too, as a Redis runtime error does), where the
   * engine's refusal in the middle of the transaction would undo the whole EXEC.
   */
  checkString(length: number): void {
    const max = this.ks.maxValueSize - HEADER;
    if (length > max) {
      throw new RespError(`ERR string of ${length} bytes exceeds the longest string KeelDB stores, ${max} bytes (maxValueSize ${this.ks.maxValueSize} minus the ${HEADER}-byte value header)`);
    }
  }

  /** As checkString, for a hash field's value (stored as is). */
  checkFieldValue(length: number): void {
    if (length > this.ks.maxValueSize) throw new RespError(`ERR value of ${length} bytes exceeds maxValueSize ${this.ks.maxValueSize}`);
  }

  /** The stored value, expired or not. */
  stored(key: Buffer): Buffer | undefined {
    if (key.length > this.ks.maxKeyLen) return undefined;
    return this.store.get(this.ldb.keys, key);
  }

  /** Whether the key is stored but expired (not yet deleted by a write, the sweep or a flush). */
  storedExpired(key: Buffer): boolean {
    const v = this.stored(key);
    return v !== undefined && this.#due(v);
  }

  /** Whether the stored value `v` carries an expiry that has passed. */
  #due(v: Buffer): boolean {
    const at = readExpireAt(v);
    return at !== 0 && at <= this.now;
  }

  /** The value if the key exists and has not expired. */
  live(key: Buffer): Buffer | undefined {
    return this.#alive(key, this.stored(key));
  }

  /** `v`, the stored value of `key`, if it has not expired. */
  #alive(key: Buffer, v: Buffer | undefined): Buffer | undefined {
    if (v === undefined) {
      this.misses++;
      return undefined;
    }
    if (this.#due(v)) {
      this.misses++;
      if (this.store.writable) this.store.purgeExpired(() => this.#purge(key, v));
      return undefined;
    }
    this.hits++;
    return v;
  }

  type(key: Buffer): KeyType {
    const v = this.live(key);
    return v === undefined ? "none" : v[0] === T_HASH ? "hash" : "string";
  }

  exists(key: Buffer): boolean {
    return this.live(key) !== undefined;
  }

  getString(key: Buffer): Buffer | undefined {
    return KeyView.#stringOf(this.live(key));
  }

  static #stringOf(v: Buffer | undefined): Buffer | undefined {
    if (v === undefined) return undefined;
    if (v[0] !== T_STRING) throw new RespError(WRONGTYPE);
    return v.subarray(HEADER);
  }

  /**
   * getString for a reply (GET): a small live string comes back as the latin1 string the tree
   * holds, with no copy into a Buffer and back; anything else (a large value, an expired key,
   * another type) takes getString's checks on the value already read.
   */
  getStringBytes(key: Buffer): Buffer | string | undefined {
    return this.#stringBytes(key, true);
  }

  /** getStringBytes for MGET: a key of another type reads as missing (Redis's MGET), not WRONGTYPE. */
  getStringBytesOrNone(key: Buffer): Buffer | string | undefined {
    return this.#stringBytes(key, false);
  }

  #stringBytes(key: Buffer, throwWrongType: boolean): Buffer | string | undefined {
    if (key.length > this.ks.maxKeyLen) {
      this.misses++;
      return undefined;
    }
    const v = this.store.getStored(this.ldb.keys, key);
    if (typeof v === "string" && v.length >= HEADER && v.charCodeAt(0) === T_STRING) {
      const at = readExpireAtLatin1(v);
      if (at === 0 || at > this.now) {
        this.hits++;
        return v.slice(HEADER);
      }
    }
    const alive = this.#alive(key, typeof v === "string" ? Buffer.from(v, "latin1") : v);
    if (!throwWrongType && alive !== undefined && alive[0] !== T_STRING) return undefined;
    return KeyView.#stringOf(alive);
  }

  /** -2: no such key; 0: no expiry; otherwise the absolute expiry in ms. */
  expireAtOf(key: Buffer): number {
    const v = this.live(key);
    return v === undefined ? -2 : readExpireAt(v);
  }

  /** Store a string, replacing whatever the key held; expireAt 0 = no expiry. */
  setString(key: Buffer, value: Buffer, expireAt: number): void {
    this.checkKey(key);
    this.checkString(value.length);
    // One descent: the old value comes back from the put. Its side entries (expiry index, hash
    // fields) live in other sub-databases, so dropping them after the put is the same as before.
    let old: Buffer | undefined;
    try {
      old = this.store.swap(this.ldb.keys, key, encodeString(value, expireAt));
    } catch (e) {
      // The engine names the stored size (header included); the client sent `value`. Same code, so
      // the write queue treats the refusal as before.
      if (!isKeelError(e) || e.details.limit !== "maxValueSize") throw e;
      const max = Number(e.details.max);
      throw new KeelError(
        "INVALID_ARGUMENT",
        `string of ${value.length} bytes exceeds the longest string KeelDB stores, ${max - HEADER} bytes (maxValueSize ${max} minus the ${HEADER}-byte value header)`,
        { ...e.details, size: value.length, maxString: max - HEADER },
      );
    }
    if (old === undefined) this.ks.countKeys(this.ldb.index, 1);
    else this.#dropSide(key, old);
    if (expireAt !== 0) this.store.put(this.ldb.ttl, expiryKey(expireAt, key), EMPTY);
    this.touch(key);
  }

  /** Delete the key; true if it existed (and had not expired). */
  del(key: Buffer): boolean {
    const v = this.stored(key);
    if (v === undefined) return false;
    const at = readExpireAt(v);
    this.#purge(key, v);
    return at === 0 || at > this.now;
  }

  /** Set (expireAt > 0) or remove (0) the expiry of a live key; an expiry not after now deletes it. */
  setExpireAt(key: Buffer, expireAt: number): boolean {
    const v = this.live(key);
    if (v === undefined) return false;
    if (expireAt !== 0 && expireAt <= this.now) {
      this.#purge(key, v);
      return true;
    }
    // The value is rewritten with its new header: one stored under a larger maxValueSize than
    // this server's is refused here, before anything is written (inside EXEC: this command's error).
    if (v[0] !== T_HASH) this.checkString(v.length - HEADER);
    const old = readExpireAt(v);
    if (old !== 0) this.store.remove(this.ldb.ttl, expiryKey(old, key));
    this.#putKey(key, withExpireAt(v, expireAt));
    if (expireAt !== 0) this.store.put(this.ldb.ttl, expiryKey(expireAt, key), EMPTY);
    this.touch(key);
    return true;
  }

  // ---- hashes ----

  #hashHeader(key: Buffer): Buffer | undefined {
    const v = this.live(key);
    if (v !== undefined && v[0] !== T_HASH) throw new RespError(WRONGTYPE);
    return v;
  }

  hget(key: Buffer, field: Buffer): Buffer | undefined {
    if (this.#hashHeader(key) === undefined) return undefined;
    if (key.length + field.length > this.ks.maxKeyLen + 4) return undefined;
    return this.store.get(this.ldb.hash, Buffer.concat([fieldPrefix(key), field]));
  }

  /** The values of `fields` of a hash (undefined: no such field), with one lookup of the key. */
  hmget(key: Buffer, fields: readonly Buffer[]): Array<Buffer | undefined> {
    if (this.#hashHeader(key) === undefined) return fields.map(() => undefined);
    const prefix = fieldPrefix(key);
    return fields.map((f) => (key.length + f.length > this.ks.maxKeyLen + 4 ? undefined : this.store.get(this.ldb.hash, Buffer.concat([prefix, f]))));
  }

  hlen(key: Buffer): number {
    const h = this.#hashHeader(key);
    return h === undefined ? 0 : hashCount(h);
  }

  /** Set fields; returns how many were new. */
  hset(key: Buffer, pairs: ReadonlyArray<readonly [Buffer, Buffer]>): number {
    this.checkKey(key);
    for (const [f, val] of pairs) {
      this.checkKey(key, f);
      this.checkFieldValue(val.length);
    }
    const h = this.#hashHeader(key);
    let count = h === undefined ? 0 : hashCount(h);
    const expireAt = h === undefined ? 0 : readExpireAt(h);
    const prefix = fieldPrefix(key);
    let added = 0;
    for (const [f, val] of pairs) if (!this.store.put(this.ldb.hash, Buffer.concat([prefix, f]), val)) added++;
    count += added;
    if (h === undefined || added > 0) this.#putKey(key, encodeHash(count, expireAt));
    this.touch(key);
    return added;
  }

  /** Delete fields; returns how many existed. An emptied hash is deleted. */
  hdel(key: Buffer, fields: readonly Buffer[]): number {
    const h = this.#hashHeader(key);
    if (h === undefined) return 0;
    const prefix = fieldPrefix(key);
    let removed = 0;
    for (const f of fields) if (this.store.remove(this.ldb.hash, Buffer.concat([prefix, f]))) removed++;
    if (removed === 0) return 0;
    const count = hashCount(h) - removed;
    if (count <= 0) this.#purge(key, h);
    else {
      this.#putKey(key, encodeHash(count, readExpireAt(h)));
      this.touch(key);
    }
    return removed;
  }

  /** All fields and values of a hash, in field order. */
  hgetall(key: Buffer): KV[] {
    if (this.#hashHeader(key) === undefined) return [];
    return this.#fields(key);
  }

  #fields(key: Buffer): KV[] {
    const prefix = fieldPrefix(key);
    const out: KV[] = [];
    for (const e of this.store.range(this.ldb.hash, prefix, prefixEnd(prefix))) out.push({ key: e.key.subarray(prefix.length), value: e.value });
    return out;
  }

  // ---- whole keys ----

  /** RENAME: move the value and its expiry; false if src does not exist. */
  rename(src: Buffer, dst: Buffer): boolean {
    const v = this.live(src);
    if (v === undefined) return false;
    if (src.equals(dst)) return true;
    this.checkKey(dst);
    const at = readExpireAt(v);
    // Every check before the first write (the value may exceed a maxValueSize lowered since it
    // was stored): a refusal leaves src where it was.
    if (v[0] === T_STRING) {
      const payload = Buffer.from(v.subarray(HEADER));
      this.checkString(payload.length);
      this.del(src);
      this.setString(dst, payload, at);
      return true;
    }
    const fields = this.#fields(src);
    for (const f of fields) {
      this.checkKey(dst, f.key);
      this.checkFieldValue(f.value.length);
    }
    this.del(src);
    this.del(dst);
    const prefix = fieldPrefix(dst);
    for (const f of fields) this.store.put(this.ldb.hash, Buffer.concat([prefix, f.key]), f.value);
    this.#putKey(dst, encodeHash(fields.length, at));
    if (at !== 0) this.store.put(this.ldb.ttl, expiryKey(at, dst), EMPTY);
    this.touch(dst);
    return true;
  }

  /** Up to `count` live keys after `after` (exclusive), in key order, and the last key examined. */
  scan(after: Buffer | undefined, count: number): { keys: Buffer[]; last: Buffer | undefined } {
    const start = after === undefined ? undefined : Buffer.concat([after, Buffer.from([0])]);
    const keys: Buffer[] = [];
    let last: Buffer | undefined;
    for (const e of this.store.range(this.ldb.keys, start, undefined, count)) {
      last = e.key;
      const at = readExpireAt(e.value);
      if (at === 0 || at > this.now) keys.push(e.key);
    }
    return { keys, last };
  }

  /** Keys in this db (expired ones not yet deleted included, as Redis counts them). */
  dbsize(): number {
    return this.store instanceof TxStore ? this.ks.keyCountInTransaction(this.ldb.index) : this.ldb.keys.getCount();
  }

  #putKey(key: Buffer, value: Buffer): void {
    if (!this.store.put(this.ldb.keys, key, value)) this.ks.countKeys(this.ldb.index, 1);
  }

  flush(): void {
    // As Redis: emptying a db touches the watched keys it held, not the ones that did not exist.
    const held = this.ks.watchedKeys(this.ldb.index).filter((k) => this.stored(k) !== undefined);
    const removed = this.ks.keyCountInTransaction(this.ldb.index);
    this.store.clear(this.ldb.keys);
    this.ks.countKeys(this.ldb.index, -removed);
    this.store.clear(this.ldb.hash);
    this.store.clear(this.ldb.ttl);
    for (const k of held) this.ks.touch(this.ldb.index, k);
    // As Redis: a flush counts one change per key it removed (an empty db: none).
    this.dirty += removed;
  }

  /** Remove a stored value and everything beside it (hash fields, expiry index entry). */
  #purge(key: Buffer, v: Buffer): void {
    this.#dropSide(key, v);
    if (this.store.remove(this.ldb.keys, key)) this.ks.countKeys(this.ldb.index, -1);
    this.touch(key);
  }

  #dropSide(key: Buffer, v: Buffer): void {
    const at = readExpireAt(v);
    if (at !== 0) this.store.remove(this.ldb.ttl, expiryKey(at, key));
    if (v[0] === T_HASH) for (const f of this.#fields(key)) this.store.remove(this.ldb.hash, Buffer.concat([fieldPrefix(key), f.key]));
  }
}
