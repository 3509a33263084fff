/**
 * CrashFileHandle: a handle of CrashFileSystem. Writes go to the volatile image and mark their sectors
 * dirty; sync/syncAsync copy the file to its durable image (fdatasync).
 *
 * Invariants: a handle belongs to one crash generation: after crash() every call on it fails with EIO
 * (its file system has been replaced by the post-crash state); a syncAsync whose promise has not settled
 * when the power is cut rejects with SimulatedCrash; every call is counted by the host first (so a
 * power cut can land at any call).
 */
import { type CallKind, SYSCALL_OF } from "./CallKind.js";
import { errnoError } from "./errnoError.js";
import type { FileHandle } from "./FileSystem.js";
import { type FileNode, markDirty, syncFile } from "./CrashVolume.js";
import { SimulatedCrash } from "./SimulatedCrash.js";

/** What a handle needs from its file system: call counting, the crash generation, the sector size. */
export interface HandleHost {
  call<T>(kind: CallKind, path: string, fn: () => T): T;
  readonly generation: number;
  readonly frozen: boolean;
  readonly sectorSize: number;
  tick(): number;
  lastCall(): { call: number; kind: CallKind; path: string };
}

function checkRange(buffer: Uint8Array, offset: number, length: number, position: number): void {
  const ok =
    Number.isInteger(offset) && Number.isInteger(length) && Number.isInteger(position) &&
    offset >= 0 && length >= 0 && position >= 0 && offset + length <= buffer.length;
  if (!ok) throw new RangeError(`out of range: offset ${offset}, length ${length}, position ${position}, buffer ${buffer.length}`);
}

export class CrashFileHandle implements FileHandle {
  readonly path: string;
  #host: HandleHost;
  #node: FileNode;
  #writable: boolean;
  #generation: number;
  #closed = false;

  constructor(host: HandleHost, path: string, node: FileNode, writable: boolean) {
    this.#host = host;
    this.path = path;
    this.#node = node;
    this.#writable = writable;
    this.#generation = host.generation;
  }

  #check(kind: CallKind, write = false): FileNode {
    if (this.#generation !== this.#host.generation) {
      throw errnoError("EIO", SYSCALL_OF[kind], this.path, "handle invalidated by a simulated crash; reopen the file");
    }
    if (this.#closed) throw errnoError("EBADF", SYSCALL_OF[kind], this.path, "handle is closed");
    if (write && !this.#writable) throw errnoError("EBADF", SYSCALL_OF[kind], this.path, "handle is read-only");
    return this.#node;
  }

  read(buffer: Uint8Array, offset: number, length: number, position: number): number {
    return this.#host.call("read", this.path, () => {
      const f = this.#check("read");
      checkRange(buffer, offset, length, position);
      const n = Math.max(0, Math.min(length, f.currentSize - position));
      if (n > 0) f.current.read(position, buffer, offset, n);
      return n;
    });
  }

  write(buffer: Uint8Array, offset: number, length: number, position: number): void {
    this.#host.call("write", this.path, () => {
      const f = this.#check("write", true);
      checkRange(buffer, offset, length, position);
      if (length === 0) return;
      f.current.write(position, buffer, offset, length);
      f.currentSize = Math.max(f.currentSize, position + length);
      markDirty(f, position, position + length, this.#host.sectorSize);
      f.log.push({ type: "write", position, data: buffer.slice(offset, offset + length) });
      f.mtimeMs = this.#host.tick();
    });
  }

  sync(): void {
    this.#host.call("sync", this.path, () => syncFile(this.#check("sync"), this.#host.sectorSize));
  }

  syncAsync(): Promise<void> {
    try {
      this.#host.call("syncAsync", this.path, () => syncFile(this.#check("syncAsync"), this.#host.sectorSize));
    } catch (e) {
      return Promise.reject(e);
    }
    // The caller learns of the sync a turn later, as with libuv's thread pool; if the power is cut
    // meanwhile the process never learns it, so the promise rejects instead of acknowledging.
    const generation = this.#host.generation;
    const { call, kind, path } = this.#host.lastCall();
    return new Promise((resolve, reject) => {
      setImmediate(() => {
        if (this.#host.frozen || this.#host.generation !== generation) reject(new SimulatedCrash(call, kind, path));
        else resolve();
      });
    });
  }

  size(): number {
    return this.#host.call("size", this.path, () => this.#check("size").currentSize);
  }

  truncate(length: number): void {
    this.#host.call("truncate", this.path, () => {
      const f = this.#check("truncate", true);
      if (!Number.isInteger(length) || length < 0) throw errnoError("EINVAL", "ftruncate", this.path);
      if (length < f.currentSize) {
        // Bytes cut off differ from the durable image wherever it still holds them.
        const sector = this.#host.sectorSize;
        markDirty(f, Math.floor(length / sector) * sector, Math.min(f.currentSize, f.durableSize), sector);
        f.current.zeroFrom(length);
      }
      f.currentSize = length;
      f.log.push({ type: "truncate", length });
      f.mtimeMs = this.#host.tick();
    });
  }

  close(): void {
    this.#host.call("close", this.path, () => {
      if (this.#generation !== this.#host.generation) return; // nothing left to release after a crash
      if (this.#closed) throw errnoError("EBADF", "close", this.path, "handle is already closed");
      this.#closed = true;
    });
  }
}
