import { describe, expect, it } from 'vitest';
import { topSources } from './top-sources.ts';
import { SRC_KW, type SourceCounts } from './source-table.ts';
import { formatIPv4, formatIPv6 } from '../core/addr.ts';

/** The plain definition: format every source, sort all of a node's, keep the first five. */
function naive(src: SourceCounts, c: number, N: number): unknown[][] {
  const per: { addr: string; packets: number; bytes: number }[][] = Array.from({ length: N }, () => []);
  for (let i = 0; i < src.count; i++) {
    const k = src.keys.subarray(i * SRC_KW, (i + 1) * SRC_KW);
    if (k[0] !== c || !(src.vals[i * 2]! > 0)) continue;
    per[k[1]!]!.push({ addr: k[2] === 6 ? formatIPv6(src.keys, i * SRC_KW + 3) : formatIPv4(k[3]!), packets: src.vals[i * 2]!, bytes: src.vals[i * 2 + 1]! });
  }
  return per.map((r) => r.sort((x, y) => y.packets - x.packets || y.bytes - x.bytes || (x.addr < y.addr ? -1 : 1)).slice(0, 5));
}

describe('topSources', () => {
  it('keeps the same five per node as sorting every source, ties and all', () => {
    let seed = 7;
    const rnd = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return (seed >>> 8) % n; };
    for (let round = 0; round < 40; round++) {
      const count = 1 + rnd(300), N = 1 + rnd(5), C = 1 + rnd(2);
      const keys = new Uint32Array(count * SRC_KW), vals = new Float64Array(count * 2);
      for (let i = 0; i < count; i++) {
        const v6 = rnd(4) === 0;
        keys.set([rnd(C), rnd(N), v6 ? 6 : 4, rnd(50) * 16777259, v6 ? rnd(3) : 0, v6 ? rnd(3) : 0, v6 ? rnd(9) : 0], i * SRC_KW);
        // Few distinct values, so ties on packets and on bytes are common; some zero (taken-out halves).
        vals[i * 2] = rnd(6); vals[i * 2 + 1] = rnd(3) * 100;
      }
      const src: SourceCounts = { count, keys, vals, runs: [] };
      for (let c = 0; c < C; c++) expect(topSources(src, c, N)).toEqual(naive(src, c, N));
    }
  });
});
