/**
 * killValues: the value the kill-test child writes for a write id, so that the parent can check
 * every byte it reads back. Some values are overflow-sized at 1024-byte pages.
 */
export function valueFor(id: string): string {
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619) >>> 0;
  const len = h % 9 === 0 ? 700 + (h % 1500) : h % 120;
  let s = `${id}|`;
  for (let i = 0; i < len; i++) s += String.fromCharCode(97 + ((h >>> (i % 24)) + i) % 26);
  return s;
}
