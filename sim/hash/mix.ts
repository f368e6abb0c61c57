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

/** Hash of key n of `keys` (kw words a key): what the connection tables (engine/conn-table.ts, cluster/ct-model.ts) probe with. */
export function keyHash(keys: Uint32Array, n: number, kw: number): number {
  const o = n * kw;
  if (kw === 4) return hash4(keys[o]!, keys[o + 1]!, keys[o + 2]!, keys[o + 3]!);
  let h = 0x9747b28c;
  for (let w = 0; w < kw; w++) h = mix32(h, keys[o + w]!);
  return fmix32(h);
}

/**
 * Hash of a 4-word key for the table's probe start: one multiply per word
 * with a rotate between, then murmur3's finaliser (the table uses the low
 * bits). Each step is invertible in the word it takes in, so keys that differ
 * in one word never collide. Half the multiplies of four murmur3 rounds.
 */
export function hash4(a: number, b: number, c: number, d: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(((h << 13) | (h >>> 19)) ^ b, 0xc2b2ae35);
  h = Math.imul(((h << 13) | (h >>> 19)) ^ c, 0x85ebca6b);
  h = Math.imul(((h << 13) | (h >>> 19)) ^ d, 0xc2b2ae35);
  return fmix32(h);
}
