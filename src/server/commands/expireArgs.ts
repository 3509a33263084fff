/**
 * expireArgs: turning EX/PX/EXAT/PXAT arguments into an absolute expiry in ms, with Redis 7's checks
 * and messages ("invalid expire time in '<cmd>' command" for <= 0 or overflowing values).
 */
import { RespError } from "../resp/RespError.js";
import { int64Arg, INT64_MAX } from "./args.js";

export type ExpireUnit = "EX" | "PX" | "EXAT" | "PXAT";

/** Absolute ms for SET/GETEX options: the value must be > 0. */
export function expireOption(unit: ExpireUnit, arg: Buffer, cmd: string, now: number): number {
  const n = int64Arg(arg);
  const bad = new RespError(`ERR invalid expire time in '${cmd}' command`);
  if (n <= 0n) throw bad;
  const seconds = unit === "EX" || unit === "EXAT";
  if (seconds && n > INT64_MAX / 1000n) throw bad;
  let ms = seconds ? n * 1000n : n;
  if (unit === "EX" || unit === "PX") ms += BigInt(now);
  if (ms > INT64_MAX) throw bad;
  return clampMs(ms);
}

/**
 * Absolute ms for EXPIRE/PEXPIRE/EXPIREAT/PEXPIREAT: any value (a past one deletes the key), only
 * overflow is an error.
 */
export function expireCommandArg(arg: Buffer, seconds: boolean, relative: boolean, cmd: string, now: number): number {
  const n = int64Arg(arg);
  const bad = new RespError(`ERR invalid expire time in '${cmd}' command`);
  if (seconds && (n > INT64_MAX / 1000n || n < -INT64_MAX / 1000n)) throw bad;
  let ms = seconds ? n * 1000n : n;
  if (relative) ms += BigInt(now);
  if (ms > INT64_MAX) throw bad;
  return ms <= 0n ? 1 : clampMs(ms);
}

/** Expiries are stored as u64 ms; past 2^53 (year 287396) they are kept at 2^53, which is forever. */
function clampMs(ms: bigint): number {
  return ms > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Math.max(1, Number(ms));
}
