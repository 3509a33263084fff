/**
 * ReplyQueue: replies leave in request order; `bytes` counts every ready reply not yet handed to
 * the socket (also those waiting behind a pending one), so the connection's output bound sees
 * them; a reply handed to the socket is no longer held by the queue.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import v8 from "node:v8";
import vm from "node:vm";
import { setImmediate as nextTurn } from "node:timers/promises";
import type { Socket } from "node:net";
import { ReplyQueue } from "../../src/server/ReplyQueue.js";
import { bulk, int, OK } from "../../src/server/resp/Reply.js";

const MIB = 1024 * 1024;

/** A socket that keeps the bytes written to it (or drops them, to hold no reference). */
function sink(keep = true): { socket: Socket; text: () => string } {
  const parts: Buffer[] = [];
  const socket = {
    cork() {},
    uncork() {},
    write(b: Buffer | string, enc?: BufferEncoding) {
      if (keep) parts.push(typeof b === "string" ? Buffer.from(b, enc ?? "utf8") : Buffer.from(b));
      return true;
    },
  } as unknown as Socket;
  return { socket, text: () => Buffer.concat(parts).toString("latin1") };
}

test("ReplyQueue: ready replies behind a pending one count in bytes, leave in request order once it completes, and then count no more", () => {
  const q = new ReplyQueue();
  const out = sink();
  const pending = q.push(null, 2);
  for (let i = 0; i < 10; i++) q.push(bulk(Buffer.alloc(MIB, 97)), 2);
  // Before: these ten (10 MiB) were counted nowhere until the pending reply came, so a slow
  // client could queue 4096 of them behind a SAVE.
  assert.ok(q.bytes >= 10 * MIB, `${q.bytes} bytes counted for 10 MiB of ready replies`);
  q.write(out.socket);
  assert.equal(out.text(), "", "nothing leaves before the pending reply");
  assert.ok(q.bytes >= 10 * MIB);
  q.complete(pending, int(7));
  q.write(out.socket);
  assert.equal(q.bytes, 0, "all handed to the socket");
  assert.equal(q.inflight, 0);
  const text = out.text();
  assert.ok(text.startsWith(`:7\r\n$${MIB}\r\n`));
  assert.equal(text.length, 4 + 10 * (`$${MIB}\r\n`.length + MIB + 2));
});

test("ReplyQueue: a reply completed out of order behind a pending one counts until it is encoded", () => {
  const q = new ReplyQueue();
  const out = sink();
  const first = q.push(null, 2);
  const second = q.push(null, 2);
  q.complete(second, bulk(Buffer.alloc(MIB, 98)));
  assert.ok(q.bytes >= MIB);
  q.write(out.socket);
  assert.equal(out.text(), "");
  q.complete(first, OK);
  q.write(out.socket);
  assert.equal(q.bytes, 0);
  assert.ok(out.text().startsWith(`+OK\r\n$${MIB}\r\n`));
});

test("ReplyQueue: a reply handed to the socket is no longer held by the queue (a long-lived connection held its last 1024+ replies)", async () => {
  v8.setFlagsFromString("--expose-gc");
  const collect = vm.runInNewContext("gc") as () => void;
  const q = new ReplyQueue();
  const out = sink(false);
  const refs: Array<WeakRef<Buffer>> = [];
  for (let i = 0; i < 20; i++) {
    (() => {
      const b = Buffer.alloc(MIB, 99);
      refs.push(new WeakRef(b));
      q.push(bulk(b), 2);
    })();
    q.write(out.socket);
  }
  // One completed after it was pushed (as a write's reply is), by code that then lets the slot go.
  (() => {
    const pending = q.push(null, 2);
    const b = Buffer.alloc(MIB, 100);
    refs.push(new WeakRef(b));
    q.complete(pending, bulk(b));
  })();
  q.write(out.socket);
  let held = refs.length;
  for (let i = 0; i < 10 && held > 0; i++) {
    await nextTurn();
    collect();
    held = refs.filter((r) => r.deref() !== undefined).length;
  }
  assert.equal(held, 0, `${held} of ${refs.length} replies already written are still referenced`);
});
