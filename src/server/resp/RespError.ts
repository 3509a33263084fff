/**
 * RespError: a command failure that becomes an error reply. `reply` is the whole error line after
 * '-' and starts with the Redis error code (ERR, WRONGTYPE, NOAUTH, WRONGPASS, EXECABORT, ...).
 */
export class RespError extends Error {
  constructor(readonly reply: string) {
    super(reply);
    this.name = "RespError";
  }
}

export const WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value";
export const NOT_INTEGER = "ERR value is not an integer or out of range";
export const NOT_FLOAT = "ERR value is not a valid float";
export const SYNTAX = "ERR syntax error";

export function wrongArity(name: string): RespError {
  return new RespError(`ERR wrong number of arguments for '${name}' command`);
}
