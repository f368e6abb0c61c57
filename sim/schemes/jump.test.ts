/**
 * Jump consistent hash against the paper's algorithm (Lamping & Veach 2014,
 * Figure 1, transcribed with BigInt here as the reference) and against the
 * reference outputs other implementations publish for it
 * (ClickHouse tests/queries/0_stateless/00580_consistent_hashing_functions).
 */
import { describe, expect, it } from 'vitest';
import { jumpHash, mulHi32 } from './jump.ts';
import { randomStream as rng } from '../core/prng.ts';

/** The paper's code, 64-bit exact. */
function jumpRef(key: bigint, n: number): number {
  let b = -1n, j = 0n;
  const mask = (1n << 64n) - 1n;
  while (j < BigInt(n)) {
    b = j;
    key = (key * 2862933555777941757n + 1n) & mask;
    j = BigInt(Math.floor(Number(b + 1n) * (Number(1n << 31n) / Number((key >> 33n) + 1n))));
  }
  return Number(b);
}

const split = (k: bigint): [number, number] => [Number(k >> 32n), Number(k & 0xffffffffn)];

describe('jump consistent hash', () => {
  it('gives the published reference outputs', () => {
    const vectors: [bigint, number, number][] = [
      [1n, 1, 0], [42n, 57, 43], [256n, 1024, 520], [3735883980n, 1, 0], [3735883980n, 666, 361], [16045690984833335023n, 255, 237],
    ];
    for (const [key, n, want] of vectors) {
      expect(jumpRef(key, n), `reference ${key} ${n}`).toBe(want);
      expect(jumpHash(...split(key), n), `ours ${key} ${n}`).toBe(want);
    }
  });

  it('equals the paper\'s 64-bit algorithm on random keys and bucket counts', () => {
    const r = rng(99);
    for (let t = 0; t < 3000; t++) {
      const hi = Math.floor(r() * 2 ** 32), lo = Math.floor(r() * 2 ** 32);
      const n = 1 + Math.floor(r() * (t % 2 ? 20 : 100000));
      expect(jumpHash(hi, lo, n)).toBe(jumpRef((BigInt(hi) << 32n) | BigInt(lo), n));
    }
  });

  it('mulHi32 is the exact high word of a 32x32-bit product', () => {
    const r = rng(5);
    for (let t = 0; t < 2000; t++) {
      const a = Math.floor(r() * 2 ** 32), b = t % 7 ? Math.floor(r() * 2 ** 32) : 0xffffffff;
      expect(mulHi32(a, b)).toBe(Number((BigInt(a) * BigInt(b)) >> 32n));
    }
  });

  it('growing from n to n+1 buckets moves only keys to the new bucket, about 1/(n+1) of them', () => {
    const r = rng(17);
    const keys = Array.from({ length: 20000 }, () => [Math.floor(r() * 2 ** 32), Math.floor(r() * 2 ** 32)] as const);
    for (const n of [1, 4, 9, 31]) {
      let movedTo = 0;
      for (const [h, l] of keys) {
        const a = jumpHash(h, l, n), b = jumpHash(h, l, n + 1);
        if (a !== b) { expect(b).toBe(n); movedTo++; }
      }
      expect(Math.abs(movedTo / keys.length - 1 / (n + 1))).toBeLessThan(0.02);
    }
  });
});
