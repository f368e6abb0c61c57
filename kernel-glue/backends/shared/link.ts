/**
 * What xt_cluster and nft need beside the hash rule, because CLUSTERIP did it
 * by itself (§4.7) and they do not: the cluster MAC on the interface's
 * multicast list, ARP that answers with the cluster MAC (an nft `arp` table),
 * and `nf_conntrack_tcp_loose=0`. Rendered, read back and rolled back here
 * for both backends.
 */
import type { ClusterConfig } from '../../../sim/core/cluster-config.ts';
import type { RunStep, Step } from '../../plan.ts';
import type { Runner } from '../../exec/runner.ts';
import { readFileOn } from '../../exec/steps.ts';
import type { Snapshot } from './backend.ts';
import { cfgComment, ereEscape, fpOf, nftTable } from './names.ts';

export const TCP_LOOSE = '/proc/sys/net/netfilter/nf_conntrack_tcp_loose';

/**
 * A probe that succeeds when MAC is on IF's link-layer multicast list.
 * /proc/net/dev_mcast lines: "ifindex ifname users global addr-without-colons".
 */
export function maddrProbe(iface: string, mac: string): string[] {
  const hex = mac.toLowerCase().replace(/:/g, '');
  return ['grep', '-Eq', `^[0-9]+ +${ereEscape(iface)} +[0-9]+ +[0-9]+ +${hex}$`, '/proc/net/dev_mcast'];
}

/** Join the cluster MAC's multicast group (CLUSTERIP joins it itself, §4.7). */
export function maddrAdd(c: ClusterConfig): RunStep {
  const { interface: iface, mac } = c.cluster;
  return { argv: ['ip', 'maddr', 'add', mac.toLowerCase(), 'dev', iface], unless: maddrProbe(iface, mac), why: `receive frames sent to the cluster MAC ${mac} on ${iface} (every node sees every packet; the hash picks one)` };
}

export function maddrDel(c: ClusterConfig): RunStep {
  const { interface: iface, mac } = c.cluster;
  return { argv: ['ip', 'maddr', 'del', mac.toLowerCase(), 'dev', iface], onlyIf: maddrProbe(iface, mac), why: `leave the cluster MAC's multicast group on ${iface}` };
}

/**
 * The ARP table: outgoing ARP requests and replies whose sender IP is the
 * cluster IP carry the cluster MAC as sender hardware address, as
 * CLUSTERIP's own ARP hook did (§4.7): neighbours then send the cluster IP's
 * traffic to the multicast MAC, which every node receives.
 */
export function arpTable(c: ClusterConfig): string {
  const { ip, mac } = c.cluster;
  return [
    `table arp ${nftTable(c)} {`,
    `\tcomment "${cfgComment(c)}"`,
    `\tchain output {`,
    `\t\ttype filter hook output priority filter; policy accept;`,
    `\t\tarp saddr ip ${ip} arp saddr ether set ${mac.toLowerCase()}`,
    `\t}`,
    `}`,
  ].join('\n');
}

/** `table F X {}` + `delete table F X`: deletes a table in a transaction without failing when it is absent. */
export const dropTableLines = (c: ClusterConfig, family: 'ip' | 'arp'): string => `table ${family} ${nftTable(c)} {}\ndelete table ${family} ${nftTable(c)}`;

/** Replaces the ARP table atomically (xt_cluster; nft replaces it in the same transaction as its ip table). */
export function arpReplaceStep(c: ClusterConfig): RunStep {
  return { argv: ['nft', '-f', '-'], stdin: `${dropTableLines(c, 'arp')}\n${arpTable(c)}\n`, why: `ARP for ${c.cluster.ip} answers with the cluster MAC ${c.cluster.mac} (table arp, replaced atomically)` };
}

export const tcpLooseStep = (): Step => ({
  write: TCP_LOOSE,
  data: '0\n',
  why: 'no mid-stream conntrack pickup: a picked-up flow could hash on the server\'s address and land on another node (xt_cluster man page, §5.3)',
});

/** Said on every remove: without the ARP mangling, neighbours can learn a node's own MAC for the cluster IP. */
export const ARP_GAP_NOTE = 'after this, ARP replies and requests from the cluster IP carry the node\'s own MAC again: neighbours may send the cluster IP\'s traffic to one node only until their ARP entry is refreshed (apply the replacement backend first, or flush neighbour caches)';

