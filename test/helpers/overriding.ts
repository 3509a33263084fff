/**
 * `target` with some of its methods replaced (the rest bound to it): a real FileSystem or
 * FileHandle that does one thing differently at one moment, for tests of races that no real
 * interleaving can be made to hit on demand.
 */
export function overriding<T extends object>(target: T, overrides: Partial<T>): T {
  return new Proxy(target, {
    get(t, prop, receiver) {
      if (Object.hasOwn(overrides, prop)) return (overrides as Record<string | symbol, unknown>)[prop];
      const v = Reflect.get(t, prop, receiver) as unknown;
      return typeof v === "function" ? v.bind(t) : v;
    },
  });
}
