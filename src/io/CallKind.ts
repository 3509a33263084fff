/**
 * CallKind: the names of every FileSystem and FileHandle method, shared by the backends that count
 * or intercept calls (FaultFileSystem, CrashFileSystem).
 *
 * Keeping one list means "the n-th call" means the same thing in both backends, so a call number
 * found with one (say, the call at which a fault was injected) can be replayed against the other.
 */
export const CALL_KINDS = [
  "open",
  "stat",
  "mkdir",
  "list",
  "rename",
  "link",
  "remove",
  "removeDir",
  "syncDir",
  "readFile",
  "read",
  "write",
  "sync",
  "syncAsync",
  "size",
  "truncate",
  "close",
] as const;

export type CallKind = (typeof CALL_KINDS)[number];

/** What an `onCall` hook is told about each call, before the call runs. */
export interface CallInfo {
  kind: CallKind;
  /** 1-based index of this call among all calls counted by the backend. */
  call: number;
  /** 1-based index of this call among calls of the same kind. */
  kindCall: number;
  /** The path the call is about (a handle's path for handle methods; `from` for rename and link). */
  path: string;
}

/** The syscall node would name in an error raised by each kind of call. */
export const SYSCALL_OF: Readonly<Record<CallKind, string>> = {
  open: "open",
  stat: "stat",
  mkdir: "mkdir",
  list: "scandir",
  rename: "rename",
  link: "link",
  remove: "unlink",
  removeDir: "rmdir",
  syncDir: "fsync",
  readFile: "read",
  read: "read",
  write: "write",
  sync: "fdatasync",
  syncAsync: "fdatasync",
  size: "fstat",
  truncate: "ftruncate",
  close: "close",
};

export function zeroCounts(): Record<CallKind, number> {
  const counts = {} as Record<CallKind, number>;
  for (const k of CALL_KINDS) counts[k] = 0;
  return counts;
}
