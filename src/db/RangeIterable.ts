/**
 * RangeIterable: a lazy, re-iterable result of getRange/getKeys. Each iteration reads one
 * snapshot from start to end; `asArray` collects it.
 */
export class RangeIterable<T> implements Iterable<T> {
  #source: () => Iterator<T>;

  constructor(source: () => Iterator<T>) {
    this.#source = source;
  }

  [Symbol.iterator](): Iterator<T> {
    return this.#source();
  }

  map<U>(fn: (v: T) => U): RangeIterable<U> {
    const src = this.#source;
    return new RangeIterable(function* () {
      const it = src();
      try {
        for (let r = it.next(); !r.done; r = it.next()) yield fn(r.value);
      } finally {
        it.return?.();
      }
    });
  }

  filter(fn: (v: T) => boolean): RangeIterable<T> {
    const src = this.#source;
    return new RangeIterable(function* () {
      const it = src();
      try {
        for (let r = it.next(); !r.done; r = it.next()) if (fn(r.value)) yield r.value;
      } finally {
        it.return?.();
      }
    });
  }

  get asArray(): T[] {
    return Array.from(this);
  }
}
