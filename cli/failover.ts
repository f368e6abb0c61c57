/**
 * `clusterip-sim failover`: what a node failure, a voluntary leave, a
 * partition or a rejoin does to packets and connections, before it happens.
 */
import { existsSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { writeReport } from '../reports/write.ts';
import { runFailoverParallel, firstTimestamp } from '../sim/engine/failover-run.ts';
import { failoverHeadline } from '../sim/analysis/verdict.ts';
import { chooseWorkers, defaultWorkers } from '../sim/engine/run.ts';
import { Progress } from './progress.ts';
import type { InputSpec } from '../sim/engine/task.ts';
import { DataError, UsageError } from '../sim/core/errors.ts';
import { workerCount } from './workers.ts';
import { buildSelector } from '../sim/select/build.ts';
import { selectorSpecOf } from '../sim/select/from-config.ts';
import { parseClusterIp } from '../sim/engine/cluster-filter.ts';
import { refuseSyntheticToV6 } from './simulate.ts';
import type { FailoverResult } from '../sim/core/result.ts';
import { builtinScenario, loadScenario, type Scenario } from '../sim/cluster/scenario.ts';
import { SCENARIOS } from '../sim/traffic/synthetic.ts';
import { orphanGrace, safetyNetActs } from '../sim/cluster/handover.ts';

/** The scenario shown in --help (a test parses it, so the help stays true). */
export const EXAMPLE_SCENARIO = `name: node2 crashes
cluster: cluster.yaml                 # path relative to the scenario, or the config inline
heartbeat: { interval_s: 1, dead_after: 3, takeover_delay_s: 0.5, jitter_s: 0.02, seed: 1, apply_s: 0.02 }
handover: release-first               # a leave's order: release-first (gap) | add-first (overlap); default: the config's
policy: lowest                        # lowest | least-loaded | spread | backup (with backup: {node2: [node3]})
failback: immediate                   # immediate | stable (stable_s: 10) | manual (events: - {at: 50s, failback: node2})
conntrack: { state_sync: false, tcp_loose: true }
traffic: { flows: 2000, duration_s: 60, seed: 1 }
events:
  - { at: 12.5s, crash: node2 }       # also: leave, rejoin: NODE; partition: [[node1, node2], [node3]];
  - { at: 30s, rejoin: node2 }        #       heal: true; heartbeat-loss: {from: node1, to: node2, for: 5s}`;

interface FailoverFlags {
  scenario?: string;
  json?: boolean;
  comparePolicies?: boolean;
  report?: string;
  flows?: string;
  seed?: string;
  pcap?: string;
  synthetic?: string;
  packets?: string;
  workers?: string;
  png?: string;
  lenient?: boolean;
}

const posInt = (v: string | undefined, flag: string): number | undefined => {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`${flag}: '${v}' is not a positive whole number`);
  return Number(v);
};

