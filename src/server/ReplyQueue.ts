/**
 * ReplyQueue: one connection's replies, in request order (Connection.ts owns the socket and decides
 * when to write).
 *
 * Invariants:
 * - Every request takes a slot when it is dispatched; a slot is encoded only once every slot before
 *   it is, so replies leave in request order whatever order they complete in.
 * - A reply is encoded with the protocol its request was parsed under (HELLO may change it between).
 * - Once a closing reply (QUIT, protocol error) is encoded, nothing after it ever is.
 * - `bytes` counts every reply that is ready and not yet handed to the socket: encoded ones, and
 *   ready ones waiting behind a pending slot (a SAVE, a write waiting for its commit) by an estimate
 *   of their size, so the connection's output bound sees them too.
 * - An encoded reply is no longer referenced here (its slot is replaced): a long-lived connection
 *   holds only the replies it has not sent.
 * - `whenIdle()` settles once no slot is waiting, or the socket closed (server close waits for it).
 */
import type { Socket } from "node:net";
import { OK, type Reply } from "./resp/Reply.js";
import { RespWriter } from "./resp/RespWriter.js";

export interface Slot {
  reply: Reply | null;
  /** The protocol of the connection when the request was parsed. */
  readonly proto: 2 | 3;
  /** Close the connection once this reply is written. */
  readonly close: boolean;
  /** Bytes counted in `bytes` while the reply is ready behind a pending slot. */
  waiting: number;
}

/** What an encoded slot is replaced by, so its reply can be collected. */
const SENT: Slot = { reply: OK, proto: 2, close: false, waiting: 0 };

/** About the encoded size of `r` (bulk payloads exactly, framing roughly). */
function replyBytes(r: Reply): number {
  switch (r.t) {
    case "bulk":
      return r.b.length + 16;
    case "bulkLatin1":
    case "simple":
    case "err":
    case "verbatim":
      return r.s.length + 16;
    case "arr":
    case "set": {
      let n = 16;
      for (const i of r.items) n += replyBytes(i);
      return n;
    }
    case "map": {
      let n = 16;
      for (const [k, v] of r.entries) n += replyBytes(k) + replyBytes(v);
      return n;
    }
    default:
      return 24;
  }
}

export class ReplyQueue {
  #slots: Slot[] = [];
  #head = 0;
  readonly #writer = new RespWriter(2);
  #closing = false;
  #idle: Array<() => void> = [];
  /** Slots whose reply is not set yet. */
  #pending = 0;
  /** Estimated bytes of the ready replies behind a pending slot. */
  #waitingBytes = 0;

  /** Slots not yet encoded (their replies pending, or ready behind a pending one). */
  get inflight(): number {
    return this.#slots.length - this.#head;
  }

  /** Bytes of ready replies not yet handed to the socket (encoded, or estimated while they wait). */
  get bytes(): number {
    return this.#writer.pendingBytes + this.#waitingBytes;
  }

  /** A closing reply has been encoded: the connection ends once it is written. */
  get closing(): boolean {
    return this.#closing;
  }

  /** A slot for the next request: its reply now, or null until the caller sets `reply`. */
  push(reply: Reply | null, proto: 2 | 3, close = false): Slot {
    const s: Slot = { reply, proto, close, waiting: 0 };
    if (reply === null) this.#pending++;
    else if (this.#pending > 0) this.#wait(s, reply);
    this.#slots.push(s);
    return s;
  }

  /** Set the reply of a slot pushed without one. */
  complete(s: Slot, reply: Reply): void {
    s.reply = reply;
    if (this.#closing) return; // dropped: never encoded
    this.#pending--;
    if (this.#slots[this.#head] !== s) this.#wait(s, reply);
  }

  #wait(s: Slot, reply: Reply): void {
    s.waiting = replyBytes(reply);
    this.#waitingBytes += s.waiting;
  }

  /** Encode the ready replies, in order, up to the first that is not (or a closing one). */
  collect(): void {
    if (this.#closing) return;
    while (this.#head < this.#slots.length) {
      const s = this.#slots[this.#head]!;
      if (s.reply === null) break;
      this.#writer.proto = s.proto;
      this.#writer.add(s.reply);
      this.#waitingBytes -= s.waiting;
      this.#slots[this.#head] = SENT;
      this.#head++;
      if (s.close) {
        this.#closing = true;
        break;
      }
    }
  }

  /** Collect, then hand everything encoded to the socket in one write. */
  write(socket: Socket): void {
    this.collect();
    if (this.#head > 1024 && this.#head * 2 > this.#slots.length) {
      this.#slots = this.#slots.slice(this.#head);
      this.#head = 0;
    }
    this.#writer.flush(socket);
    if (this.#closing) {
      this.#slots = [];
      this.#head = 0;
      this.#waitingBytes = 0;
    }
    if (this.inflight === 0) this.notifyIdle();
  }

  /** Settles at the next notifyIdle: once no slot waits, or the socket closed. */
  whenIdle(): Promise<void> {
    return new Promise<void>((r) => this.#idle.push(r));
  }

  /** Settle every whenIdle (also when the socket closed with slots still waiting). */
  notifyIdle(): void {
    const w = this.#idle;
    this.#idle = [];
    for (const r of w) r();
  }
}
