/**
 * What randomness alone gives *for this traffic under this hash structure*:
 * the flows are hashed again under other seeds of the same configuration
 * (hash-init, cluster-hash-seed, nft seed), and the 95th percentile of
 * max/mean over those seeds is the band. Flows that must travel together
 * (same source under `sourceip`, same source and port under
 * `sourceip-sourceport`, one elephant flow) widen it exactly as much as they
 * should; an unlucky seed or a broken reduction stands out against it.
 */
import { createBatch, F, FAMILY_IPV6 } from '../traffic/batch.ts';
import { writeTupleV4, writeTupleV6 } from '../traffic/tuple.ts';
import { KEY_WORDS } from '../engine/flow-table.ts';
import { buildSelector } from '../select/build.ts';
import type { Selector, SelectorSpec } from '../select/selector.ts';
import type { MergedRun } from '../engine/merge.ts';
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

/** p95 of max/mean per metric over BAND_SEEDS reseeded copies of `sel`; null if it cannot be reseeded. */
export function seedBand(m: MergedRun, reply: Uint8Array, sel: Selector, directionDependent: boolean): Record<Metric, number> | null {
  if (!reseed(sel.spec, 1)) return null;
  const f = m.flows, n = f.count, N = sel.buckets;
  const batch = createBatch(Math.max(1, n));
  for (let g = 0; g < n; g++) {
    const o = g * KEY_WORDS, k0 = f.keys[o]!, ports = f.keys[o + 9]!;
    const proto = k0 & 0xff;
    if (k0 >>> 8 === FAMILY_IPV6) writeTupleV6(batch, g, proto, f.keys.subarray(o + 1, o + 5), ports >>> 16, f.keys.subarray(o + 5, o + 9), ports & 0xffff);
    else writeTupleV4(batch, g, proto, f.keys[o + 1]!, ports >>> 16, f.keys[o + 5]!, ports & 0xffff);
    if (directionDependent && reply[g]) batch.flags[g] = batch.flags[g]! | F.REPLY;
  }
  batch.count = n;
  const out = new Int32Array(Math.max(1, n));
  const ratios: Record<Metric, number[]> = { packets: [], bytes: [], flows: [], connections: [] };
  const loads = { packets: new Float64Array(N), bytes: new Float64Array(N), flows: new Float64Array(N), connections: new Float64Array(N) };
  let s = 0x2545f491;
  for (let t = 0; t < BAND_SEEDS; t++) {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x297a2d39) >>> 0;
    buildSelector(reseed(sel.spec, s)!).select(batch, out, 0, n);
    for (const a of Object.values(loads)) a.fill(0);
    for (let g = 0; g < n; g++) {
      const b = out[g]!;
      if (b < 0) continue;
      loads.packets[b] = loads.packets[b]! + f.packets[g]!;
      loads.bytes[b] = loads.bytes[b]! + f.bytes[g]!;
      loads.flows[b] = loads.flows[b]! + 1;
      if (!reply[g]) loads.connections[b] = loads.connections[b]! + 1;
    }
    for (const metric of Object.keys(loads) as Metric[]) {
      const a = loads[metric];
      let tot = 0, max = 0;
      for (let b = 0; b < N; b++) { tot += a[b]!; if (a[b]! > max) max = a[b]!; }
      ratios[metric].push(tot > 0 ? max / (tot / N) : 1);
    }
  }
  const p95 = (xs: number[]): number => {
    const v = [...xs].sort((a, b) => a - b);
    const pos = 0.95 * (v.length - 1), lo = Math.floor(pos);
    return v[lo]! + (v[Math.min(lo + 1, v.length - 1)]! - v[lo]!) * (pos - lo);
  };
  return { packets: p95(ratios.packets), bytes: p95(ratios.bytes), flows: p95(ratios.flows), connections: p95(ratios.connections) };
}
