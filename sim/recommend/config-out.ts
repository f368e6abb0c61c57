/**
 * A candidate as a cluster config (sim/core/cluster-config.ts is the
 * contract): the current config with the hash structure and owner sets
 * replaced, everything else (addresses, hosts, heartbeat) kept. The search
 * predicts through `selectorSpecOf` of this very config, so what is written
 * is what was predicted.
 */
import { Document, isMap, isSeq } from 'yaml';
import type { ClusterConfig } from '../core/cluster-config.ts';
import type { Backend, ClusteripMode } from '../core/spec.ts';
import type { PolicyName } from '../cluster/policies.ts';

/** A hash structure: what decides which bucket a flow lands in. */
export interface Structure {
  backend: Backend;
  /** CLUSTERIP only; xt_cluster and nft hash the original source address. */
  hashmode?: ClusteripMode;
  buckets: number;
  seed: number;
}

/** The structure a config runs. */
export function structureOf(c: ClusterConfig): Structure {
  return { backend: c.cluster.backend, ...(c.cluster.backend === 'clusterip' ? { hashmode: c.cluster.hashmode ?? 'sourceip' } : {}), buckets: c.cluster.total_nodes, seed: c.cluster.seed };
}

export function sameStructure(a: Structure, b: Structure): boolean {
  return a.backend === b.backend && a.hashmode === b.hashmode && a.buckets === b.buckets && a.seed === b.seed;
}

/** Per node index (config order): the owned buckets as kernel node numbers (bucket + 1). */
export function ownsOf(home: ArrayLike<number>, nodes: number): number[][] {
  const owns: number[][] = Array.from({ length: nodes }, () => []);
  for (let b = 0; b < home.length; b++) owns[home[b]!]!.push(b + 1);
  return owns;
}

/** Bucket -> node index of a config (-1: nobody). */
export function homeOf(c: ClusterConfig): Int32Array {
  const home = new Int32Array(c.cluster.total_nodes).fill(-1);
  c.nodes.forEach((n, i) => { for (const k of n.owns) if (k >= 1 && k <= home.length && home[k - 1] === -1) home[k - 1] = i; });
  return home;
}

/** The base config with structure, kernel, owner sets and takeover policy replaced. */
export function candidateConfig(base: ClusterConfig, s: Structure, home: ArrayLike<number>, kernel: string, policy: PolicyName): ClusterConfig {
  const owns = ownsOf(home, base.nodes.length);
  const { hashmode: _drop, ...cluster } = base.cluster;
  return {
    ...base,
    cluster: { ...cluster, backend: s.backend, ...(s.backend === 'clusterip' ? { hashmode: s.hashmode ?? 'sourceip' } : {}), seed: s.seed, total_nodes: s.buckets, kernel },
    nodes: base.nodes.map((n, i) => ({ ...n, owns: owns[i]! })),
    failover: {
      policy,
      failback: base.failover?.failback ?? 'immediate',
      stable_s: base.failover?.stable_s ?? 10,
      handover: base.failover?.handover ?? 'release-first',
      ...(base.failover?.backup ? { backup: base.failover.backup } : {}),
    },
  };
}

/** YAML for a config, seed in hex as the kernel tools print it, one node a line. */
export function configYaml(c: ClusterConfig, header: string[]): string {
  const seedHex = `0x${c.cluster.seed.toString(16).padStart(8, '0')}`;
  const doc = { ...c, cluster: { ...c.cluster, seed: seedHex } };
  const d = new Document(doc);
  // One line per node, as the README writes them.
  const nodes = d.get('nodes', true);
  if (isSeq(nodes)) for (const n of nodes.items) if (isMap(n)) n.flow = true;
  const text = d.toString({ lineWidth: 0 });
  return `${header.map((h) => `# ${h}`).join('\n')}\n${text}`;
}
