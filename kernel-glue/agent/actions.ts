/**
 * The agent's hands: read and change THIS host's owner set through
 * kernel-glue (the same renderers and runners `glue apply/move` use). The
 * agent runs on the node it controls, so commands run locally (inside the
 * node's network namespace when the agent was started there).
 *
 * Changing the owner set is one atomic step per backend: an nft set-element
 * transaction, an iptables-legacy-restore of our chain (xt_cluster), or the
 * /proc/net/ipt_CLUSTERIP writes (CLUSTERIP, kernel-semantics §4.4; each
 * write takes effect on the next packet, §4.2).
 */
import type { ClusterConfig } from '../../sim/core/cluster-config.ts';
import { fingerprint } from '../backends/shared/names.ts';
import type { KernelView } from '../backends/shared/backend.ts';
import { backendOf, createPlan, ownerPlan } from '../backends/index.ts';
import { localRunner, type Runner } from '../exec/runner.ts';
import { runPlan } from '../exec/steps.ts';
import { readHostState } from '../control/state.ts';


/** What the agent needs from a host. Tests may supply their own. */
export interface OwnershipActions {
  /** Makes sure our rules are in place, keeping the owner set the kernel has (empty on a fresh host). */
  prepare(): Promise<KernelView>;
  /** The owner set as the kernel has it now (one cheap command). */
  read(): Promise<KernelView>;
  /** Changes the owner set from `from` to `to` atomically. */
  set(from: readonly number[], to: readonly number[]): Promise<void>;
}

/** kernel-glue on the local host (or the namespace the agent runs in). */
export function glueActions(c: ClusterConfig, node: string, r: Runner = localRunner(node)): OwnershipActions {
  const backend = backendOf(c);
  const read = (): Promise<KernelView> => backend.readOwners(r, c);
  return {
    async prepare() {
      const st = await readHostState(r, c, fingerprint(c));
      if (!st.complete) {
        // Our rules are missing or from another config: install them with the owner set the kernel has now
        // (usually none: a node never claims buckets the policy has not given it).
        const keep = st.fingerprint === fingerprint(c) ? (st.owners ?? []) : [];
        const cc: ClusterConfig = { ...c, nodes: c.nodes.map((n) => (n.name === node ? { ...n, owns: keep } : n)) };
        await runPlan(r, createPlan(cc, node));
      }
      return read();
    },
    read,
    async set(from, to) {
      await runPlan(r, ownerPlan(c, node, from, to));
    },
  };
}
