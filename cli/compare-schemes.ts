/**
 * `clusterip-sim compare-schemes`: the kernel's bucket hashing (CLUSTERIP,
 * xt_cluster, nft jhash; N buckets or M > N) against Maglev, rendezvous and
 * jump consistent hashing over the same traffic: balance, disruption when a
 * node fails, is added or returns, and speed.
 */
import { writeReport } from '../reports/write.ts';
import { SCHEMA_VERSION, TOOL } from '../sim/core/version.ts';
import { Command, Option } from 'commander';
import { DataError, UsageError } from '../sim/core/errors.ts';
import { existsSync } from 'node:fs';
import { openCapture } from '../sim/traffic/capture.ts';
import { createBatch } from '../sim/traffic/batch.ts';
import { collectFlows } from '../sim/schemes/flows.ts';
import { syntheticBatches } from '../sim/traffic/synthetic.ts';
import { allSchemes, compareSchemes, type CompareResult } from '../sim/schemes/compare.ts';
import { readCsvTuples } from '../sim/traffic/csv-tuples.ts';
import type { TupleBatch } from '../sim/traffic/batch.ts';

/** Synthetic scenarios this command knows (sim/traffic/synthetic.ts: the mix of flows to three VIPs). */
export const SYNTHETIC_SCENARIOS = ['mix'] as const;

interface Flags {
  synthetic?: string;
  pcap?: string;
  input?: string;
  flows: string;
  seed: string;
  nodes: string;
  failNode: string;
  schemes?: string;
  speedSeconds: string;
  json?: boolean;
  report?: string;
  png?: string;
}

function int(v: string, flag: string, lo: number, hi: number): number {
  if (!/^\d+$/.test(v) || Number(v) < lo || Number(v) > hi) throw new UsageError(`${flag}: '${v}' is not a whole number in ${lo}-${hi}`);
  return Number(v);
}

