/**
 * The `nft` backend: a native nftables table that gives xt_cluster's answer
 * (kernel-semantics §5.5, §7) without iptables.
 *
 *   jhash ct original ip saddr mod N seed S offset 1 @owned accept
 *
 * `offset 1` makes the hash value equal xt_cluster's / CLUSTERIP's node number
 * 1..N (node K = bucket K-1), so the set `owned` holds exactly the config's
 * `owns` numbers, and a bucket move is one atomic set-element transaction.
 * This is NOT what iptables-translate prints (`... eq K` without offset: off by
 * one, §7); we never emit that form.
 *
 * The set carries a counter per element: per node number, the packets this
 * host accepted (status, the agent and the replay tooling read them).
 */
import { clusterAddrText, clusterFamily, type ClusterConfig } from '../../../sim/core/cluster-config.ts';
import { nftClusterExpr } from '../../../sim/select/from-config.ts';
import type { Plan, RunStep } from '../../plan.ts';
import { cfgComment, fmtSet, neighTable, nftFamily, nftTable, nodeByName, ownersOf, whereOf } from '../shared/names.ts';
import { arpGapNote, dropMainTable, dropNeighTable, maddrAdd, maddrDel, neighTableText, tcpLooseStep } from '../shared/link.ts';

/**
 * Neighbour discovery addressed to the cluster address is every node's
 * business, not one bucket's: a neighbour answers a node's solicitation (sent
 * from the cluster address with the cluster MAC, shared/link.ts) to the
 * cluster address on the cluster MAC, so every node receives it, and the
 * node that asked must take it. Conntrack gives these messages no entry
 * (nf_conntrack_proto_icmpv6.c: only echo and node-information requests
 * start one; read from source), so the hash would drop them on every node
 * (measured: nodes' neighbour entries for clients stayed FAILED).
 */
export const ND_TYPES_NFT = 'icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert }';

/** The `ip` (or `ip6`) table: pkttype fix-up, jump for the cluster IP, hash against the owner set, drop the rest. */
export function nftIpTable(c: ClusterConfig, owners: readonly number[]): string {
  const { interface: iface, total_nodes: n } = c.cluster;
  const ip = clusterAddrText(c);
  const fam = nftFamily(c);
  const mcast = clusterFamily(c) === 6 ? 'ff00::/8' : '224.0.0.0/4';
  return [
    `table ${fam} ${nftTable(c)} {`,
    `\tcomment "${cfgComment(c)}"`,
    // `type integer` is refused and `typeof jhash ...` crashes nft 1.0.6's listing;
    // numgen's typeof gives the same 32-bit host-order integer type the hash yields.
    `\tset owned {`,
    `\t\ttypeof numgen inc mod ${n}`,
    `\t\tcounter`,
    ...(owners.length ? [`\t\telements = { ${owners.join(', ')} }`] : []),
    `\t}`,
    `\tchain prerouting {`,
    `\t\ttype filter hook prerouting priority mangle; policy accept;`,
    // xt_cluster's side effect (§5.4, §6.3): unicast IP that arrived on the
    // multicast MAC becomes PACKET_HOST, or TCP would discard it (IPv6: multicast is ff00::/8, §5.4).
    `\t\tiifname "${iface}" ${fam} daddr ${ip} meta pkttype multicast ${fam} daddr != ${mcast} meta pkttype set host`,
    ...(clusterFamily(c) === 6 ? [`\t\tiifname "${iface}" ip6 daddr ${ip} ${ND_TYPES_NFT} accept`] : []),
    `\t\tiifname "${iface}" ${fam} daddr ${ip} jump cluster`,
    `\t}`,
    `\tchain cluster {`,
    // The expression the simulator predicts with (sim/select/from-config.ts), rendered from the same data.
    `\t\t${nftClusterExpr(c)} @owned accept`,
    `\t\tcounter drop`,
    `\t}`,
    `}`,
  ].join('\n');
}

/** Atomic replace-or-create of both tables (hash and neighbour: ip and arp, or ip6 and ip6 _nd) in one transaction. */
export function nftReplaceTransaction(c: ClusterConfig, owners: readonly number[]): string {
  return [dropMainTable(c), dropNeighTable(c), nftIpTable(c, owners), neighTableText(c)].join('\n') + '\n';
}

/** Owner-set change in one nft transaction (adds before deletes; the kernel applies both at once). */
export function nftOwnerStep(c: ClusterConfig, from: readonly number[], to: readonly number[]): RunStep | null {
  const add = to.filter((k) => !from.includes(k));
  const del = from.filter((k) => !to.includes(k));
  if (!add.length && !del.length) return null;
  const lines: string[] = [];
  if (add.length) lines.push(`add element ${nftFamily(c)} ${nftTable(c)} owned { ${add.join(', ')} }`);
  if (del.length) lines.push(`delete element ${nftFamily(c)} ${nftTable(c)} owned { ${del.join(', ')} }`);
  return { argv: ['nft', '-f', '-'], stdin: lines.join('\n') + '\n', why: `owner set ${fmtSet(from)} -> ${fmtSet(to)} in one atomic transaction` };
}

/** "ip/arp clusterip_sim" (IPv4) or "ip6 clusterip_sim and ip6 clusterip_sim_nd" (IPv6), for plan lines. */
function tablesWords(c: ClusterConfig): string {
  if (clusterFamily(c) === 4) return `ip/arp ${nftTable(c)}`;
  const t = neighTable(c);
  return `ip6 ${nftTable(c)} and ${t.family} ${t.name}`;
}

export function nftCreatePlan(c: ClusterConfig, nodeName: string): Plan {
  const node = nodeByName(c, nodeName);
  const owners = ownersOf(node);
  return {
    host: node.name,
    where: whereOf(node.host),
    backend: 'nft',
    notes: [`owns node numbers ${fmtSet(owners)} of ${c.cluster.total_nodes}; ${c.cluster.ip} must be configured on ${c.cluster.interface}`],
    steps: [
      { argv: ['nft', '-f', '-'], stdin: nftReplaceTransaction(c, owners), why: `replace tables ${tablesWords(c)} in one transaction (hash ${nftClusterExpr(c)})` },
      maddrAdd(c),
      tcpLooseStep(),
    ],
  };
}

export function nftRemovePlan(c: ClusterConfig, nodeName: string): Plan {
  const node = nodeByName(c, nodeName);
  return {
    host: node.name,
    where: whereOf(node.host),
    backend: 'nft',
    notes: ['nf_conntrack_tcp_loose is left at its current value', arpGapNote(c)],
    steps: [{ argv: ['nft', '-f', '-'], stdin: `${dropMainTable(c)}\n${dropNeighTable(c)}\n`, why: `delete tables ${tablesWords(c)} (no error when absent)` }, maddrDel(c)],
  };
}
