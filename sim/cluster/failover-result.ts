/**
 * The pieces of a failover run that belong to the model: the first fault and
 * the bin width a scenario implies, and the JSON result built from merged
 * partials. The one driver that strings measurement, timelines and evaluation
 * together (in-process or on workers) is sim/engine/failover-run.ts.
 */
import type { FailoverResult, InputSummary } from '../core/result.ts';
import { SCHEMA_VERSION, TOOL } from '../core/version.ts';
import type { OwnershipTimeline } from './heartbeat.ts';
import type { Scenario } from './scenario.ts';
import { summarizeRun, type FailoverPartial } from './timeline.ts';
import { firstFault } from './events.ts';
import { HANDOVER_MODES } from './handover.ts';

/** The first fault's time, from the scenario alone. */
export function firstFaultOf(sc: Scenario): number | null {
  return firstFault(sc.events);
}

/** Bin width: the scenario's, else 1 s (at most ~600 bins over a known traffic span). */
export function binWidthOf(sc: Scenario): number {
  if (sc.bin_s) return sc.bin_s;
  const span = sc.traffic?.duration_s ?? 60;
  return span > 600 ? Math.ceil(span / 600) : 1;
}

/** Builds the JSON result from merged partials (also for a multi-worker engine). */
export function failoverResult(
  sc: Scenario,
  timelines: OwnershipTimeline[],
  part: FailoverPartial,
  input: Omit<InputSummary, 'packets' | 'bytes' | 'duration_s'>,
  run: { workers: number; elapsed_s: number },
  /** One timeline per handover mode (HANDOVER_MODES order), evaluated after `timelines` in `part.runs`; empty when the scenario has no leave. */
  handovers: OwnershipTimeline[] = [],
): FailoverResult {
  const tl = timelines[0]!;
  const main = summarizeRun(part, 0, tl);
  const N = part.nodes;
  const bins = part.runs[0]!.bin_lost.length;
  const r0 = part.runs[0]!;
  const extra = { invalid_packets: part.invalid, no_node_packets: part.no_node, unknown_packets: part.unknown };
  const round = (x: number): number => Math.round(x * 1e9) / 1e9;
  return {
    kind: 'failover',
    schema_version: SCHEMA_VERSION,
    tool: TOOL,
    generated_at: new Date().toISOString(),
    input: { ...input, packets: part.packets, bytes: part.bytes, duration_s: Number.isFinite(part.max_t) ? round(part.max_t - part.min_t) : 0 },
    scenario: {
      name: sc.name,
      config: sc.config_source === 'inline' ? sc.config : { path: sc.config_source, ...sc.config },
      heartbeat: { ...sc.heartbeat },
      policy: sc.policy.policy,
      failback: sc.policy.failback,
      stable_s: sc.policy.stable_s,
      conntrack: { ...sc.conntrack },
      events: sc.raw_events,
      builtin: sc.file === '(built-in scenario)' || undefined,
    },
    totals: { ...main.totals, recovery_s: round(main.totals.recovery_s), ...extra },
    events: tl.events.map((e) => ({ ...e, t: round(e.t) })),
    phases: main.phases.map((p) => ({ ...p, from_s: round(p.from_s), to_s: round(p.to_s) })),
    timeline: {
      bin_s: part.bin_s,
      t0: part.t0,
      nodes: tl.names,
      per_node: tl.names.map((_, x) => Array.from({ length: bins }, (_, b) => r0.bin_node[b * N + x]!)),
      lost: r0.bin_lost,
      duplicated: r0.bin_dup,
      broken: r0.bin_broken,
    },
    compare: timelines.length > 1 ? timelines.map((t, k) => {
      const s = summarizeRun(part, k, t);
      return { policy: t.policy.policy, ...s.totals, recovery_s: round(s.totals.recovery_s), max_node_share: s.max_node_share };
    }) : undefined,
    handover: handovers.length ? handoverCost(sc, handovers, part, timelines.length, round) : undefined,
    windows: tl.windows.map((w) => ({ from_s: round(w.from_s), to_s: w.to_s === Infinity ? null : round(w.to_s), orphaned: w.orphaned, doubled: w.doubled })),
    run: {
      workers: run.workers,
      elapsed_s: run.elapsed_s,
      packets_per_s: run.elapsed_s > 0 ? part.packets / run.elapsed_s : 0,
      peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
    },
  };
}

/** What each handover order costs on this traffic: totals, and the time after the first leave with a bucket unheld / held twice. */
function handoverCost(sc: Scenario, handovers: OwnershipTimeline[], part: FailoverPartial, offset: number, round: (x: number) => number): NonNullable<FailoverResult['handover']> {
  const leaveAt = sc.events.find((e) => e.kind === 'leave')!.t;
  return {
    mode: sc.handover,
    apply_s: sc.heartbeat.apply_s,
    delivery_s: sc.heartbeat.jitter_s / 2,
    per_mode: handovers.map((tl, k) => {
      let gap = 0, overlap = 0;
      // Per segment after the leave: any bucket with no holder, any with several.
      for (let s = 0; s < tl.starts.length; s++) {
        const from = Math.max(tl.starts[s]!, leaveAt), to = s + 1 < tl.starts.length ? tl.starts[s + 1]! : from;
        if (!(to > from)) continue;
        let none = false, many = false;
        for (let b = 0; b < tl.buckets; b++) {
          const o = tl.owners[s * tl.buckets + b]!;
          if (o === 0) none = true;
          else if (o & (o - 1)) many = true;
        }
        if (none) gap += to - from;
        if (many) overlap += to - from;
      }
      const t = summarizeRun(part, offset + k, tl).totals;
      return { mode: HANDOVER_MODES[k]!, gap_s: round(gap), overlap_s: round(overlap), ...t, recovery_s: round(t.recovery_s) };
    }),
  };
}