export function registerFailover(program: Command): void {
  program
    .command('failover')
    .description(
      'Runs traffic through a failover scenario: the nodes heartbeat, detect a dead peer after dead-after missed beats, ' +
        'and take its buckets over by a policy (lowest node, least-loaded, spread, static backup); a rejoining node gets them back by ' +
        'the failback mode. Each packet is accepted by one node, by none (lost) or by several (duplicated, split brain); a TCP connection ' +
        'whose packets move to a node without its conntrack entry is reset (broken) unless conntrack state is synchronised. ' +
        'With no --scenario, runs a built-in one (4 nodes, node2 crashes at 20 s and rejoins at 40 s) and says so.',
    )
    .option('--scenario <file>', 'scenario YAML: cluster config, heartbeat, policy, failback, conntrack, events')
    .option('--json', 'print the result as JSON (lost_packets, duplicated_packets, broken_connections, recovery_s, per-node load per phase, timeline)')
    .option('--compare-policies', 'also run every other takeover policy on the same traffic and say which did best')
    .option('-r, --pcap <file>', 'replay this capture through the scenario (scenario time 0 = its first packet)')
    .option('--synthetic <scenario>', `synthetic traffic instead of the scenario's own flows: ${Object.keys(SCENARIOS).join(', ')}`)
    .option('--packets <n>', 'packets of --synthetic traffic', '200000')
    .option('--workers <n>', 'worker threads (0 = in-process; default: chosen from the input\'s size, in-process under 500,000 packets, else one per CPU); connections are dealt to workers whole')
    .option('--lenient', 'skip malformed capture records (counted) instead of stopping')
    .option('--report <out.html>', 'write a self-contained HTML report: load per node over time with the events, lost/duplicated packets, broken connections')
    .option('--png <dir>', 'also render each chart as a PNG into DIR (headless Chromium)')
    .option('--flows <n>', 'flows for the built-in traffic generator (default: the scenario\'s traffic.flows, or 2000)')
    .option('--seed <n>', 'seed for the built-in traffic generator')
    .addHelpText(
      'after',
      `
Examples:
  clusterip-sim failover                                   the built-in scenario, human summary
  clusterip-sim failover --scenario crash.yaml --compare-policies
  clusterip-sim failover --scenario crash.yaml --json | jq .totals

A scenario:
${EXAMPLE_SCENARIO.replace(/^/gm, '  ')}

Timing: beats at k x interval; an event at t acts right after the beat at t, so a crash at 10 s with a 1 s
interval and dead_after 3 is detected at 13 s (+ jitter) and taken over at 13 s + takeover_delay_s.
A leave is the agent's planned handover: release-first, the leaver releases when the new owner's next beat
arrives, the new owner adds one delivery (jitter_s / 2) + one kernel update (apply_s) later (a gap);
add-first, the new owner adds first (an overlap of the same length). With a leave, the result also gives
each order's cost on the same traffic (terminal, --json .handover, --report).`,
    )
    .action(async (o: FailoverFlags) => {
      const builtin = o.scenario === undefined;
      const sc: Scenario = builtin ? builtinScenario() : loadScenario(o.scenario!);
      const err = (s: string): void => void process.stderr.write(s);
      if (builtin) err('note: no --scenario given: running the built-in scenario (4 nodes, node2 crashes at 20 s and rejoins at 40 s)\n');
      const tp = { flows: 2000, duration_s: 60, seed: 1, tcp_share: 0.8, ...sc.traffic };
      tp.flows = posInt(o.flows, '--flows') ?? tp.flows;
      if (o.seed !== undefined) {
        if (!/^\d+$/.test(o.seed)) throw new UsageError(`--seed: '${o.seed}' is not a whole number`);
        tp.seed = Number(o.seed);
      }
      if (o.pcap !== undefined && o.synthetic !== undefined) throw new UsageError('give --pcap or --synthetic, not both');
      const cluster = parseClusterIp(sc.config.cluster.ip);
      if (cluster === null) throw new UsageError(`cluster.ip: '${sc.config.cluster.ip}' is not an IPv4 or IPv6 address`);
      if (o.pcap === undefined) refuseSyntheticToV6(cluster, sc.config.cluster.ip);
      const server = typeof cluster === 'number' ? cluster : 0;
      let input: InputSpec;
      let summary: Parameters<typeof runFailoverParallel>[1]['summary'];
      let t0 = 0;
      if (o.pcap !== undefined) {
        if (!existsSync(o.pcap)) throw new DataError(o.pcap, 'no such file (--pcap)');
        input = { kind: 'pcap', path: o.pcap, lenient: !!o.lenient };
        summary = { kind: 'pcap', files: [{ path: o.pcap, bytes: statSync(o.pcap).size, sha256: '' }], skipped: {} };
        t0 = firstTimestamp(input);
      } else if (o.synthetic !== undefined) {
        const packets = posInt(o.packets, '--packets')!;
        input = { kind: 'synthetic', name: o.synthetic, seed: tp.seed, packets };
        summary = { kind: 'synthetic', files: [], synthetic: { scenario: o.synthetic, seed: tp.seed, params: { packets } }, skipped: {} };
        t0 = firstTimestamp(input);
      } else {
        const { seed, ...params } = tp;
        input = { kind: 'synthetic', name: 'steady', seed, params: { ...params, server } };
        summary = { kind: 'synthetic', files: [], synthetic: { scenario: 'failover-flows', seed: tp.seed, params: { ...tp } }, skipped: {} };
      }
      const chosen = o.workers === undefined ? chooseWorkers([input]) : null;
      const workers = chosen ? chosen.workers : workerCount(o.workers, defaultWorkers, (l) => void process.stderr.write(l));
      if (chosen) err(`failover: ${workers === 0 ? 'running in-process (no worker threads)' : `${workers} worker threads`}, chosen from the input's size (about ${Number(chosen.packets.toPrecision(2)).toLocaleString('en-US')} packets); --workers N to choose\n`);
      // Percentage and ETA against the input's estimated size (the same estimate that chooses the workers; marked ~).
      const progress = new Progress(process.stderr, process.stderr.isTTY ? (chosen ?? chooseWorkers([input])).packets : 0, true);
      const result = await runFailoverParallel(sc, { input, summary, workers, comparePolicies: o.comparePolicies, t0, onProgress: (done) => progress.update(done) });
      progress.done();
      if (sc.events.some((e) => e.kind === 'leave') && safetyNetActs({ apply_s: sc.heartbeat.apply_s, delivery_s: sc.heartbeat.jitter_s / 2, grace_s: orphanGrace(sc.heartbeat.takeover_delay_s, sc.heartbeat.interval_s) })) {
        const w = `heartbeat.apply_s ${sc.heartbeat.apply_s} s is longer than the agent's orphan grace (takeover_delay_s + 2 x interval_s = ${orphanGrace(sc.heartbeat.takeover_delay_s, sc.heartbeat.interval_s)} s): a real agent's safety net would claim buckets during a release-first gap, which this model does not simulate`;
        result.warnings = [...(result.warnings ?? []), w];
        err(`warning: ${w}\n`);
      }
      const late = lateEvents(result);
      if (late) {
        result.warnings = [...(result.warnings ?? []), late];
        err(`warning: ${late}\n`);
      }
      result.headline = failoverHeadline(result);
      if (o.report !== undefined || o.png !== undefined) {
        const w = await writeReport(result, o.report ?? 'clusterip-sim-failover.html', o.png);
        err(`report: ${w.html}${w.pngs.length ? ` and ${w.pngs.length} PNG charts in ${o.png}` : ''}\n`);
      }
      if (o.json) {
        process.stdout.write(JSON.stringify(result, null, 2) + '\n');
        return;
      }
      process.stdout.write(formatFailover(result, sc, builtin));
    });
}

