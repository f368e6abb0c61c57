/**
 * HTML reports for `simulate`, `failover` and `bench` results: one
 * self-contained file each (see page.ts). Tables are rendered here from the
 * result, so they read without JavaScript; the charts are drawn in the browser
 * from the same result, embedded in the page as JSON.
 */
import type { BenchCase, RecommendResult } from '../sim/core/result.ts';
import { renderRecommendHtml } from './recommend.ts';
import type { ConfigResult, DistributionStats, FailoverEvent, FailoverResult, InputSummary, Metric, Migration, NodeStats, RunInfo, SimulateResult, ToolInfo } from '../sim/core/result.ts';
import type { Fact } from '../sim/select/profile.ts';
import type { CompareResult } from '../sim/schemes/compare.ts';
import { DataError } from '../sim/core/errors.ts';
import { decideVerdict, failoverHeadline, simulateHeadline } from '../sim/analysis/verdict.ts';
import { esc, fmtBytes, fmtNum, si } from './format.ts';
import { Charts, color, dl, num, page, raw, table, type Cell } from './page.ts';

/** What a bench report says about the run besides its cases. */
export interface BenchMeta {
  tool?: ToolInfo;
  generated_at?: string;
  /** The command line that ran, e.g. "npm run bench -- --quick". */
  command?: string;
  /** Machine description (CPU, cores, kernel, Node version). */
  host?: string;
  quick?: boolean;
  [extra: string]: unknown;
}

/** A saved bench result: `{kind:'bench', cases:[...]}` plus the run's metadata. */
export type BenchReport = { kind: 'bench'; cases: BenchCase[] } & BenchMeta;

/** A saved `compare-schemes --json` result. */
export type SchemesReport = { kind: 'schemes'; input?: string; tool?: ToolInfo; generated_at?: string } & CompareResult;
export type ReportInput = SimulateResult | FailoverResult | BenchReport | SchemesReport | RecommendResult;

const BAD = '#e15759';
const BAND_LEGEND = 'rgba(89,161,79,0.35)';
const METRIC_LABEL: Record<Metric, string> = { packets: 'packets', bytes: 'bytes', flows: 'flows', connections: 'connections' };

// ---------------------------------------------------------------- shared parts

function evidenceBadge(e: Fact['evidence']): string {
  const cls = e.startsWith('measured') ? 'ok' : e === 'source' ? 'warn' : 'bad';
  const word = e.startsWith('measured') ? e : e === 'source' ? 'read from source' : 'unverified';
  return `<span class="badge ${cls}">${esc(word)}</span>`;
}

function factsTable(id: string, facts: readonly Fact[]): string {
  if (!facts.length) return '<p class="note">No kernel facts recorded for this configuration.</p>';
  const measured = facts.filter((f) => f.evidence.startsWith('measured')).length;
  const what = measured === facts.length
    ? `all ${facts.length} facts behind these answers were measured on a real kernel.`
    : `${measured} of ${facts.length} facts behind these answers were measured on a real kernel; the others come from reading the kernel source only${facts.some((f) => f.evidence === 'unverified') ? ' or are unverified' : ''}.`;
  return `<p class="note">Kernel profile: ${esc(what)}</p>` +
    table(id, [{ label: 'fact' }, { label: 'evidence' }, { label: 'note' }, { label: 'scope' }],
      facts.map((f) => [f.topic, raw(evidenceBadge(f.evidence)), f.note, f.scope ?? 'all']));
}

function toolLine(tool: ToolInfo | undefined, when: string | undefined): string {
  return `<p class="lead">${esc(tool?.name ?? 'clusterip-sim')} ${esc(tool?.version ?? '(version unknown)')} · generated ${esc(when ?? '(date unknown)')}</p>`;
}

function inputSection(input: InputSummary): string {
  const items: [string, Cell][] = [
    ['source', input.kind],
    ['packets', num(input.packets)],
    ['bytes', num(input.bytes)],
    ['duration', raw(`<span class="num" data-v="${esc(String(input.duration_s))}">${esc(fmtNum(input.duration_s, 'f3'))}</span> s`)],
  ];
  if (input.synthetic) {
    items.push(['scenario', input.synthetic.scenario], ['seed', num(input.synthetic.seed)], ['parameters', raw(`<code>${esc(JSON.stringify(input.synthetic.params))}</code>`)]);
  }
  const skipped = Object.entries(input.skipped).filter(([, n]) => n > 0);
  items.push(['skipped packets', skipped.length ? raw(skipped.map(([k, n]) => `${esc(k)}: <span class="num" data-v="${n}">${esc(fmtNum(n, 'int'))}</span>`).join(', ')) : 'none']);
  const files = input.files.length
    ? table('input-files', [{ label: 'input file' }, { label: 'bytes' }, { label: 'SHA-256' }],
        input.files.map((f) => [f.path, num(f.bytes), raw(`<span class="mono">${esc(f.sha256)}</span>`)]))
    : '';
  return `<h3>Input</h3>${dl(items)}${files}`;
}

function runLine(run: RunInfo): string {
  return `<p class="note">Run: ${esc(run.workers)} worker(s), ${esc(fmtNum(run.elapsed_s, 'f2'))} s, ${esc(si(run.packets_per_s))} packets/s, peak RSS ${esc(fmtBytes(run.peak_rss_bytes))}.</p>`;
}

const nodeLabel = (n: NodeStats): string => (n.name ? `node ${n.node} (${n.name})` : `node ${n.node}`);

/** Band randomness alone would give around the mean (upper edge: p95 of max/mean; lower edge mirrored). */
function band(st: DistributionStats | undefined): { lo: number; hi: number; mean: number } | null {
  if (!st || !(st.mean > 0) || !(st.random_max_over_mean_p95 > 0)) return null;
  return { lo: st.mean * Math.max(0, 2 - st.random_max_over_mean_p95), hi: st.mean * st.random_max_over_mean_p95, mean: st.mean };
}

// ---------------------------------------------------------------- simulate

