/**
 * endSocket: end a client socket without cutting off the replies a slow reader is still taking.
 *
 * Invariant: the socket is destroyed FIN_WAIT_MS after every byte was handed to the kernel (if the
 * peer has not closed by then), or once the peer took no byte for `stallMs`; never earlier. Input
 * keeps being read (and ignored by the caller) so the peer's FIN is seen: closing with unread input
 * would send a reset, which can discard replies the peer has not read yet.
 */
import type { Socket } from "node:net";

/** After the last reply is handed to the kernel, how long the peer's FIN is waited for. */
export const FIN_WAIT_MS = 2000;
/** A closing connection whose peer took no byte of its last replies for this long is destroyed. */
export const CLOSE_STALL_MS = 60_000;

export function endSocket(socket: Socket, stallMs = CLOSE_STALL_MS): void {
  socket.end();
  socket.resume();
  let left = socket.writableLength;
  const stalled = (): void => {
    if (left > 0 && socket.writableLength >= left) return void socket.destroy();
    left = socket.writableLength;
    timer = setTimeout(stalled, stallMs);
  };
  let timer = setTimeout(stalled, stallMs);
  socket.once("finish", () => {
    clearTimeout(timer);
    timer = setTimeout(() => socket.destroy(), FIN_WAIT_MS);
  });
  socket.once("close", () => clearTimeout(timer));
}
