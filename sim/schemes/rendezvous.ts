/**
 * Rendezvous (highest random weight) hashing, Thaler & Ravishankar 1998:
 * every node scores the flow with a hash of (flow, node); the highest score
 * wins. Removing a node moves exactly the flows it won; adding one moves
 * exactly the flows it now wins: the minimum. Cost: one score per node per flow.
 */
import { flowHashes, mix2, scratchHashes } from './flow-hash.ts';
import type { Scheme } from './scheme.ts';

/** Per-node salt: a fixed function of the node id, so that scores are stable across membership changes. */
export const nodeSalt = (id: number): number => mix2(id + 1, 0x52454e44) | 0;

export function rendezvousScheme(): Scheme {
  return {
    name: 'rendezvous',
    description: 'rendezvous / highest random weight: each node scores each flow, the highest wins',
    buckets: () => null,
    maxNodes: 1 << 16,
    assign(flows, mb, out) {
      const n = flows.count;
      const h = scratchHashes(n);
      flowHashes(flows, 0x52454e44, h);
      const ids: number[] = [];
      for (let k = 0; k < mb.slots; k++) if (mb.alive[k]) ids.push(k);
      const salts = Int32Array.from(ids, nodeSalt);
      const nid = Int32Array.from(ids);
      const cnt = ids.length;
      for (let i = 0; i < n; i++) {
        const x = h[i]!;
        let best = -1, bestScore = -1;
        for (let k = 0; k < cnt; k++) {
          const score = mix2(x, salts[k]!);
          if (score > bestScore) { bestScore = score; best = nid[k]!; }
        }
        out[i] = best;
      }
    },
  };
}
