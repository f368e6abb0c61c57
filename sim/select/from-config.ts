/**
 * The selector that predicts a cluster config's answer: the one bridge from
 * the deployment contract (sim/core/cluster-config.ts) to a selector spec.
 */
import { clusterFamily, type ClusterConfig } from '../core/cluster-config.ts';
import { CURRENT_KERNEL, DEFAULT_CLUSTERIP_KERNEL, type SelectorSpec } from '../core/spec.ts';
import { nftJhash, renderNftHash, type NftJhash } from './nft-expr.ts';

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

/**
 * The hash the nft backend loads for this cluster: xt_cluster's input (the
 * conntrack's original source address, §5.5, §7) with `offset 1`, so values
 * are the node numbers 1..N. The seed is always explicit (§6.1: a seedless
 * rule gets a random seed per node). An IPv6 cluster hashes the 16 bytes of
 * `ct original ip6 saddr`: on little-endian CPUs the same value as
 * xt_cluster's jhash2 over four native words (§5.1, read from source, not measured).
 */
export function nftClusterHash(c: ClusterConfig): NftJhash {
  return nftJhash([clusterFamily(c) === 6 ? 'ct original ip6 saddr' : 'ct original ip saddr'], c.cluster.total_nodes, c.cluster.seed, 1);
}

export const nftClusterExpr = (c: ClusterConfig): string => renderNftHash(nftClusterHash(c));
