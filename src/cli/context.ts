/**
 * context: what every command's action gets (its Output, an AbortSignal for Ctrl-C, progress
 * bars), and the wrapper that turns a command's result or error into the process's exit status.
 */
import type { Command } from "commander";
import { ExitCode, exitCodeFor, type ExitCodeValue } from "./exitCodes.js";
import { Output } from "./output.js";
import { Progress, progressFor } from "./progress.js";

let exitStatus: number = ExitCode.OK;

/** The exit status the last command set. */
export function getExitStatus(): number {
  return exitStatus;
}

export function setExitStatus(code: number): void {
  exitStatus = code;
}

export class Context {
  readonly out: Output;
  readonly #abort = new AbortController();
  readonly #progress: Progress[] = [];
  #onSignal: (() => void) | null = null;
  #signals = 0;

  constructor(json: boolean) {
    this.out = new Output(json);
  }

  /**
   * Aborted by the first Ctrl-C (SIGINT), SIGTERM or SIGHUP (a closed terminal or ssh session), so
   * that long work stops and removes its partial output; a second one exits at once. A command
   * reads it before its first slow step (an open replays the log): until then a signal kills.
   */
  get signal(): AbortSignal {
    if (!this.#onSignal) {
      this.#onSignal = () => {
        this.#signals++;
        if (this.#signals > 1) process.exit(ExitCode.INTERRUPTED);
        this.out.note("keel: interrupted; stopping (press Ctrl-C again to quit at once)");
        this.#abort.abort("interrupted (SIGINT, SIGTERM or SIGHUP)");
      };
      process.on("SIGINT", this.#onSignal);
      process.on("SIGTERM", this.#onSignal);
      process.on("SIGHUP", this.#onSignal);
    }
    return this.#abort.signal;
  }

  /** Whether a signal asked this command to stop (it may have finished its work anyway). */
  get interrupted(): boolean {
    return this.#signals > 0;
  }

  /** A progress bar for long work: drawn only on a terminal and only after a second. */
  progress(label: string): Progress {
    const p = progressFor(this.out, label);
    this.#progress.push(p);
    return p;
  }

  dispose(): void {
    for (const p of this.#progress) p.stop();
    if (this.#onSignal) {
      process.off("SIGINT", this.#onSignal);
      process.off("SIGTERM", this.#onSignal);
      process.off("SIGHUP", this.#onSignal);
      this.#onSignal = null;
    }
  }
}

/**
 * Wrap a command handler: build its Context from the global options (--json), run it, print its
 * error if it throws, and set the exit status (the handler's return value, 0 when it returns none).
 */
export function action<A extends unknown[]>(fn: (ctx: Context, ...args: A) => Promise<ExitCodeValue | void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    const cmd = args[args.length - 1] as Command;
    const json = !!(cmd.optsWithGlobals() as { json?: boolean }).json;
    const ctx = new Context(json);
    try {
      const code = await fn(ctx, ...args);
      // A signal after the work's last abort check: "stopping" was printed, yet nothing stopped.
      if (ctx.interrupted) ctx.out.note("keel: the work had already finished when the interrupt came: its result is complete and kept");
      setExitStatus(code ?? ExitCode.OK);
    } catch (e) {
      ctx.dispose(); // clear any bar before the message
      ctx.out.error(e);
      setExitStatus(exitCodeFor(e));
    } finally {
      ctx.dispose();
    }
  };
}