/** The input as a stream of batches: pluggable, any source of TupleBatches will do. */
export function openCompareInput(o: Flags): { source: Iterable<TupleBatch> | AsyncIterable<TupleBatch>; label: string } {
  const given = [o.synthetic !== undefined, o.pcap !== undefined, o.input !== undefined].filter(Boolean).length;
  if (given > 1) throw new UsageError('give one input: --synthetic NAME, --pcap FILE or --input tuples.csv');
  if (o.pcap !== undefined) {
    const path = o.pcap;
    if (path !== '-' && !existsSync(path)) throw new DataError(path, 'no such file (--pcap)');
    return {
      label: `capture ${path === '-' ? 'stdin' : path}`,
      // The reader every command uses (pcap, pcapng, .gz); one reused batch, consumed before the next fill.
      source: (function* () {
        const src = openCapture(path);
        const b = createBatch(65536);
        try {
          while (src.fill(b) > 0) yield b;
        } finally {
          src.close();
        }
      })(),
    };
  }
  if (o.input !== undefined) {
    const path = o.input;
    return {
      label: `tuples from ${path === '-' ? 'stdin' : path}`,
      source: (async function* () { for await (const { batch } of readCsvTuples(path)) yield batch; })(),
    };
  }
  const name = o.synthetic ?? 'mix';
  if (!(SYNTHETIC_SCENARIOS as readonly string[]).includes(name)) throw new UsageError(`--synthetic: '${name}' is not one of ${SYNTHETIC_SCENARIOS.join(', ')}`);
  const flows = int(o.flows, '--flows', 1, 50_000_000);
  const seed = int(o.seed, '--seed', 0, 0xffffffff);
  return { label: `synthetic '${name}': ${flows} flows, seed ${seed} (80 % TCP, 17 % UDP, 2 % ICMP, 1 % ESP; Pareto flow sizes)`, source: syntheticBatches('mix', { flows, seed }) };
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
const r3 = (x: number | null): string => (x === null ? '-' : x.toFixed(3));

/** The human-readable table. */
export function formatCompare(r: CompareResult, label: string): string {
  const lines: string[] = [];
  lines.push(`input: ${label}`);
  lines.push(`${r.flows} flows, ${r.packets} packets, ${r.bytes} bytes over ${r.nodes} nodes; node ${r.fail_node} fails and returns, node ${r.nodes + 1} is added`);
  lines.push('');
  lines.push('                 balance max/mean (1 = even)        | flows moved (ideal = least possible)            | speed');
  lines.push(`${'scheme'.padEnd(15)}  pkts   bytes  flows  1down  +1node | fail           add            return         | Msel/s`);
  for (const s of r.schemes) {
    const d = s.disruption;
    const mv = (x: { moved: number; ideal: number } | null): string => (x ? `${pct(x.moved)} (${pct(x.ideal)})`.padEnd(15) : '-'.padEnd(15));
    lines.push(`${s.name.padEnd(15)} ${r3(s.balance.packets).padStart(5)}  ${r3(s.balance.bytes).padStart(5)}  ${r3(s.balance.flows).padStart(5)}  ${r3(s.balance_after_fail.flows).padStart(5)}  ${r3(s.balance_after_add).padStart(5)}  | ${mv(d.fail)}${mv(d.add)}${mv(d.return)}| ${(s.selections_per_s > 0 ? (s.selections_per_s / 1e6).toFixed(1) : '-').padStart(6)}`);
  }
  lines.push('');
  for (const s of r.schemes) {
    const extra = [s.unassigned_flows ? `${s.unassigned_flows} flows get no node` : '', ...s.notes].filter(Boolean);
    lines.push(`  ${s.name}: ${s.description}${extra.length ? ` [${extra.join('; ')}]` : ''}`);
  }
  lines.push('');
  lines.push('where each scheme wins:');
  for (const w of r.wins) lines.push(`  ${w.aspect.padEnd(28)} ${w.scheme}  (${w.note}: ${w.aspect === 'speed' ? `${(w.value / 1e6).toFixed(1)} M/s` : w.value.toFixed(4)})`);
  lines.push('');
  lines.push('Kernel bucket schemes run inside netfilter with no balancer; Maglev, rendezvous and jump need an');
  lines.push('external balancer (or eBPF) in front. One bucket per node sends a failed node\'s whole share to one survivor');
  lines.push('and re-hashes everything when a node is added; M > N buckets fix both at the price of M owner entries.');
  return lines.join('\n') + '\n';
}

export function registerCompareSchemes(program: Command): void {
  program
    .command('compare-schemes')
    .description('compare CLUSTERIP/xt_cluster/nft bucket hashing with Maglev, rendezvous and jump hashing: balance, disruption, speed')
    .option('--synthetic <name>', `built-in traffic (${SYNTHETIC_SCENARIOS.join(', ')}; the default)`)
    .option('-r, --pcap <file>', 'a capture (pcap, pcapng, .gz): its flows, as the other commands read them')
    .option('--input <csv>', "tuples as CSV 'proto,saddr,sport,daddr,dport' (one packet each; '-' = stdin)")
    .option('--flows <n>', 'flows of the synthetic traffic', '100000')
    .option('--seed <n>', 'seed of the synthetic traffic', '1')
    .option('--nodes <n>', 'cluster size N', '4')
    .option('--fail-node <k>', 'the node (1..N) that fails and returns', '1')
    .option('--schemes <list>', `comma-separated subset of: ${allSchemes().map((s) => s.name).join(', ')}`)
    .addOption(new Option('--speed-seconds <s>', 'timing per scheme; 0 skips it').default('0.2'))
    .option('--json', 'one JSON document with every number')
    .option('--report <out.html>', 'write a self-contained HTML report (balance, disruption, speed charts)')
    .option('--png <dir>', 'also render its charts as PNG files into DIR (headless Chromium)')
    .addHelpText('after', `
Disruption is the share of flows that change node; "ideal" is the least any scheme must move
(the failed node's flows; the flows the new node takes; the flows the returning node takes back).

Examples:
  clusterip-sim compare-schemes                              4 nodes, 100k synthetic flows
  clusterip-sim compare-schemes --nodes 8 --flows 500000 --json > schemes.json
  clusterip-sim compare-schemes --input tuples.csv --nodes 3 --schemes clusterip,clusterip-16,maglev`)
    .action(async (o: Flags) => {
      const nodes = int(o.nodes, '--nodes', 2, 1024);
      const failNode = int(o.failNode, '--fail-node', 1, nodes);
      const speedSeconds = Number(o.speedSeconds);
      if (!Number.isFinite(speedSeconds) || speedSeconds < 0 || speedSeconds > 60) throw new UsageError(`--speed-seconds: '${o.speedSeconds}' is not a number of seconds in 0-60`);
      let schemes = allSchemes();
      if (o.schemes !== undefined) {
        const want = o.schemes.split(',').map((x) => x.trim()).filter(Boolean);
        const unknown = want.filter((w) => !schemes.some((s) => s.name === w));
        if (unknown.length || !want.length) throw new UsageError(`--schemes: unknown '${unknown.join(', ')}'; choose from ${schemes.map((s) => s.name).join(', ')}`);
        schemes = schemes.filter((s) => want.includes(s.name));
      }
      const { source, label } = openCompareInput(o);
      const tty = process.stderr.isTTY && !o.json;
      if (tty) process.stderr.write('reading flows...\r');
      const fs = await collectFlows(source);
      if (fs.flows.count === 0) throw new UsageError('the input has no packets');
      if (tty) process.stderr.write(`comparing ${schemes.length} schemes over ${fs.flows.count} flows...\r`);
      const r = compareSchemes(fs, { nodes, failNode, schemes, speedSeconds });
      if (tty) process.stderr.write(' '.repeat(60) + '\r');
      if (!r.schemes.length) throw new UsageError(`none of the chosen schemes can run ${nodes} nodes`);
      const doc = { kind: 'schemes' as const, schema_version: SCHEMA_VERSION, input: label, tool: TOOL, generated_at: new Date().toISOString(), ...r };
      process.stdout.write(o.json ? JSON.stringify(doc, null, 2) + '\n' : formatCompare(r, label));
      if (o.report || o.png) {
        const w = await writeReport(doc, o.report ?? 'clusterip-sim-schemes.html', o.png);
        process.stderr.write(`report: ${w.html}${w.pngs.length ? ` and ${w.pngs.length} PNG charts in ${o.png}` : ''}\n`);
      }
    });
}
