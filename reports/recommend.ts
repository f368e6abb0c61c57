/**
 * The HTML report of a `recommend` result: the verdict, then the configuration
 * in place and the best candidate side by side (before / after / after each
 * single-node failure, on traffic the search never saw), every candidate with
 * its verdict, and the config that would be deployed.
 */
import type { RecommendCandidate, RecommendResult } from '../sim/core/result.ts';
import { esc } from './format.ts';
import { Charts, color, dl, num, page, raw, table, type Cell } from './page.ts';

const VERDICT_CLASS: Record<RecommendCandidate['verdict'], string> = { recommended: 'ok', 'holds-up': 'ok', chance: 'warn', 'does-not-hold': 'warn', 'no-gain': 'bad', current: 'ok' };
const badge = (c: RecommendCandidate): Cell => raw(`<span class="badge ${VERDICT_CLASS[c.verdict]}">${esc(c.verdict)}</span>`);

export function renderRecommendHtml(r: RecommendResult): string {
  const ch = new Charts();
  const b: string[] = [];
  const cur = r.current;
  const best = r.candidates.find((c) => c.id === r.chosen) ?? r.candidates[0];
  b.push(`<h1>Recommendation</h1><p class="lead">${esc(r.tool?.name ?? 'clusterip-sim')} ${esc(r.tool?.version ?? '')} · generated ${esc(r.generated_at ?? '')}</p>`);
  b.push(`<p class="lead" id="verdict"><span class="badge ${r.chosen ? 'ok' : 'warn'}">${r.chosen ? `deploy ${esc(r.chosen)}` : 'nothing worth changing'}</span> ${esc(r.summary)}</p>`);
  b.push(`<h2 id="what-ran">What ran</h2>${dl([
    ['input', `${r.input.kind}${r.input.synthetic ? ` ${r.input.synthetic.scenario} (seed ${r.input.synthetic.seed})` : ''} ${r.input.files.map((f) => f.path).join(', ')}`],
    ['packets to the cluster', num(r.input.packets)], ['flows', num(r.search.flows)], ['connections', num(r.search.connections)],
    ['metric', r.metric], ['takeover policy', r.policy], ['kernel', r.allowed.kernel],
    ['backends searched', r.allowed.backends.join(', ') + (r.allowed.hashmode_may_change ? '' : ' (hash mode kept)')],
    ['not considered', r.allowed.refused_backends.map((x) => `${x.backend}: ${x.why}`).join('; ') || 'none'],
    ['tuned / judged (time)', r.splits.time], ['tuned / judged (sources)', r.splits.sources],
    ['search', `${r.search.structures} structures in ${r.search.search_s.toFixed(2)} s (pass over the input ${r.search.collect_s.toFixed(2)} s); ${r.search.bound}`],
  ])}`);
  if (best) {
    b.push('<h2 id="side-by-side">Before, after, after a failure</h2><p class="note">max/mean of the nodes\' loads; "later" is the packets after the median packet time, which the search never saw.</p>');
    const pair = [cur, best];
    const line = (label: string, f: (c: RecommendCandidate) => Cell): Cell[] => [label, ...pair.map(f)];
    const rows: Cell[][] = [
      line('verdict', badge),
      line('configuration', (c) => c.description),
      line('owner sets', (c) => c.owners.map((o) => `${o.node}=[${o.owns.join(',')}]`).join(' ')),
      line('tuned half', (c) => num(c.tuned.now, 'f3')),
      line('later half (held out)', (c) => num(c.held_out.now, 'f3')),
      line('unseen sources', (c) => num(c.unseen_sources.now, 'f3')),
      line('whole input', (c) => num(c.whole.now, 'f3')),
      ...cur.held_out.after_failure.map((x, i) => line(`later half, ${x.node} fails`, (c) => num(c.held_out.after_failure[i]?.max_over_mean ?? NaN, 'f3'))),
      line('randomness band p95', (c) => num(c.random_p95, 'f3')),
      line('gain beyond randomness', (c) => (c === cur ? '' : num(c.gain_beyond_random, 'f3'))),
      line('flows that move', (c) => (c === cur ? '' : num(c.migration.flows_share, 'pct1'))),
      line('connections that move', (c) => (c === cur ? '' : num(c.migration.connections_share, 'pct1'))),
      line('bytes that move', (c) => (c === cur ? '' : num(c.migration.bytes_share, 'pct1'))),
      line('why', (c) => c.reason),
    ];
    b.push(table('recommend-side-by-side', [{ label: '' }, { label: 'current' }, { label: `candidate ${best.id}` }], rows));
    const labels = ['now', ...cur.held_out.after_failure.map((x) => `${x.node} fails`)];
    b.push(ch.canvas('recommend-before-after', {
      type: 'bar',
      data: {
        labels,
        datasets: pair.map((c, k) => ({ label: c === cur ? 'current' : `candidate ${c.id}`, data: [c.held_out.now, ...c.held_out.after_failure.map((x) => x.max_over_mean)], backgroundColor: color(k) })),
      },
      options: { plugins: { title: { display: true, text: 'max/mean on the later half: now and after each single-node failure' } }, scales: { y: { min: 0, title: { display: true, text: 'max/mean' } } } },
    }, 'max/mean now and after each single-node failure, current against the candidate'));
  }
  b.push('<h2 id="candidates">Candidates</h2><p class="note">Ranked by the score on the half they were tuned on; only the first may be chosen (choosing among them by their held-out numbers would tune on those too).</p>');
  b.push(table('recommend-candidates', [
    { label: 'id' }, { label: 'verdict' }, { label: 'configuration' }, { label: 'changes' }, { label: 'tuned' }, { label: 'later' }, { label: 'unseen sources' },
    { label: 'worst failure (later)' }, { label: 'band p95' }, { label: 'beyond randomness' }, { label: 'flows moved' }, { label: 'why' },
  ], [cur, ...r.candidates].map((c) => [c.id, badge(c), c.description, c.changes.join(', '), num(c.tuned.now, 'f3'), num(c.held_out.now, 'f3'), num(c.unseen_sources.now, 'f3'),
    num(c.held_out.worst_after_failure, 'f3'), num(c.random_p95, 'f3'), c === cur ? '' : num(c.gain_beyond_random, 'f3'), c === cur ? '' : num(c.migration.flows_share, 'pct1'), c.reason])));
  if (r.config_yaml) b.push(`<h2 id="config">The recommended cluster config</h2><pre id="recommend-config">${esc(r.config_yaml)}</pre>`);
  if (r.warnings.length) b.push(`<h2>Warnings</h2><ul>${r.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul>`);
  return page({ title: 'clusterip-sim: recommendation', body: b.join('\n'), charts: ch.list, result: r });
}