function metricChart(ch: Charts, c: ConfigResult, metric: Metric): string {
  const values = c.nodes.map((n) => n[metric]);
  const st = c.stats.find((s) => s.metric === metric);
  const b = band(st);
  const outside = (v: number) => b !== null && (v > b.hi || v < b.lo);
  const unit = metric === 'bytes' ? 'bytes' : 'count';
  const datasets: Record<string, unknown>[] = [
    { label: `${METRIC_LABEL[metric]} per node`, data: values, backgroundColor: values.map((v) => (outside(v) ? BAD : color(0))) },
  ];
  if (b) {
    datasets.push({ type: 'line', label: 'range over other seeds (95 %)', data: [], backgroundColor: BAND_LEGEND, borderColor: BAND_LEGEND });
    datasets.push({ type: 'line', label: 'mean', data: [], borderColor: '#3d8a3a', borderDash: [7, 4], backgroundColor: 'rgba(0,0,0,0)' });
  }
  // Two short lines: the subtitle must stay legible in a third of the page width.
  // The verdict line is the one the tables and the terminal print (PNGs carry it with the chart).
  const sub: string[] = st ? [`max/mean ${st.max_over_mean.toFixed(3)} · seeds p95 ${st.random_max_over_mean_p95.toFixed(3)} · random p95 ${st.independent_max_over_mean_p95.toFixed(3)}`, `verdict: ${verdictOf(st).text}`] : [];
  if (st && st.mean > 0) sub.push(`labels: node ÷ mean${values.some(outside) ? ' · red: outside the band' : ''}`);
  const max = Math.max(...values, b?.hi ?? 0);
  return ch.canvas(`${c.id}-${metric}`, {
    type: 'bar',
    data: { labels: c.nodes.map(nodeLabel), datasets },
    options: {
      cisValueFormat: unit,
      // Bars are coloured one by one (red outside the band); the legend shows the normal colour.
      cisLegendColor: color(0),
      plugins: {
        title: { display: true, text: `${cap(METRIC_LABEL[metric])} per node — configuration ${c.id}`, font: { size: 15 } },
        subtitle: { display: sub.length > 0, text: sub },
        legend: { position: 'bottom' },
        cisBand: b ?? {},
        cisBarLabels: st && st.mean > 0 ? { labels: values.map((v) => `×${(v / st.mean).toFixed(3)}`) } : {},
      },
      scales: {
        x: { title: { display: true, text: 'node' } },
        y: { beginAtZero: true, suggestedMax: max * 1.08, title: { display: true, text: metric === 'bytes' ? 'bytes' : `${METRIC_LABEL[metric]} (count)` }, cisFormat: unit },
      },
    },
  }, `${METRIC_LABEL[metric]} per node for configuration ${c.id}`);
}

const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
/** Seconds for labels: at most 2 decimals, no trailing zeros (20–40.53 s, not 20–40.53299096 s). */
const seconds = (x: number): string => String(+x.toFixed(2));

/** Whether any node has a name (from a cluster config): without, the name column is left out rather than shown empty. */
const named = (c: ConfigResult): boolean => c.nodes.some((n) => n.name);

/** What packets, frames and bytes per node count (the words of simulate's --help and NodeStats). */
const NODE_COLUMNS = {
  packets: "what the node's netfilter counter for its cluster rule shows (one per datagram: conntrack defragments first)",
  frames: 'the capture records behind those packets (each fragment is a frame)',
  bytes: "those frames' wire bytes",
} as const;

function nodesTable(id: string, c: ConfigResult): string {
  const tot = (m: Metric) => c.nodes.reduce((a, n) => a + n[m], 0);
  const share = (v: number, t: number) => num(t > 0 ? v / t : 0, 'pct');
  const [tp, tb, tf] = [tot('packets'), tot('bytes'), tot('flows')];
  const nm = named(c);
  return table(id,
    [{ label: 'node' }, ...(nm ? [{ label: 'name' }] : []), { label: 'packets', title: NODE_COLUMNS.packets }, { label: 'share' }, { label: 'frames', title: NODE_COLUMNS.frames },
      { label: 'bytes', title: NODE_COLUMNS.bytes }, { label: 'share' }, { label: 'flows' }, { label: 'share' }, { label: 'connections' }, { label: 'new conn/s' }],
    // A result saved before frames were counted has none: the cell stays empty rather than guessed.
    c.nodes.map((n) => [num(n.node), ...(nm ? [n.name ?? ''] : []), num(n.packets), share(n.packets, tp), n.frames === undefined ? '' : num(n.frames), num(n.bytes), share(n.bytes, tb), num(n.flows), share(n.flows, tf), num(n.connections), num(n.new_connections_per_s, 'f2')]),
    `Per node: packets = ${NODE_COLUMNS.packets}; frames = ${NODE_COLUMNS.frames}; bytes = ${NODE_COLUMNS.bytes}. Shares are of what the nodes accepted.`);
}

/** The verdict sim/analysis decided (results saved before verdicts were carried: decided the same way). */
const verdictOf = (s: DistributionStats) => s.verdict ?? decideVerdict(s);
const VERDICT_CLASS = { even: 'ok', traffic: 'warn', configuration: 'bad', 'no-traffic': 'warn' } as const;

function verdictBadge(s: DistributionStats): string {
  const v = verdictOf(s);
  return `<span class="badge ${VERDICT_CLASS[v.kind]}" data-verdict="${esc(v.kind)}">${esc(v.text)}</span>`;
}

