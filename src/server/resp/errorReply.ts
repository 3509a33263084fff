/**
 * errorReply: the reply for anything a command threw. A RespError is its own reply; a KeelError is
 * worded by its code (INVALID_ARGUMENT as the plain message Redis clients expect); anything else
 * is an internal error, never a dropped connection.
 */
import { isKeelError } from "../../errors.js";
import { err, type Reply } from "./Reply.js";
import { RespError } from "./RespError.js";

/** The error reply for anything a command threw: RespError as is, KeelError by code. */
export function errorReply(e: unknown): Reply {
  if (e instanceof RespError) return err(e.reply);
  if (isKeelError(e)) {
    if (e.code === "INVALID_ARGUMENT") return err(`ERR ${e.message}`);
    return err(`ERR KeelDB ${e.code}: ${e.message}`);
  }
  return err(`ERR internal error: ${e instanceof Error ? e.message : String(e)}`);
}
