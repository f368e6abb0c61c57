/**
 * Which node the simulator predicts for given flows: the bridge between the
 * config and sim/select.
 */
import type { ClusterConfig } from '../sim/core/cluster-config.ts';
import { selectorSpecOf } from '../sim/select/from-config.ts';
import { buildSelector } from '../sim/select/build.ts';
import type { SelectorSpec } from '../sim/select/selector.ts';
import { createBatch } from '../sim/traffic/batch.ts';
import { writeTupleV4, writeTupleV6 } from '../sim/traffic/tuple.ts';
import { parseIPv4, parseIPv6 } from '../sim/core/addr.ts';

export interface Flow {
  proto: number;
  /** IPv4 addresses as numbers (0 for an IPv6 flow). */
  saddr: number;
  sport: number;
  daddr: number;
  dport: number;
  /** An IPv6 flow: both addresses as four big-endian words (parseIPv6); saddr/daddr are then ignored. */
  saddr6?: ArrayLike<number>;
  daddr6?: ArrayLike<number>;
}

/** Predicted kernel node number (1..N) per flow, or 0 when no node takes it (no bucket). */
export function predictNodeNumbers(spec: SelectorSpec, flows: readonly Flow[]): number[] {
  const sel = buildSelector(spec);
  const b = createBatch(Math.max(1, flows.length));
  flows.forEach((f, i) => (f.saddr6 && f.daddr6 ? writeTupleV6(b, i, f.proto, f.saddr6, f.sport, f.daddr6, f.dport) : writeTupleV4(b, i, f.proto, f.saddr, f.sport, f.daddr, f.dport)));
  b.count = flows.length;
  const out = new Int32Array(flows.length);
  sel.select(b, out);
  return Array.from(out, (x) => (x >= 0 ? x + sel.offset : 0));
}

/** Node name per flow under this config's owner sets ('' when nobody owns the number). */
export function predictNodes(c: ClusterConfig, flows: readonly Flow[]): string[] {
  const owner = ownerNames(c);
  return predictNodeNumbers(selectorSpecOf(c), flows).map((k) => owner.get(k) ?? '');
}

/** Node number -> the name of the first node that owns it. */
export function ownerNames(c: ClusterConfig): Map<number, string> {
  const m = new Map<number, string>();
  for (const n of c.nodes) for (const k of n.owns) if (!m.has(k)) m.set(k, n.name);
  return m;
}

/** A deterministic sample of TCP flows to the cluster IP (xorshift32; same sample every run). */
export function syntheticFlows(c: ClusterConfig, count: number, seed = 0x9e3779b9): Flow[] {
  let x = seed >>> 0 || 1;
  const next = (): number => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x;
  };
  const daddr = parseIPv4(c.cluster.ip);
  // IPv6 cluster: random sources in 2001:db8::/32 (documentation prefix).
  const daddr6 = daddr === null ? parseIPv6(c.cluster.ip)! : null;
  const flows: Flow[] = [];
  for (let i = 0; i < count; i++) {
    if (daddr6) flows.push({ proto: 6, saddr: 0, sport: 1024 + (next() % 64511), daddr: 0, dport: 443, saddr6: [0x20010db8, next(), next(), next()], daddr6 });
    else flows.push({ proto: 6, saddr: next(), sport: 1024 + (next() % 64511), daddr: daddr!, dport: 443 });
  }
  return flows;
}