function statsTable(id: string, c: ConfigResult): string {
  return table(id,
    [{ label: 'metric' }, { label: 'total' }, { label: 'mean' }, { label: 'max/mean' }, { label: 'min/mean' }, { label: 'CV', title: 'coefficient of variation: stddev / mean' },
      { label: 'Jain', title: "Jain's fairness index, 1/n..1" }, { label: 'chi²' }, { label: 'df' }, { label: 'p-value', title: 'chi-square test against an even spread' },
      { label: 'seeds p95', title: 'max/mean that 95 % of other seeds of this configuration reach on this traffic' },
      { label: 'random p95', title: 'max/mean that pure randomness (every flow hashed on its own) reaches in 95 % of cases' }, { label: 'verdict' }],
    c.stats.map((s) => [s.metric, num(s.total), num(s.mean, 'f2'), num(s.max_over_mean, 'f4'), num(s.min_over_mean, 'f4'), num(s.cv, 'f4'), num(s.jain, 'f4'), num(s.chi2, 'f2'), num(s.chi2_df),
      num(s.p_value, 'sci'), num(s.random_max_over_mean_p95, 'f4'), num(s.independent_max_over_mean_p95, 'f4'), raw(verdictBadge(s))]),
    'Spread statistics');
}

function topSourcesTable(id: string, c: ConfigResult): string {
  const rows: Cell[][] = [];
  for (const n of c.nodes) {
    n.top_sources.forEach((s, i) => rows.push([num(n.node), ...(named(c) ? [n.name ?? ''] : []), num(i + 1), raw(`<span class="mono">${esc(s.addr)}</span>`), num(s.packets), num(s.bytes), num(n.packets > 0 ? s.packets / n.packets : 0, 'pct')]));
  }
  if (!rows.length) return '';
  return `<h3>Heaviest sources per node</h3><p class="note">A single heavy source lands on one node whatever the hash does; if it dominates a node, the skew is in the traffic, not the configuration.</p>` +
    table(id, [{ label: 'node' }, ...(named(c) ? [{ label: 'name' }] : []), { label: 'rank' }, { label: 'source' }, { label: 'packets' }, { label: 'bytes' }, { label: "share of node's packets" }], rows);
}

function selectorItems(c: ConfigResult): [string, Cell][] {
  const items: [string, Cell][] = [['rule', c.selector.description]];
  for (const [k, v] of Object.entries(c.selector.spec)) items.push([k, typeof v === 'number' ? num(v) : String(v)]);
  items.push(['buckets', num(c.selector.buckets)], ['first node/value', num(c.selector.offset)]);
  items.push(['reproducible', c.selector.predictable ? 'yes: bit-exact' : raw('<span class="badge bad">no — the kernel seeds this hash at random (symhash); shares are indicative only</span>')]);
  items.push(['unassigned packets', raw(`no node: <span class="num" data-v="${c.unassigned.no_node}">${esc(fmtNum(c.unassigned.no_node, 'int'))}</span>, unknown (snaplen): <span class="num" data-v="${c.unassigned.unknown}">${esc(fmtNum(c.unassigned.unknown, 'int'))}</span>`)]);
  return items;
}

function comparisonSection(ch: Charts, r: SimulateResult): string {
  const nodeNums = [...new Set(r.configs.flatMap((c) => c.nodes.map((n) => n.node)))].sort((a, b) => a - b);
  const datasets = r.configs.map((c, i) => {
    const tot = c.nodes.reduce((a, n) => a + n.packets, 0);
    return { label: `${c.id}: ${c.selector.description}`, backgroundColor: color(i), data: nodeNums.map((k) => { const n = c.nodes.find((x) => x.node === k); return n && tot > 0 ? (100 * n.packets) / tot : 0; }) };
  });
  const even = nodeNums.length ? 100 / nodeNums.length : 0;
  const chart = ch.canvas('comparison-packet-share', {
    type: 'bar',
    data: { labels: nodeNums.map((k) => `node ${k}`), datasets },
    options: {
      cisValueFormat: 'percent',
      plugins: {
        title: { display: true, text: 'Share of packets per node, configurations side by side', font: { size: 15 } },
        subtitle: { display: true, text: `dashed line: an even spread, ${even.toFixed(1)} % each` },
        legend: { position: 'bottom' },
        cisBand: { lo: even, hi: even, mean: even },
      },
      scales: { x: { title: { display: true, text: 'node' } }, y: { beginAtZero: true, title: { display: true, text: 'share of packets (%)' }, cisFormat: 'percent' } },
    },
  }, 'share of packets per node for each configuration', true);
  const stat = (c: ConfigResult, m: Metric) => c.stats.find((s) => s.metric === m);
  const rows: Cell[][] = r.configs.map((c) => [c.id, c.selector.description, num(c.nodes.length),
    ...(['packets', 'bytes', 'flows'] as Metric[]).flatMap((m) => { const s = stat(c, m); return s ? [num(s.max_over_mean, 'f4'), num(s.random_max_over_mean_p95, 'f4')] : ['', '']; }),
    num(stat(c, 'packets')?.jain ?? NaN, 'f4'), num(c.unassigned.no_node)]);
  return `<h2 id="comparison">Configurations side by side</h2>${chart}` +
    table('comparison', [{ label: 'config' }, { label: 'rule' }, { label: 'nodes' }, { label: 'packets max/mean' }, { label: 'random p95' }, { label: 'bytes max/mean' }, { label: 'random p95' },
      { label: 'flows max/mean' }, { label: 'random p95' }, { label: 'Jain (packets)' }, { label: 'no node' }], rows);
}

