/**
 * The one seeded PRNG of the model: mulberry32 (Tommy Ettinger's 32-bit
 * generator: a Weyl sequence, state += 0x6d2b79f5, tempered by two
 * multiply-xorshift rounds). Small state (one int32), well mixed, and all
 * 32-bit integer math, so hot loops keep it in a register.
 *
 * Two forms of the same sequence:
 * - `mulberryNext` / `mulberryValue` for hot loops: the state is a plain
 *   number the caller keeps (in a typed-array slot per flow, say); no closure.
 * - `randomStream` for cold code (tests, set-up): a closure over the state.
 */

/** The Weyl increment of mulberry32. */
export const MULBERRY_INCREMENT = 0x6d2b79f5;

/** The state after `s` (as int32). */
export function mulberryNext(s: number): number {
  return (s + MULBERRY_INCREMENT) | 0;
}

/** The 32-bit output (unsigned) of a state returned by `mulberryNext`. */
export function mulberryValue(s: number): number {
  let t = Math.imul(s ^ (s >>> 15), 1 | s);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return (t ^ (t >>> 14)) >>> 0;
}

/** 2^-32: turns a `mulberryValue` into a float in [0, 1). */
export const UNIT = 1 / 4294967296;

/** Floats in [0, 1) from seed `seed` (the first is the value of the first step). */
export function randomStream(seed: number): () => number {
  let s = seed | 0;
  return () => {
    s = mulberryNext(s);
    return mulberryValue(s) * UNIT;
  };
}

/** Unsigned 32-bit values from seed `seed`: the same sequence as randomStream, before scaling. */
export function randomStream32(seed: number): () => number {
  let s = seed | 0;
  return () => {
    s = mulberryNext(s);
    return mulberryValue(s);
  };
}

/**
 * A well-mixed 32-bit state from two words (a murmur3-style finaliser over
 * `a ^ golden ratio` and `b`): how a generator seeds flow `b` of run seed `a`,
 * so any flow's draws can be made without making those of the flows before it.
 */
export function seedMix(a: number, b: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ b;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) | 0;
}
