/**
 * The one input path's first step, shared by simulate and failover: only
 * packets addressed to the cluster IP meet the cluster rule (a node's rule
 * matches `-d CLUSTER_IP` / `ip daddr CLUSTER_IP`); the server's replies and
 * unrelated traffic in the same capture never reach it.
 */
import { copySlot, FAMILY_IPV4, type TupleBatch } from '../traffic/batch.ts';

/** Keeps, in place and in order, the packets of `b` addressed to `clusterIp`; returns how many were dropped. */
export function keepToClusterIp(b: TupleBatch, clusterIp: number): number {
  const n = b.count, ip = clusterIp >>> 0;
  let w = 0;
  for (let i = 0; i < n; i++) {
    if (b.family[i] === FAMILY_IPV4 && b.daddr[i] === ip) {
      if (w !== i) copySlot(b, i, b, w);
      w++;
    }
  }
  b.count = w;
  return n - w;
}