function migrationSection(m: Migration, i: number): string {
  const rowTot = m.matrix.map((row) => row.reduce((a, b) => a + b, 0));
  const all = rowTot.reduce((a, b) => a + b, 0);
  const maxCell = Math.max(1, ...m.matrix.flat());
  const head = `<th>old node ↓ / new node →</th>${m.to_nodes.map((n) => `<th>node ${esc(n)}</th>`).join('')}<th>flows</th>`;
  const body = m.matrix.map((row, r) => `<tr><th>node ${esc(m.from_nodes[r])}</th>${row.map((v, c) => {
    const share = rowTot[r]! > 0 ? v / rowTot[r]! : 0;
    const stays = m.from_nodes[r] === m.to_nodes[c];
    const alpha = (0.08 + 0.55 * (v / maxCell)).toFixed(3);
    const bg = stays ? `rgba(89,161,79,${alpha})` : `rgba(225,87,89,${alpha})`;
    return `<td class="num" data-v="${v}" style="background:${bg}" title="${esc(`${fmtNum(share, 'pct1')} of node ${m.from_nodes[r]}'s flows`)}">${esc(fmtNum(v, 'int'))} <small class="sub">(${esc(fmtNum(share, 'pct1'))})</small></td>`;
  }).join('')}<td class="num" data-v="${rowTot[r]}">${esc(fmtNum(rowTot[r]!, 'int'))}</td></tr>`).join('\n');
  const cards = (['flows', 'connections', 'packets', 'bytes'] as const).map((k) => {
    const v = m[`${k}_moved_share`];
    return `<div class="card"><div class="big num" data-v="${v}">${esc(fmtNum(v, 'pct1'))}</div><div class="lbl">of ${k} change node</div></div>`;
  }).join('');
  return `<h3>Migration ${esc(m.from)} → ${esc(m.to)}</h3><div class="cards" id="migration-${i}-shares">${cards}</div>
<p class="note">Flows by old node (rows, under ${esc(m.from)}) and new node (columns, under ${esc(m.to)}); green cells stay, red cells move. Each cell also gives the share of the old node's flows. ${esc(fmtNum(all, 'int'))} flows in all.</p>
<div class="tablewrap"><table id="migration-${i}" class="matrix"><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table></div>`;
}

/** The simulate report: distribution per configuration, comparison and migrations. */
export function renderSimulateHtml(r: SimulateResult): string {
  const ch = new Charts();
  const b: string[] = [];
  const src = r.input.files.length ? r.input.files.map((f) => f.path).join(', ') : r.input.synthetic ? `synthetic scenario ${r.input.synthetic.scenario}` : r.input.kind;
  b.push(`<h1>How traffic spreads over the cluster</h1>${toolLine(r.tool, r.generated_at)}`);
  b.push(`<p class="lead headline" id="headline">${esc(r.headline ?? simulateHeadline(r.configs, r.migrations))}</p>`);
  b.push(`<p class="lead">${esc(fmtNum(r.input.packets, 'int'))} packets from ${esc(src)}, ${r.configs.length} configuration(s).</p>`);
  if (r.gates.length) {
    b.push(table('gates', [{ label: 'gate' }, { label: 'threshold' }, { label: 'value' }, { label: 'result' }],
      r.gates.map((g) => [g.name, num(g.threshold, 'f4'), num(g.value, 'f4'), raw(g.passed ? '<span class="badge ok">passed</span>' : '<span class="badge bad">FAILED</span>')]), 'Validation gates'));
  }
  b.push(`<h2 id="what-ran">What ran</h2>${inputSection(r.input)}${runLine(r.run)}`);
  if (r.configs.length > 1) b.push(comparisonSection(ch, r));
  r.configs.forEach((c, i) => {
    b.push(`<h2 id="config-${i}">Configuration ${esc(c.id)}</h2>${dl(selectorItems(c))}`);
    b.push(factsTable(`config-${i}-facts`, c.selector.facts));
    b.push(`<p class="note">Bars: what each node accepts. Shaded band: where nodes fall under other seeds of this configuration on this traffic (its top edge is the largest node that 95 % of 32 other seeds still reach; the bottom edge mirrors it). "random p95" is the same bound if every flow were hashed on its own: above it but inside the band, the traffic is lumpy; above the band, the seed or configuration is unlucky. Dashed line: the mean.</p>`);
    b.push(`<div class="grid">${(['packets', 'bytes', 'flows'] as Metric[]).map((m) => metricChart(ch, c, m)).join('')}</div>`);
    b.push(nodesTable(`config-${i}-nodes`, c), statsTable(`config-${i}-stats`, c), topSourcesTable(`config-${i}-top`, c));
  });
  if (r.migrations.length) {
    b.push(`<h2 id="migrations">Migration: which flows change node</h2>`);
    r.migrations.forEach((m, i) => b.push(migrationSection(m, i)));
  }
  if (r.mixed) {
    const x = r.mixed;
    b.push(`<h2 id="mixed">Mixed cluster (nodes running different configurations)</h2>` +
      table('mixed-members', [{ label: 'node' }, { label: 'runs configuration' }], x.members.map((m) => [num(m.node), m.config])) +
      table('mixed-totals', [{ label: '' }, { label: 'packets' }, { label: 'flows' }], [
        ['accepted by no node (lost)', num(x.packets_accepted_by_none), num(x.flows_accepted_by_none)],
        ['accepted by several nodes (duplicated)', num(x.packets_accepted_by_several), num(x.flows_accepted_by_several)],
      ]));
  }
  return page({ title: `clusterip-sim: distribution report (${r.generated_at})`, body: b.join('\n'), charts: ch.list, result: r });
}

// ---------------------------------------------------------------- failover

const EVENT_COLOR: Record<FailoverEvent['kind'], string> = {
  crash: '#d62728', leave: '#d62728', partition: '#d62728', 'heartbeat-loss': '#c27c0e', detected: '#c27c0e', takeover: '#8c5ac8', heal: '#2ca02c', rejoin: '#2ca02c', failback: '#2ca02c',
};

/**
 * Timeline series per node. result.ts says "per time bin: packets accepted by
 * each node"; we take per_node[nodeIndex][bin] (one series per node, like
 * lost/duplicated/broken) and also accept the transposed per_node[bin][nodeIndex].
 */
export function timelineSeries(t: FailoverResult['timeline']): number[][] {
  const bins = t.lost.length;
  const nodeMajor = t.per_node.length === t.nodes.length && t.per_node.every((s) => s.length === bins);
  if (nodeMajor) return t.per_node;
  const binMajor = t.per_node.length === bins && t.per_node.every((s) => s.length === t.nodes.length);
  if (binMajor) return t.nodes.map((_, k) => t.per_node.map((row) => row[k]!));
  throw new DataError('timeline.per_node', `expected ${t.nodes.length} series of ${bins} bins (one per node in timeline.nodes), got ${t.per_node.length} rows of ${t.per_node.map((s) => s.length).join('/')} values`);
}

