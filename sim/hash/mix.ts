/**
 * MurmurHash3's 32-bit mixing steps, for our own hash tables and for routing
 * flows to workers (never for a kernel answer: those are jhash, in lookup2.ts
 * and lookup3.ts). Pure 32-bit integer math, small enough for V8 to inline.
 */

/** Mixes one 32-bit word `k` into the running state `h`. */
export function mix32(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  h ^= Math.imul(k, 0x1b873593);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** The finaliser: spreads every input bit over the whole word. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}
