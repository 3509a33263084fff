/**
 * Little-endian stores into any Uint8Array without Buffer's per-call range checks: the page
 * encoders call them per field, and a Buffer method call costs several times the stores. Stores
 * past the end are dropped by the typed array, so callers check the size first (NodeCodec: fits).
 */

/** Store `v` (0 <= v < 2^16) little-endian at `offset` (no range checks: the caller sized the buffer). */
export function putU16(target: Uint8Array, offset: number, v: number): void {
  target[offset] = v;
  target[offset + 1] = v >>> 8;
}

/** Store `v` (0 <= v < 2^32) little-endian at `offset` (no range checks: the caller sized the buffer). */
export function putU32(target: Uint8Array, offset: number, v: number): void {
  target[offset] = v;
  target[offset + 1] = v >>> 8;
  target[offset + 2] = v >>> 16;
  target[offset + 3] = v >>> 24;
}
