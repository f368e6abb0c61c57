/**
 * What xt_cluster and nft need beside the hash rule, because CLUSTERIP did it
 * by itself (§4.7) and they do not: the cluster MAC on the interface's
 * multicast list, ARP (IPv4, an nft `arp` table) or neighbour discovery
 * (IPv6, an nft `ip6` table) that answers with the cluster MAC,
 * and `nf_conntrack_tcp_loose=0`. Rendered, read back and rolled back here
 * for both backends.
 */
import { clusterAddrText, clusterFamily, type ClusterConfig } from '../../../sim/core/cluster-config.ts';
import { formatIPv6, parseIPv6 } from '../../../sim/core/addr.ts';
import type { RunStep, Step } from '../../plan.ts';
import type { Runner } from '../../exec/runner.ts';
import { readFileOn } from '../../exec/steps.ts';
import type { Snapshot } from './backend.ts';
import { cfgComment, ereEscape, fpOf, neighTable, nftFamily, nftTable } from './names.ts';

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

/**
 * Writes the cluster MAC into the link-layer address option of an outgoing
 * neighbour advertisement (type 136, target link-layer option) or
 * solicitation (type 135, source link-layer option), keeping the ICMPv6
 * checksum valid.
 *
 * Linux puts that option first, right after the 16-byte target: option
 * type/length at ICMPv6 byte 24, the MAC at bytes 26-31. nft 1.0.6 writes a
 * raw `@th` payload without fixing the checksum (measured: the receiver drops
 * the advertisement), and the running kernel has no tc pedit/csum. Typed
 * `icmpv6 type`/`code` writes do get the kernel's incremental fix (payload
 * write with csum_type inet, csum_off 2). So each MAC word is first copied raw
 * into the type/code word, which a typed write then restores: the checksum
 * absorbs +word each time. After the three words of the node's own MAC and
 * one constant K, the raw MAC write (cluster MAC, unfixed) leaves the
 * checksum exact when K = 4*T - C in ones' complement (T the original
 * type/code word, C the sum of the cluster MAC's words): the node's own MAC
 * cancels out, so one rule serves every node.
 *
 * nft 1.0.6 lists these statements as `th sport set ...`, a form that loads
 * back WITHOUT the checksum fix (measured): never reload a listing of this
 * table, render it again (ndTableFromListing).
 */
export function ndMacWrite(type: 135 | 136, mac: string): string {
  const b = mac.split(':').map((h) => parseInt(h, 16));
  const words = [0, 2, 4].map((i) => (b[i]! << 8) | b[i + 1]!);
  const t = type << 8;
  const k = onesFold(4 * t + ((~onesFold(words[0]! + words[1]! + words[2]!)) & 0xffff));
  const restore = `icmpv6 type set ${type === 136 ? 'nd-neighbor-advert' : 'nd-neighbor-solicit'} icmpv6 code set 0`;
  const hex = (v: number, digits: number): string => `0x${v.toString(16).padStart(digits, '0')}`;
  return [
    ...[208, 224, 240].map((bit) => `@th,0,16 set @th,${bit},16 ${restore}`),
    `@th,0,16 set ${hex(k, 4)} ${restore}`,
    `@th,208,48 set ${hex(parseInt(mac.replace(/:/g, ''), 16), 12)}`,
  ].join(' ');
}

/** Ones'-complement fold of a sum to 16 bits. */
const onesFold = (s: number): number => {
  let x = s;
  while (x > 0xffff) x = (x & 0xffff) + Math.floor(x / 0x10000);
  return x;
};

/** 32 hex digits of an IPv6 address (as an nft raw payload value). */
const v6Hex = (addr: string): string => Array.from(parseIPv6(addr)!, (w) => w.toString(16).padStart(8, '0')).join('');

/** The neighbour-discovery table text (see ndMacWrite); `addr` in RFC 5952 form. */
function ndTableText(name: string, comment: string, addr: string, mac: string): string {
  return [
    `table ip6 ${name} {`,
    `\tcomment "${comment}"`,
    `\tchain output {`,
    `\t\ttype filter hook output priority filter; policy accept;`,
    // Advertisements for the cluster address (target at ICMPv6 byte 8), target link-layer option first.
    `\t\ticmpv6 type nd-neighbor-advert @th,64,128 0x${v6Hex(addr)} @th,192,16 0x0201 ${ndMacWrite(136, mac)}`,
    // Solicitations sent from the cluster address carry the sender's MAC too (RFC 4861 §7.2.3: the
    // receiver learns it for that address), the poisoning CLUSTERIP prevented for ARP (§4.7).
    `\t\ticmpv6 type nd-neighbor-solicit ip6 saddr ${addr} @th,192,16 0x0101 ${ndMacWrite(135, mac)}`,
    `\t}`,
    `}`,
  ].join('\n');
}

