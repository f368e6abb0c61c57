/**
 * The JSON results of `simulate` and `failover`: what `--json` prints, what
 * reports render, and what `clusterip-sim report result.json` reads back.
 * Field names are snake_case because scripts consume them.
 */
import type { Fact, SelectorSpecJson } from './spec.ts';

export interface ToolInfo {
  name: 'clusterip-sim';
  version: string;
}

export interface InputFile {
  path: string;
  bytes: number;
  sha256: string;
}

export interface InputSummary {
  kind: 'pcap' | 'synthetic' | 'csv' | 'live';
  files: InputFile[];
  /** Synthetic scenario name and its parameters (seed included), when kind = synthetic. */
  synthetic?: { scenario: string; seed: number; params: Record<string, unknown> };
  packets: number;
  bytes: number;
  /** Capture time span (last ts - first ts). */
  duration_s: number;
  /** Packets not analysed and why (non-IP, truncated, unresolved fragments, malformed, …). */
  skipped: Record<string, number>;
  /**
   * `simulate --no-conntrack`: the namespace runs no conntrack, so nothing
   * defragments and every fragment is hashed (and counted) as it came.
   */
  no_conntrack?: true;
}

export type Metric = 'packets' | 'bytes' | 'flows' | 'connections';

export interface DistributionStats {
  metric: Metric;
  total: number;
  mean: number;
  max_over_mean: number;
  min_over_mean: number;
  /** Coefficient of variation (stddev / mean). */
  cv: number;
  /** Jain's fairness index, 1/n..1. */
  jain: number;
  chi2: number;
  chi2_df: number;
  /** P-value of the chi-square test against a uniform spread. */
  p_value: number;
  /**
   * max/mean that randomness alone gives for this traffic (95th percentile):
   * measured by hashing the same flows under 32 other seeds of the same
   * configuration, so flows that must stay together (one source under
   * sourceip, an elephant flow) widen it; analytic for independent flows
   * when the configuration has no seed. Skew beyond it is the seed's or the
   * configuration's doing, skew within it the traffic's.
   */
  random_max_over_mean_p95: number;
  /** The same band if every flow were hashed independently (analytic): above it, the traffic itself is lumpy. */
  independent_max_over_mean_p95: number;
  /**
   * Decided once, by sim/analysis/verdict.ts, from max_over_mean and the two
   * bands above; every view prints `text` as it is. Absent only in results
   * saved by versions before 0.1.0's verdict (reports then decide it the same way).
   */
  verdict: { kind: 'even' | 'traffic' | 'configuration' | 'no-traffic'; text: string };
}

export interface TopSource {
  addr: string;
  packets: number;
  bytes: number;
}

export interface NodeStats {
  /** Kernel node number (1..N) or nft value. */
  node: number;
  /** Config node name owning it, when a cluster config was given. */
  name?: string;
  /** What the node's netfilter counter for its cluster rule shows: one per datagram after defragmentation. */
  packets: number;
  /** The capture records behind those packets (each fragment is a frame). */
  frames: number;
  /** Wire bytes of those frames. */
  bytes: number;
  flows: number;
  connections: number;
  new_connections_per_s: number;
  top_sources: TopSource[];
}

export interface ConfigResult {
  /** Short label used in comparisons, e.g. "A" or "clusterip/6.1/sourceip". */
  id: string;
  selector: { spec: SelectorSpecJson; description: string; facts: Fact[]; predictable: boolean; offset: number; buckets: number };
  nodes: NodeStats[];
  stats: DistributionStats[];
  /** Packets no node accepts (no rule fires, no conntrack) and packets whose answer the capture cannot tell (snaplen). */
  unassigned: { no_node: number; unknown: number };
}

export interface Migration {
  from: string;
  to: string;
  flows_moved_share: number;
  connections_moved_share: number;
  bytes_moved_share: number;
  packets_moved_share: number;
  /** matrix[i][j]: flows from node index i (in `from`) to node index j (in `to`). */
  matrix: number[][];
  from_nodes: number[];
  to_nodes: number[];
}

export interface MixedCluster {
  /** Which config each node runs. */
  members: { node: number; config: string }[];
  packets_accepted_by_none: number;
  packets_accepted_by_several: number;
  flows_accepted_by_none: number;
  flows_accepted_by_several: number;
}

export interface Gate {
  name: string;
  threshold: number;
  value: number;
  passed: boolean;
}