/** One marker per event time; events at the same instant (detected + takeover) share it, so labels do not pile up. */
export function eventMarkers(events: FailoverEvent[]): { x: number; label: string; color: string }[] {
  const out: { x: number; label: string; color: string }[] = [];
  for (const e of events) {
    const label = `${e.kind}${e.node ? ' ' + e.node : ''}`;
    const same = out.find((m) => m.x === e.t);
    if (same) same.label += ` · ${label}`;
    else out.push({ x: e.t, label, color: EVENT_COLOR[e.kind] ?? '#777' });
  }
  return out;
}
/** Room between the subtitle and the plot for EVENT_ROWS rows of event labels (drawn by cisEvents, 15 px each). */
const EVENT_ROWS = 3;
const EVENT_ROOM = { top: 4, bottom: EVENT_ROWS * 15 + 6 };

/** The failover report: per-node load over time with events, losses, broken connections. */
export function renderFailoverHtml(r: FailoverResult): string {
  const ch = new Charts();
  const t = r.timeline;
  const series = timelineSeries(t);
  const xs = t.lost.map((_, i) => +(t.t0 + (i + 0.5) * t.bin_s).toFixed(6));
  const markers = eventMarkers(r.events);
  const xScale = { type: 'linear', min: t.t0, max: t.t0 + t.bin_s * t.lost.length, title: { display: true, text: 'time (s)' }, cisFormat: 'seconds' };
  const binTxt = `${+t.bin_s.toFixed(3)} s`;
  const b: string[] = [];
  b.push(`<h1>Failover: ${esc(r.scenario.name)}</h1>${toolLine(r.tool, r.generated_at)}`);
  const scripted = Array.isArray(r.scenario.events) ? r.scenario.events.length : 0;
  const derived = r.events.length - scripted;
  b.push(`<p class="lead headline" id="headline">${esc(r.headline ?? failoverHeadline(r))}</p>`);
  b.push(`<p class="lead">Policy <b>${esc(r.scenario.policy)}</b>, failback <b>${esc(r.scenario.failback)}</b>, ${t.nodes.length} nodes, ${scripted} scripted event${scripted === 1 ? '' : 's'}${derived > 0 ? ` (${r.events.length} on the timeline with the detections and takeovers they caused)` : ''}.</p>`);
  const card = (id: string, v: number, f: 'int' | 'f2', label: string, bad: boolean) =>
    `<div class="card" id="${id}"><div class="big num ${bad ? 'bad' : 'ok'}" data-v="${v}">${esc(fmtNum(v, f))}${f === 'f2' ? ' s' : ''}</div><div class="lbl">${esc(label)}</div></div>`;
  b.push(`<h2 id="what-ran">What ran</h2>${inputSection(r.input)}`);
  b.push(`<h3>Scenario</h3>${dl([['name', r.scenario.name], ['policy', r.scenario.policy], ['failback', r.scenario.failback],
    ...Object.entries(r.scenario.heartbeat).map(([k, v]): [string, Cell] => [`heartbeat ${k}`, num(v, Number.isInteger(v) ? 'int' : 'f3')])])}`);
  b.push(`<details><summary>Cluster configuration and scripted events (JSON)</summary><pre>${esc(JSON.stringify({ config: r.scenario.config, events: r.scenario.events }, null, 2))}</pre></details>`);
  b.push(runLine(r.run));
  const T = r.totals;
  b.push(`<h2 id="outcome">What happened</h2>`);
  b.push(`<div class="cards" id="totals">${card('total-lost', T.lost_packets, 'int', 'packets lost (no node took them)', T.lost_packets > 0)}${card('total-dup', T.duplicated_packets, 'int', 'packets duplicated (several nodes took them)', T.duplicated_packets > 0)}${card('total-broken', T.broken_connections, 'int', 'connections broken', T.broken_connections > 0)}${card('total-recovery', T.recovery_s, 'f2', 'from first fault to one owner per bucket', T.recovery_s > 0)}</div>`);

  // Load: one point per bin start plus the end of the last bin, drawn as steps so each bin reads as a flat level.
  const starts = [...t.lost.map((_, i) => +(t.t0 + i * t.bin_s).toFixed(6)), +(t.t0 + t.lost.length * t.bin_s).toFixed(6)];
  b.push(ch.canvas('failover-load', {
    type: 'line',
    data: {
      datasets: t.nodes.map((n, k) => ({ label: n, data: starts.map((x, i) => ({ x, y: series[k]![Math.min(i, t.lost.length - 1)]! })), borderColor: color(k), backgroundColor: color(k), pointRadius: 0, borderWidth: 2.5, stepped: 'before' })),
    },
    options: {
      cisValueFormat: 'count',
      interaction: { mode: 'nearest', axis: 'x', intersect: false },
      plugins: {
        title: { display: true, text: 'Load per node over time', font: { size: 15 } },
        subtitle: { display: true, text: `packets each node accepted per ${binTxt}; dashed lines mark the events`, padding: EVENT_ROOM },
        legend: { position: 'bottom' },
        cisEvents: { items: markers, rows: EVENT_ROWS },
      },
      scales: { x: xScale, y: { beginAtZero: true, title: { display: true, text: `packets per ${binTxt}` }, cisFormat: 'count' } },
    },
  }, 'load per node over time with failover events marked', true));

  b.push(`<div class="grid">`);
  b.push(ch.canvas('failover-lost-duplicated', {
    type: 'bar',
    data: {
      datasets: [
        { label: 'lost (no node took them; left axis)', data: xs.map((x, i) => ({ x, y: t.lost[i]! })), backgroundColor: '#e15759' },
        // Its own axis (right): a few duplicated packets next to thousands lost were invisible on one scale.
        { label: 'duplicated (several nodes took them; right axis)', data: xs.map((x, i) => ({ x, y: t.duplicated[i]! })), backgroundColor: '#f28e2b', yAxisID: 'y2' },
      ],
    },
    options: {
      cisValueFormat: 'count',
      interaction: { mode: 'index', intersect: false },
      plugins: {
        title: { display: true, text: 'Lost and duplicated packets over time', font: { size: 15 } },
        subtitle: { display: true, text: `packets per ${binTxt}; ${fmtNum(T.lost_packets, 'int')} lost, ${fmtNum(T.duplicated_packets, 'int')} duplicated in all`, padding: EVENT_ROOM },
        legend: { position: 'bottom' },
        cisEvents: { items: markers, rows: EVENT_ROWS },
      },
      scales: {
        x: { ...xScale, offset: false, grid: { offset: false } },
        y: { beginAtZero: true, suggestedMax: 1, ticks: { precision: 0 }, title: { display: true, text: `lost packets per ${binTxt}` }, cisFormat: 'count' },
        y2: { position: 'right', beginAtZero: true, suggestedMax: 1, ticks: { precision: 0 }, grid: { drawOnChartArea: false }, title: { display: true, text: `duplicated packets per ${binTxt}` }, cisFormat: 'count' },
      },
    },
  }, 'lost and duplicated packets over time', true));
  b.push(ch.canvas('failover-broken', {
    type: 'bar',
    data: { datasets: [{ label: 'connections broken (state lost or moved)', data: xs.map((x, i) => ({ x, y: t.broken[i]! })), backgroundColor: '#8c5ac8' }] },
    options: {
      cisValueFormat: 'count',
      plugins: {
        title: { display: true, text: 'Connections broken over time', font: { size: 15 } },
        subtitle: { display: true, text: `connections per ${binTxt}; ${fmtNum(T.broken_connections, 'int')} in all`, padding: EVENT_ROOM },
        legend: { position: 'bottom' },
        cisEvents: { items: markers, rows: EVENT_ROWS },
      },
      scales: { x: { ...xScale, offset: false, grid: { offset: false } }, y: { beginAtZero: true, title: { display: true, text: `connections per ${binTxt}` }, cisFormat: 'count' } },
    },
  }, 'connections broken over time', true));
  b.push(`</div>`);

  b.push(`<h2 id="events">Events</h2>` + table('events', [{ label: 't (s)' }, { label: 'event' }, { label: 'node' }, { label: 'detail' }],
    r.events.map((e) => [num(e.t, 'f3'), raw(`<span class="badge" style="color:${EVENT_COLOR[e.kind] ?? '#777'}">${esc(e.kind)}</span>`), e.node ?? '', e.detail])));

  if (r.phases.length) {
    const names = t.nodes.length ? t.nodes : [...new Set(r.phases.flatMap((p) => p.per_node.map((x) => x.node)))];
    b.push(`<h2 id="phases">Load before, during and after</h2>`);
    b.push(ch.canvas('failover-phases', {
      type: 'bar',
      data: {
        labels: names,
        datasets: r.phases.map((p, i) => ({ label: `${p.phase} (${seconds(p.from_s)}–${seconds(p.to_s)} s)`, backgroundColor: ['#4e79a7', '#e15759', '#59a14f'][i % 3], data: names.map((n) => 100 * (p.per_node.find((x) => x.node === n)?.share ?? 0)) })),
      },
      options: {
        cisValueFormat: 'percent',
        plugins: { title: { display: true, text: 'Share of packets per node in each phase', font: { size: 15 } }, legend: { position: 'bottom' } },
        scales: { x: { title: { display: true, text: 'node' } }, y: { beginAtZero: true, title: { display: true, text: 'share of packets (%)' }, cisFormat: 'percent' } },
      },
    }, 'share of packets per node before, during and after the fault'));
    const rows: Cell[][] = r.phases.flatMap((p) => p.per_node.map((x) => [p.phase, num(p.from_s, 'f2'), num(p.to_s, 'f2'), x.node, num(x.packets), num(x.bytes), num(x.share, 'pct')]));
    b.push(table('phases', [{ label: 'phase' }, { label: 'from (s)' }, { label: 'to (s)' }, { label: 'node' }, { label: 'packets' }, { label: 'bytes' }, { label: 'share' }], rows));
  }

  if (r.handover) {
    const h = r.handover;
    b.push(`<h2 id="handover">Handover of the voluntary leave</h2><p>The same events and traffic once per order (the scenario's: ${esc(h.mode)}; one kernel update ${esc(String(h.apply_s))} s, one beat delivery ${esc(String(h.delivery_s))} s). release-first: nobody holds the buckets during the gap, their packets are lost and a SYN is retransmitted; add-first: two nodes hold them during the overlap, packets are duplicated and both answer a SYN, so the client resets the connection.</p>` +
      table('handover', [{ label: 'order' }, { label: 'gap (s)' }, { label: 'overlap (s)' }, { label: 'lost packets' }, { label: 'duplicated' }, { label: 'broken connections' }],
        h.per_mode.map((m) => [m.mode, num(m.gap_s, 'f3'), num(m.overlap_s, 'f3'), num(m.lost_packets), num(m.duplicated_packets), num(m.broken_connections)])));
  }
  if (r.compare?.length) {
    b.push(`<h2 id="compare">Policies compared</h2>` + table('compare', [{ label: 'policy' }, { label: 'lost packets' }, { label: 'duplicated' }, { label: 'broken connections' }, { label: 'recovery (s)' }, { label: 'max node share' }],
      r.compare.map((c) => [c.policy, num(c.lost_packets), num(c.duplicated_packets), num(c.broken_connections), num(c.recovery_s, 'f2'), num(c.max_node_share, 'pct')])));
  }

  const tlRows: Cell[][] = xs.map((_, i) => [num(t.t0 + i * t.bin_s, 'f3'), ...series.map((s) => num(s[i]!)), num(t.lost[i]!), num(t.duplicated[i]!), num(t.broken[i]!)]);
  b.push(`<details><summary>Timeline numbers (${xs.length} bins of ${esc(binTxt)})</summary>` +
    table('timeline', [{ label: 'bin start (s)' }, ...t.nodes.map((n) => ({ label: n })), { label: 'lost' }, { label: 'duplicated' }, { label: 'broken' }], tlRows) + '</details>');
  return page({ title: `clusterip-sim: failover report — ${r.scenario.name}`, body: b.join('\n'), charts: ch.list, result: r });
}