/** Reads the ARP table, the multicast membership and tcp_loose into `snap`; returns what is missing. */
export async function readLinkState(r: Runner, c: ClusterConfig, expectFp: string, snap: Snapshot): Promise<string[]> {
  const [arp, maddr, loose] = await Promise.all([r.run(['nft', 'list', 'table', 'arp', nftTable(c)]), r.run(maddrProbe(c.cluster.interface, c.cluster.mac)), readFileOn(r, TCP_LOOSE)]);
  snap.nftArp = arp.code === 0 ? arp.stdout : null;
  snap.maddr = maddr.code === 0;
  snap.tcpLoose = loose?.trim() ?? null;
  const gaps: string[] = [];
  if (fpOf(snap.nftArp) !== expectFp) gaps.push(snap.nftArp === null ? `no table arp ${nftTable(c)}` : `table arp ${nftTable(c)} is from another config`);
  if (!snap.maddr) gaps.push(`${c.cluster.mac} not on ${c.cluster.interface}'s multicast list`);
  if (snap.tcpLoose !== '0') gaps.push(`nf_conntrack_tcp_loose is ${snap.tcpLoose ?? 'unreadable'}, not 0`);
  return gaps;
}

/** Steps back to the snapshot's link state; `ipTable` restores our nft ip table in the same transaction (nft backend). */
export function linkRollbackSteps(c: ClusterConfig, snap: Snapshot, ipTable: boolean): Step[] {
  let tx = '';
  if (ipTable) tx += `${dropTableLines(c, 'ip')}\n${snap.nftIp ?? ''}\n`;
  tx += `${dropTableLines(c, 'arp')}\n${snap.nftArp ?? ''}\n`;
  const steps: Step[] = [{ argv: ['nft', '-f', '-'], stdin: tx, why: 'restore our nft tables as they were' }];
  if (snap.maddr === false) steps.push(maddrDel(c));
  if (snap.maddr === true) steps.push(maddrAdd(c));
  if (snap.tcpLoose !== null) steps.push({ write: TCP_LOOSE, data: `${snap.tcpLoose}\n`, why: 'restore nf_conntrack_tcp_loose' });
  return steps;
}

/** An nft table that counts and drops the cluster IP's packets after our rules saw them (replay sink, xt_cluster and nft hosts). */
export function nftReplaySink(c: ClusterConfig, install: boolean): RunStep[] {
  const table = `${nftTable(c)}_replay`;
  const drop = `table ip ${table} {}\ndelete table ip ${table}\n`;
  if (!install) return [{ argv: ['nft', '-f', '-'], stdin: drop, why: 'remove the replay sink' }];
  const ip = c.cluster.ip;
  return [{
    argv: ['nft', '-f', '-'],
    stdin: drop + [
      `table ip ${table} {`,
      `\tchain input { type filter hook input priority filter; policy accept; ip daddr ${ip} counter drop; }`,
      `\tchain forward { type filter hook forward priority filter; policy accept; ip daddr ${ip} counter drop; }`,
      '}', '',
    ].join('\n'),
    why: `drop replayed packets to ${ip} after the cluster rules counted them (no answers leave the host)`,
  }];
}

/**
 * The cluster MAC of `ip` as a host shows it (for `glue import`): the nft ARP
 * rule that writes it (`arp saddr ip IP arp saddr ether set MAC`), else the one
 * multicast MAC on the interface that is not an all-hosts or IPv6 group.
 * Null when neither says it.
 */
export async function discoverMac(r: Runner, ip: string, iface: string | null): Promise<string | null> {
  const rs = await r.run(['nft', 'list', 'ruleset']);
  if (rs.code === 0) {
    const m = new RegExp(`arp saddr ip ${ip.replace(/\./g, '\\.')} arp saddr ether set ([0-9a-f:]{17})`).exec(rs.stdout);
    if (m) return m[1]!;
  }
  if (!iface) return null;
  const mc = await readFileOn(r, '/proc/net/dev_mcast');
  const macs = (mc ?? '').split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f[1] === iface && f[4])
    .map((f) => f[4]!.toLowerCase()).filter((h) => h !== '01005e000001' && !h.startsWith('3333'));
  return macs.length === 1 ? macs[0]!.replace(/(..)(?!$)/g, '$1:') : null;
}
