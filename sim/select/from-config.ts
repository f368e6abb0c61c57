/**
 * The selector that predicts a cluster config's answer: the one bridge from
 * the deployment contract (sim/core/cluster-config.ts) to a selector spec.
 */
import type { ClusterConfig } from '../core/cluster-config.ts';
import { CURRENT_KERNEL, DEFAULT_CLUSTERIP_KERNEL, type SelectorSpec } from '../core/spec.ts';

/** The selector that predicts this cluster's answer. */
export function selectorSpecOf(c: ClusterConfig): SelectorSpec {
  const { backend, total_nodes, seed, endian } = c.cluster;
  if (backend === 'clusterip') {
    return { backend, hashmode: c.cluster.hashmode ?? 'sourceip', totalNodes: total_nodes, hashInit: seed, kernel: c.cluster.kernel ?? DEFAULT_CLUSTERIP_KERNEL, endian };
  }
  if (backend === 'xt_cluster') return { backend, totalNodes: total_nodes, hashSeed: seed, kernel: c.cluster.kernel ?? CURRENT_KERNEL, endian };
  // The nft rules kernel-glue writes are xt_cluster's exact equivalent (kernel-semantics §7).
  return { backend: 'nft', expr: nftClusterExpr(c), kernel: c.cluster.kernel ?? CURRENT_KERNEL, endian };
}

export function nftClusterExpr(c: ClusterConfig): string {
  return `jhash ct original ip saddr mod ${c.cluster.total_nodes} seed 0x${c.cluster.seed.toString(16).padStart(8, '0')} offset 1`;
}
