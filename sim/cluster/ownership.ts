/**
 * Ownership state exactly as the kernel holds it: one bucket bitmask per node
 * (CLUSTERIP's `local_nodes`, xt_cluster's `--cluster-local-nodemask`, the nft
 * set of values a node accepts). Bit b set = the node accepts bucket b = kernel
 * node number b+1. A node that is down owns nothing, whatever its mask said.
 *
 * The invariant a healthy cluster keeps: every bucket owned by exactly one live
 * node. A bucket owned by none is orphaned (its packets are lost); a bucket
 * owned by several is duplicated (split brain: every owner accepts the packet,
 * kernel-semantics §4.2 step 5 is evaluated on each node independently).
 *
 * Masks are 32-bit (`>>> 0`): CLUSTERIP allows 16 nodes, xt_cluster 32.
 */
import type { ClusterConfig } from '../core/cluster-config.ts';

/** Per node (config order): the bucket bitmask it accepts. */
export type OwnerSets = number[];

export const MAX_BUCKETS = 32;
export const MAX_NODES = 32;

/** Bucket b (0-based) as a one-bit mask. */
export function bucketBit(b: number): number {
  return (1 << b) >>> 0;
}

/** Number of set bits of a 32-bit mask. */
export function popcount32(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
}

/** The 0-based indexes of the set bits, lowest first. */
export function bitsOf(mask: number): number[] {
  const out: number[] = [];
  for (let b = 0; b < 32; b++) if ((mask >>> b) & 1) out.push(b);
  return out;
}

/** Kernel node numbers (1-based) of a bucket mask, e.g. "2,4", as /proc/net/ipt_CLUSTERIP shows them. */
export function formatBuckets(mask: number): string {
  return bitsOf(mask).map((b) => b + 1).join(',');
}

/**
 * The cluster as the policies see it: plain data, so the kernel-glue agent and
 * the simulator build it from the same config.
 */
export interface ClusterModel {
  /** Node names in config order; index i is "node index i" everywhere in sim/cluster. */
  names: string[];
  /** Number of buckets N (cluster.total_nodes). */
  buckets: number;
  /** Per bucket: the index of the node that owns it in the config ("home"), or -1 if none. */
  home: number[];
}

/** Builds the model from a validated cluster config. */
export function clusterModel(c: ClusterConfig): ClusterModel {
  const buckets = c.cluster.total_nodes;
  if (buckets > MAX_BUCKETS) throw new RangeError(`total_nodes ${buckets}: the failover model handles at most ${MAX_BUCKETS} buckets`);
  if (c.nodes.length > MAX_NODES) throw new RangeError(`${c.nodes.length} nodes: the failover model handles at most ${MAX_NODES}`);
  const home = new Array<number>(buckets).fill(-1);
  c.nodes.forEach((n, i) => {
    for (const k of n.owns) if (k >= 1 && k <= buckets && home[k - 1] === -1) home[k - 1] = i;
  });
  return { names: c.nodes.map((n) => n.name), buckets, home };
}

/** The owner sets the config itself describes (every node up, nobody failed). */
export function homeSets(m: ClusterModel): OwnerSets {
  const sets = new Array<number>(m.names.length).fill(0);
  m.home.forEach((n, b) => {
    if (n >= 0) sets[n] = (sets[n]! | bucketBit(b)) >>> 0;
  });
  return sets;
}

/**
 * Per bucket, the mask of node indexes that accept it, given each node's
 * bucket mask (down nodes must already have mask 0).
 */
export function ownersPerBucket(sets: readonly number[], buckets: number): number[] {
  const out = new Array<number>(buckets).fill(0);
  for (let n = 0; n < sets.length; n++) {
    const m = sets[n]!;
    if (m === 0) continue;
    for (let b = 0; b < buckets; b++) if ((m >>> b) & 1) out[b] = (out[b]! | bucketBit(n)) >>> 0;
  }
  return out;
}

export interface InvariantReport {
  /** Buckets (0-based) no live node accepts: their packets are lost. */
  orphaned: number[];
  /** Buckets (0-based) several live nodes accept: their packets are duplicated. */
  doubled: number[];
}

/** Checks "every bucket owned by exactly one live node" for one moment. */
export function checkOwnership(sets: readonly number[], buckets: number): InvariantReport {
  const per = ownersPerBucket(sets, buckets);
  const orphaned: number[] = [];
  const doubled: number[] = [];
  per.forEach((m, b) => {
    const c = popcount32(m);
    if (c === 0) orphaned.push(b);
    else if (c > 1) doubled.push(b);
  });
  return { orphaned, doubled };
}
