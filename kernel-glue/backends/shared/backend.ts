/**
 * The one interface every backend implements (kernel-glue/backends/<name>/):
 * how its rules are rendered, read back, checked, rolled back, moved and
 * counted. kernel-glue/backends/index.ts maps a backend name to its module;
 * nothing else in kernel-glue asks which backend a config uses.
 */
import type { ClusterConfig } from '../../../sim/core/cluster-config.ts';
import { DEFAULT_CLUSTERIP_KERNEL, type Backend, type ClusteripMode } from '../../../sim/core/spec.ts';
import { selectorSpecOf } from '../../../sim/select/from-config.ts';
import type { SelectorSpec } from '../../../sim/select/selector.ts';
import type { Plan, RunStep, Step } from '../../plan.ts';
import type { Runner } from '../../exec/runner.ts';
import type { StepLog } from '../../exec/steps.ts';

export interface Counter {
  packets: number;
  bytes: number;
}

/** Enough to put a host back as it was (each backend fills the parts it touches; the rest stay null). */
export interface Snapshot {
  /** `iptables-legacy-save -c -t mangle` (iptables backends). */
  mangle: string | null;
  /** `nft list table ip|ip6 clusterip_sim` (the hash table), null when absent. */
  nftIp: string | null;
  /** The neighbour table (`arp clusterip_sim` or `ip6 clusterip_sim_nd`, shared/names.ts neighTable), null when absent. */
  nftNeigh: string | null;
  maddr: boolean | null;
  tcpLoose: string | null;
  /** CLUSTERIP /proc owners; null when the file does not exist. */
  procOwners: number[] | null;
}

export const emptySnapshot = (): Snapshot => ({ mangle: null, nftIp: null, nftNeigh: null, maddr: null, tcpLoose: null, procOwners: null });

/** What a backend reads of its own objects on a host. */
export interface BackendState {
  /** Our main object exists (nft table ip, or our iptables chain). */
  present: boolean;
  /** `cfg=` fingerprint found on our main object. */
  fingerprint: string | null;
  /** What is missing or foreign, in words (empty when every part is there with the config's fingerprint). */
  gaps: string[];
  /** Owned node numbers as the kernel has them (nft set, cluster-match masks, /proc); null when not present. */
  owners: number[] | null;
  /** Per node number: packets/bytes this host accepted. */
  counters: Record<number, Counter>;
  /** Packets to the cluster IP this host dropped (xt_cluster/nft). */
  dropped: Counter | null;
  snapshot: Snapshot;
}

/** What one host has, as far as our objects go. */
export interface HostState extends BackendState {
  host: string;
  where: string;
  /** `uname -r`. */
  kernel: string | null;
  /** Every part the backend needs is there and carries the config's fingerprint. */
  complete: boolean;
}

/** The owner set and load as the agent reads them, one cheap command. */
export interface KernelView {
  /** Node numbers the kernel accepts (1..N). */
  owned: number[];
  /** Packets accepted per node number, where the backend counts them. */
  load: Record<number, number>;
}

/** The two hashes a migration between CLUSTERIP and the conntrack-based backends compares. */
export interface MigrationPair {
  /** Words for the two sides, e.g. 'clusterip sourceip' and 'xt_cluster / nft'. */
  from: string;
  to: string;
  before: SelectorSpec;
  after: SelectorSpec;
}

/**
 * The migration the conntrack-based backends (xt_cluster, nft) are compared
 * against: the CLUSTERIP sourceip rule on the last kernel that has it, with
 * the config's nodes and seed (both hash the source address alone).
 */
export function migrationFromClusterip(c: ClusterConfig, to: Backend): MigrationPair {
  return {
    from: 'clusterip sourceip',
    to,
    before: { backend: 'clusterip', hashmode: 'sourceip', totalNodes: c.cluster.total_nodes, hashInit: c.cluster.seed, kernel: DEFAULT_CLUSTERIP_KERNEL, endian: c.cluster.endian },
    after: selectorSpecOf(c),
  };
}

/** A cluster rule found on a host by `glue import` (ours or written by hand), in the config's terms. */
export interface Found {
  backend: Backend;
  ip: string;
  /** Input interface the rule matches; null when it matches any. */
  interface: string | null;
  /** The cluster MAC, when the host shows it (CLUSTERIP's rule, an ARP mangling rule, a lone multicast MAC); else null. */
  mac: string | null;
  total_nodes: number;
  seed: number;
  hashmode?: ClusteripMode;
  /** Node numbers this host accepts. */
  owns: number[];
  /** The cluster name when the objects are ours and named (clusterip_sim_NAME). */
  name?: string;
  /** Where it was read, in the tool's words: "iptables-nft mangle chain X", "nft table ip t chain c". */
  source: string;
}

/** What import found on a host: the clusters, and rules it saw but cannot express as a cluster config (with why). */
export interface Discovery {
  found: Found[];
  skipped: string[];
}

export interface GlueBackend {
  readonly name: Backend;
  /** From any state of our objects to the config (rules rendered; guards make it safe on a clean host). */
  createPlan(c: ClusterConfig, nodeName: string): Plan;
  /** Takes our objects away (guarded: succeeds on a host that has none). */
  removePlan(c: ClusterConfig, nodeName: string): Plan;
  /** Only the owner set, on a host whose rules match the config: one atomic change where the kernel allows it. */
  ownerSteps(c: ClusterConfig, from: readonly number[], to: readonly number[]): Step[];
  /** Reads our objects back (never throws for missing objects: they show as gaps). */
  readState(r: Runner, c: ClusterConfig, expectFp: string): Promise<BackendState>;
  /** Owner set and per-node counters for the agent (throws when the command fails). */
  readOwners(r: Runner, c: ClusterConfig): Promise<KernelView>;
  /** Tools and kernel the backend needs on the host: a refusal in words, or null. */
  preflight(r: Runner, c: ClusterConfig, st: HostState): Promise<string | null>;
  /** Puts the host back to its snapshot (our objects only, plus the mangle table as saved). */
  rollback(r: Runner, c: ClusterConfig, snap: Snapshot): Promise<StepLog[]>;
  /**
   * Steps that install (or remove) a sink dropping the cluster IP's packets
   * after our rules counted them, so that replayed traffic gets no answers.
   */
  replaySink(c: ClusterConfig, install: boolean): RunStep[];
  /** Which hash the config's hosts run before and after a migration CLUSTERIP <-> conntrack-based. */
  migration(c: ClusterConfig): MigrationPair;
  /** Reads this backend's cluster rules from a host, whoever wrote them (`glue import`). */
  discover(r: Runner): Promise<Discovery>;
}
