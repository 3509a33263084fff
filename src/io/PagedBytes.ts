/**
 * PagedBytes: a sparse, growable byte array stored as a map of fixed-size chunks.
 *
 * The power-loss simulator keeps two images of every file (durable and volatile) and copies them per
 * crash seed; a chunk map keeps that cheap for files of several MB and never stores a byte per
 * number. A missing chunk reads as zeros, which is also how a hole in a sparse file reads.
 *
 * Invariant: the store has no length of its own; callers keep the file size and call `zeroFrom(size)`
 * when a file shrinks, so that bytes past the size are always zero (a later extension reads zeros).
 */
export const CHUNK_SIZE = 64 * 1024;

export class PagedBytes {
  #chunks = new Map<number, Uint8Array>();

  /** Copy `length` bytes at `position` into `dst[offset..]` (zeros where nothing was written). */
  read(position: number, dst: Uint8Array, offset: number, length: number): void {
    let done = 0;
    while (done < length) {
      const pos = position + done;
      const index = Math.floor(pos / CHUNK_SIZE);
      const within = pos - index * CHUNK_SIZE;
      const n = Math.min(CHUNK_SIZE - within, length - done);
      const chunk = this.#chunks.get(index);
      if (chunk) dst.set(chunk.subarray(within, within + n), offset + done);
      else dst.fill(0, offset + done, offset + done + n);
      done += n;
    }
  }

  /** Store `src[offset..offset+length]` at `position`. */
  write(position: number, src: Uint8Array, offset: number, length: number): void {
    let done = 0;
    while (done < length) {
      const pos = position + done;
      const index = Math.floor(pos / CHUNK_SIZE);
      const within = pos - index * CHUNK_SIZE;
      const n = Math.min(CHUNK_SIZE - within, length - done);
      let chunk = this.#chunks.get(index);
      if (!chunk) {
        chunk = new Uint8Array(CHUNK_SIZE);
        this.#chunks.set(index, chunk);
      }
      chunk.set(src.subarray(offset + done, offset + done + n), within);
      done += n;
    }
  }

  /** Copy the range [position, position+length) from another store, chunk to chunk. */
  copyFrom(other: PagedBytes, position: number, length: number): void {
    let done = 0;
    while (done < length) {
      const pos = position + done;
      const index = Math.floor(pos / CHUNK_SIZE);
      const within = pos - index * CHUNK_SIZE;
      const n = Math.min(CHUNK_SIZE - within, length - done);
      const src = other.#chunks.get(index);
      let dst = this.#chunks.get(index);
      if (src) {
        if (!dst) {
          dst = new Uint8Array(CHUNK_SIZE);
          this.#chunks.set(index, dst);
        }
        dst.set(src.subarray(within, within + n), within);
      } else if (dst) {
        dst.fill(0, within, within + n);
      }
      done += n;
    }
  }

  /** Zero every byte at or after `position`, releasing whole chunks. */
  zeroFrom(position: number): void {
    const first = Math.floor(position / CHUNK_SIZE);
    for (const index of [...this.#chunks.keys()]) {
      if (index > first || (index === first && position % CHUNK_SIZE === 0)) this.#chunks.delete(index);
    }
    const chunk = this.#chunks.get(first);
    if (chunk) chunk.fill(0, position - first * CHUNK_SIZE);
  }

  clone(): PagedBytes {
    const copy = new PagedBytes();
    for (const [index, chunk] of this.#chunks) copy.#chunks.set(index, chunk.slice());
    return copy;
  }

  /** Bytes held in memory (for tests and counters). */
  get allocatedBytes(): number {
    return this.#chunks.size * CHUNK_SIZE;
  }
}
