/**
 * Hash → bucket (kernel-semantics §3).
 *
 * Multiply-shift `((u64)hash * n) >> 32` (the kernel's `reciprocal_scale()`
 * from 3.18, open-coded before) keeps the hash's top bits; modulo (CLUSTERIP
 * before ~2.6.25) keeps its low bits. Measured 6.1.192: replacing
 * multiply-shift by `%` breaks 25,848 of the 36,864 CLUSTERIP golden rows.
 */

const TWO32 = 4294967296;

/** Largest n for which `hash * n` is exact in a float64 (hash < 2^32, product < 2^53). */
export const MULSHIFT_FAST_MAX = 1 << 21;

export type Reduction = 'multiply-shift' | 'modulo';

/** `((u64)hash * n) >> 32` for any n in 0..2^32-1, exact. */
export function multiplyShift(hash: number, n: number): number {
  if (n < MULSHIFT_FAST_MAX) return Math.floor((hash * n) / TWO32);
  // Split the hash into 16-bit halves so that every product stays below 2^53.
  const hi = hash >>> 16;
  const lo = hash & 0xffff;
  const carry = Math.floor((lo * n) / 65536);
  return Math.floor((hi * n + carry) / 65536);
}

export function modulo(hash: number, n: number): number {
  return hash % n;
}

export function reduce(kind: Reduction, hash: number, n: number): number {
  return kind === 'modulo' ? modulo(hash, n) : multiplyShift(hash, n);
}