/** Scripted events a run's traffic never reaches: a "0 lost" then says nothing, and the user must hear why. */
const SCRIPTED: FailoverResult['events'][number]['kind'][] = ['crash', 'leave', 'partition', 'heartbeat-loss', 'rejoin', 'heal'];
export function lateEvents(r: FailoverResult): string | null {
  const end = r.input.duration_s;
  const late = [...new Set(r.events.filter((e) => SCRIPTED.includes(e.kind) && e.t > end).map((e) => e.t))];
  const faults = r.events.filter((e) => SCRIPTED.includes(e.kind));
  if (!late.length || !faults.length) return null;
  const all = late.length === new Set(faults.map((e) => e.t)).size;
  return `the traffic ends at ${end.toFixed(1)} s but ${all ? 'every scripted event' : 'scripted events'} at ${late.map((t) => `${+t.toFixed(2)} s`).join(', ')} ${all ? 'comes' : 'come'} after it: no packet meets ${all ? 'them' : 'those'}, so their losses show as 0. Give more traffic (--packets, --flows, a longer capture) or move the events.`;
}

const f3 = (x: number): string => x.toFixed(3);
const pct = (a: number, b: number): string => (b ? `${((100 * a) / b).toFixed(1)}%` : '-');

/** The human summary: timeline, invariant windows, totals, load per phase, policy comparison. */
export function formatFailover(r: FailoverResult, sc: Scenario, builtin: boolean): string {
  const sel = buildSelector(selectorSpecOf(sc.config));
  const hb = sc.heartbeat;
  const L: string[] = [];
  L.push(r.headline ?? failoverHeadline(r), '');
  L.push(`Scenario: ${r.scenario.name}${builtin ? '  (built-in: no --scenario given)' : ''}`);
  L.push(`Cluster:  ${sel.description}; ${sc.config.nodes.map((n) => `${n.name} owns ${n.owns.join(',') || 'nothing'}`).join(', ')}`);
  L.push(`Policy:   ${sc.policy.policy}, failback ${sc.policy.failback}${sc.policy.failback === 'stable' ? ` after ${sc.policy.stable_s} s` : ''}; heartbeat every ${hb.interval_s} s, dead after ${hb.dead_after} missed, takeover delay ${hb.takeover_delay_s} s, jitter ${hb.jitter_s} s`);
  L.push(`Conntrack: ${sc.conntrack.state_sync ? 'state synchronised (conntrackd-style): moved TCP connections survive' : 'no state sync: TCP connections that move are reset'}; nf_conntrack_tcp_loose=${sc.conntrack.tcp_loose ? 1 : 0}`);
  const syn = r.input.synthetic;
  // Synthetic traffic is sized in flows (the failover generator) or in packets (--synthetic): say which ("undefined flows" before).
  const size = syn ? (syn.params.flows !== undefined ? `${String(syn.params.flows)} flows` : `'${syn.scenario}', ${String(syn.params.packets)} packets`) : '';
  L.push(`Traffic:  ${r.input.kind}${syn ? ` (${size}, seed ${syn.seed})` : ''}: ${r.input.packets} packets over ${r.input.duration_s.toFixed(1)} s`);
  L.push('', 'Timeline');
  for (const g of groupDetections(r.events)) L.push(`  ${g.when.padStart(10)}  ${g.kind.padEnd(14)} ${g.detail}`);
  if (r.windows?.length) {
    L.push('', 'Ownership invariant (every bucket owned by exactly one live node) broken:');
    for (const w of r.windows) {
      const what = [w.orphaned.length ? `orphaned ${w.orphaned.join(',')} (packets lost)` : '', w.doubled.length ? `doubly owned ${w.doubled.join(',')} (packets duplicated)` : ''].filter(Boolean).join('; ');
      L.push(`  ${f3(w.from_s).padStart(10)} - ${w.to_s === null ? 'end'.padStart(10) : f3(w.to_s).padStart(10)}  ${what}`);
    }
  }
  const t = r.totals;
  L.push('', 'Totals');
  L.push(`  lost packets        ${t.lost_packets} (${pct(t.lost_packets, r.input.packets)} of all packets)`);
  L.push(`  duplicated packets  ${t.duplicated_packets}`);
  L.push(`  broken connections  ${t.broken_connections} of ${t.connections ?? '?'} TCP connections${t.after_break_packets ? ` (${t.after_break_packets} later packets of theirs never answered)` : ''}`);
  L.push(`  recovery            ${t.recovered === false ? `not recovered by the end (${f3(t.recovery_s)} s and counting)` : `${f3(t.recovery_s)} s from the first fault until every bucket had exactly one live owner`}`);
  if (t.invalid_packets) L.push(`  conntrack-INVALID   ${t.invalid_packets} packets, dropped by every node anyway`);
  if (t.no_node_packets) L.push(`  no rule matches     ${t.no_node_packets} packets`);
  if (t.unknown_packets) L.push(`  bucket unknown      ${t.unknown_packets} packets (the capture cut the bytes the kernel hashed)`);
  L.push('', 'Load per node (packets accepted, share of the phase, packet rate relative to before)');
  const cols = r.phases.map((p) => `${p.phase} ${p.from_s.toFixed(1)}-${p.to_s.toFixed(1)} s`);
  L.push(`  ${'node'.padEnd(10)}${cols.map((c) => c.padStart(28)).join('')}`);
  r.timeline.nodes.forEach((name, x) => {
    const base = r.phases[0]!.per_node[x]!.packets_per_s ?? 0;
    const cells = r.phases.map((p, ph) => {
      const n = p.per_node[x]!;
      const rel = ph > 0 && base > 0 && p.to_s > p.from_s ? ` x${((n.packets_per_s ?? 0) / base).toFixed(2)}` : '      ';
      return `${n.packets} ${(100 * n.share).toFixed(1).padStart(5)}%${rel}`;
    });
    L.push(`  ${name.padEnd(10)}${cells.map((c) => c.padStart(28)).join('')}`);
  });
  if (r.handover) {
    const h = r.handover;
    L.push('', `Handover of the voluntary leave (scenario: ${h.mode}; one kernel update ${h.apply_s} s, one beat delivery ${h.delivery_s} s): each order on this traffic`);
    L.push(`  ${'order'.padEnd(14)}${'gap_s'.padStart(9)}${'overlap_s'.padStart(11)}${'lost'.padStart(9)}${'duplicated'.padStart(12)}${'broken'.padStart(9)}`);
    for (const m of h.per_mode) L.push(`  ${(m.mode + (m.mode === h.mode ? ' *' : '')).padEnd(14)}${f3(m.gap_s).padStart(9)}${f3(m.overlap_s).padStart(11)}${String(m.lost_packets).padStart(9)}${String(m.duplicated_packets).padStart(12)}${String(m.broken_connections).padStart(9)}`);
    L.push('  release-first: nobody holds the buckets in the gap (their packets are lost, a SYN is retransmitted); add-first: two nodes hold them in the overlap (packets duplicated, both answer a SYN: the client resets). * = the scenario\'s order');
  }
  if (r.compare) {
    L.push('', `Policies on this traffic (same events, failback ${sc.policy.failback}):`);
    L.push(`  ${'policy'.padEnd(14)}${'lost'.padStart(10)}${'duplicated'.padStart(12)}${'broken'.padStart(9)}${'recovery_s'.padStart(12)}${'busiest node'.padStart(14)}`);
    for (const c of r.compare) L.push(`  ${c.policy.padEnd(14)}${String(c.lost_packets).padStart(10)}${String(c.duplicated_packets).padStart(12)}${String(c.broken_connections).padStart(9)}${f3(c.recovery_s).padStart(12)}${`${(100 * c.max_node_share).toFixed(1)}%`.padStart(14)}`);
    const best = rankPolicies(r.compare)[0]!;
    const chosen = r.compare.find((c) => c.policy === sc.policy.policy)!;
    const ties = r.compare.filter((c) => sameScore(c, best)).map((c) => c.policy);
    const why = '(ranked by lost packets, then broken connections, the busiest node\'s share, duplicates)';
    if (ties.includes(chosen.policy)) L.push(`  ${chosen.policy} (the scenario's policy) did as well as any ${ties.length > 1 ? `(tied with ${ties.filter((x) => x !== chosen.policy).join(', ')}) ` : ''}${why}`);
    else {
      const diff: string[] = [];
      if (best.lost_packets !== chosen.lost_packets) diff.push(`${best.lost_packets} lost packets instead of ${chosen.lost_packets}`);
      if (best.broken_connections !== chosen.broken_connections) diff.push(`${best.broken_connections} broken connections instead of ${chosen.broken_connections}`);
      if (Math.round(best.max_node_share * 1e3) !== Math.round(chosen.max_node_share * 1e3)) diff.push(`busiest node ${(100 * best.max_node_share).toFixed(1)}% instead of ${(100 * chosen.max_node_share).toFixed(1)}%`);
      L.push(`  ${ties.join(', ')} would have done better than ${chosen.policy} on this traffic: ${diff.join(', ') || 'fewer duplicates'} ${why}`);
    }
  }
  return L.join('\n') + '\n';
}

