/**
 * Connection: one client socket: parse, dispatch, reply in order.
 *
 * Invariants:
 * - Replies go out in request order (ReplyQueue.ts), and all replies ready after one read (or one
 *   batch of commit completions) leave in one corked write.
 * - A write command is queued (Keyspace.batched) in the same tick it is parsed, so the writes of
 *   this and the other connections dispatched before the queue runs share one transaction where
 *   possible and one group commit; its reply waits for the commit to be durable. A read issued
 *   while this connection has writes pending is queued the same way behind them (read-only: it adds
 *   nothing to the log record), so it sees exactly the writes sent before it and none sent after
 *   it, even those committed in the same group; otherwise it runs at once on the published state.
 * - The logical db, and everything else a deferred command needs, is captured when it is dispatched,
 *   so later pipelined commands (SELECT) cannot change what an earlier one does. The one state a
 *   later command needs that is known only when a transaction runs (the db after an EXEC that has
 *   WATCHed keys and a SELECT inside; the name, protocol, authentication or configuration after an
 *   EXEC holding CLIENT, HELLO, AUTH, CONFIG...) is a barrier: commands after it wait in `#held`
 *   until it runs.
 * - Bounded memory: the parser bounds one request; reading pauses while more than MAX_INFLIGHT
 *   replies are pending or more than MAX_OUTPUT bytes of replies wait (in the socket, encoded for
 *   it, or ready behind a reply still pending: ReplyQueue.bytes). The output bound is checked
 *   before every command, not once per read: a small read can hold many commands with large
 *   replies (500 `GET big` in 4.5 KB). Once it is passed, the rest of the read stays parsed in
 *   `#held` and is dispatched, in order, as the socket drains. Replies made in the write queue
 *   (writes, and reads queued behind the connection's own writes) have a size only once their
 *   group runs, and then MAX_OUTPUT counts them; until then they are bounded by count
 *   (MAX_INFLIGHT), and by the stored values they may carry (Command.values: an MGET its keys,
 *   GETEX or SET ... GET one, HGETALL or KEYS the whole budget), MAX_VALUES_BEHIND at a time per
 *   connection, passed by at most one command's. At server close, commands held back by the
 *   bounds are not run (as if unread).
 * - After a protocol error nothing more is read: earlier replies, then the error, then close.
 * - A client that has not authenticated may send no request beyond Redis 7's unauthenticated limits
 *   (10 arguments, 16 KiB each): the parser stops at such a header, reading pauses, and once every
 *   command before it has run (an AUTH pipelined just before it included) the request is let
 *   through or is the protocol error, as Redis decides it when it reads that header.
 * - A peer that half-closes (its FIN after a request: `nc -N`, shutdown(SHUT_WR)) gets every reply
 *   to what it sent, then our FIN (the server accepts half-open sockets): Node's default of ending
 *   our side at once lost each reply not ready by then, though the command ran.
 * - Closing (QUIT, protocol error, server close) never cuts off replies a slow reader is still
 *   taking (endSocket.ts); at server close a peer that takes nothing for 2 s is dropped, so a peer
 *   that stopped reading cannot hold a shutdown for long.
 */
import type { Socket } from "node:net";
import { replyValues, subcommandArityError, type Command } from "./commands/Command.js";
import type { ClientState, CommandContext, ServerHandle } from "./commands/CommandContext.js";
import { authRequired } from "./commands/serverCommands.js";
import { shutdownMode } from "./commands/shutdownMode.js";
import { errorReply } from "./resp/errorReply.js";
import type { KeyView } from "./keyspace/KeyView.js";
import { TxStore } from "./keyspace/Store.js";
import { ProtocolError, RespParser } from "./resp/RespParser.js";
import { cText, err, OK, QUEUED, type Reply } from "./resp/Reply.js";
import { ReplyQueue, type Slot } from "./ReplyQueue.js";
import { endSocket, FIN_WAIT_MS } from "./endSocket.js";
import type { ShutdownMode } from "./ServerContext.js";
import { execReplyValues, planExec, runExec, type Queued, type Watched } from "./MultiExec.js";

const MAX_INFLIGHT = 4096;
const EMPTY_ARGS: Buffer[] = [];
const MAX_OUTPUT = 32 * 1024 * 1024;
/** Stored values the replies made in the write queue may carry at once (their size is known only once run). */
const MAX_VALUES_BEHIND = 64;

/** What the connection needs from the server beyond ServerHandle. */
export interface ConnectionHost extends ServerHandle {
  commandProcessed(): void;
  protocolError(): void;
  /** Writes started and not yet settled, over all connections (WATCH waits for them). */
  inflightWrites: number;
  shutdown(mode: ShutdownMode): void;
}

