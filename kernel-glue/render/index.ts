/** One entry point over the three backend renderers. */
import type { ClusterConfig } from '../../sim/core/cluster-config.ts';
import type { Plan, Step } from '../plan.ts';
import { clusteripCreatePlan, clusteripRemovePlan, procWrites } from './clusterip.ts';
import { nodeByName, whereOf } from './common.ts';
import { fmtSet, nftCreatePlan, nftOwnerStep, nftRemovePlan } from './nft.ts';
import { xtClusterChainStep, xtClusterCreatePlan, xtClusterRemovePlan } from './xt-cluster.ts';

/** The full plan that brings a host from any state of our objects to the config. */
export function createPlan(c: ClusterConfig, nodeName: string): Plan {
  switch (c.cluster.backend) {
    case 'clusterip': return clusteripCreatePlan(c, nodeName);
    case 'xt_cluster': return xtClusterCreatePlan(c, nodeName);
    case 'nft': return nftCreatePlan(c, nodeName);
  }
}

export function removePlan(c: ClusterConfig, nodeName: string): Plan {
  switch (c.cluster.backend) {
    case 'clusterip': return clusteripRemovePlan(c, nodeName);
    case 'xt_cluster': return xtClusterRemovePlan(c, nodeName);
    case 'nft': return nftRemovePlan(c, nodeName);
  }
}

/**
 * Changes only the owner set on a host whose rules already match the config
 * (same fingerprint): /proc writes, one nft set transaction, or one chain
 * reload. Empty steps when nothing changes.
 */
export function ownerPlan(c: ClusterConfig, nodeName: string, from: readonly number[], to: readonly number[]): Plan {
  const node = nodeByName(c, nodeName);
  const f = [...from].sort((a, b) => a - b), t = [...new Set(to)].sort((a, b) => a - b);
  const same = f.length === t.length && f.every((k, i) => k === t[i]);
  let steps: Step[] = [];
  if (!same) {
    switch (c.cluster.backend) {
      case 'clusterip': steps = procWrites(c.cluster.ip, f, t); break;
      case 'xt_cluster': steps = [xtClusterChainStep(c, t)]; break;
      case 'nft': steps = [nftOwnerStep(f, t)!]; break;
    }
  }
  return { host: node.name, where: whereOf(node.host), backend: c.cluster.backend, notes: [`owner set ${fmtSet(f)} -> ${fmtSet(t)}`], steps };
}
