/**
 * wellFormed: whether a string has a UTF-8 form, i.e. holds no lone surrogate (encoded, a lone
 * surrogate becomes U+FFFD, so two different strings would become the same bytes).
 * String.prototype.isWellFormed is in every Node >= 20; the compile target's lib predates it.
 */
export function wellFormed(s: string): boolean {
  return (s as unknown as { isWellFormed(): boolean }).isWellFormed();
}
