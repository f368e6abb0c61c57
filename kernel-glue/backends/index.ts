/**
 * The backends, by name. Each lives in its own folder behind the GlueBackend
 * interface (shared/backend.ts):
 *
 *   <backend>/render.ts   the rules and plans (what `glue plan` prints)
 *   <backend>/state.ts    reading them back from a host (status, agent, replay)
 *   <backend>/index.ts    preflight, rollback, replay sink, migration notes
 *
 * Adding a backend is adding a folder and one line to BACKENDS.
 */
import type { ClusterConfig } from '../../sim/core/cluster-config.ts';
import type { Backend } from '../../sim/core/spec.ts';
import type { Plan } from '../plan.ts';
import type { GlueBackend } from './shared/backend.ts';
import { fmtSet, nodeByName, whereOf } from './shared/names.ts';
import { clusteripBackend } from './clusterip/index.ts';
import { nftBackend } from './nft/index.ts';
import { xtClusterBackend } from './xt-cluster/index.ts';

const BACKENDS: Record<Backend, GlueBackend> = {
  clusterip: clusteripBackend,
  xt_cluster: xtClusterBackend,
  nft: nftBackend,
};

/** Every backend (`glue import` asks each what a host has). */
export const ALL_BACKENDS: readonly GlueBackend[] = Object.values(BACKENDS);

/** The backend a config uses. */
export function backendOf(c: ClusterConfig): GlueBackend {
  return BACKENDS[c.cluster.backend];
}

/** The full plan that brings a host from any state of our objects to the config. */
export function createPlan(c: ClusterConfig, nodeName: string): Plan {
  return backendOf(c).createPlan(c, nodeName);
}

export function removePlan(c: ClusterConfig, nodeName: string): Plan {
  return backendOf(c).removePlan(c, nodeName);
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
  return { host: node.name, where: whereOf(node.host), backend: c.cluster.backend, notes: [`owner set ${fmtSet(f)} -> ${fmtSet(t)}`], steps: same ? [] : backendOf(c).ownerSteps(c, f, t) };
}
