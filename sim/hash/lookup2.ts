/**
 * lookup2, the jhash of Linux up to and including 2.6.36 (kernel-semantics §2.1;
 * source only: no pre-2.6.37 kernel was measured). Plain shifts, not rotations.
 */

export const GOLDEN_RATIO = 0x9e3779b9;

const st = new Int32Array(3);

/** lookup2 `__jhash_mix` on the scratch state. */
function mix2(): void {
  let a = st[0]!, b = st[1]!, c = st[2]!;
  a = (a - b - c) | 0; a ^= c >>> 13;
  b = (b - c - a) | 0; b ^= a << 8;
  c = (c - a - b) | 0; c ^= b >>> 13;
  a = (a - b - c) | 0; a ^= c >>> 12;
  b = (b - c - a) | 0; b ^= a << 16;
  c = (c - a - b) | 0; c ^= b >>> 5;
  a = (a - b - c) | 0; a ^= c >>> 3;
  b = (b - c - a) | 0; b ^= a << 10;
  c = (c - a - b) | 0; c ^= b >>> 15;
  st[0] = a; st[1] = b; st[2] = c;
}

/** lookup2 `jhash_3words`; `jhash_2words`/`jhash_1word` pass zeros for the missing words. */
export function jhash3wordsLookup2(a: number, b: number, c: number, iv: number): number {
  st[0] = (a + GOLDEN_RATIO) | 0;
  st[1] = (b + GOLDEN_RATIO) | 0;
  st[2] = (c + iv) | 0;
  mix2();
  return st[2]! >>> 0;
}

/** lookup2 byte form: 12-byte blocks little-endian, length added to c, c's low byte reserved for it in the tail. */
export function jhashBytesLookup2(key: Uint8Array, length: number, initval: number): number {
  st[0] = GOLDEN_RATIO; st[1] = GOLDEN_RATIO; st[2] = initval | 0;
  let p = 0;
  let rest = length;
  while (rest >= 12) {
    st[0] = (st[0]! + le32(key, p)) | 0;
    st[1] = (st[1]! + le32(key, p + 4)) | 0;
    st[2] = (st[2]! + le32(key, p + 8)) | 0;
    mix2();
    p += 12;
    rest -= 12;
  }
  st[2] = (st[2]! + length) | 0;
  for (let j = 0; j < rest; j++) {
    const v = key[p + j]!;
    if (j < 4) st[0] = (st[0]! + (v << (8 * j))) | 0;
    else if (j < 8) st[1] = (st[1]! + (v << (8 * (j - 4)))) | 0;
    else st[2] = (st[2]! + (v << (8 * (j - 8) + 8))) | 0;
  }
  mix2();
  return st[2]! >>> 0;
}

/** lookup2 array form `jhash2`. */
export function jhash2Lookup2(k: ArrayLike<number>, n: number, initval: number): number {
  st[0] = GOLDEN_RATIO; st[1] = GOLDEN_RATIO; st[2] = initval | 0;
  let i = 0;
  let rest = n;
  while (rest >= 3) {
    st[0] = (st[0]! + k[i]!) | 0;
    st[1] = (st[1]! + k[i + 1]!) | 0;
    st[2] = (st[2]! + k[i + 2]!) | 0;
    mix2();
    i += 3;
    rest -= 3;
  }
  st[2] = (st[2]! + n * 4) | 0;
  if (rest === 2) st[1] = (st[1]! + k[i + 1]!) | 0;
  if (rest >= 1) st[0] = (st[0]! + k[i]!) | 0;
  mix2();
  return st[2]! >>> 0;
}

function le32(k: Uint8Array, p: number): number {
  return (k[p]! | (k[p + 1]! << 8) | (k[p + 2]! << 16) | (k[p + 3]! << 24)) | 0;
}