export class Connection {
  readonly client: ClientState;
  readonly #socket: Socket;
  readonly #host: ConnectionHost;
  readonly #parser: RespParser;
  readonly #replies = new ReplyQueue();
  readonly #ctx: CommandContext;
  #pendingWrites = 0;
  /** Stored values the replies of this connection's calls in the write queue may carry (MAX_VALUES_BEHIND). */
  #valuesBehind = 0;
  /** Settles (never rejects) once this connection's latest write has settled. */
  #lastWrite: Promise<unknown> = Promise.resolve();
  #multi: { queue: Queued[]; failed: boolean } | null = null;
  #watched: Watched[] = [];
  /** No more input is processed (protocol error, QUIT, server closing). */
  #stopped = false;
  #paused = false;
  #flushScheduled = false;
  #ended = false;
  /** The peer sent its FIN: once everything it sent is answered, our side ends. */
  #peerEnded = false;
  /** Commands parsed and not yet dispatched (while a barrier or the output bound holds them back). */
  #held: Buffer[][] = [];
  #heldAt = 0;
  /** Set while later commands must not be dispatched: they depend on how an EXEC ends. */
  #barrier = false;
  /** A protocol error, answered once every command parsed before it has been dispatched. */
  #protocolError: ProtocolError | null = null;
  readonly closed: Promise<void>;

