/**
 * A failover run on the worker pool: measurements and ownership timelines are
 * computed once here (they depend on the scenario and, for least-loaded, on
 * traffic before the first fault); connections are dealt to workers whole (each
 * worker reads the input and keeps the connections its hash selects), so
 * per-connection conntrack state never crosses a thread and the sums merge to
 * the same totals for any worker count.
 */
import { createBatch } from '../traffic/batch.ts';
import { buildSelector } from '../select/build.ts';
import { selectorSpecOf } from '../select/from-config.ts';
import { buildTimeline } from '../cluster/heartbeat.ts';
import { HANDOVER_MODES } from '../cluster/handover.ts';
import { POLICIES, type Measurements, type PolicyConfig } from '../cluster/policies.ts';
import { BucketMeter, mergeFailoverPartials, type FailoverPartial } from '../cluster/timeline.ts';
import { binWidthOf, failoverResult, firstFaultOf } from '../cluster/failover-result.ts';
import type { Scenario } from '../cluster/scenario.ts';
import type { FailoverResult, InputSummary } from '../core/result.ts';
import { openInput, planInputShares } from './inputs.ts';
import { keepToClusterIp, parseClusterIp, type ClusterIp } from './cluster-filter.ts';
import { processFailoverShare } from './failover-share.ts';
import { runTasks } from './run.ts';
import type { FailoverTask, InputSpec } from './task.ts';

export interface FailoverRunOptions {
  input: InputSpec;
  /** What the input is, for the result (packet counts and duration are filled in by the run). */
  summary: Omit<InputSummary, 'packets' | 'bytes' | 'duration_s'>;
  /** 0 = in-process. */
  workers: number;
  /**
   * Only packets to this address meet the cluster rule. Default: for a
   * capture, the scenario config's cluster IP (as simulate reads a capture:
   * the server's replies and other traffic never meet the rule); generated
   * traffic is all addressed to the cluster. null: every packet counts.
   */
  clusterIp?: ClusterIp | null;
  comparePolicies?: boolean;
  /** Capture time of scenario time 0: 0 for generated traffic; the first packet's time for a capture. */
  t0?: number;
  /** Called about 5 times a second while the workers run, with the input's packets read so far. */
  onProgress?: (done: number) => void;
  batchCapacity?: number;
}

/** Timestamp of the first packet of an input (scenario time 0 of a capture). */
export function firstTimestamp(input: InputSpec): number {
  const b = createBatch(1);
  const src = openInput(input);
  try {
    return src.fill(b) > 0 ? b.ts[0]! : 0;
  } finally {
    src.close();
  }
}

export async function runFailoverParallel(sc: Scenario, o: FailoverRunOptions): Promise<FailoverResult> {
  const started = performance.now();
  const spec = selectorSpecOf(sc.config);
  const sel = buildSelector(spec);
  const t0 = o.t0 ?? 0;
  const cap = o.batchCapacity ?? 65536;
  const clusterIp = o.clusterIp !== undefined ? o.clusterIp : o.input.kind === 'pcap' || o.input.kind === 'csv' ? parseClusterIp(sc.config.cluster.ip) : null;
  const policies: PolicyConfig[] = [sc.policy];
  if (o.comparePolicies) for (const p of POLICIES) if (p !== sc.policy.policy) policies.push({ ...sc.policy, policy: p });
  let meas: Measurements | undefined;
  if (policies.some((p) => p.policy === 'least-loaded')) {
    // Traffic per bucket before the first fault: what a controller would have measured.
    const meter = new BucketMeter(sel, t0, firstFaultOf(sc) ?? Infinity, cap);
    const batch = createBatch(cap);
    const src = openInput(o.input);
    try {
      while (src.fill(batch) > 0) {
        if (clusterIp !== null) keepToClusterIp(batch, clusterIp);
        meter.add(batch);
      }
    } finally {
      src.close();
    }
    meas = meter.measurements();
  }
  const timelines = policies.map((p) => buildTimeline(sc, p, meas));
  // A voluntary leave: the same traffic once per handover order, so the result can say what each costs.
  const handovers = sc.events.some((e) => e.kind === 'leave') ? HANDOVER_MODES.map((m) => buildTimeline(sc, sc.policy, meas, { handover: m })) : [];
  const all = [...timelines, ...handovers];
  const evalOpts = { t0, bin_s: binWidthOf(sc), conntrack: sc.conntrack };
  const n = Math.max(1, o.workers);
  // A synthetic input deals whole connections to shares (by connection key), so each worker generates
  // only its own. Any other input: every worker reads all of it and keeps its own connections (by a
  // direction-free hash), since a byte range of a capture could split a connection's two directions.
  const tasks: FailoverTask[] = o.input.kind === 'synthetic'
    ? planInputShares(o.input, n).map((input) => ({ kind: 'failover', input, partition: null, selector: spec, clusterIp, timelines: all, eval: evalOpts, batchCapacity: cap }))
    : Array.from({ length: n }, (_, index) => ({ kind: 'failover', input: o.input, partition: n > 1 ? { index, count: n } : null, selector: spec, clusterIp, timelines: all, eval: evalOpts, batchCapacity: cap }));
  // Progress through shared memory, as simulate's shares report it. Partitions each read the whole
  // input (a packet counts once: their mean); shares of synthetic traffic read their own part (the sum).
  const progressBuf = new SharedArrayBuffer(8 * tasks.length);
  const read = new Float64Array(progressBuf);
  tasks.forEach((t, slot) => (t.progress = { buffer: progressBuf, slot }));
  const tick = (): void => {
    let sum = 0;
    for (let i = 0; i < read.length; i++) sum += read[i]!;
    o.onProgress?.(tasks[0]?.partition ? sum / tasks.length : sum);
  };
  const timer = o.onProgress ? setInterval(tick, 200) : null;
  let parts: FailoverPartial[];
  try {
    parts = await runTasks<FailoverTask, FailoverPartial>(tasks, o.workers, processFailoverShare);
  } finally {
    if (timer) clearInterval(timer);
  }
  // The last word is the whole input (a short run may end before the first tick).
  if (o.onProgress) tick();
  return failoverResult(sc, timelines, mergeFailoverPartials(parts), o.summary, { workers: o.workers, elapsed_s: (performance.now() - started) / 1000 }, handovers);
}