// ---------------------------------------------------------------- bench

/** Peer-tool throughputs of a case: `peers: {tool: ops/s}` and any extra `<tool>_ops_per_s` field. */
export function peerThroughputs(c: BenchCase): Record<string, number> {
  const out: Record<string, number> = {};
  const peers = c['peers'];
  if (peers && typeof peers === 'object') for (const [k, v] of Object.entries(peers)) if (typeof v === 'number') out[k] = v;
  for (const [k, v] of Object.entries(c)) {
    const m = /^(.+)_ops_per_s$/.exec(k);
    if (m && k !== 'native_ops_per_s' && typeof v === 'number') out[m[1]!] = v;
  }
  return out;
}

/** The bench report: throughput per suite against the native reference and peer tools. */
export function renderBenchHtml(cases: BenchCase[], meta: BenchMeta = {}): string {
  const ch = new Charts();
  const b: string[] = [];
  const suites = [...new Set(cases.map((c) => c.suite))];
  b.push(`<h1>Benchmarks</h1>${toolLine(meta.tool, meta.generated_at)}`);
  b.push(`<p class="lead">${cases.length} case(s) in ${suites.length} suite(s). Each suite measures our code and its native or peer reference in the same run: on a shared machine only these side-by-side ratios mean anything.</p>`);
  const items: [string, Cell][] = [];
  if (meta.command) items.push(['command', raw(`<code>${esc(meta.command)}</code>`)]);
  if (meta.host) items.push(['machine', meta.host]);
  if (meta.quick !== undefined) items.push(['size', meta.quick ? 'quick (smoke run)' : 'full']);
  if (items.length) b.push(dl(items));
  suites.forEach((s, si_) => {
    const cs = cases.filter((c) => c.suite === s);
    const peerNames = [...new Set(cs.flatMap((c) => Object.keys(peerThroughputs(c))))];
    const hasNative = cs.some((c) => c.native_ops_per_s !== undefined);
    const datasets = [{ label: 'clusterip-sim', backgroundColor: color(0), data: cs.map((c) => c.ops_per_s) }];
    if (hasNative) datasets.push({ label: 'native C reference', backgroundColor: color(1), data: cs.map((c) => c.native_ops_per_s ?? 0) });
    peerNames.forEach((p, i) => datasets.push({ label: p, backgroundColor: color(2 + i), data: cs.map((c) => peerThroughputs(c)[p] ?? 0) }));
    b.push(`<h2 id="suite-${si_}">Suite ${esc(s)}</h2>`);
    b.push(ch.canvas(`bench-${s}`, {
      type: 'bar',
      data: { labels: cs.map((c) => c.case), datasets },
      options: {
        indexAxis: 'y',
        cisValueFormat: 'ops',
        plugins: {
          title: { display: true, text: `Throughput — suite ${s}`, font: { size: 15 } },
          subtitle: { display: true, text: `operations per second, higher is better; measured side by side in one run${hasNative ? '; labels: ours ÷ native C' : ''}` },
          legend: { position: 'bottom' },
          cisBarLabels: hasNative ? { horizontal: true, labels: cs.map((c) => (c.native_ops_per_s ? `×${(c.ops_per_s / c.native_ops_per_s).toFixed(2)}` : null)) } : {},
        },
        scales: { x: { beginAtZero: true, title: { display: true, text: 'operations per second' }, cisFormat: 'ops' }, y: { title: { display: true, text: 'case' } } },
      },
    }, `throughput of suite ${s}`, cs.length > 4));
    b.push(table(`suite-${si_}-cases`, [{ label: 'case' }, { label: 'ops/s' }, { label: 'native ops/s' }, { label: 'ratio', title: 'ops/s ÷ native ops/s (higher is better)' }, { label: 'spread', title: '(max-min)/median of the repeats' },
      ...peerNames.map((p) => ({ label: `${p} ops/s` }))],
    cs.map((c) => [c.case, num(c.ops_per_s), c.native_ops_per_s !== undefined ? num(c.native_ops_per_s) : '', c.ratio !== undefined ? num(c.ratio, 'f3') : '', c.spread !== undefined ? num(c.spread, 'pct1') : '',
      ...peerNames.map((p) => { const v = peerThroughputs(c)[p]; return v !== undefined ? num(v) : ''; })])));
  });
  return page({ title: `clusterip-sim: benchmark report${meta.generated_at ? ` (${meta.generated_at})` : ''}`, body: b.join('\n'), charts: ch.list, result: { kind: 'bench', ...meta, cases } });
}