type Cmp = NonNullable<FailoverResult['compare']>[number];
const score = (c: Cmp): number[] => [c.lost_packets, c.broken_connections, Math.round(c.max_node_share * 1e3), c.duplicated_packets];
const sameScore = (a: Cmp, b: Cmp): boolean => score(a).every((x, i) => x === score(b)[i]);

/** Policies best first: fewest lost packets, then broken connections, the busiest node's share (to 0.1%), duplicates. */
export function rankPolicies(c: Cmp[]): Cmp[] {
  return [...c].sort((a, b) => {
    const x = score(a), y = score(b);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
    return 0;
  });
}

/**
 * Timeline lines for people: consecutive detections of the same fact by several
 * observers ("node1 declares node2 dead", "node3 declares node2 dead") become
 * one line with the time range, so a 16-node cluster stays readable.
 */
export function groupDetections(events: FailoverResult['events']): { when: string; kind: string; detail: string }[] {
  const out: { when: string; kind: string; detail: string }[] = [];
  let i = 0;
  while (i < events.length) {
    const e = events[i]!;
    const fact = e.kind === 'detected' && e.node && e.detail.startsWith(`${e.node} `) ? e.detail.slice(e.node.length + 1) : null;
    let j = i + 1;
    const who = [e.node];
    if (fact !== null) {
      while (j < events.length) {
        const x = events[j]!;
        if (x.kind !== 'detected' || !x.node || x.detail !== `${x.node} ${fact}`) break;
        who.push(x.node);
        j++;
      }
    }
    if (j - i > 1) {
      const verb = fact!.replace(/^declares /, 'declare ').replace(/^hears /, 'hear ');
      out.push({ when: f3(e.t), kind: e.kind, detail: `${who.join(', ')} ${verb} (until ${f3(events[j - 1]!.t)} s)` });
    } else out.push({ when: f3(e.t), kind: e.kind, detail: e.detail });
    i = j;
  }
  return out;
}
