/**
 * ownRecord: plain objects keyed by names users choose (sub-database names). An assignment
 * `obj["__proto__"] = v` sets the prototype instead of a key; these always make an own property,
 * and the object keeps its ordinary prototype (reports compare equal to object literals).
 */
export function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
}

export function recordOf<T>(m: ReadonlyMap<string, T>): Record<string, T> {
  const o: Record<string, T> = {};
  for (const [k, v] of m) setOwn(o, k, v);
  return o;
}
