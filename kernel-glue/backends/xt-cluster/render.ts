/**
 * The `xt_cluster` backend: `iptables -m cluster` (kernel-semantics §5) plus
 * the plumbing CLUSTERIP used to do by itself: the multicast MAC on the
 * interface, ARP answers carrying the cluster MAC (nft arp family; for an IPv6
 * cluster address neighbour discovery, nft ip6 family, shared/link.ts), and
 * `nf_conntrack_tcp_loose=0`. An IPv6 cluster uses ip6tables-legacy.
 *
 * One ACCEPT rule per owned node number, with `--cluster-local-node K`, then a
 * DROP for everything else that is addressed to the cluster IP. Per-node rules
 * rather than one `--cluster-local-nodemask M`: iptables 1.8.9 parses the mask
 * as a value in 1..32 and refuses e.g. 48 (nodes 5 and 6, §5.2), and a rule per
 * node gives a packet counter per node number for the replay tooling.
 */
import { clusterFamily, type ClusterConfig } from '../../../sim/core/cluster-config.ts';
import type { Plan, Step } from '../../plan.ts';
import { cfgComment, fmtSet, hex32, MARK, nodeByName, ownersOf, whereOf } from '../shared/names.ts';
import { ensureJumpStep, removeChainSteps, restoreChainStep, ruleComment } from '../shared/iptables-legacy.ts';
import { arpGapNote, maddrAdd, maddrDel, neighDropStep, neighReplaceStep, tcpLooseStep } from '../shared/link.ts';

/** The chain's rules (without `-A CHAIN`), in the order iptables evaluates them. */
export function xtClusterRules(c: ClusterConfig, owners: readonly number[]): string[] {
  const { total_nodes: n, seed } = c.cluster;
  // IPv6: neighbour discovery to the cluster address is accepted on every node before the hash (nft/render.ts ND_TYPES_NFT says why).
  const nd = clusterFamily(c) === 6 ? [135, 136].map((t) => `-p ipv6-icmp -m icmp6 --icmpv6-type ${t} -j ACCEPT`) : [];
  const rules = nd.concat(owners.map((k) => `-m cluster --cluster-total-nodes ${n} --cluster-local-node ${k} --cluster-hash-seed ${hex32(seed)} ${ruleComment(`${MARK} node ${k}`)} -j ACCEPT`));
  rules.push(`${ruleComment(cfgComment(c))} -j DROP`);
  return rules;
}

export function xtClusterChainStep(c: ClusterConfig, owners: readonly number[]): Step {
  return restoreChainStep(c, xtClusterRules(c, owners), `load chain with the cluster match for node numbers ${fmtSet(owners)} of ${c.cluster.total_nodes}, drop the rest (one atomic table commit)`);
}

export function xtClusterCreatePlan(c: ClusterConfig, nodeName: string): Plan {
  const node = nodeByName(c, nodeName);
  const owners = ownersOf(node);
  return {
    host: node.name,
    where: whereOf(node.host),
    backend: 'xt_cluster',
    notes: [`owns node numbers ${fmtSet(owners)} of ${c.cluster.total_nodes}; ${c.cluster.ip} must be configured on ${c.cluster.interface}`],
    steps: [
      xtClusterChainStep(c, owners),
      ensureJumpStep(c),
      neighReplaceStep(c),
      maddrAdd(c),
      tcpLooseStep(),
    ],
  };
}

export function xtClusterRemovePlan(c: ClusterConfig, nodeName: string): Plan {
  const node = nodeByName(c, nodeName);
  return {
    host: node.name,
    where: whereOf(node.host),
    backend: 'xt_cluster',
    notes: ['nf_conntrack_tcp_loose is left at its current value', arpGapNote(c)],
    steps: [...removeChainSteps(c), neighDropStep(c), maddrDel(c)],
  };
}
