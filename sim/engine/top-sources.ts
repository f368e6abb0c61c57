/**
 * The heaviest sources of a node: by packets, then bytes, then address text
 * (a total order: two sources of one node never share an address). Used by
 * the analysis, and by engine/source-merge.ts to drop, while it merges
 * spilled runs, every source that can no longer make the cut.
 */
import { formatIPv4, formatIPv6 } from '../core/addr.ts';
import { SRC_KW, type SourceCounts } from './source-table.ts';
import type { TopSource } from '../core/result.ts';

/** Sources listed per node. */
export const TOP_SOURCES = 5;

/**
 * Entry indices of the TOP_SOURCES heaviest sources of every node of
 * configuration c, heaviest first. Only the candidates that can make the cut
 * (at least as heavy as the TOP_SOURCES-th by packets and bytes) get their
 * address formatted and sorted: formatting every source of a large capture
 * (10^5 strings) was most of the analysis time.
 */
export function topSourceIndices(src: SourceCounts, c: number, N: number): number[][] {
  const keys = src.keys, vals = src.vals;
  // Per node, the TOP_SOURCES heaviest (packets, bytes) pairs seen so far, heaviest first.
  const bestP = new Float64Array(N * TOP_SOURCES).fill(-1), bestB = new Float64Array(N * TOP_SOURCES).fill(-1);
  const heavier = (p: number, b: number, q: number, d: number): boolean => p > q || (p === q && b > d);
  // A source can be left at zero when merge.ts replaced two halves of a connection by the whole.
  for (let i = 0; i < src.count; i++) {
    if (keys[i * SRC_KW] !== c || !(vals[i * 2]! > 0)) continue;
    const o = keys[i * SRC_KW + 1]! * TOP_SOURCES, p = vals[i * 2]!, b = vals[i * 2 + 1]!;
    if (!heavier(p, b, bestP[o + TOP_SOURCES - 1]!, bestB[o + TOP_SOURCES - 1]!)) continue;
    let k = TOP_SOURCES - 1;
    while (k > 0 && heavier(p, b, bestP[o + k - 1]!, bestB[o + k - 1]!)) { bestP[o + k] = bestP[o + k - 1]!; bestB[o + k] = bestB[o + k - 1]!; k--; }
    bestP[o + k] = p; bestB[o + k] = b;
  }
  const per: number[][] = Array.from({ length: N }, () => []);
  for (let i = 0; i < src.count; i++) {
    if (keys[i * SRC_KW] !== c || !(vals[i * 2]! > 0)) continue;
    const o = keys[i * SRC_KW + 1]! * TOP_SOURCES + TOP_SOURCES - 1, p = vals[i * 2]!, b = vals[i * 2 + 1]!;
    if (!heavier(bestP[o]!, bestB[o]!, p, b)) per[keys[i * SRC_KW + 1]!]!.push(i);
  }
  return per.map((idx) => {
    const text = new Map(idx.map((i) => [i, sourceAddr(src, i)]));
    return idx.sort((x, y) => vals[y * 2]! - vals[x * 2]! || vals[y * 2 + 1]! - vals[x * 2 + 1]! || (text.get(x)! < text.get(y)! ? -1 : 1)).slice(0, TOP_SOURCES);
  });
}

/** The TOP_SOURCES heaviest sources of every node of configuration c, as rows. */
export function topSources(src: SourceCounts, c: number, N: number): TopSource[][] {
  return topSourceIndices(src, c, N).map((idx) => idx.map((i) => ({ addr: sourceAddr(src, i), packets: src.vals[i * 2]!, bytes: src.vals[i * 2 + 1]! })));
}

/** Address text of entry i. */
function sourceAddr(src: SourceCounts, i: number): string {
  return src.keys[i * SRC_KW + 2] === 6 ? formatIPv6(src.keys, i * SRC_KW + 3) : formatIPv4(src.keys[i * SRC_KW + 3]!);
}
