/**
 * How many flows a backend migration between CLUSTERIP and the
 * conntrack-based backends moves: the config's backend says which two hashes
 * compare (kernel-glue/backends/<name>/index.ts, `migration`), the simulator
 * predicts both over the same sample.
 */
import type { ClusterConfig } from '../../sim/core/cluster-config.ts';
import { backendOf } from '../backends/index.ts';
import { ownerNames, predictNodeNumbers, syntheticFlows } from '../predict.ts';

export interface MigrationView {
  from: string;
  to: string;
  sample: number;
  moved: number;
  share: number;
  warning: string;
}

/**
 * CLUSTERIP hashes ntohl(saddr) of each packet; xt_cluster / nft hash the
 * conntrack's original saddr as a raw CPU word (§5.5, §10.10). With the same
 * node count, seed and owner sets, most flows still land elsewhere. This
 * measures the share over a synthetic sample of source addresses.
 */
export function migrationView(c: ClusterConfig, sample = 65536): MigrationView {
  const { from, to, before, after } = backendOf(c).migration(c);
  const flows = syntheticFlows(c, sample);
  const owner = ownerNames(c);
  const a = predictNodeNumbers(before, flows);
  const b = predictNodeNumbers(after, flows);
  let moved = 0;
  for (let i = 0; i < flows.length; i++) if ((owner.get(a[i]!) ?? '') !== (owner.get(b[i]!) ?? '')) moved++;
  const share = flows.length ? moved / flows.length : 0;
  const warning = `CLUSTERIP hashes ntohl(saddr) per packet, xt_cluster/nft hash the conntrack's original saddr as a raw word: ` +
    `migrating ${from} -> ${to} with the same nodes, seed and owner sets moves ${(share * 100).toFixed(1)}% of flows (${moved} of ${flows.length} synthetic sources) to another node; ` +
    `established connections on them break. Migrate in a quiet window or drain first.`;
  return { from, to, sample: flows.length, moved, share, warning };
}
