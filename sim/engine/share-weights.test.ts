import { describe, expect, it } from 'vitest';
import { shareWeights } from './share-weights.ts';

/** When each worker ends under the model share-weights.ts sizes for: every first pass starts at once, range k counts after those before it. */
function finishes(x: number[], first: number, scan: number): number[] {
  let wait = 0;
  return x.map((w, k) => {
    const end = wait + w;
    wait = Math.max(wait, (k === 0 ? first : scan) * w);
    return end;
  });
}

describe('shareWeights', () => {
  it('one range is the whole capture; two give the second 1 - first-pass cost', () => {
    expect(shareWeights(1)).toEqual([1]);
    expect(shareWeights(2, { first: 0.4, scan: 1 })).toEqual([1, 0.6]);
  });
  it('every worker ends at the same time when the costs are as assumed', () => {
    for (const [first, scan] of [[0.3, 0.8], [0.55, 1], [0.2, 0.5]] as const) {
      for (const n of [2, 3, 4, 8]) {
        const f = finishes(shareWeights(n, { first, scan }), first, scan);
        for (const t of f) expect(t).toBeCloseTo(f[0]!, 9);
      }
    }
  });
  it('never gives a range nothing, even when a first pass costs as much as counting', () => {
    const x = shareWeights(4, { first: 1, scan: 1 });
    expect(Math.min(...x)).toBeGreaterThan(0);
  });
});
