/**
 * Routing flows to workers when per-flow state must stay in one place
 * (failover's conntrack model): a hash of the connection's endpoints in a
 * canonical order, so both directions of a connection land on the same worker
 * whatever the capture's direction flags say.
 */
import { copySlot, FAMILY_IPV6, type TupleBatch } from '../traffic/batch.ts';
import { mix32 } from '../hash/mix.ts';


/** Same value for a packet and its reply; uniform enough to deal connections to workers. */
export function connectionHash(b: TupleBatch, i: number): number {
  let a: number, c: number;
  if (b.family[i] === FAMILY_IPV6) {
    const j = i << 2;
    a = mix32(mix32(mix32(mix32(0, b.saddr6[j]!), b.saddr6[j + 1]!), b.saddr6[j + 2]!), b.saddr6[j + 3]!) >>> 0;
    c = mix32(mix32(mix32(mix32(0, b.daddr6[j]!), b.daddr6[j + 1]!), b.daddr6[j + 2]!), b.daddr6[j + 3]!) >>> 0;
  } else {
    a = b.saddr[i]!;
    c = b.daddr[i]!;
  }
  let ep1 = mix32(a, b.sport[i]!) >>> 0, ep2 = mix32(c, b.dport[i]!) >>> 0;
  if (ep1 > ep2) { const t = ep1; ep1 = ep2; ep2 = t; }
  let h = mix32(mix32(mix32(0x3c6ef372, b.proto[i]!), ep1), ep2);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

/** Keeps, in place, the packets of `b` whose connection belongs to partition `index` of `count`; returns the new count. */
export function keepPartition(b: TupleBatch, index: number, count: number): number {
  let w = 0;
  for (let i = 0; i < b.count; i++) {
    if (connectionHash(b, i) % count === index) {
      if (w !== i) copySlot(b, i, b, w);
      w++;
    }
  }
  b.count = w;
  return w;
}
