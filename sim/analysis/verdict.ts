/**
 * The verdict on a spread, decided here and only here: the terminal, the JSON,
 * the HTML report and its PNGs all show what this module says (they used to
 * apply two different rules and disagree on the built-in scenario).
 *
 * Two bands from stats.ts decide it:
 * - `random_max_over_mean_p95`: max/mean that 95 % of other seeds of the same
 *   configuration reach on this very traffic (flows that must travel together
 *   widen it). Beyond it the seed or the configuration is to blame.
 * - `independent_max_over_mean_p95`: max/mean that pure randomness reaches if
 *   every flow were hashed on its own. Beyond it (but within the seed band)
 *   the traffic itself is lumpy: another seed would not help.
 */
import type { ConfigResult, DistributionStats, FailoverResult, Metric, Migration, NodeStats } from '../core/result.ts';

/** even: within pure randomness; traffic: lumpy traffic, any seed does the same; configuration: worse than 95 % of other seeds. */
export type Verdict = DistributionStats['verdict'];
export type VerdictKind = Verdict['kind'];

export const VERDICT_TEXT: Record<VerdictKind, string> = {
  'no-traffic': 'no traffic',
  even: 'as even as randomness allows',
  traffic: 'uneven because of the traffic (items that hash together); another seed would not help',
  configuration: 'worse than 95% of other seeds: this seed or configuration is unlucky',
};

/** The verdict from the numbers carried beside it in DistributionStats. */
export function decideVerdict(s: Pick<DistributionStats, 'total' | 'max_over_mean' | 'random_max_over_mean_p95' | 'independent_max_over_mean_p95'>): Verdict {
  const kind: VerdictKind = !(s.total > 0) ? 'no-traffic'
    : s.max_over_mean > s.random_max_over_mean_p95 ? 'configuration'
    : s.max_over_mean > s.independent_max_over_mean_p95 ? 'traffic'
    : 'even';
  return { kind, text: VERDICT_TEXT[kind] };
}

const pct = (x: number): string => `${(x * 100).toFixed(1)} %`;

/** The busiest node of a metric and its share of the total. */
function busiest(nodes: readonly NodeStats[], metric: Metric): { node: NodeStats; share: number } | null {
  let best: NodeStats | null = null, total = 0;
  for (const n of nodes) {
    total += n[metric];
    if (!best || n[metric] > best[metric]) best = n;
  }
  return best && total > 0 ? { node: best, share: best[metric] / total } : null;
}

/** One clause per configuration, from its packets verdict: "A is even (max/mean 1.004)". */
export function configClause(c: Pick<ConfigResult, 'id' | 'nodes' | 'stats'>, metric: Metric = 'packets'): string {
  const st = c.stats.find((s) => s.metric === metric);
  if (!st) return `${c.id}: no ${metric}`;
  const v = st.verdict ?? decideVerdict(st);
  if (v.kind === 'no-traffic') return `${c.id} has no traffic`;
  if (v.kind === 'even') return `${c.id} is even (max/mean ${st.max_over_mean.toFixed(3)})`;
  const b = busiest(c.nodes, metric)!;
  const who = b.node.name ? `node ${b.node.node} (${b.node.name})` : `node ${b.node.node}`;
  const why = v.kind === 'traffic' ? 'because of the traffic' : 'an unlucky seed or configuration';
  return `${c.id} loads ${who} with ${pct(b.share)} of ${metric} (max/mean ${st.max_over_mean.toFixed(3)}, ${why})`;
}

/**
 * What a simulate run found, in one line: each configuration's packets
 * verdict, then how much of the traffic each comparison moves.
 */
export function simulateHeadline(configs: readonly Pick<ConfigResult, 'id' | 'nodes' | 'stats'>[], migrations: readonly Pick<Migration, 'from' | 'to' | 'flows_moved_share'>[]): string {
  const parts = configs.map((c) => configClause(c));
  for (const m of migrations) parts.push(`${m.from}→${m.to} moves ${pct(m.flows_moved_share)} of flows`);
  return parts.join('; ');
}

const count = (n: number, one: string, many = `${one}s`): string => `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;

/**
 * What a failover run found, in one line (terminal, JSON `headline`, HTML):
 * what was lost, duplicated and broken against what the traffic carried, and
 * whether (and how fast) every bucket had exactly one owner again. A fault
 * the traffic never reached is said so, not reported as a clean "0 lost".
 */
export function failoverHeadline(r: Pick<FailoverResult, 'totals' | 'input' | 'scenario' | 'warnings'>): string {
  const t = r.totals, n = r.input.packets;
  const scripted = Array.isArray(r.scenario.events) ? r.scenario.events.length : 0;
  const share = (x: number): string => (n > 0 ? ` (${((100 * x) / n).toFixed(2)} %)` : '');
  const conns = t.connections !== undefined ? ` of ${t.connections.toLocaleString('en-US')}` : '';
  const parts = [
    `${count(scripted, 'scripted event')}: ${count(t.lost_packets, 'packet')} lost${share(t.lost_packets)}, ${t.duplicated_packets.toLocaleString('en-US')} duplicated${share(t.duplicated_packets)}, ${t.broken_connections.toLocaleString('en-US')}${conns} connections broken`,
    t.recovered === false ? 'some bucket still had no owner or several at the end' : `one owner per bucket again ${t.recovery_s.toFixed(2)} s after the first fault`,
  ];
  if (r.warnings?.length) parts.push('see the warnings: some events fall where the traffic has ended');
  return parts.join('; ');
}