export interface RunInfo {
  workers: number;
  elapsed_s: number;
  /** Wall seconds until every share was done; the rest of elapsed_s is the merge (absent in older results). */
  shares_s?: number;
  packets_per_s: number;
  peak_rss_bytes: number;
}

export interface SimulateResult {
  kind: 'simulate';
  /** SCHEMA_VERSION (sim/core/version.ts) of this document. */
  schema_version: number;
  tool: ToolInfo;
  generated_at: string;
  /** What the run found, in one line (sim/analysis/verdict.ts); the terminal, HTML and PNGs print it as it is. */
  headline: string;
  input: InputSummary;
  configs: ConfigResult[];
  migrations: Migration[];
  mixed?: MixedCluster;
  gates: Gate[];
  /** What the terminal warned about (e.g. replies hashed for want of a cluster IP), for scripts. */
  warnings?: string[];
  run: RunInfo;
}

export interface FailoverEvent {
  t: number;
  kind: 'crash' | 'leave' | 'rejoin' | 'partition' | 'heal' | 'heartbeat-loss' | 'detected' | 'takeover' | 'failback';
  node?: string;
  detail: string;
}

export interface FailoverPhaseLoad {
  phase: 'before' | 'during' | 'after';
  from_s: number;
  to_s: number;
  /** `packets_per_s`: packets / phase duration (0 for an empty phase), to compare a node's load across phases. */
  per_node: { node: string; packets: number; bytes: number; share: number; packets_per_s?: number }[];
}

export interface FailoverTotals {
  lost_packets: number;
  duplicated_packets: number;
  broken_connections: number;
  /** Seconds from the first fault to the moment every bucket has exactly one live owner again. */
  recovery_s: number;
  /** False when some bucket still had no owner or several at the end (recovery_s then runs to the last packet). */
  recovered?: boolean;
  lost_bytes?: number;
  /** Packets of broken TCP connections after the break (the client got a RST or stalled; a replay still carries them). */
  after_break_packets?: number;
  /** TCP connections seen (SYNs, and flows first seen mid-stream). */
  connections?: number;
  /** Conntrack-INVALID packets: dropped by every node, failover or not (kernel-semantics §4.2). */
  invalid_packets?: number;
  /** Packets no rule matches at all (e.g. IPv6 at CLUSTERIP). */
  no_node_packets?: number;
  /** Packets whose bucket the capture cannot tell (snaplen cut the bytes the kernel hashed). */
  unknown_packets?: number;
}

/** A stretch of time in which some bucket had no live owner (orphaned) or several (doubled). */
export interface FailoverWindow {
  from_s: number;
  /** null: still open at the end of the scenario. */
  to_s: number | null;
  /** Kernel node numbers (1..N) of the buckets concerned. */
  orphaned: number[];
  doubled: number[];
}

export interface FailoverResult {
  kind: 'failover';
  /** SCHEMA_VERSION (sim/core/version.ts) of this document. */
  schema_version: number;
  tool: ToolInfo;
  generated_at: string;
  /** What the run found, in one line (sim/analysis/verdict.ts failoverHeadline); the terminal and HTML print it as it is. */
  headline?: string;
  input: InputSummary;
  scenario: { name: string; config: unknown; heartbeat: Record<string, number>; policy: string; failback: string; events: unknown[]; stable_s?: number; conntrack?: { state_sync: boolean; tcp_loose: boolean }; builtin?: boolean };
  totals: FailoverTotals;
  events: FailoverEvent[];
  phases: FailoverPhaseLoad[];
  /** Per time bin: packets accepted by each node, lost and duplicated. */
  timeline: { bin_s: number; t0: number; nodes: string[]; per_node: number[][]; lost: number[]; duplicated: number[]; broken: number[] };
  compare?: ({ policy: string } & FailoverTotals & { max_node_share: number })[];
  /**
   * Scenarios with a voluntary leave: what the planned handover costs in each order (sim/cluster/handover.ts),
   * the same events and traffic run once per mode. `gap_s` / `overlap_s`: total time after the first leave in
   * which some bucket had no holder / two holders.
   */
  handover?: { mode: string; apply_s: number; delivery_s: number; per_mode: ({ mode: string; gap_s: number; overlap_s: number } & FailoverTotals)[] };
  /** Ownership invariant violations over time (scenario only, independent of the traffic). */
  windows?: FailoverWindow[];
  /** What the terminal warned about (e.g. events after the traffic ended), for scripts. */
  warnings?: string[];
  run: RunInfo;
}

