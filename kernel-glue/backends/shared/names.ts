/**
 * What every backend shares: the names of our own kernel objects, the config
 * fingerprint that marks them, and small text helpers.
 *
 * We only ever touch objects we own: the iptables chain CHAIN in the mangle
 * table plus one jump to it from PREROUTING, and the nft tables `ip TABLE` and
 * `arp TABLE`. A fingerprint of the config's structure (everything except the
 * owner sets) is stored in a comment on them, so that a second `apply` can see
 * that nothing but (maybe) the owner set differs and change only that.
 */
import { createHash } from 'node:crypto';
import { DataError } from '../../../sim/core/errors.ts';
import { clusterFamily, type ClusterConfig, type HostSpec } from '../../../sim/core/cluster-config.ts';

/** nft table name of a config without a cluster name, in both the `ip` and the `arp` family. */
export const NFT_TABLE = 'clusterip_sim';
/** Our iptables chain in the mangle table of a config without a cluster name. */
export const IPT_CHAIN = 'CLUSTERIP_SIM';

/**
 * This cluster's nft tables: `clusterip_sim`, or `clusterip_sim_NAME` for a
 * named cluster, so that several clusters on one host never share a table
 * and removing one leaves the others.
 */
export const nftTable = (c: ClusterConfig): string => (c.cluster.name ? `${NFT_TABLE}_${c.cluster.name}` : NFT_TABLE);

/** The nft family of this cluster's hash table: `ip` for an IPv4 cluster address, `ip6` for IPv6. */
export const nftFamily = (c: ClusterConfig): 'ip' | 'ip6' => (clusterFamily(c) === 6 ? 'ip6' : 'ip');

/**
 * The nft table that makes neighbours learn the cluster MAC: `arp NAME`
 * (ARP, IPv4) or `ip6 NAME_nd` (neighbour discovery, IPv6; its own table so
 * that the xt_cluster backend, which has no nft hash table, owns it alike).
 */
export const neighTable = (c: ClusterConfig): { family: 'arp' | 'ip6'; name: string } =>
  (clusterFamily(c) === 6 ? { family: 'ip6', name: `${nftTable(c)}_nd` } : { family: 'arp', name: nftTable(c) });

/** The host prefix length of the cluster address in iptables rules: /32 or /128. */
export const hostPrefix = (c: ClusterConfig): number => (clusterFamily(c) === 6 ? 128 : 32);

/** This cluster's iptables chain (at most 28 characters: the name has at most 12). */
export const iptChain = (c: ClusterConfig): string => (c.cluster.name ? `${IPT_CHAIN}_${c.cluster.name.toUpperCase()}` : IPT_CHAIN);
export const IPT_TABLE = 'mangle';
/** Comment prefix on everything we create; the fingerprint follows `cfg=`. */
export const MARK = 'clusterip-sim';
/** Bumped whenever the rendered rules change shape, so old rules are replaced. */
export const RENDER_VERSION = 1;

export type NodeEntry = ClusterConfig['nodes'][number];

export function nodeByName(c: ClusterConfig, name: string): NodeEntry {
  const n = c.nodes.find((x) => x.name === name);
  if (!n) throw new DataError(`--host ${name}`, `no node named '${name}' in the config (nodes: ${c.nodes.map((x) => x.name).join(', ')})`);
  return n;
}

/** Where a node is reached, for messages: "local", "netns ns1", "ssh root@h:2222". */
export function whereOf(h: HostSpec): string {
  if (h === 'local' || 'local' in h) return 'local';
  if ('netns' in h) return `netns ${h.netns}`;
  return `ssh ${h.ssh}${h.port ? `:${h.port}` : ''}`;
}

/** Owned node numbers, ascending, without duplicates. */
export function ownersOf(n: NodeEntry): number[] {
  return [...new Set(n.owns)].sort((a, b) => a - b);
}

export const hex32 = (v: number): string => `0x${(v >>> 0).toString(16).padStart(8, '0')}`;

/**
 * 12 hex digits of SHA-256 over the parts of the config that shape the rules
 * on every host (not the owner sets, which `move` changes in place).
 */
export function fingerprint(c: ClusterConfig): string {
  const k = c.cluster;
  // The name joins the fingerprint only when set, so unnamed clusters keep the fingerprint they always had.
  const s = JSON.stringify({ v: RENDER_VERSION, ...(k.name ? { name: k.name } : {}), backend: k.backend, ip: k.ip, iface: k.interface, mac: k.mac.toLowerCase(), n: k.total_nodes, seed: k.seed >>> 0, hashmode: k.backend === 'clusterip' ? k.hashmode : null });
  return createHash('sha256').update(s).digest('hex').slice(0, 12);
}

/** The `cfg=` fingerprint in a comment of ours (nft table comment, iptables rule comment), or null. */
export const fpOf = (text: string | null): string | null => (text && new RegExp(`${MARK} cfg=([0-9a-f]{12})`).exec(text)?.[1]) || null;

export const cfgComment = (c: ClusterConfig): string => `${MARK} cfg=${fingerprint(c)}`;


/** Escapes a literal for a POSIX extended regular expression (grep -E). */
export const ereEscape = (s: string): string => s.replace(/[.[\]{}()*+?^$|\\]/g, '\\$&');

export const fmtSet = (s: readonly number[]): string => `{${s.join(',')}}`;
