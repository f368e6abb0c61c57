/** What the main thread sends a worker, and what comes back. Plain data and typed arrays only. */
import type { SelectorSpec } from '../select/selector.ts';
import type { FlowRecords } from './conn-table.ts';
import type { CtState, CtTransfer, JudgeStats } from '../cluster/ct-model.ts';
import type { FlowSummary, SinkOptions } from './flow-sink.ts';
import type { SourceSpill } from './source-table.ts';
import type { IngestStats } from '../traffic/input.ts';
import type { CarriedFragments } from '../traffic/frag-carry.ts';
import type { SyntheticOptions } from '../traffic/synthetic.ts';
import type { OwnershipTimeline } from '../cluster/heartbeat.ts';
import type { EvalOptions } from '../cluster/timeline.ts';
import type { ClusterIp } from './cluster-filter.ts';

export type InputSpec =
  /** `noDefrag`: a namespace without conntrack (`simulate --no-conntrack`): fragments are hashed one by one (capture.ts). */
  /** `carry`: set by processShare for a share of a longer stream (capture.ts CaptureOptions.carry). */
  | { kind: 'pcap'; path: string; start?: number; end?: number; lenient?: boolean; limit?: number; from?: number; to?: number; noDefrag?: boolean; carry?: boolean }
  /** A scenario of sim/traffic/synthetic.ts; `params` are the scenario's own (steady's flows, duration, ...). */
  | { kind: 'synthetic'; name: string; seed: number; packets?: number; params?: SyntheticParams; share?: { index: number; count: number } }
  | { kind: 'csv'; path: string };

/** The options of a synthetic scenario besides seed, packet limit and share. */
export type SyntheticParams = Omit<SyntheticOptions, 'seed' | 'packets' | 'share'>;

export interface SimTask {
  input: InputSpec;
  selectors: SelectorSpec[];
  /** Numeric cluster IP: only packets to it are hashed by the cluster. null: every packet counts. */
  clusterIp: ClusterIp | null;
  /** Mixed cluster: mixed[k-1] = index of the selector node k runs. */
  mixed: number[] | null;
  /** Progress: Float64Array(progress)[slot] = packets done, updated once per batch. */
  progress?: { buffer: SharedArrayBuffer; slot: number };
  batchCapacity?: number;
  /** Connection idle timeout, seconds (conn-table.ts). */
  flowTimeout: number;
  /** Count sources for the heaviest sources per node (default true; SinkOptions.sources). */
  topSources?: boolean;
  /** Where the source counters spill past their budget (source-table.ts); absent: never. */
  sourceSpill?: SourceSpill | null;
  /**
   * Track connections (default true). false: per-packet counts only, no flows,
   * connections, sources, band or migrations: a bench diagnostic that shows
   * what connection tracking costs (direction-dependent selectors need it).
   */
  connections?: boolean;
  /**
   * Where this share sits in its input: shares of one input are consecutive
   * stretches of one stream (byte ranges of a capture), joined back in order
   * by merge.ts. `first`: nothing precedes it; `last`: nothing follows.
   */
  chain: { input: number; share: number; first: boolean; last: boolean };
  /**
   * nf_conntrack_tcp_loose of the nodes (default true, the kernel's): whether
   * a TCP ACK without an entry opens one (cluster/ct-model.ts).
   */
  tcpLoose?: boolean;
  /** The conntrack model's state at this share's start (a shard's lead, or the share before's end when they run in order); absent: empty. */
  ctStart?: CtState;
  /**
   * The first passes over every share before this one in its stream, in
   * order (run.ts startStates): the share composes them into its start state
   * itself (ct-model.ts Judge.compose), after `ctStart` if any.
   */
  ctCompose?: CtTransfer[];
  /** Return the model's state at the share's end (`SimPartial.ctEnd`): run.ts hands it to the next share when they run one after another. */
  wantCtEnd?: boolean;
}

/** The conntrack model's first pass over a share (ct-model.ts Judge.transfer): what the share does to the table. */
export interface CtScanTask {
  kind: 'ct-scan';
  input: InputSpec;
  chain: SimTask['chain'];
  flowTimeout: number;
  tcpLoose: boolean;
}

export interface ConfigPartial {
  /**
   * Per-bucket counts, exact, filled for direction-independent selectors only:
   * packets as the node's netfilter counter shows them (one per datagram after
   * defragmentation), frames (capture records: each fragment), bytes (their wire bytes).
   */
  packets: Float64Array;
  frames: Float64Array;
  bytes: Float64Array;
  noNode: number;
  unknown: number;
}

export interface SimPartial {
  configs: ConfigPartial[];
  /** Connections that ended inside the share, folded into counters. */
  summary: FlowSummary;
  /** Connections that may continue in a neighbouring share (merge.ts joins them). */
  exports: { v4: FlowRecords; v6: FlowRecords };
  chain: SimTask['chain'];
  mixed: { none: number; several: number } | null;
  ingest: IngestStats;
  /** Packets not addressed to the cluster IP. */
  notToCluster: number;
  /** What the conntrack validity model counted (cluster/ct-model.ts); null when it did not run. */
  ct: JudgeStats | null;
  /** The conntrack model's state at the share's end, when the task asked (`wantCtEnd`); run.ts takes it off before the merge. */
  ctEnd?: CtState;
  /** Fragments whose datagram this share could not finish (its stream continues on either side): merge.ts replays them. */
  carry: CarriedFragments | null;
}

/** The merge of a simulation's partials (merge.ts), run in a worker. */
export interface MergeTask {
  kind: 'merge';
  parts: SimPartial[];
  sink: SinkOptions;
  flowTimeout: number;
  /** The shares' cluster IP (SimTask.clusterIp): carried fragments completed in the merge meet the same filter. */
  clusterIp: ClusterIp | null;
}

/** A failover share: the timelines are computed once in the main thread and shared by every worker. */
export interface FailoverTask {
  kind: 'failover';
  input: InputSpec;
  /** Keep only the connections of this partition (null: the input is already a share of whole flows). */
  partition: { index: number; count: number } | null;
  selector: SelectorSpec;
  /** Numeric cluster IP: only packets to it meet the cluster rule (as in simulate). null: every packet counts. */
  clusterIp: ClusterIp | null;
  timelines: OwnershipTimeline[];
  eval: EvalOptions;
  batchCapacity?: number;
  /** Progress: Float64Array(progress)[slot] = packets read, updated once per batch (as SimTask's). */
  progress?: { buffer: SharedArrayBuffer; slot: number };
}