  constructor(socket: Socket, host: ConnectionHost, id: number) {
    this.#socket = socket;
    this.#host = host;
    const cfg = host.options.config;
    this.#parser = new RespParser({ maxBulkLen: cfg.protoMaxBulkLen, maxMultibulkLen: cfg.protoMaxMultibulkLen });
    const now = Date.now();
    const authenticated = cfg.requirepass === null || cfg.requirepass === "";
    this.#parser.authPending = !authenticated;
    this.client = {
      id,
      name: null,
      db: 0,
      proto: 2,
      authenticated,
      addr: `${socket.remoteAddress}:${socket.remotePort}`,
      laddr: `${socket.localAddress}:${socket.localPort}`,
      createdAt: now,
      lastCommandAt: now,
      lastCommand: "NULL",
      inMulti: false,
      watching: 0,
    };
    this.#ctx = { client: this.client, server: host };
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("drain", () => this.#maybeResume());
    socket.on("error", () => socket.destroy());
    socket.on("end", () => {
      this.#peerEnded = true;
      this.#flush();
    });
    this.closed = new Promise((resolve) =>
      socket.once("close", () => {
        this.#stopped = true;
        this.#ended = true;
        this.#unwatchAll();
        this.#replies.notifyIdle();
        resolve();
      }),
    );
  }

  /** Stop reading, let pending commands reply, then end the socket (server close). */
  async shutdown(): Promise<void> {
    this.#stopped = true;
    this.#socket.pause();
    if (this.#replies.inflight > 0) await this.#replies.whenIdle();
    this.#end(FIN_WAIT_MS);
    await this.closed;
  }

  #onData(chunk: Buffer): void {
    try {
      this.#consume(chunk);
    } catch (e) {
      // A bug must cost this connection, never the server: answer what we can, then close.
      this.#host.options.logger.error({ err: e, client: this.client.id }, "RESP connection failed");
      this.#stopped = true;
      this.#replies.push(errorReply(e), this.client.proto, true);
      this.#flush();
    }
  }

  #consume(chunk: Buffer): void {
    if (this.#stopped || this.#protocolError) return;
    try {
      this.#parser.feed(chunk, this.#held);
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      this.#protocolError = e;
    }
    this.#dispatchHeld();
  }

  /**
   * Dispatch parsed commands in order until a barrier (see #exec) or the memory bound holds the rest
   * back (resumed by #maybeResume).
   */
  #dispatchHeld(): void {
    for (;;) {
      while (this.#heldAt < this.#held.length && !this.#barrier && !this.#stopped && !this.#overBound()) {
        const args = this.#held[this.#heldAt]!;
        this.#held[this.#heldAt++] = EMPTY_ARGS;
        this.#dispatch(args);
        // Encoded now (not yet written: the read's replies still leave in one write) so that
        // #overBound sees their size.
        if (!this.#ended) this.#replies.collect();
      }
      if (this.#heldAt < this.#held.length) break;
      this.#held = [];
      this.#heldAt = 0;
      if (!this.#resumeParser()) break;
    }
    if (this.#heldAt >= this.#held.length) {
      const perr = this.#protocolError;
      if (perr && !this.#stopped) {
        this.#host.protocolError();
        this.#stopped = true;
        this.#replies.push(err(`ERR ${perr.message}`), this.client.proto, true);
      }
    }
    this.#flush();
    this.#updateReading();
  }

  /**
   * The parser stopped at a header beyond the unauthenticated limits and every command before it has
   * run (none held, no barrier): refuse it if the client must still authenticate, else parse on.
   * True if parsing resumed (it may have produced commands to dispatch).
   */
  #resumeParser(): boolean {
    if (this.#parser.stalled === null || this.#barrier || this.#stopped || this.#protocolError) return false;
    if (authRequired(this.client, this.#host.options.config.requirepass)) {
      this.#protocolError = this.#parser.fail();
      return false;
    }
    // Authenticated for good (nothing takes it back); without a password now, only for this request.
    if (this.client.authenticated) this.#parser.authPending = false;
    try {
      this.#parser.resume(this.#held);
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      this.#protocolError = e;
    }
    return true;
  }

  /** More replies pending or bytes waiting than the bounds allow: dispatch and reading stop. */
  #overBound(): boolean {
    return this.#replies.inflight > MAX_INFLIGHT || this.#valuesBehind >= MAX_VALUES_BEHIND || this.#socket.writableLength + this.#replies.bytes > MAX_OUTPUT;
  }

  #updateReading(): void {
    if (this.#stopped) return;
    const backlog = this.#replies.inflight + this.#held.length - this.#heldAt;
    // While the parser is stopped for authentication nothing more is read: it would only pile up.
    const stalled = this.#parser.stalled !== null;
    if (!this.#paused) {
      if (backlog > MAX_INFLIGHT || stalled || this.#overBound()) {
        this.#paused = true;
        this.#socket.pause();
      }
    } else if (!this.#protocolError && !stalled && backlog < MAX_INFLIGHT / 2 && this.#socket.writableLength <= MAX_OUTPUT) {
      this.#paused = false;
      this.#socket.resume();
    }
  }

  /** The socket drained or replies were written: dispatch what the bounds held back, read again. */
  #maybeResume(): void {
    if (this.#heldAt < this.#held.length && !this.#barrier && !this.#stopped) this.#dispatchHeld();
    else this.#updateReading();
  }

  #push(reply: Reply | null): Slot {
    return this.#replies.push(reply, this.client.proto);
  }

  #later(p: Promise<Reply>): void {
    const slot = this.#push(null);
    p.then(
      (r) => this.#replies.complete(slot, r),
      (e) => this.#replies.complete(slot, errorReply(e)),
    ).then(() => this.#scheduleFlush());
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // One flush for all the replies that complete in this cascade of promise reactions (a group
    // commit resolves all its writers in one): they share a write. process.nextTick runs once the
    // microtask queue is empty, still in this turn of the event loop: a setImmediate would hold
    // every reply back by one more turn, which under many clients is latency and so throughput.
    process.nextTick(() => {
      this.#flushScheduled = false;
      this.#flush();
      this.#maybeResume();
    });
  }

  #flush(): void {
    if (this.#ended) return;
    this.#replies.write(this.#socket);
    if (this.#replies.closing) this.#end();
    // A half-closed peer sends nothing more: end once every command it sent is answered (a MULTI
    // it never EXECed is dropped, as with any closed connection).
    else if (this.#peerEnded && this.#replies.inflight === 0 && this.#heldAt >= this.#held.length) this.#end();
  }

  #end(stallMs?: number): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#stopped = true; // input read from now on (endSocket keeps reading) is ignored
    endSocket(this.#socket, stallMs);
  }

  // ---- dispatch ----

  #dispatch(args: Buffer[]): void {
    this.#host.commandProcessed();
    const name = args[0]!.toString("latin1").toLowerCase();
    const cmd = this.#host.commands.get(name);
    this.client.lastCommandAt = Date.now();
    if (!cmd) {
      if (this.#multi) this.#multi.failed = true;
      // Redis's wording: the arguments quoted until their text reaches 128 chars.
      let rest = "";
      for (let i = 1; i < args.length && rest.length < 128; i++) rest += `'${cText(args[i]!).slice(0, 128 - rest.length)}' `;
      this.#push(err(`ERR unknown command '${cText(args[0]!).slice(0, 128)}', with args beginning with: ${rest}`));
      return;
    }
    this.client.lastCommand = name;
    if ((cmd.arity > 0 && args.length !== cmd.arity) || args.length < -cmd.arity) {
      return this.#reject(name, `ERR wrong number of arguments for '${name}' command`);
    }
    if (!cmd.noauth && authRequired(this.client, this.#host.options.config.requirepass)) return this.#reject(name, "NOAUTH Authentication required.");
    if (this.#multi && !cmd.txControl) {
      if (cmd.noMulti) {
        this.#multi.failed = true;
        this.#push(err("ERR Command not allowed inside a transaction"));
        return;
      }
      const subError = subcommandArityError(cmd, args);
      if (subError) return this.#reject(name, subError);
      this.#multi.queue.push({ cmd, args: args.map((a) => Buffer.from(a)) });
      this.#push(QUEUED);
      return;
    }
    try {
      switch (cmd.kind) {
        case "read":
          return this.#read(cmd, args);
        case "write":
          return this.#write(cmd, args);
        case "conn":
          return this.#conn(cmd, name, args);
      }
    } catch (e) {
      this.#push(errorReply(e));
    }
  }

  /**
   * A call refused before it runs (arity, authentication) fails an open MULTI. A refused EXEC
   * discards the transaction and its WATCHes, in or out of MULTI, and says so with EXECABORT, as
   * Redis 7 does: a client that sent EXEC must not go on believing a transaction is still open.
   */
  #reject(name: string, error: string): void {
    if (name === "exec") {
      this.#endMulti();
      // Redis quotes the reason without the generic ERR code (NOAUTH keeps its own).
      return void this.#push(err(`EXECABORT Transaction discarded because of: ${error.replace(/^ERR /, "")}`));
    }
    if (this.#multi) this.#multi.failed = true;
    this.#push(err(error));
  }

  #read(cmd: Command, args: Buffer[]): void {
    const db = this.client.db;
    const ks = this.#host.keyspace;
    if (this.#pendingWrites === 0) return void this.#push(this.#runRead(cmd, ks.read(db), args));
    const values = this.#holdValues(replyValues(cmd, args));
    this.#later(
      ks
        .batched((tx) => this.#runRead(cmd, ks.write(db, new TxStore(tx, true)), args))
        .catch(errorReply)
        .finally(() => (this.#valuesBehind -= values)),
    );
  }

  /** Run a read command on `v`; its key lookups count as keyspace hits and misses (as in Redis). */
  #runRead(cmd: Command, v: KeyView, args: Buffer[]): Reply {
    try {
      return cmd.run!(v, args, this.#ctx);
    } finally {
      const c = this.#host.counters;
      c.keyspaceHits += v.hits;
      c.keyspaceMisses += v.misses;
    }
  }

  #write(cmd: Command, args: Buffer[]): void {
    const db = this.client.db;
    const ks = this.#host.keyspace;
    const p = this.#transaction((store) => {
      const v = ks.write(db, store);
      const reply = cmd.run!(v, args, this.#ctx);
      return { reply, dirty: v.dirty };
    }, replyValues(cmd, args));
    this.#later(p);
  }

  /** Count `n` stored values (capped at the budget) against MAX_VALUES_BEHIND; returns what to give back. */
  #holdValues(n: number): number {
    const held = Math.min(n, MAX_VALUES_BEHIND);
    this.#valuesBehind += held;
    return held;
  }

  /**
   * Run `fn` as one transaction (sharing a commit with the other connections' commands of this turn:
   * Keyspace.batched); reply once durable; count the changes for persistence.
   */
  #transaction(fn: (store: TxStore) => { reply: Reply; dirty: number }, replyValues: number): Promise<Reply> {
    this.#pendingWrites++;
    this.#host.inflightWrites++;
    const values = this.#holdValues(replyValues);
    const ks = this.#host.keyspace;
    const p = ks.batched((tx) => {
      const store = new TxStore(tx);
      return { ...fn(store), expired: store.expired };
    });
    const done = p.then(
      ({ reply, dirty, expired }) => {
        if (dirty > 0) this.#host.options.persistence.noteChanges(dirty);
        // Keys met expired and removed by this command (lazily, as Redis counts them too); the
        // sweep counts its own. Counted once committed: a retried or failed attempt counts nothing.
        ks.expiredKeys += expired;
        return reply;
      },
      (e) => errorReply(e),
    );
    const settled = done.finally(() => {
      this.#pendingWrites--;
      this.#host.inflightWrites--;
      this.#valuesBehind -= values;
    });
    this.#lastWrite = settled;
    return settled;
  }

  #conn(cmd: Command, name: string, args: Buffer[]): void {
    switch (name) {
      case "quit":
        this.#stopped = true;
        this.#replies.push(OK, this.client.proto, true);
        return;
      case "multi":
        if (this.#multi) return void this.#push(err("ERR MULTI calls can not be nested"));
        this.#multi = { queue: [], failed: false };
        this.client.inMulti = true;
        return void this.#push(OK);
      case "discard":
        if (!this.#multi) return void this.#push(err("ERR DISCARD without MULTI"));
        this.#endMulti();
        return void this.#push(OK);
      case "exec":
        return this.#exec();
      case "watch":
        return this.#watch(args);
      case "unwatch":
        this.#unwatchAll();
        return void this.#push(OK);
      case "shutdown":
        return this.#shutdownCommand(args);
    }
    if (!cmd.immediate && this.#pendingWrites > 0) {
      // INFO, SAVE, BACKUP... after this connection's writes: they must see (and save) them.
      return this.#later(this.#lastWrite.then(() => cmd.conn!(this.#ctx, args)));
    }
    const r = cmd.conn!(this.#ctx, args);
    if (r instanceof Promise) this.#later(r);
    else this.#push(r);
  }

  #shutdownCommand(args: Buffer[]): void {
    const mode = shutdownMode(args);
    if (typeof mode !== "string") return void this.#push(mode);
    // As in Redis, a successful SHUTDOWN gets no reply: the connection closes.
    this.#stopped = true;
    this.#host.shutdown(mode);
  }

  #endMulti(): void {
    this.#multi = null;
    this.client.inMulti = false;
    this.#unwatchAll();
  }

  #watch(args: Buffer[]): void {
    if (this.#multi) return void this.#push(err("ERR WATCH inside MULTI is not allowed"));
    const ks = this.#host.keyspace;
    const db = this.client.db;
    const view = ks.read(db);
    const added: Watched[] = [];
    for (let i = 1; i < args.length; i++) {
      const key = Buffer.from(args[i]!);
      ks.watch(db, key);
      const w: Watched = { db, key, mark: ks.mark(key, view) };
      added.push(w);
      this.#watched.push(w);
    }
    this.client.watching = this.#watched.length;
    if (this.#host.inflightWrites === 0) return void this.#push(OK);
    // A write queued before this WATCH may be applied (its version bump counted in the mark) but not
    // yet published: the mark would not match what the client reads next. So mark the keys again in
    // the write queue, behind those writes, from the state they leave, and reply once that state is
    // published. Pipelined reads after the WATCH wait too (it counts as a pending write).
    this.#pendingWrites++;
    const settled = ks
      .batched((tx): Reply => {
        const inQueue = ks.write(db, new TxStore(tx, true));
        for (const w of added) w.mark = ks.mark(w.key, inQueue);
        return OK;
      })
      .catch(errorReply);
    this.#lastWrite = settled.finally(() => this.#pendingWrites--);
    this.#later(settled);
  }

  #unwatchAll(): void {
    const ks = this.#host.keyspace;
    for (const w of this.#watched) ks.unwatch(w.db, w.key);
    this.#watched = [];
    this.client.watching = 0;
  }

  #exec(): void {
    const multi = this.#multi;
    if (!multi) return void this.#push(err("ERR EXEC without MULTI"));
    const watched = this.#watched;
    this.#watched = [];
    this.#multi = null;
    this.client.inMulti = false;
    const release = () => {
      for (const w of watched) this.#host.keyspace.unwatch(w.db, w.key);
    };
    if (multi.failed) {
      release();
      return void this.#push(err("EXECABORT Transaction discarded because of previous errors."));
    }
    const plan = planExec(multi.queue, this.#ctx);
    // Commands after EXEC run in the db its SELECTs leave. Without WATCH, EXEC cannot abort now, so
    // that db is known and set at once. With WATCH it is known only when the transaction runs:
    // later commands of this connection wait for it (a barrier), which costs only such EXECs.
    // The other connection commands (CLIENT SETNAME, HELLO, AUTH, CONFIG SET...) change their state
    // only when the transaction runs, so they are a barrier too.
    if (!plan.selects || watched.length === 0) this.client.db = plan.finalDb;
    else this.#barrier = true;
    if (plan.connState) this.#barrier = true;
    const ks = this.#host.keyspace;
    const runRead = (cmd: Command, v: KeyView, args: Buffer[]) => this.#runRead(cmd, v, args);
    const onRun = () => {
      if (this.#barrier) this.client.db = plan.finalDb;
    };
    const p = this.#transaction((store) => runExec(plan, watched, ks, store, this.#ctx, runRead, onRun), execReplyValues(plan));
    this.#later(p.finally(release));
    if (this.#barrier) {
      void p.finally(() => {
        this.#barrier = false;
        this.#dispatchHeld();
      });
    }
  }
}
