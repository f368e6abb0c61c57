/**
 * The selector contract as plain data: what a configured bucket function is
 * (backend, mode, seed, kernel, byte order), the limits the kernels and their
 * userspace tools put on it, and how sure we are of each fact behind an
 * answer. The cluster config (cluster-config.ts), the JSON results
 * (result.ts) and the selectors (sim/select) all speak it, so it sits in the
 * foundation and imports nothing.
 */

/** CPU byte order: which native loads the kernel's hash reads (kernel-semantics §2.3, §9). */
export type ByteOrder = 'little' | 'big';

export type Backend = 'clusterip' | 'xt_cluster' | 'nft';

export const CLUSTERIP_MODES = ['sourceip', 'sourceip-sourceport', 'sourceip-sourceport-destport'] as const;
export type ClusteripMode = (typeof CLUSTERIP_MODES)[number];

/** Plain data, so that it can go to a worker and into a JSON result. */
export type SelectorSpec =
  | { backend: 'clusterip'; hashmode: ClusteripMode; totalNodes: number; hashInit: number; kernel: string; endian: ByteOrder }
  | { backend: 'xt_cluster'; totalNodes: number; hashSeed: number; kernel: string; endian: ByteOrder }
  | { backend: 'nft'; expr: string; kernel: string; endian: ByteOrder };

/** A selector spec as the JSON results print it: the same fields, keys in snake_case like every key of our JSON. */
export type SelectorSpecJson = Record<string, string | number>;

/** The JSON form of a spec (`totalNodes` -> `total_nodes`, `hashInit` -> `hash_init`, ...). */
export function specJson(spec: SelectorSpec): SelectorSpecJson {
  const out: SelectorSpecJson = {};
  for (const [k, v] of Object.entries(spec)) out[k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)] = v as string | number;
  return out;
}

/** The spec back from its JSON form (a script's or a test's way back to `hash`/`buildSelector`). */
export function specFromJson(json: SelectorSpecJson): SelectorSpec {
  const out: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(json)) out[k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())] = v;
  return out as unknown as SelectorSpec;
}

/** Userspace (libipt_CLUSTERIP) accepts 0..16; the kernel itself never checks. */
export const CLUSTERIP_MAX_NODES = 16;
/** The kernel refuses more (EINVAL); iptables says "out of range (1-32)". */
export const XT_CLUSTER_MAX_NODES = 32;

/** Newest kernel we describe; "current" for xt_cluster and nft. */
export const CURRENT_KERNEL = '6.18';
/** The last Debian stable kernel that still has CLUSTERIP (removed in 6.3). */
export const DEFAULT_CLUSTERIP_KERNEL = '6.1';

/** How sure we are of a fact (kernel-semantics "status marks"). */
export type Evidence = 'measured 6.1.192' | 'measured 6.18.44' | 'measured 6.1.176 s390x' | 'source' | 'unverified';

export interface Fact {
  readonly topic: string;
  readonly evidence: Evidence;
  readonly note: string;
  /** Set when the fact only matters for IPv6 packets. */
  readonly scope?: 'ipv6';
  /** Said even when measured: the kernel's behaviour itself would surprise a user (e.g. a hash that ignores most of an address). */
  readonly surprising?: true;
}

/** CLUSTERIP and the cluster match need a multicast MAC: the lowest bit of the first byte set. */
export function isMulticastMac(mac: string): boolean {
  const m = /^([0-9a-f]{2})(:[0-9a-f]{2}){5}$/i.exec(mac);
  return !!m && (parseInt(m[1]!, 16) & 1) === 1;
}
