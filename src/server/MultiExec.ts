/**
 * MultiExec: what EXEC runs, apart from the connection that queued it (Connection.ts keeps the
 * MULTI/WATCH state and the barrier).
 *
 * Invariants:
 * - The db of each queued command is fixed when EXEC is planned, following the SELECTs inside the
 *   MULTI; a SELECT that fails is that command's error reply and changes nothing.
 * - runExec runs in one transaction: a WATCHed key changed since its mark aborts the whole EXEC
 *   (null array, nothing written); a command error is that command's reply only if it wrote
 *   nothing, otherwise the whole EXEC is undone (never half committed).
 */
import { replyValues, type Command } from "./commands/Command.js";
import type { CommandContext } from "./commands/CommandContext.js";
import { selectIndex } from "./commands/serverCommands.js";
import { errorReply } from "./resp/errorReply.js";
import type { Keyspace, WatchMark } from "./keyspace/Keyspace.js";
import type { KeyView } from "./keyspace/KeyView.js";
import type { TxStore } from "./keyspace/Store.js";
import { arr, err, NULL_ARRAY, OK, type Reply } from "./resp/Reply.js";
import { RespError } from "./resp/RespError.js";

/** A command queued inside MULTI (its arguments copied out of the read buffer). */
export interface Queued {
  readonly cmd: Command;
  readonly args: Buffer[];
}

/** A WATCHed key and what it was when watched. */
export interface Watched {
  readonly db: number;
  readonly key: Buffer;
  mark: WatchMark;
}

export interface ExecStep {
  q: Queued;
  /** The db the command runs in. */
  db: number;
  /** Set for a SELECT: its reply (OK, or its error). */
  select?: Reply;
}

export interface ExecPlan {
  steps: ExecStep[];
  /** The db the SELECTs inside leave for the commands after EXEC. */
  finalDb: number;
  /** A SELECT is inside. */
  selects: boolean;
  /** A connection command (CLIENT, HELLO, AUTH, CONFIG...) is inside: it changes its state only when run. */
  connState: boolean;
}

export function planExec(queue: readonly Queued[], ctx: CommandContext): ExecPlan {
  const steps: ExecStep[] = [];
  let db = ctx.client.db;
  for (const q of queue) {
    if (q.cmd.name === "select") {
      try {
        db = selectIndex(ctx, q.args[1]!);
        steps.push({ q, db, select: OK });
      } catch (e) {
        steps.push({ q, db, select: errorReply(e) });
      }
    } else steps.push({ q, db });
  }
  return {
    steps,
    finalDb: db,
    selects: steps.some((e) => e.select !== undefined),
    connState: steps.some((e) => e.select === undefined && e.q.cmd.kind === "conn"),
  };
}

/**
 * The body of EXEC's transaction. `onRun` is called once the WATCHed keys are found unchanged,
 * before the first command runs; `runRead` runs a read command (counting keyspace hits).
 */
export function runExec(
  plan: ExecPlan,
  watched: readonly Watched[],
  ks: Keyspace,
  store: TxStore,
  ctx: CommandContext,
  runRead: (cmd: Command, v: KeyView, args: Buffer[]) => Reply,
  onRun: () => void,
): { reply: Reply; dirty: number } {
  const now = Date.now();
  for (const w of watched) if (ks.changedSince(w.key, w.mark, ks.write(w.db, store, now))) return { reply: NULL_ARRAY, dirty: 0 };
  onRun();
  const replies: Reply[] = [];
  let dirty = 0;
  for (const { q, db, select } of plan.steps) {
    const writesBefore = store.writes;
    try {
      if (select !== undefined) replies.push(select);
      else if (q.cmd.kind === "conn") {
        const r = q.cmd.conn ? q.cmd.conn(ctx, q.args) : err("ERR Command not allowed inside a transaction");
        replies.push(r instanceof Promise ? err("ERR Command not allowed inside a transaction") : r);
      } else if (q.cmd.kind === "read") {
        replies.push(runRead(q.cmd, ks.write(db, store, now), q.args));
      } else {
        const v = ks.write(db, store, now);
        replies.push(q.cmd.run!(v, q.args, ctx));
        dirty += v.dirty;
      }
    } catch (e) {
      if (!(e instanceof RespError) || store.writes !== writesBefore) throw e;
      replies.push(err(e.reply));
    }
  }
  return { reply: arr(replies), dirty };
}

/** The stored values an EXEC's reply may carry: those of the commands it runs. */
export function execReplyValues(plan: ExecPlan): number {
  let n = 0;
  for (const e of plan.steps) if (e.select === undefined && e.q.cmd.kind !== "conn") n += replyValues(e.q.cmd, e.q.args);
  return n;
}
