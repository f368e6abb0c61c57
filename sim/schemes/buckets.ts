/**
 * The kernel's own schemes as load-sharing schemes: a selector hashes each
 * flow into B buckets and each bucket has an owner node (CLUSTERIP's
 * local_nodes, xt_cluster's node mask, an nft map from hash value to node).
 *
 * Two layouts:
 * - B = N ("one bucket per node", the usual --total-nodes N): a failed node's
 *   bucket goes whole to one survivor; adding a node means --total-nodes N+1,
 *   which re-hashes everything.
 * - B = M > N fixed buckets spread round-robin: a failed node's buckets are
 *   dealt to the least-loaded survivors; an added node takes buckets from the
 *   most-loaded nodes until it has its share; a returning node gets its own back.
 */
import { buildSelector } from '../select/build.ts';
import type { Selector, SelectorSpec } from '../select/selector.ts';
import type { Membership, Scheme } from './scheme.ts';

/**
 * Bucket -> node for a membership. Deterministic: the same membership always
 * gives the same owners, so "fail then return" restores the original map.
 */
export function bucketOwners(buckets: number, m: Membership, onePerNode: boolean): Int32Array {
  const owner = new Int32Array(buckets);
  const count = new Int32Array(m.slots);
  if (onePerNode) {
    for (let b = 0; b < buckets; b++) { owner[b] = b; count[b]!++; }
  } else {
    for (let b = 0; b < buckets; b++) { owner[b] = b % m.initial; count[b % m.initial]!++; }
    // Nodes added later take buckets from the most-loaded nodes, highest bucket first.
    for (let k = m.initial; k < m.slots; k++) {
      const share = Math.floor(buckets / (k + 1));
      while (count[k]! < share) {
        let donor = 0;
        for (let d = 1; d < k; d++) if (count[d]! > count[donor]!) donor = d;
        let b = buckets - 1;
        while (owner[b] !== donor) b--;
        owner[b] = k; count[donor]!--; count[k]!++;
      }
    }
  }
  // Buckets of dead nodes go to the least-loaded live node, searching from the dead one's neighbour.
  for (let b = 0; b < buckets; b++) {
    const o = owner[b]!;
    if (m.alive[o]) continue;
    let best = -1;
    for (let s = 1; s <= m.slots; s++) {
      const k = (o + s) % m.slots;
      if (m.alive[k] && (best < 0 || count[k]! < count[best]!)) best = k;
    }
    if (best < 0) { owner[b] = -1; continue; }
    count[o]!--; count[best]!++; owner[b] = best;
  }
  return owner;
}

/**
 * A kernel bucket scheme. `spec(B)` gives the selector for B buckets;
 * `fixed` = M for the M-bucket layout, null for one bucket per node.
 */
export function kernelBucketScheme(name: string, what: string, spec: (buckets: number) => SelectorSpec, maxBuckets: number, fixed: number | null): Scheme {
  const sels = new Map<number, Selector>();
  let tmp = new Int32Array(0);
  const bucketsFor = (m: Membership): number => fixed ?? m.slots;
  return {
    name,
    description: fixed === null ? `${what}, one bucket per node (B = N), takeover of a failed node's bucket by one survivor` : `${what}, ${fixed} buckets spread over the nodes, rebalanced bucket by bucket`,
    buckets: bucketsFor,
    maxNodes: fixed ?? maxBuckets,
    assign(flows, m, out) {
      const B = bucketsFor(m);
      if (B > maxBuckets || m.slots > B) throw new RangeError(`${name}: ${m.slots} nodes need more than ${maxBuckets} buckets`);
      let sel = sels.get(B);
      if (!sel) { sel = buildSelector(spec(B)); sels.set(B, sel); }
      const owners = bucketOwners(B, m, fixed === null);
      const n = flows.count;
      if (tmp.length < n) tmp = new Int32Array(n);
      sel.select(flows, tmp, 0, n);
      for (let i = 0; i < n; i++) {
        const b = tmp[i]!;
        out[i] = b >= 0 ? owners[b]! : -1;
      }
    },
  };
}

/** The kernel schemes of the comparison, for `nodes` nodes (those that cannot express it are left out). */
export function kernelSchemes(): Scheme[] {
  const cip = (B: number): SelectorSpec => ({ backend: 'clusterip', hashmode: 'sourceip-sourceport', totalNodes: B, hashInit: 0, kernel: '6.1', endian: 'little' });
  const xt = (B: number): SelectorSpec => ({ backend: 'xt_cluster', totalNodes: B, hashSeed: 1, kernel: '6.18', endian: 'little' });
  const nft = (B: number): SelectorSpec => ({ backend: 'nft', expr: `jhash ip saddr . ip daddr . th sport . th dport mod ${B} seed 0x1`, kernel: '6.18', endian: 'little' });
  return [
    kernelBucketScheme('clusterip', 'iptables CLUSTERIP sourceip-sourceport (6.1)', cip, 16, null),
    kernelBucketScheme('clusterip-16', 'iptables CLUSTERIP sourceip-sourceport (6.1)', cip, 16, 16),
    kernelBucketScheme('xt_cluster', 'iptables -m cluster (hashes the source address only)', xt, 32, null),
    kernelBucketScheme('xt_cluster-32', 'iptables -m cluster (hashes the source address only)', xt, 32, 32),
    kernelBucketScheme('nft', "nft 'jhash ip saddr . ip daddr . th sport . th dport'", nft, 1 << 20, null),
    kernelBucketScheme('nft-256', "nft 'jhash ip saddr . ip daddr . th sport . th dport mod 256' + a map to nodes", nft, 1 << 20, 256),
  ];
}
