/**
 * What randomness alone gives *for this traffic under this hash structure*:
 * the flows are hashed again under other seeds of the same configuration
 * (hash-init, cluster-hash-seed, nft seed), and the 95th percentile of
 * max/mean over those seeds is the band. Flows that must travel together
 * (same source under `sourceip`, same source and port under
 * `sourceip-sourceport`, one elephant flow) widen it exactly as much as they
 * should; an unlucky seed or a broken reduction stands out against it.
 *
 * The reseeded loads are summed as connections end (engine/flow-sink.ts,
 * with the seeds of select/reseed.ts); this module turns them into the band.
 */
import { BAND_SEEDS } from '../select/reseed.ts';
import type { Metric } from '../core/result.ts';

/** p95 of max/mean per metric from loads laid out band[(seed * 4 + metric) * N + node] (metrics: packets, bytes, flows, connections). */
export function bandP95(band: Float64Array, N: number): Record<Metric, number> {
  const metrics: Metric[] = ['packets', 'bytes', 'flows', 'connections'];
  const out = {} as Record<Metric, number>;
  metrics.forEach((metric, m) => {
    const ratios: number[] = [];
    for (let t = 0; t < BAND_SEEDS; t++) {
      const base = (t * 4 + m) * N;
      let tot = 0, max = 0;
      for (let b = 0; b < N; b++) { const x = band[base + b]!; tot += x; if (x > max) max = x; }
      ratios.push(tot > 0 ? max / (tot / N) : 1);
    }
    ratios.sort((a, b) => a - b);
    const pos = 0.95 * (ratios.length - 1), lo = Math.floor(pos);
    out[metric] = ratios[lo]! + (ratios[Math.min(lo + 1, ratios.length - 1)]! - ratios[lo]!) * (pos - lo);
  });
  return out;
}
