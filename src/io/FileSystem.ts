/**
 * FileSystem: the only door between the engine and storage.
 *
 * No engine code calls node:fs; it calls this interface, so that tests can swap in the
 * fault-injecting backend (FaultFileSystem) and the power-loss simulator (CrashFileSystem).
 *
 * Contract every backend keeps:
 * - `write` writes every byte or throws; `read` returns the bytes read (short only at end of file).
 * - Data written to a file is durable only after `sync()` (or `syncAsync()`) on that handle returns;
 *   `sync` is fdatasync: it also makes the file's size durable.
 * - A directory entry created, renamed or removed is durable only after `syncDir(parent)`.
 * - Errors are thrown as node-style errors with an errno `code` (EIO, ENOSPC, ENOENT, EEXIST...);
 *   the engine maps them to KeelError with `ioError`.
 */
export type OpenMode =
  | "r" // read only; the file must exist
  | "rw" // read and write; the file must exist
  | "create" // read and write; created empty if missing
  | "createExclusive"; // read and write; fails with EEXIST if it exists

export interface FileStat {
  size: number;
  isDirectory: boolean;
  mtimeMs: number;
}

export interface FileHandle {
  readonly path: string;
  /** Read up to `length` bytes at `position` into `buffer[offset..]`; returns the count (short at EOF). */
  read(buffer: Uint8Array, offset: number, length: number, position: number): number;
  /** Write all `length` bytes of `buffer[offset..]` at `position`, or throw. */
  write(buffer: Uint8Array, offset: number, length: number, position: number): void;
  /** fdatasync: written data and the file size reach stable storage. */
  sync(): void;
  /** The same as sync(), without blocking the event loop where the backend can. */
  syncAsync(): Promise<void>;
  /** Current size in bytes. */
  size(): number;
  /** Set the size (shrink or extend with zeros). Durable after sync(). */
  truncate(length: number): void;
  close(): void;
}

export interface FileSystem {
  open(path: string, mode: OpenMode): FileHandle;
  /** undefined when nothing exists at `path`. */
  stat(path: string): FileStat | undefined;
  /** Create the directory and its missing parents; no error if it exists. */
  mkdir(path: string): void;
  /** Names (not paths) of the entries of a directory, sorted. */
  list(dir: string): string[];
  /** Atomically replace `to` by `from` (POSIX rename). Durable after syncDir of both parents. */
  rename(from: string, to: string): void;
  /**
   * Give the file `from` a second name `to` (POSIX link(2)); EEXIST if `to` exists. The no-replace
   * way to publish a finished file, where rename would silently replace one that appeared
   * meanwhile. Durable after syncDir(parent of `to`). File systems without hard links (FAT,
   * some network mounts) refuse it (EPERM, ENOTSUP).
   */
  link(from: string, to: string): void;
  /** Remove a file; no error if it is missing. */
  remove(path: string): void;
  /** Remove a directory and everything below it; no error if it is missing. */
  removeDir(path: string): void;
  /** fsync a directory so that entries created, renamed or removed in it are durable. */
  syncDir(path: string): void;
  /** Read a whole small file (metadata, lock files). */
  readFile(path: string): Uint8Array;
  /**
   * The id of the current boot of the machine whose page cache holds the files ("" when unknown).
   * It changes exactly when unsynced writes may have been lost (a power cut or a crash of the
   * OS); a process crash keeps it. The crash backend gives each crash() a new one.
   */
  bootId(): string;
  /**
   * Open an existing file as this thread's claim on it (a LOCK): until the returned handle is
   * closed, or the process ends, isClaimed(path) is true in every thread of this process. Worker
   * threads share the pid, so a pid alone cannot tell which thread holds a LOCK, or whether one
   * still does; the claim can.
   */
  claim(path: string): FileHandle;
  /**
   * Whether some thread of this process holds a claim (see claim) on the file now at `path`.
   * undefined when the backend cannot tell (NodeFileSystem without /proc).
   */
  isClaimed(path: string): boolean | undefined;
}
