/**
 * The contract of a load-sharing scheme in the comparison: a function from
 * (flow, cluster membership) to a node. Kernel bucket schemes (CLUSTERIP,
 * xt_cluster, nft jhash) hash into buckets that nodes own; consistent-hashing
 * schemes (Maglev, rendezvous, jump) map flows to nodes directly.
 */
import type { TupleBatch } from '../traffic/batch.ts';

/**
 * Who is in the cluster. Nodes 0..initial-1 existed from the start; nodes
 * initial..slots-1 were added later (in order). `alive[k]` = 1 when node k is up.
 */
export interface Membership {
  initial: number;
  slots: number;
  alive: Uint8Array;
}

export function membership(initial: number, slots = initial, dead: readonly number[] = []): Membership {
  const alive = new Uint8Array(slots).fill(1);
  for (const d of dead) alive[d] = 0;
  return { initial, slots, alive };
}

export interface Scheme {
  /** Short name for tables and JSON, e.g. "maglev". */
  readonly name: string;
  /** One line: what it is and how it is configured. */
  readonly description: string;
  /** Buckets/table entries it hashes into (null: none, e.g. rendezvous). */
  readonly buckets: (m: Membership) => number | null;
  /** Largest node count it can express (CLUSTERIP: 16 buckets). */
  readonly maxNodes: number;
  /**
   * Node (0-based) of every flow in `flows` for membership `m`, written to
   * out[0..flows.count); -1 when the scheme gives the packet no node (e.g.
   * IPv6 at CLUSTERIP, or no node alive).
   */
  assign(flows: TupleBatch, m: Membership, out: Int32Array): void;
}