/** The IPv6 counterpart of arpTable: neighbour discovery answers with the cluster MAC. */
export function ndTable(c: ClusterConfig): string {
  return ndTableText(neighTable(c).name, cfgComment(c), clusterAddrText(c), c.cluster.mac.toLowerCase());
}

/**
 * A listed neighbour-discovery table rendered again from what the listing
 * says (address, MAC, comment), since the listing itself reloads without the
 * checksum fix. Null when the listing is not one of ours.
 */
export function ndTableFromListing(name: string, listing: string): string | null {
  const t = /@th,64,128 0x([0-9a-f]{1,32})\b/.exec(listing);
  const m = /@th,208,48 set 0x([0-9a-f]{1,12})\b/.exec(listing);
  const cm = /comment "([^"]*)"/.exec(listing);
  if (!t || !m || !cm) return null;
  const h = t[1]!.padStart(32, '0');
  const addr = formatIPv6(Array.from({ length: 4 }, (_, i) => parseInt(h.slice(8 * i, 8 * i + 8), 16)));
  const mac = m[1]!.padStart(12, '0').replace(/(..)(?!$)/g, '$1:');
  return ndTableText(name, cm[1]!, addr, mac);
}

/** The neighbour table of this cluster's family: ARP (IPv4) or neighbour discovery (IPv6). */
export const neighTableText = (c: ClusterConfig): string => (clusterFamily(c) === 6 ? ndTable(c) : arpTable(c));

/** `table F X {}` + `delete table F X`: deletes a table in a transaction without failing when it is absent. */
export const dropTableLines = (family: string, name: string): string => `table ${family} ${name} {}\ndelete table ${family} ${name}`;

/** Drops this cluster's hash table (`ip` or `ip6`, nft backend). */
export const dropMainTable = (c: ClusterConfig): string => dropTableLines(nftFamily(c), nftTable(c));

/** Drops this cluster's neighbour table (arp or ip6 _nd). */
export const dropNeighTable = (c: ClusterConfig): string => dropTableLines(neighTable(c).family, neighTable(c).name);

const neighWords = (c: ClusterConfig): string => (clusterFamily(c) === 6 ? 'neighbour discovery' : 'ARP');

/** Replaces the neighbour table atomically (xt_cluster; nft replaces it in the same transaction as its hash table). */
export function neighReplaceStep(c: ClusterConfig): RunStep {
  const t = neighTable(c);
  return { argv: ['nft', '-f', '-'], stdin: `${dropNeighTable(c)}\n${neighTableText(c)}\n`, why: `${neighWords(c)} for ${c.cluster.ip} answers with the cluster MAC ${c.cluster.mac} (table ${t.family}, replaced atomically)` };
}

/** Removes the neighbour table (no error when absent). */
export function neighDropStep(c: ClusterConfig): RunStep {
  return { argv: ['nft', '-f', '-'], stdin: `${dropNeighTable(c)}\n`, why: `delete the ${neighWords(c)} table (no error when absent)` };
}

export const tcpLooseStep = (): Step => ({
  write: TCP_LOOSE,
  data: '0\n',
  why: 'no mid-stream conntrack pickup: a picked-up flow could hash on the server\'s address and land on another node (xt_cluster man page, §5.3)',
});

/** Said on every remove: without the ARP (or neighbour discovery) mangling, neighbours can learn a node's own MAC for the cluster IP. */
export const arpGapNote = (c: ClusterConfig): string => `after this, ${neighWords(c)} replies and requests from the cluster IP carry the node's own MAC again: neighbours may send the cluster IP's traffic to one node only until their ${clusterFamily(c) === 6 ? 'neighbour' : 'ARP'} entry is refreshed (apply the replacement backend first, or flush neighbour caches)`;