// ---------------------------------------------------------------- schemes

/** CLUSTERIP-style buckets against Maglev, rendezvous and jump: balance, disruption, speed. */
export function renderSchemesHtml(r: SchemesReport): string {
  const ch = new Charts();
  const b: string[] = [];
  const names = r.schemes.map((x) => x.name);
  b.push(`<h1>Load-sharing schemes compared</h1>${toolLine(r.tool, r.generated_at)}`);
  b.push(`<p class="lead">${r.nodes} nodes; node ${r.fail_node} fails, then returns. ${esc(fmtNum(r.flows, 'int'))} flows, ${esc(fmtNum(r.packets, 'int'))} packets${r.input ? ` (${esc(r.input)})` : ''}.</p>`);
  b.push(ch.canvas('schemes-balance', {
    type: 'bar',
    data: { labels: names, datasets: [
      { label: 'flows, all nodes up', backgroundColor: color(0), data: r.schemes.map((x) => x.balance.flows) },
      { label: 'packets, all nodes up', backgroundColor: color(1), data: r.schemes.map((x) => x.balance.packets) },
      { label: `flows, node ${r.fail_node} failed`, backgroundColor: color(3), data: r.schemes.map((x) => x.balance_after_fail.flows) },
    ] },
    options: {
      plugins: { title: { display: true, text: 'Balance: busiest node ÷ mean', font: { size: 15 } }, subtitle: { display: true, text: '1.00 is perfect; lower is better' }, legend: { position: 'bottom' } },
      // max/mean is 1 at best: an axis from 0 made 1.003 and 1.103 look alike.
      scales: { y: { beginAtZero: false, min: 1, title: { display: true, text: 'max / mean load' } }, x: { title: { display: true, text: 'scheme' } } },
    },
  }, 'balance per scheme'));
  const moved = (k: 'fail' | 'add' | 'return') => r.schemes.map((x) => 100 * (x.disruption[k]?.moved ?? 0));
  const ideal = (k: 'fail' | 'add' | 'return') => r.schemes.map((x) => 100 * (x.disruption[k]?.ideal ?? 0));
  b.push(ch.canvas('schemes-disruption', {
    type: 'bar',
    data: { labels: names, datasets: [
      { label: 'node fails: moved', backgroundColor: color(3), data: moved('fail') },
      { label: 'node fails: minimum', backgroundColor: color(7), data: ideal('fail') },
      { label: 'node added: moved', backgroundColor: color(2), data: moved('add') },
      { label: 'node added: minimum', backgroundColor: color(8), data: ideal('add') },
      { label: 'node returns: moved', backgroundColor: color(4), data: moved('return') },
    ] },
    options: {
      cisValueFormat: 'percent',
      plugins: { title: { display: true, text: 'Disruption: share of flows that change node', font: { size: 15 } }, subtitle: { display: true, text: 'against the minimum any scheme must move; lower is better' }, legend: { position: 'bottom' } },
      scales: { y: { beginAtZero: true, title: { display: true, text: '% of flows' }, cisFormat: 'percent' }, x: { title: { display: true, text: 'scheme' } } },
    },
  }, 'disruption per scheme'));
  b.push(ch.canvas('schemes-speed', {
    type: 'bar',
    data: { labels: names, datasets: [{ label: 'selections per second', backgroundColor: color(0), data: r.schemes.map((x) => x.selections_per_s) }] },
    options: {
      indexAxis: 'y',
      cisValueFormat: 'ops',
      plugins: { title: { display: true, text: 'Speed: selections per second', font: { size: 15 } }, subtitle: { display: true, text: 'one thread; higher is better' }, legend: { display: false } },
      scales: { x: { beginAtZero: true, title: { display: true, text: 'selections per second' }, cisFormat: 'ops' } },
    },
  }, 'speed per scheme'));
  // The terminal's columns, all of them (the report used to leave out "+1 node" and "moved on return").
  b.push(table('schemes', [{ label: 'scheme' }, { label: 'buckets' }, { label: 'max/mean packets' }, { label: 'max/mean bytes' }, { label: 'max/mean flows' }, { label: 'one node down (flows)' }, { label: '+1 node (flows)' },
    { label: 'moved on fail' }, { label: 'minimum' }, { label: 'moved on add' }, { label: 'minimum' }, { label: 'moved on return' }, { label: 'minimum' }, { label: 'selections/s' }],
    r.schemes.map((x) => [x.name, x.buckets === null ? '' : num(x.buckets), num(x.balance.packets, 'f3'), num(x.balance.bytes, 'f3'), num(x.balance.flows, 'f3'), num(x.balance_after_fail.flows, 'f3'),
      x.balance_after_add === null ? '' : num(x.balance_after_add, 'f3'), num(x.disruption.fail.moved, 'pct1'), num(x.disruption.fail.ideal, 'pct1'),
      x.disruption.add ? num(x.disruption.add.moved, 'pct1') : '', x.disruption.add ? num(x.disruption.add.ideal, 'pct1') : '',
      x.disruption.return ? num(x.disruption.return.moved, 'pct1') : '', x.disruption.return ? num(x.disruption.return.ideal, 'pct1') : '', num(x.selections_per_s)])));
  if (r.wins.length) {
    b.push('<h2>Where each scheme wins</h2>');
    b.push(table('schemes-wins', [{ label: 'aspect' }, { label: 'scheme' }, { label: 'why' }], r.wins.map((w) => [w.aspect, w.scheme, w.note])));
  }
  b.push(table('schemes-descriptions', [{ label: 'scheme' }, { label: 'what it is' }], r.schemes.map((x) => [x.name, x.description + (x.notes.length ? ` (${x.notes.join('; ')})` : '')])));
  return page({ title: 'clusterip-sim: load-sharing schemes compared', body: b.join('\n'), charts: ch.list, result: r });
}

