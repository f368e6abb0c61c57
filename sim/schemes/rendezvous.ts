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
          // lookup3 final mix of (flow hash, node salt), inline.
          let a = (x + 0x2545f491) | 0, bb = (salts[k]! + 0x2545f491) | 0, c = 0x2545f491;
          c ^= bb; c = (c - ((bb << 14) | (bb >>> 18))) | 0;
          a ^= c; a = (a - ((c << 11) | (c >>> 21))) | 0;
          bb ^= a; bb = (bb - ((a << 25) | (a >>> 7))) | 0;
          c ^= bb; c = (c - ((bb << 16) | (bb >>> 16))) | 0;
          a ^= c; a = (a - ((c << 4) | (c >>> 28))) | 0;
          bb ^= a; bb = (bb - ((a << 14) | (a >>> 18))) | 0;
          c ^= bb; c = (c - ((bb << 24) | (bb >>> 8))) | 0;
          const score = c >>> 0;
          if (score > bestScore) { bestScore = score; best = nid[k]!; }
        }
        out[i] = best;
      }
    },
  };
}
