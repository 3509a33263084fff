/**
 * errnoError: build an error shaped like the ones node:fs throws (`code`, negative `errno`,
 * `syscall`, `path`), so that the simulated backends are indistinguishable from NodeFileSystem to
 * the engine's error mapping (`ioError` branches on `code` only).
 */
import { constants } from "node:os";

const DESCRIPTIONS: Readonly<Record<string, string>> = {
  EIO: "i/o error",
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  EFBIG: "file too large",
  EROFS: "read-only file system",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  ENOENT: "no such file or directory",
  EEXIST: "file already exists",
  ENOTDIR: "not a directory",
  EISDIR: "illegal operation on a directory",
  ENOTEMPTY: "directory not empty",
  EBADF: "bad file descriptor",
  EINVAL: "invalid argument",
};

export function errnoError(code: string, syscall: string, path?: string, note?: string): NodeJS.ErrnoException {
  const description = DESCRIPTIONS[code] ?? "error";
  const where = path === undefined ? "" : ` '${path}'`;
  const e: NodeJS.ErrnoException = new Error(`${code}: ${description}, ${syscall}${where}${note ? ` (${note})` : ""}`);
  e.code = code;
  const n = (constants.errno as Record<string, number | undefined>)[code];
  e.errno = n === undefined ? -1 : -n;
  e.syscall = syscall;
  if (path !== undefined) e.path = path;
  return e;
}
