/**
 * Which node the simulator predicts for given flows, and how many flows a
 * backend migration moves: the bridge between the config and sim/select.
 */
import type { ClusterConfig } from '../sim/core/cluster-config.ts';
import { selectorSpecOf } from '../sim/select/from-config.ts';
import { buildSelector } from '../sim/select/build.ts';
import type { SelectorSpec } from '../sim/select/selector.ts';
import { createBatch } from '../sim/traffic/batch.ts';
import { writeTupleV4 } from '../sim/traffic/tuple.ts';
import { parseIPv4 } from '../sim/core/addr.ts';
import { DEFAULT_CLUSTERIP_KERNEL, CURRENT_KERNEL } from '../sim/core/spec.ts';

export interface Flow {
  proto: number;
  saddr: number;
  sport: number;
  daddr: number;
  dport: number;
}

/** Predicted kernel node number (1..N) per flow, or 0 when no node takes it (no bucket). */
export function predictNodeNumbers(spec: SelectorSpec, flows: readonly Flow[]): number[] {
  const sel = buildSelector(spec);
  const b = createBatch(Math.max(1, flows.length));
  flows.forEach((f, i) => writeTupleV4(b, i, f.proto, f.saddr, f.sport, f.daddr, f.dport));
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

function ownerNames(c: ClusterConfig): Map<number, string> {
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
  const daddr = parseIPv4(c.cluster.ip)!;
  const flows: Flow[] = [];
  for (let i = 0; i < count; i++) flows.push({ proto: 6, saddr: next(), sport: 1024 + (next() % 64511), daddr, dport: 443 });
  return flows;
}

export interface MigrationView {
  from: string;
  to: string;
  sample: number;
  moved: number;
  share: number;
  warning: string;
}

/**
 * CLUSTERIP hashes ntohl(saddr) of each packet; xt_cluster / nft hash the
 * conntrack's original saddr as a raw CPU word (§5.5, §10.10). With the same
 * node count, seed and owner sets, most flows still land elsewhere. This
 * measures the share over a synthetic sample of source addresses.
 */
export function migrationView(c: ClusterConfig, sample = 65536): MigrationView {
  const k = c.cluster;
  const here = selectorSpecOf(c);
  const other: SelectorSpec = k.backend === 'clusterip'
    ? { backend: 'xt_cluster', totalNodes: k.total_nodes, hashSeed: k.seed, kernel: CURRENT_KERNEL, endian: k.endian }
    : { backend: 'clusterip', hashmode: 'sourceip', totalNodes: k.total_nodes, hashInit: k.seed, kernel: DEFAULT_CLUSTERIP_KERNEL, endian: k.endian };
  const flows = syntheticFlows(c, sample);
  const owner = ownerNames(c);
  const a = predictNodeNumbers(k.backend === 'clusterip' ? here : other, flows);
  const b = predictNodeNumbers(k.backend === 'clusterip' ? other : here, flows);
  let moved = 0;
  for (let i = 0; i < flows.length; i++) if ((owner.get(a[i]!) ?? '') !== (owner.get(b[i]!) ?? '')) moved++;
  const from = k.backend === 'clusterip' ? `clusterip ${k.hashmode ?? 'sourceip'}` : 'clusterip sourceip';
  const to = k.backend === 'clusterip' ? 'xt_cluster / nft' : k.backend;
  const share = flows.length ? moved / flows.length : 0;
  const warning = `CLUSTERIP hashes ntohl(saddr) per packet, xt_cluster/nft hash the conntrack's original saddr as a raw word: ` +
    `migrating ${from} -> ${to} with the same nodes, seed and owner sets moves ${(share * 100).toFixed(1)}% of flows (${moved} of ${flows.length} synthetic sources) to another node; ` +
    `established connections on them break. Migrate in a quiet window or drain first.`;
  return { from, to, sample: flows.length, moved, share, warning };
}
