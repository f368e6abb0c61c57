/**
 * The seed band's selectors: the same configuration under BAND_SEEDS other
 * seeds (analysis/seed-band.ts explains what the band measures). The engine
 * hashes every flow under them as connections end (engine/flow-sink.ts).
 */
import type { SelectorSpec } from '../core/spec.ts';
import { parseNftHash, renderNftHash, withSeed } from './nft-expr.ts';

export const BAND_SEEDS = 32;

/** The same configuration with another seed; null when it has none (symhash). */
export function reseed(spec: SelectorSpec, seed: number): SelectorSpec | null {
  switch (spec.backend) {
    case 'clusterip': return { ...spec, hashInit: seed };
    case 'xt_cluster': return { ...spec, hashSeed: seed };
    case 'nft': {
      const h = withSeed(parseNftHash(spec.expr), seed);
      return h ? { ...spec, expr: renderNftHash(h) } : null;
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
