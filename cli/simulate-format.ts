/** The terminal view of a simulate result: the quick look (the HTML report is the shareable one). */
import { worthANote } from '../sim/select/profile.ts';
import type { ConfigResult, DistributionStats, SimulateResult } from '../sim/core/result.ts';
import { decideVerdict, simulateHeadline } from '../sim/analysis/verdict.ts';
import { fmtBytes as bytes, fmtNum } from '../reports/format.ts';

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
const share = (x: number): string => (x < 0.01 ? `${(x * 100).toFixed(2)}%` : pct(x));
const int = (x: number): string => fmtNum(x, 'int');
function table(rows: string[][], right: boolean[]): string {
  const w = rows[0]!.map((_, j) => Math.max(...rows.map((r) => r[j]!.length)));
  return rows.map((r) => '  ' + r.map((c, j) => (right[j] ? c.padStart(w[j]!) : c.padEnd(w[j]!))).join('  ').trimEnd()).join('\n') + '\n';
}

/** The verdict's sentence as sim/analysis decided it (results saved before verdicts were carried: decided the same way). */
const verdict = (s: DistributionStats): string => (s.verdict ?? decideVerdict(s)).text;

function config(c: ConfigResult): string {
  const st = (m: string): DistributionStats => c.stats.find((s) => s.metric === m)!;
  const tp = st('packets').total || 1, tb = st('bytes').total || 1, tf = st('flows').total || 1;
  // frames differ from packets only where fragments were reassembled: shown then.
  const framesCol = c.nodes.some((n) => n.frames !== n.packets);
  const rows: string[][] = [['node', 'name', 'packets', 'share', 'frames', 'bytes', 'share', 'flows', 'share', 'conns', 'new/s', 'heaviest source']];
  for (const n of c.nodes) {
    const top = n.top_sources[0];
    rows.push([String(n.node), n.name ?? '', int(n.packets), pct(n.packets / tp), int(n.frames), bytes(n.bytes), pct(n.bytes / tb), int(n.flows), pct(n.flows / tf), int(n.connections), n.new_connections_per_s.toFixed(1), top ? `${top.addr} (${int(top.packets)} pkts, ${share(top.packets / (n.packets || 1))})` : '']);
  }
  const hasNames = c.nodes.some((n) => n.name);
  const shown = rows.map((r) => r.filter((_, j) => (j !== 1 || hasNames) && (j !== 4 || framesCol)));
  const right = shown[0]!.map((h) => !['name', 'heaviest source'].includes(h));
  let s = `${c.id}: ${c.selector.description}\n`;
  const soft = c.selector.facts.filter((f) => worthANote(f) && f.scope !== 'ipv6');
  for (const f of soft) s += `  note: [${f.evidence}] ${f.topic}: ${f.note}\n`;
  s += table(shown, right);
  s += '  spread       max/mean  min/mean     CV   Jain   chi2 p  seeds p95  random p95  verdict\n';
  for (const x of c.stats) {
    s += `  ${x.metric.padEnd(11)} ${x.max_over_mean.toFixed(3).padStart(8)}  ${x.min_over_mean.toFixed(3).padStart(8)}  ${x.cv.toFixed(3).padStart(5)}  ${x.jain.toFixed(3)}  ${x.p_value.toExponential(1).padStart(7)}  ${x.random_max_over_mean_p95.toFixed(3).padStart(9)}  ${x.independent_max_over_mean_p95.toFixed(3).padStart(10)}  ${verdict(x)}\n`;
  }
  if (c.unassigned.no_node || c.unassigned.unknown) {
    s += `  unassigned: ${int(c.unassigned.no_node)} packets accepted by no node (no rule fires / no conntrack), ${int(c.unassigned.unknown)} unknown (capture cut the bytes the kernel hashes)\n`;
  }
  return s;
}

export function formatSimulate(r: SimulateResult): string {
  const i = r.input;
  const flows = r.configs[0]?.stats.find((s) => s.metric === 'flows')?.total ?? 0;
  let s = `${r.headline ?? simulateHeadline(r.configs, r.migrations)}\n\n`;
  s += `input: ${i.kind === 'synthetic' ? `synthetic '${i.synthetic?.scenario}' (seed ${i.synthetic?.seed})` : i.files.map((f) => f.path).join(', ')}: ${int(i.packets)} packets, ${bytes(i.bytes)}, ${int(flows)} flows over ${i.duration_s.toFixed(1)} s\n`;
  const sk = Object.entries(i.skipped).filter(([, v]) => v > 0);
  if (sk.length) s += `  not analysed: ${sk.map(([k, v]) => `${int(v)} ${k}`).join(', ')}\n`;
  s += '\n';
  for (const c of r.configs) s += config(c) + '\n';
  for (const m of r.migrations) {
    s += `migration ${m.from} -> ${m.to}: ${pct(m.flows_moved_share)} of flows, ${pct(m.connections_moved_share)} of connections, ${pct(m.packets_moved_share)} of packets and ${pct(m.bytes_moved_share)} of bytes change node\n`;
  }
  if (r.mixed) {
    s += `mixed cluster (${r.mixed.members.map((x) => `node ${x.node}: ${x.config}`).join(', ')}): ${int(r.mixed.packets_accepted_by_none)} packets (${int(r.mixed.flows_accepted_by_none)} flows) accepted by no node (lost), ${int(r.mixed.packets_accepted_by_several)} packets (${int(r.mixed.flows_accepted_by_several)} flows) by several (duplicated)\n`;
  }
  for (const g of r.gates) s += `gate ${g.name}: ${g.value.toFixed(4)} (threshold ${g.threshold}) ${g.passed ? 'ok' : 'FAILED'}\n`;
  s += `\n${int(i.packets)} packets in ${r.run.elapsed_s.toFixed(2)} s (${int(r.run.packets_per_s)} packets/s) ${r.run.workers === 0 ? 'in-process' : `on ${r.run.workers} worker${r.run.workers === 1 ? '' : 's'}`}, peak memory ${bytes(r.run.peak_rss_bytes)}\n`;
  return s;
}
