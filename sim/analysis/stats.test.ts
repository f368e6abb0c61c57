import { describe, expect, it } from 'vitest';
import { chiSquarePValue, distributionStats, normalQuantile, randomMaxOverMeanP95 } from './stats.ts';

describe('statistics', () => {
  it('chi-square p-values match published table values', () => {
    // Critical values: P(X >= 3.841) = 0.05 for df 1; 11.070 for df 5; 0.3518 is the 0.95 quantile of df 3.
    expect(chiSquarePValue(3.841, 1)).toBeCloseTo(0.05, 3);
    expect(chiSquarePValue(11.070, 5)).toBeCloseTo(0.05, 3);
    expect(chiSquarePValue(0.3518, 3)).toBeCloseTo(0.95, 3);
    expect(chiSquarePValue(30.578, 15)).toBeCloseTo(0.01, 3);
  });
  it('normal quantiles', () => {
    expect(normalQuantile(0.975)).toBeCloseTo(1.959964, 5);
    expect(normalQuantile(0.5)).toBeCloseTo(0, 9);
    expect(normalQuantile(0.01)).toBeCloseTo(-2.326348, 5);
  });
  it('uniform loads are perfectly fair; one hot node is not', () => {
    const even = distributionStats('flows', [100, 100, 100, 100], 400, 400);
    expect(even.max_over_mean).toBe(1);
    expect(even.jain).toBe(1);
    expect(even.cv).toBe(0);
    expect(even.p_value).toBe(1);
    const hot = distributionStats('flows', [400, 0, 0, 0], 400, 400);
    expect(hot.max_over_mean).toBe(4);
    expect(hot.jain).toBeCloseTo(0.25, 12);
    expect(hot.p_value).toBeLessThan(1e-12);
  });
  it('heavy items widen the band randomness allows', () => {
    const light = randomMaxOverMeanP95(4, 10000, 10000); // 10,000 flows of weight 1
    const heavy = randomMaxOverMeanP95(4, 10000, 10 * 1000 * 1000); // 10 flows of weight 1000
    expect(light).toBeGreaterThan(1);
    expect(light).toBeLessThan(1.05);
    expect(heavy).toBeGreaterThan(1.5);
  });
  it('the p95 band holds for random assignments (seeded Monte Carlo)', () => {
    let s = 12345;
    const rnd = (): number => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
    const n = 8, items = 4000, trials = 400;
    const band = randomMaxOverMeanP95(n, items, items);
    let within = 0;
    for (let t = 0; t < trials; t++) {
      const loads = new Array<number>(n).fill(0);
      for (let i = 0; i < items; i++) loads[Math.floor(rnd() * n)]! += 1;
      if (Math.max(...loads) / (items / n) <= band) within++;
    }
    expect(within / trials).toBeGreaterThan(0.9);
    expect(within / trials).toBeLessThan(0.99);
  });
});