/** Reads the neighbour table, the multicast membership and tcp_loose into `snap`; returns what is missing. */
export async function readLinkState(r: Runner, c: ClusterConfig, expectFp: string, snap: Snapshot): Promise<string[]> {
  const t = neighTable(c);
  const [neigh, maddr, loose] = await Promise.all([r.run(['nft', 'list', 'table', t.family, t.name]), r.run(maddrProbe(c.cluster.interface, c.cluster.mac)), readFileOn(r, TCP_LOOSE)]);
  snap.nftNeigh = neigh.code === 0 ? neigh.stdout : null;
  snap.maddr = maddr.code === 0;
  snap.tcpLoose = loose?.trim() ?? null;
  const gaps: string[] = [];
  if (fpOf(snap.nftNeigh) !== expectFp) gaps.push(snap.nftNeigh === null ? `no table ${t.family} ${t.name}` : `table ${t.family} ${t.name} is from another config`);
  if (!snap.maddr) gaps.push(`${c.cluster.mac} not on ${c.cluster.interface}'s multicast list`);
  if (snap.tcpLoose !== '0') gaps.push(`nf_conntrack_tcp_loose is ${snap.tcpLoose ?? 'unreadable'}, not 0`);
  return gaps;
}

/** Steps back to the snapshot's link state; `ipTable` restores our nft ip table in the same transaction (nft backend). */
export function linkRollbackSteps(c: ClusterConfig, snap: Snapshot, ipTable: boolean): Step[] {
  let tx = '';
  if (ipTable) tx += `${dropMainTable(c)}\n${snap.nftIp ?? ''}\n`;
  // An IPv6 neighbour table is rendered again, not reloaded from its listing (ndMacWrite says why).
  const neigh = snap.nftNeigh !== null && clusterFamily(c) === 6 ? ndTableFromListing(neighTable(c).name, snap.nftNeigh) : snap.nftNeigh;
  tx += `${dropNeighTable(c)}\n${neigh ?? ''}\n`;
  const steps: Step[] = [{ argv: ['nft', '-f', '-'], stdin: tx, why: 'restore our nft tables as they were' }];
  if (snap.maddr === false) steps.push(maddrDel(c));
  if (snap.maddr === true) steps.push(maddrAdd(c));
  if (snap.tcpLoose !== null) steps.push({ write: TCP_LOOSE, data: `${snap.tcpLoose}\n`, why: 'restore nf_conntrack_tcp_loose' });
  return steps;
}

/** An nft table that counts and drops the cluster IP's packets after our rules saw them (replay sink, xt_cluster and nft hosts). */
export function nftReplaySink(c: ClusterConfig, install: boolean): RunStep[] {
  const table = `${nftTable(c)}_replay`;
  const fam = nftFamily(c);
  const drop = `${dropTableLines(fam, table)}\n`;
  if (!install) return [{ argv: ['nft', '-f', '-'], stdin: drop, why: 'remove the replay sink' }];
  const ip = clusterAddrText(c);
  return [{
    argv: ['nft', '-f', '-'],
    stdin: drop + [
      `table ${fam} ${table} {`,
      `\tchain input { type filter hook input priority filter; policy accept; ${fam} daddr ${ip} counter drop; }`,
      `\tchain forward { type filter hook forward priority filter; policy accept; ${fam} daddr ${ip} counter drop; }`,
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
    // IPv6: the neighbour advertisement rule for this target (ndTable), its MAC as nft lists it (leading zeros dropped).
    const v6 = parseIPv6(ip);
    if (v6) {
      const hex = v6Hex(ip).replace(/^0+/, '');
      const nd = new RegExp(`nd-neighbor-advert @th,64,128 0x0*${hex}\\b.*@th,208,48 set 0x([0-9a-f]{1,12})\\b`).exec(rs.stdout);
      if (nd) return nd[1]!.padStart(12, '0').replace(/(..)(?!$)/g, '$1:');
    }
  }
  if (!iface) return null;
  const mc = await readFileOn(r, '/proc/net/dev_mcast');
  const macs = (mc ?? '').split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f[1] === iface && f[4])
    .map((f) => f[4]!.toLowerCase()).filter((h) => h !== '01005e000001' && !h.startsWith('3333'));
  return macs.length === 1 ? macs[0]!.replace(/(..)(?!$)/g, '$1:') : null;
}
