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
 * host accepted (the replay tooling reads them).
 */
import type { ClusterConfig } from '../../sim/core/cluster-config.ts';
import type { Plan, RunStep, Step } from '../plan.ts';
import { cfgComment, hex32, maddrAdd, maddrDel, NFT_TABLE, nodeByName, ownersOf, TCP_LOOSE, whereOf } from './common.ts';

/** The jhash expression, identical to sim/select/from-config.ts nftClusterExpr (seed always explicit: §6.1, a seedless rule gets a random seed). */
export function nftHashExpr(c: ClusterConfig): string {
  return `jhash ct original ip saddr mod ${c.cluster.total_nodes} seed ${hex32(c.cluster.seed)} offset 1`;
}

/**
 * The ARP half (used by xt_cluster too): outgoing ARP requests and replies
 * whose sender IP is the cluster IP carry the cluster MAC as sender hardware
 * address, as CLUSTERIP's own ARP hook did (§4.7): neighbours then send the
 * cluster IP's traffic to the multicast MAC, which every node receives.
 */
export function nftArpTable(c: ClusterConfig): string {
  const { ip, mac } = c.cluster;
  return [
    `table arp ${NFT_TABLE} {`,
    `\tcomment "${cfgComment(c)}"`,
    `\tchain output {`,
    `\t\ttype filter hook output priority filter; policy accept;`,
    `\t\tarp saddr ip ${ip} arp saddr ether set ${mac.toLowerCase()}`,
    `\t}`,
    `}`,
  ].join('\n');
}

/** The `ip` table: pkttype fix-up, jump for the cluster IP, hash against the owner set, drop the rest. */
export function nftIpTable(c: ClusterConfig, owners: readonly number[]): string {
  const { ip, interface: iface, total_nodes: n } = c.cluster;
  return [
    `table ip ${NFT_TABLE} {`,
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
    `\t\t${nftHashExpr(c)} @owned accept`,
    `\t\tcounter drop`,
    `\t}`,
    `}`,
  ].join('\n');
}

/** Atomic replace-or-create of both tables: `table X {}` + `delete table X` makes the delete safe when absent. */
export function nftReplaceTransaction(c: ClusterConfig, owners: readonly number[], arpOnly = false): string {
  const parts: string[] = [];
  if (!arpOnly) parts.push(`table ip ${NFT_TABLE} {}`, `delete table ip ${NFT_TABLE}`);
  parts.push(`table arp ${NFT_TABLE} {}`, `delete table arp ${NFT_TABLE}`);
  if (!arpOnly) parts.push(nftIpTable(c, owners));
  parts.push(nftArpTable(c));
  return parts.join('\n') + '\n';
}

export function nftRemoveTransaction(arpOnly = false): string {
  const fams = arpOnly ? ['arp'] : ['ip', 'arp'];
  return fams.map((f) => `table ${f} ${NFT_TABLE} {}\ndelete table ${f} ${NFT_TABLE}`).join('\n') + '\n';
}

export const tcpLooseStep = (): Step => ({
  write: TCP_LOOSE,
  data: '0\n',
  why: 'no mid-stream conntrack pickup: a picked-up flow could hash on the server\'s address and land on another node (xt_cluster man page, §5.3)',
});

/** Owner-set change in one nft transaction (adds before deletes; the kernel applies both at once). */
export function nftOwnerStep(from: readonly number[], to: readonly number[]): RunStep | null {
  const add = to.filter((k) => !from.includes(k));
  const del = from.filter((k) => !to.includes(k));
  if (!add.length && !del.length) return null;
  const lines: string[] = [];
  if (add.length) lines.push(`add element ip ${NFT_TABLE} owned { ${add.join(', ')} }`);
  if (del.length) lines.push(`delete element ip ${NFT_TABLE} owned { ${del.join(', ')} }`);
  return { argv: ['nft', '-f', '-'], stdin: lines.join('\n') + '\n', why: `owner set ${fmtSet(from)} -> ${fmtSet(to)} in one atomic transaction` };
}

/** Said on every remove: without the ARP mangling, neighbours can learn a node's own MAC for the cluster IP. */
export const ARP_GAP_NOTE = 'after this, ARP replies and requests from the cluster IP carry the node\'s own MAC again: neighbours may send the cluster IP\'s traffic to one node only until their ARP entry is refreshed (apply the replacement backend first, or flush neighbour caches)';

export const fmtSet = (s: readonly number[]): string => `{${s.join(',')}}`;

export function nftCreatePlan(c: ClusterConfig, nodeName: string): Plan {
  const node = nodeByName(c, nodeName);
  const owners = ownersOf(node);
  return {
    host: node.name,
    where: whereOf(node.host),
    backend: 'nft',
    notes: [`owns node numbers ${fmtSet(owners)} of ${c.cluster.total_nodes}; ${c.cluster.ip} must be configured on ${c.cluster.interface}`],
    steps: [
      { argv: ['nft', '-f', '-'], stdin: nftReplaceTransaction(c, owners), why: `replace tables ip/arp ${NFT_TABLE} in one transaction (hash ${nftHashExpr(c)})` },
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
    steps: [{ argv: ['nft', '-f', '-'], stdin: nftRemoveTransaction(), why: `delete tables ip/arp ${NFT_TABLE} (no error when absent)` }, maddrDel(c)],
  };
}