// ---------------------------------------------------------------- dispatch

/**
 * Renders any saved result by its `kind`. Throws DataError naming the field
 * when the JSON is not a result we know.
 */
export function renderReport(json: unknown): string {
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new DataError('$', 'expected a JSON object with "kind": "simulate", "failover" or "bench"');
  const o = json as Record<string, unknown>;
  const need = (field: string, ok: boolean, what: string) => { if (!ok) throw new DataError(`$.${field}`, `${what} (kind ${String(o.kind)})`); };
  switch (o.kind) {
    case 'simulate':
      need('configs', Array.isArray(o.configs), 'expected an array of configurations');
      need('input', !!o.input && typeof o.input === 'object', 'expected the input summary');
      return renderSimulateHtml(json as SimulateResult);
    case 'failover':
      need('timeline', !!o.timeline && typeof o.timeline === 'object', 'expected the timeline object');
      need('events', Array.isArray(o.events), 'expected an array of events');
      return renderFailoverHtml(json as FailoverResult);
    case 'bench': {
      need('cases', Array.isArray(o.cases), 'expected an array of bench cases');
      const { cases, kind: _k, ...meta } = o as BenchReport;
      return renderBenchHtml(cases, meta);
    }
    case 'schemes':
      need('schemes', Array.isArray(o.schemes), 'expected an array of schemes');
      return renderSchemesHtml(json as SchemesReport);
    case 'recommend':
      need('candidates', Array.isArray(o.candidates), 'expected an array of candidates');
      return renderRecommendHtml(json as RecommendResult);
    default:
      throw new DataError('$.kind', `unknown report kind ${JSON.stringify(o.kind)}; expected "simulate", "failover", "bench", "schemes" or "recommend"`);
  }
}
