/**
 * ReplyQueue: one connection's replies, in request order (Connection.ts owns the socket and decides
 * when to write).
 *
 * Invariants:
 * - Every request takes a slot when it is dispatched; a slot is encoded only once every slot before
 *   it is, so replies leave in request order whatever order they complete in.
 * - A reply is encoded with the protocol its request was parsed under (HELLO may change it between).
 * - Once a closing reply (QUIT, protocol error) is encoded, nothing after it ever is.
 * - `whenIdle()` settles once no slot is waiting, or the socket closed (server close waits for it).
 */
import type { Socket } from "node:net";
import type { Reply } from "./resp/Reply.js";
import { RespWriter } from "./resp/RespWriter.js";

export interface Slot {
  reply: Reply | null;
  /** The protocol of the connection when the request was parsed. */
  readonly proto: 2 | 3;
  /** Close the connection once this reply is written. */
  readonly close: boolean;
}

export class ReplyQueue {
  #slots: Slot[] = [];
  #head = 0;
  readonly #writer = new RespWriter(2);
  #closing = false;
  #idle: Array<() => void> = [];

  /** Slots not yet encoded (their replies pending, or ready behind a pending one). */
  get inflight(): number {
    return this.#slots.length - this.#head;
  }

  /** Bytes encoded and not yet handed to the socket. */
  get encodedBytes(): number {
    return this.#writer.pendingBytes;
  }

  /** A closing reply has been encoded: the connection ends once it is written. */
  get closing(): boolean {
    return this.#closing;
  }

  /** A slot for the next request: its reply now, or null until the caller sets `reply`. */
  push(reply: Reply | null, proto: 2 | 3, close = false): Slot {
    const s: Slot = { reply, proto, close };
    this.#slots.push(s);
    return s;
  }

  /** Encode the ready replies, in order, up to the first that is not (or a closing one). */
  collect(): void {
    if (this.#closing) return;
    while (this.#head < this.#slots.length) {
      const s = this.#slots[this.#head]!;
      if (s.reply === null) break;
      this.#writer.proto = s.proto;
      this.#writer.add(s.reply);
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
