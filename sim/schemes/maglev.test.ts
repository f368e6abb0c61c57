/**
 * Our Maglev against the properties Eisenbud et al. (NSDI 2016, §3.4) state
 * for the lookup table: the permutation from (offset, skip) visits every slot
 * of a prime-sized table; population fills every entry; backends take turns,
 * so their entry counts differ by at most one, and M > 100 N keeps the
 * difference in hash space under 1 %; removing a backend re-assigns its entries
 * and disturbs only a few others, fewer with a larger table.
 */
import { describe, expect, it } from 'vitest';
import { MAGLEV_M, maglevPermutation, maglevTable } from './maglev.ts';

const ids = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

function counts(t: Int32Array, n: number): number[] {
  const c = new Array<number>(n).fill(0);
  for (const x of t) c[x]!++;
  return c;
}

describe('Maglev lookup table (NSDI 2016 §3.4)', () => {
  it('each backend\'s permutation visits every slot of the prime table exactly once', () => {
    for (const id of [0, 1, 2, 3, 4]) {
      const { offset, skip } = maglevPermutation(id, MAGLEV_M);
      expect(skip).toBeGreaterThanOrEqual(1);
      expect(skip).toBeLessThan(MAGLEV_M);
      const seen = new Uint8Array(MAGLEV_M);
      for (let j = 0; j < MAGLEV_M; j++) seen[(offset + j * skip) % MAGLEV_M] = 1;
      expect(seen.reduce((a, b) => a + b, 0)).toBe(MAGLEV_M);
    }
  });

  it('refuses a table size that is not prime', () => {
    expect(() => maglevTable([0, 1], 65536)).toThrow(/prime/);
    expect(() => maglevTable([], 251)).toThrow(/backend/);
  });

  for (const n of [3, 10, 100, 655]) {
    it(`fills all ${MAGLEV_M} entries over ${n} backends, counts within one of each other`, () => {
      const t = maglevTable(ids(n));
      expect(t.every((x) => x >= 0 && x < n)).toBe(true);
      const c = counts(t, n);
      const max = Math.max(...c), min = Math.min(...c);
      expect(max - min).toBeLessThanOrEqual(1);
      expect(Math.floor(MAGLEV_M / n)).toBeLessThanOrEqual(min);
      // M > 100 N: at most 1 % difference in hash space.
      expect(max / min).toBeLessThanOrEqual(1.01);
    });
  }

  it('is deterministic for the same backends', () => {
    expect(maglevTable([0, 2, 5], 251)).toEqual(maglevTable([0, 2, 5], 251));
  });

  for (const n of [10, 100, 1000]) {
    it(`removing one of ${n} backends moves its entries and fewer than 1 % of the others`, () => {
      const before = maglevTable(ids(n));
      const gone = Math.floor(n / 3);
      const after = maglevTable(ids(n).filter((x) => x !== gone));
      let extra = 0, stillGone = 0;
      for (let s = 0; s < MAGLEV_M; s++) {
        if (after[s] === gone || after[s]! < 0) stillGone++;
        if (before[s] !== gone && before[s] !== after[s]) extra++;
      }
      expect(stillGone).toBe(0);
      expect(extra).toBeGreaterThan(0); // Maglev trades a little disruption for balance: not zero
      expect(extra / MAGLEV_M).toBeLessThan(0.01);
    });
  }

  it('a larger table is more resilient to a backend removal (the paper\'s trade-off)', () => {
    const extraShare = (m: number): number => {
      const b = maglevTable(ids(20), m), a = maglevTable(ids(20).filter((x) => x !== 7), m);
      let e = 0;
      for (let s = 0; s < m; s++) if (b[s] !== 7 && b[s] !== a[s]) e++;
      return e / m;
    };
    expect(extraShare(65537)).toBeLessThan(extraShare(251) / 4);
  });
});
