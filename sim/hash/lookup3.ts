/**
 * Bob Jenkins' lookup3 as the Linux kernel carries it in include/linux/jhash.h
 * (kernel-semantics §2.2, §2.3). All arithmetic is unsigned 32-bit: every
 * `+`/`-` is followed by `>>> 0` (or `| 0` where the sign does not matter yet).
 *
 * Two generations share `mix3`/`final3` and the byte/array forms:
 * - "transitional" (2.6.37 … 4.0): the word functions keep lookup2's
 *   initialisation (`a += 0xdeadbeef; b += 0xdeadbeef; c += initval`) before final3;
 * - "current" (4.1 …): the word functions fold the word count into the initial
 *   value (`__jhash_nwords`, `initval + 0xdeadbeef + 4n` added to all three).
 * Measured 6.1.192 / 6.18.44 through the golden vectors for the current form.
 */

export const JHASH_INITVAL = 0xdeadbeef;

const rol = (x: number, k: number): number => (x << k) | (x >>> (32 - k));

/** lookup3 `final()`, returns c. Exposed for the reference and tests; selectors inline it. */
export function final3(a: number, b: number, c: number): number {
  c ^= b; c = (c - rol(b, 14)) | 0;
  a ^= c; a = (a - rol(c, 11)) | 0;
  b ^= a; b = (b - rol(a, 25)) | 0;
  c ^= b; c = (c - rol(b, 16)) | 0;
  a ^= c; a = (a - rol(c, 4)) | 0;
  b ^= a; b = (b - rol(a, 14)) | 0;
  c ^= b; c = (c - rol(b, 24)) | 0;
  return c >>> 0;
}

/** Scratch state for the byte/array forms, which need all three words after a mix. */
const st = new Int32Array(3);

/** lookup3 `mix()` on the scratch state. */
function mix3(): void {
  let a = st[0]!, b = st[1]!, c = st[2]!;
  a = (a - c) | 0; a ^= rol(c, 4); c = (c + b) | 0;
  b = (b - a) | 0; b ^= rol(a, 6); a = (a + c) | 0;
  c = (c - b) | 0; c ^= rol(b, 8); b = (b + a) | 0;
  a = (a - c) | 0; a ^= rol(c, 16); c = (c + b) | 0;
  b = (b - a) | 0; b ^= rol(a, 19); a = (a + c) | 0;
  c = (c - b) | 0; c ^= rol(b, 4); b = (b + a) | 0;
  st[0] = a; st[1] = b; st[2] = c;
}

/** Current word functions (4.1+): `__jhash_nwords(a, b, c, initval + JHASH_INITVAL + 4n)`. */
export function jhashNwords(a: number, b: number, c: number, n: 1 | 2 | 3, initval: number): number {
  const s = (initval + JHASH_INITVAL + (n << 2)) | 0;
  return final3((a + s) | 0, (b + s) | 0, (c + s) | 0);
}
export const jhash3words = (a: number, b: number, c: number, iv: number): number => jhashNwords(a, b, c, 3, iv);
export const jhash2words = (a: number, b: number, iv: number): number => jhashNwords(a, b, 0, 2, iv);
export const jhash1word = (a: number, iv: number): number => jhashNwords(a, 0, 0, 1, iv);

/** Transitional word functions (2.6.37 … 4.0): lookup2's initialisation, lookup3's final mix. */
export function jhash3wordsTransitional(a: number, b: number, c: number, iv: number): number {
  return final3((a + JHASH_INITVAL) | 0, (b + JHASH_INITVAL) | 0, (c + iv) | 0);
}

import type { ByteOrder } from '../core/spec.ts';
export type { ByteOrder };

/**
 * Byte form `jhash(key, length, initval)`. The 12-byte blocks of the loop are
 * loaded as native CPU words (so keys longer than 12 bytes depend on the byte
 * order); the 1..12-byte tail is composed explicitly little-endian (kernel-semantics §2.3).
 */
export function jhashBytes(key: Uint8Array, length: number, initval: number, endian: ByteOrder = 'little'): number {
  const init = (JHASH_INITVAL + length + initval) | 0;
  st[0] = init; st[1] = init; st[2] = init;
  let p = 0;
  let len = length;
  const load = endian === 'little' ? le32 : be32;
  while (len > 12) {
    st[0] = (st[0]! + load(key, p)) | 0;
    st[1] = (st[1]! + load(key, p + 4)) | 0;
    st[2] = (st[2]! + load(key, p + 8)) | 0;
    mix3();
    p += 12;
    len -= 12;
  }
  if (len === 0) return st[2]! >>> 0;
  // Tail: explicit little-endian composition on every CPU; missing bytes are zero.
  st[0] = (st[0]! + tail32(key, p, len)) | 0;
  if (len > 4) st[1] = (st[1]! + tail32(key, p + 4, len - 4)) | 0;
  if (len > 8) st[2] = (st[2]! + tail32(key, p + 8, len - 8)) | 0;
  return final3(st[0]!, st[1]!, st[2]!);
}

/** Array form `jhash2(k, n, initval)` over 32-bit words (kernel-semantics §2.3; source only). */
export function jhash2(k: ArrayLike<number>, n: number, initval: number): number {
  const init = (JHASH_INITVAL + (n << 2) + initval) | 0;
  st[0] = init; st[1] = init; st[2] = init;
  let i = 0;
  let rest = n;
  while (rest > 3) {
    st[0] = (st[0]! + k[i]!) | 0;
    st[1] = (st[1]! + k[i + 1]!) | 0;
    st[2] = (st[2]! + k[i + 2]!) | 0;
    mix3();
    i += 3;
    rest -= 3;
  }
  if (rest === 0) return st[2]! >>> 0;
  if (rest === 3) st[2] = (st[2]! + k[i + 2]!) | 0;
  if (rest >= 2) st[1] = (st[1]! + k[i + 1]!) | 0;
  st[0] = (st[0]! + k[i]!) | 0;
  return final3(st[0]!, st[1]!, st[2]!);
}

export function le32(k: Uint8Array, p: number): number {
  return (k[p]! | (k[p + 1]! << 8) | (k[p + 2]! << 16) | (k[p + 3]! << 24)) | 0;
}
export function be32(k: Uint8Array, p: number): number {
  return ((k[p]! << 24) | (k[p + 1]! << 16) | (k[p + 2]! << 8) | k[p + 3]!) | 0;
}
function tail32(k: Uint8Array, p: number, avail: number): number {
  let w = 0;
  const n = avail < 4 ? avail : 4;
  for (let j = 0; j < n; j++) w |= k[p + j]! << (8 * j);
  return w | 0;
}
