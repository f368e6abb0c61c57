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
import type { ClusterConfig } from '../../../sim/core/cluster-config.ts';
import { nftClusterExpr } from '../../../sim/select/from-config.ts';
import type { Plan, RunStep } from '../../plan.ts';
import { cfgComment, fmtSet, nftTable, nodeByName, ownersOf, whereOf } from '../shared/names.ts';
import { arpTable, ARP_GAP_NOTE, dropTableLines, maddrAdd, maddrDel, tcpLooseStep } from '../shared/link.ts';

/** The `ip` table: pkttype fix-up, jump for the cluster IP, hash against the owner set, drop the rest. */
export function nftIpTable(c: ClusterConfig, owners: readonly number[]): string {
  const { ip, interface: iface, total_nodes: n } = c.cluster;
  return [
    `table ip ${nftTable(c)} {`,
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
    // multicast MAC becomes PACKET_HOST, or TCP would discard it.
    `\t\tiifname "${iface}" ip daddr ${ip} meta pkttype multicast ip daddr != 224.0.0.0/4 meta pkttype set host`,
    `\t\tiifname "${iface}" ip daddr ${ip} jump cluster`,
    `\t}`,
    `\tchain cluster {`,
    // The expression the simulator predicts with (sim/select/from-config.ts), rendered from the same data.
    `\t\t${nftClusterExpr(c)} @owned accept`,
    `\t\tcounter drop`,
    `\t}`,
    `}`,
  ].join('\n');
}

/** Atomic replace-or-create of both tables (ip and arp) in one transaction. */
export function nftReplaceTransaction(c: ClusterConfig, owners: readonly number[]): string {
  return [dropTableLines(c, 'ip'), dropTableLines(c, 'arp'), nftIpTable(c, owners), arpTable(c)].join('\n') + '\n';
}

/** Owner-set change in one nft transaction (adds before deletes; the kernel applies both at once). */
export function nftOwnerStep(c: ClusterConfig, from: readonly number[], to: readonly number[]): RunStep | null {
  const add = to.filter((k) => !from.includes(k));
  const del = from.filter((k) => !to.includes(k));
  if (!add.length && !del.length) return null;
  const lines: string[] = [];
  if (add.length) lines.push(`add element ip ${nftTable(c)} owned { ${add.join(', ')} }`);
  if (del.length) lines.push(`delete element ip ${nftTable(c)} owned { ${del.join(', ')} }`);
  return { argv: ['nft', '-f', '-'], stdin: lines.join('\n') + '\n', why: `owner set ${fmtSet(from)} -> ${fmtSet(to)} in one atomic transaction` };
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
      { argv: ['nft', '-f', '-'], stdin: nftReplaceTransaction(c, owners), why: `replace tables ip/arp ${nftTable(c)} in one transaction (hash ${nftClusterExpr(c)})` },
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
    notes: ['nf_conntrack_tcp_loose is left at its current value', ARP_GAP_NOTE],
    steps: [{ argv: ['nft', '-f', '-'], stdin: `${dropTableLines(c, 'ip')}\n${dropTableLines(c, 'arp')}\n`, why: `delete tables ip/arp ${nftTable(c)} (no error when absent)` }, maddrDel(c)],
  };
}
