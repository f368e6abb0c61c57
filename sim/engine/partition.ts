/**
 * Routing flows to workers when per-flow state must stay in one place
 * (failover's conntrack model): a hash of the connection's endpoints in a
 * canonical order, so both directions of a connection land on the same worker
 * whatever the capture's direction flags say.
 */
import { copySlot, type TupleBatch } from '../traffic/batch.ts';
import { connectionHash } from '../cluster/conn-key.ts';

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
