/**
 * glob: Redis's glob-style pattern match (stringmatchlen) over bytes, for KEYS and SCAN MATCH:
 * `*`, `?`, `[abc]`, `[^a]`, `[a-z]`, and `\x` to match x literally. Case-sensitive. Bytes compare
 * unsigned (Redis compares C chars, signed on x86 and unsigned on ARM: a range spanning 0x7f-0x80
 * matches as Redis on ARM does).
 * Invariant: the match is iterative with backtracking to the last `*` only, so it is linear in
 * practice and never recurses (no stack overflow on hostile patterns).
 */
export function globMatch(pat: Buffer, str: Buffer): boolean {
  // Redis's matcher never enters its loop for an empty string: only an empty pattern matches it
  // (KEYS * and SCAN MATCH * return "" through their match-everything shortcut, as here).
  if (str.length === 0) return pat.length === 0;
  let p = 0;
  let s = 0;
  let starP = -1;
  let starS = 0;
  while (s < str.length) {
    if (p < pat.length) {
      const c = pat[p]!;
      if (c === 0x2a /* * */) {
        while (p < pat.length && pat[p] === 0x2a) p++;
        if (p === pat.length) return true;
        starP = p;
        starS = s;
        continue;
      }
      const step = matchOne(pat, p, str[s]!);
      if (step > 0) {
        p += step;
        s++;
        continue;
      }
    }
    if (starP < 0) return false;
    p = starP;
    s = ++starS;
  }
  while (p < pat.length && pat[p] === 0x2a) p++;
  return p === pat.length;
}

/** Whether the single-char element of pat at p matches byte b: its length in pat, or 0. */
function matchOne(pat: Buffer, p: number, b: number): number {
  const c = pat[p]!;
  if (c === 0x3f /* ? */) return 1;
  if (c === 0x5c /* \ */ && p + 1 < pat.length) return pat[p + 1] === b ? 2 : 0;
  if (c !== 0x5b /* [ */) return c === b ? 1 : 0;
  let i = p + 1;
  let not = false;
  if (pat[i] === 0x5e /* ^ */) {
    not = true;
    i++;
  }
  let hit = false;
  for (;;) {
    if (i >= pat.length) {
      i--; // an unterminated class ends at the pattern's end, as in Redis
      break;
    }
    const d = pat[i]!;
    if (d === 0x5d /* ] */) break;
    if (d === 0x5c && i + 1 < pat.length) {
      i++;
      if (pat[i] === b) hit = true;
    } else if (i + 2 < pat.length && pat[i + 1] === 0x2d /* - */) {
      let lo = d;
      let hi = pat[i + 2]!;
      if (lo > hi) [lo, hi] = [hi, lo];
      if (b >= lo && b <= hi) hit = true;
      i += 2;
    } else if (d === b) hit = true;
    i++;
  }
  return hit !== not ? i - p + 1 : 0;
}
