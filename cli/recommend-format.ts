/** The terminal form of a `recommend` result: the verdict first, then the candidates side by side. */
import type { RecommendCandidate, RecommendResult } from '../sim/core/result.ts';

const f3 = (x: number): string => (Number.isFinite(x) ? x.toFixed(3) : '-');
const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

function row(c: RecommendCandidate): string[] {
  return [
    c.id, c.verdict, c.description, f3(c.tuned.now), f3(c.held_out.now), f3(c.unseen_sources.now), f3(c.held_out.worst_after_failure),
    f3(c.random_p95), c.id === 'current' ? '-' : f3(c.gain_beyond_random), c.id === 'current' ? '-' : pct(c.migration.flows_share),
  ];
}

export function formatRecommend(r: RecommendResult): string {
  const out: string[] = [];
  out.push(`${r.summary}\n`);
  out.push(`\nmetric ${r.metric}, takeover policy ${r.policy}, kernel ${r.allowed.kernel}; backends searched: ${r.allowed.backends.join(', ')}` +
    `${r.allowed.hashmode_may_change ? '' : ' (hash mode kept)'}; ${r.search.flows} flows, ${r.search.structures} structures in ${r.search.search_s.toFixed(2)} s (pass over the input ${r.search.collect_s.toFixed(2)} s)\n`);
  for (const x of r.allowed.refused_backends) out.push(`not considered: ${x.backend}: ${x.why}\n`);
  out.push(`split in time: ${r.splits.time}\nsplit by source: ${r.splits.sources}\n\n`);
  const head = ['id', 'verdict', 'configuration', 'tuned', 'later', 'unseen src', 'worst fail', 'rand p95', 'beyond rand', 'moves'];
  const rows = [head, row(r.current), ...r.candidates.map(row)];
  const w = head.map((_, i) => Math.max(...rows.map((x) => x[i]!.length)));
  for (const x of rows) out.push(x.map((c, i) => (i === 2 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ') + '\n');
  out.push('\n(max/mean of node loads: tuned = the earlier half it was tuned on, later = the later half, unseen src = laid out on one half of the sources and measured on the other, worst fail = the later half after the worst single-node failure; rand p95 = what 95% of other seeds stay under)\n');
  for (const c of r.candidates) {
    out.push(`\n${c.id}: ${c.changes.join(', ')}\n  ${c.reason}\n  owners: ${c.owners.map((o) => `${o.node}=[${o.owns.join(',')}]`).join(' ')}\n`);
    out.push(`  after a failure (later half): ${c.held_out.after_failure.map((x) => `${x.node} ${f3(x.max_over_mean)}`).join(', ')}\n`);
    out.push(`  moves ${c.migration.flows} flows (${pct(c.migration.flows_share)}), ${c.migration.connections} connections, ${c.migration.bytes} bytes (${pct(c.migration.bytes_share)})\n`);
  }
  for (const wn of r.warnings) out.push(`warning: ${wn}\n`);
  return out.join('');
}