/** A `bench` result: one JSON line per case (bench/harness/harness.ts emits them, reports render them). */
export interface BenchCase {
  suite: string;
  case: string;
  /** Our throughput, operations (selections, packets, …) per second: the median of the repeats. */
  ops_per_s: number;
  /** The native (C) reference measured in the same run, if any. */
  native_ops_per_s?: number;
  /** ops_per_s / native_ops_per_s (higher is better). */
  ratio?: number;
  /** Relative spread of the repeats ((max-min)/median). */
  spread?: number;
  [extra: string]: unknown;
}

/** Imbalance of one layout on one part of the traffic (max/mean over the config's nodes, by name). */
export interface RecommendImbalance {
  /** max/mean of the nodes' loads, nobody failed. */
  now: number;
  /** After each single node fails (takeover by the policy): max/mean over the survivors. */
  after_failure: { node: string; max_over_mean: number }[];
  worst_after_failure: number;
}

/** What moves from the current config to a candidate (over the whole input). */
export interface RecommendMigration {
  flows: number;
  connections: number;
  packets: number;
  bytes: number;
  flows_share: number;
  connections_share: number;
  bytes_share: number;
}

export type RecommendVerdict =
  /** Held-out gain beyond the randomness band, on later traffic and on unseen sources: worth deploying. */
  | 'recommended'
  /** Passes the same checks, but ranks below the first by its tuned score, so it is not the one chosen. */
  | 'holds-up'
  /** Better on the part it was tuned on, but the gain is within what another seed alone gives, or too small. */
  | 'chance'
  /** Better on later traffic, but not on unseen sources (or the other way round). */
  | 'does-not-hold'
  /** Not better on held-out traffic at all. */
  | 'no-gain'
  /** The configuration in place. */
  | 'current';

export interface RecommendCandidate {
  id: string;
  /** One line, e.g. "clusterip sourceip-sourceport, 12 buckets (3 a node), seed 0x0". */
  description: string;
  /** What differs from the current config, in words. */
  changes: string[];
  spec: SelectorSpecJson;
  buckets: number;
  owners: { node: string; owns: number[] }[];
  /** The layout was the optimum of every layout (small spaces) or a local optimum. */
  layout_search: 'exhaustive' | 'local';
  /** Score tuned on (now + failure_weight * (worst_after_failure - 1)) on the tuning part of the time split. */
  tuned_score: number;
  tuned: RecommendImbalance;
  /** The time split's held-out part (the packets after the median packet time), with the layout tuned on those before it. */
  held_out: RecommendImbalance;
  /** The source split: the same structure laid out on one half of the sources, measured on the other half. */
  unseen_sources: RecommendImbalance;
  /** Whole input (what `simulate --config` with the written config shows, by node name). */
  whole: RecommendImbalance;
  /** Held-out max/mean of this structure and layout under 32 other seeds (95th percentile). */
  random_p95: number;
  /** current held-out max/mean minus this candidate's (positive: better). */
  gain: number;
  /** The part of the gain beyond the best 1-in-20 that reseeding the current config gives (band p5 minus this candidate). */
  gain_beyond_random: number;
  migration: RecommendMigration;
  verdict: RecommendVerdict;
  /** Why the verdict, in words. */
  reason: string;
}

export interface RecommendResult {
  kind: 'recommend';
  /** SCHEMA_VERSION (sim/core/version.ts) of this document. */
  schema_version: number;
  tool: ToolInfo;
  generated_at: string;
  input: InputSummary;
  metric: Metric;
  policy: string;
  /** What the search was allowed to change. */
  /** time_only: a gain that does not hold on unseen sources was accepted (--time-only). */
  allowed: { time_only?: boolean; backends: string[]; refused_backends: { backend: string; why: string }[]; kernel: string; hashmode_may_change: boolean; max_buckets: Record<string, number>; seeds: number; failure_weight: number; min_gain: number };
  splits: { time: string; sources: string };
  current: RecommendCandidate;
  /** The best few by tuned score (the first is the one the verdict is about). */
  candidates: RecommendCandidate[];
  /** The id of the recommended candidate, or null: nothing worth changing. */
  chosen: string | null;
  /** One paragraph: what to do and why. */
  summary: string;
  warnings: string[];
  /** The chosen candidate as a cluster config (YAML), when there is one. */
  config_yaml: string | null;
  search: { flows: number; connections: number; structures: number; layouts_exhaustive: number; collect_s: number; search_s: number; bound: string };
}
