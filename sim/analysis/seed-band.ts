/**
 * What randomness alone gives *for this traffic under this hash structure*:
 * the flows are hashed again under other seeds of the same configuration
 * (hash-init, cluster-hash-seed, nft seed), and the 95th percentile of
 * max/mean over those seeds is the band. Flows that must travel together
 * (same source under `sourceip`, same source and port under
 * `sourceip-sourceport`, one elephant flow) widen it exactly as much as they
 * should; an unlucky seed or a broken reduction stands out against it.
 *
 * The reseeded loads are summed as connections end (engine/flow-sink.ts);
 * this module names the seeds and turns the loads into the band.
 */
import type { SelectorSpec } from '../select/selector.ts';
import type { Metric } from './result.ts';

export const BAND_SEEDS = 32;

/** The same configuration with another seed; null when it has none (symhash). */
export function reseed(spec: SelectorSpec, seed: number): SelectorSpec | null {
  switch (spec.backend) {
    case 'clusterip': return { ...spec, hashInit: seed };
    case 'xt_cluster': return { ...spec, hashSeed: seed };
    case 'nft': {
      if (!/\bjhash\b/.test(spec.expr)) return null;
      const hex = `0x${seed.toString(16)}`;
      const expr = /\bseed\s+\S+/.test(spec.expr) ? spec.expr.replace(/\bseed\s+\S+/, `seed ${hex}`) : spec.expr.replace(/\bmod\s+(\S+)/, `mod $1 seed ${hex}`);
      return { ...spec, expr };
    }
  }
}

/** The BAND_SEEDS seeds, a fixed sequence (the band must not change between runs). */
export function bandSeeds(): number[] {
  const out: number[] = [];
  let s = 0x2545f491;
  for (let t = 0; t < BAND_SEEDS; t++) {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x297a2d39) >>> 0;
    out.push(s);
  }
  return out;
}

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
