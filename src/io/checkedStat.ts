/**
 * checkedStat: FileSystem.stat with its errors coded. `stat` answers undefined for a missing path
 * and throws the OS error for anything else (EIO, EACCES): that error becomes KeelError IO (FULL
 * for a full disk), naming the path, like every other file operation's.
 */
import { ioError } from "../errors.js";
import type { FileStat, FileSystem } from "./FileSystem.js";

export function checkedStat(fs: FileSystem, path: string): FileStat | undefined {
  try {
    return fs.stat(path);
  } catch (e) {
    throw ioError(e, "stat", path);
  }
}
