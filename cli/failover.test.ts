import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { FailoverResult } from '../sim/core/result.ts';
import { EXAMPLE_SCENARIO } from './failover.ts';
import { loadScenario } from '../sim/cluster/scenario.ts';
import { buildTimeline } from '../sim/cluster/heartbeat.ts';

const bin = new URL('../bin/clusterip-sim.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'failover-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const run = (...args: string[]): string => execFileSync(process.execPath, [bin, 'failover', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

describe('clusterip-sim failover', () => {
  it('a leave: each handover order\'s cost on the same traffic (terminal and --json); the gap loses what the overlap duplicates', () => {
    const f = join(dir, 'leave.yaml');
    writeFileSync(f, `name: node2 leaves
cluster:
  cluster: { ip: 192.0.2.10, backend: xt_cluster, total_nodes: 3, seed: 1 }
  nodes: [{ name: node1, owns: [1] }, { name: node2, owns: [2] }, { name: node3, owns: [3] }]
heartbeat: { interval_s: 0.2, dead_after: 3, takeover_delay_s: 0, jitter_s: 0, apply_s: 0.05 }
handover: add-first
traffic: { flows: 20000, duration_s: 20, seed: 1 }
events:
  - { at: 10s, leave: node2 }
`);
    const r = JSON.parse(run('--scenario', f, '--json', '--workers', '0')) as FailoverResult;
    expect(r.handover!.mode).toBe('add-first');
    const [rf, af] = r.handover!.per_mode;
    expect(rf).toMatchObject({ mode: 'release-first', overlap_s: 0, duplicated_packets: 0 });
    expect(af).toMatchObject({ mode: 'add-first', gap_s: 0, lost_packets: 0 });
    // One delivery (0) + one update (0.05 s) either way; the same traffic lands in windows of the same length.
    expect(rf!.gap_s).toBeCloseTo(0.05, 9);
    expect(af!.overlap_s).toBeCloseTo(0.05, 9);
    expect(rf!.lost_packets).toBeGreaterThan(0);
    expect(af!.duplicated_packets).toBeGreaterThan(0);
    // The scenario's order is the run's totals.
    expect(r.totals.duplicated_packets).toBe(af!.duplicated_packets);
    const text = run('--scenario', f, '--workers', '0');
    expect(text).toMatch(/Handover of the voluntary leave \(scenario: add-first/);
    expect(text).toMatch(new RegExp(`add-first \\*\\s+0\\.000\\s+0\\.050\\s+0\\s+${af!.duplicated_packets}\\s`));
  });

  it('--json gives totals, per-node load per phase and the timeline', () => {
    const f = join(dir, 's.yaml');
    writeFileSync(f, `name: four nodes, node2 crashes
cluster:
  cluster: { ip: 192.0.2.10, backend: xt_cluster, total_nodes: 4, seed: 0x99 }
  nodes: [{ name: node1, owns: [1] }, { name: node2, owns: [2] }, { name: node3, owns: [3] }, { name: node4, owns: [4] }]
heartbeat: { interval_s: 1, dead_after: 3, takeover_delay_s: 0.5 }
traffic: { flows: 1500, duration_s: 40, seed: 5 }
events:
  - { at: 10s, crash: node2 }
`);
    const r = JSON.parse(run('--scenario', f, '--json', '--compare-policies')) as FailoverResult;
    expect(r.kind).toBe('failover');
    for (const k of ['lost_packets', 'duplicated_packets', 'broken_connections', 'recovery_s'] as const) expect(typeof r.totals[k]).toBe('number');
    expect(r.totals.lost_packets).toBeGreaterThan(0);
    expect(r.totals.recovery_s).toBe(3.5);
    expect(r.phases.map((p) => p.phase)).toEqual(['before', 'during', 'after']);
    for (const p of r.phases) expect(p.per_node.map((x) => x.node)).toEqual(['node1', 'node2', 'node3', 'node4']);
    // lowest policy on 4 nodes: after the takeover node1 carries its own and node2's share
    const before = r.phases[0]!.per_node, after = r.phases[2]!.per_node;
    expect(after[1]!.packets).toBe(0);
    expect(after[0]!.share).toBeGreaterThan(before[0]!.share * 1.5);
    expect(r.compare!.map((c) => c.policy)).toEqual(['lowest', 'least-loaded', 'spread', 'backup']);
    expect(r.input.packets).toBe(r.timeline.per_node.flat().reduce((a, x) => a + x, 0) + r.totals.lost_packets + r.totals.after_break_packets! - r.totals.duplicated_packets);
  });

  it('runs the built-in scenario without --scenario and says so; --report writes the HTML report', () => {
    const out = join(dir, 'rep.html');
    const p = spawnSync(process.execPath, [bin, 'failover', '--report', out, '--flows', '300'], { encoding: 'utf8' });
    expect(p.status).toBe(0);
    expect(p.stderr).toMatch(/no --scenario given: running the built-in scenario/);
    expect(p.stdout).toMatch(/Load per node/);
    expect(p.stdout).toMatch(/lost packets/);
    const html = readFileSync(out, 'utf8');
    const m = /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html);
    expect(m, 'report embeds its data').not.toBeNull();
    const r = (JSON.parse(m![1]!.replace(/\\u003c/g, '<')) as { result: FailoverResult }).result;
    expect(r.scenario.builtin).toBe(true);
    expect(r.input.synthetic!.params.flows).toBe(300);
  });

  it('one headline, the same in the terminal, the JSON and the HTML report', () => {
    const args = ['--flows', '300', '--seed', '3'];
    const r = JSON.parse(run(...args, '--json')) as FailoverResult;
    // Built from the run's own numbers: lost, duplicated and broken against what the traffic carried.
    expect(r.headline).toBe(`2 scripted events: ${r.totals.lost_packets.toLocaleString('en-US')} packets lost (${((100 * r.totals.lost_packets) / r.input.packets).toFixed(2)} %), ` +
      `${r.totals.duplicated_packets.toLocaleString('en-US')} duplicated (${((100 * r.totals.duplicated_packets) / r.input.packets).toFixed(2)} %), ` +
      `${r.totals.broken_connections.toLocaleString('en-US')} of ${r.totals.connections!.toLocaleString('en-US')} connections broken; one owner per bucket again ${r.totals.recovery_s.toFixed(2)} s after the first fault`);
    expect(run(...args).split('\n')[0]).toBe(r.headline);
    const out = join(dir, 'headline.html');
    run(...args, '--report', out);
    expect(readFileSync(out, 'utf8')).toContain(`<p class="lead headline" id="headline">${r.headline!.replace(/&/g, '&amp;')}</p>`);
  });

  it('exits 1 with file:line on a bad scenario, 2 on a bad flag', () => {
    const f = join(dir, 'bad.yaml');
    writeFileSync(f, 'cluster:\n  cluster: { ip: 192.0.2.10, backend: xt_cluster, total_nodes: 2 }\n  nodes: [{ name: a, owns: [1] }, { name: b, owns: [2] }]\nevents:\n  - { at: 1s, crash: zz }\n');
    const p = spawnSync(process.execPath, [bin, 'failover', '--scenario', f], { encoding: 'utf8' });
    expect(p.status).toBe(1);
    expect(p.stderr).toContain(`${f}:5: events[0].crash: no node named 'zz'`);
    const q = spawnSync(process.execPath, [bin, 'failover', '--flows', 'many'], { encoding: 'utf8' });
    expect(q.status).toBe(2);
  });

  it('the scenario shown in --help is valid and times out as the help says', () => {
    writeFileSync(join(dir, 'cluster.yaml'), 'cluster: { ip: 192.0.2.10, backend: xt_cluster, total_nodes: 3, seed: 1 }\nnodes:\n  - { name: node1, owns: [1] }\n  - { name: node2, owns: [2] }\n  - { name: node3, owns: [3] }\n');
    writeFileSync(join(dir, 'example.yaml'), EXAMPLE_SCENARIO);
    const tl = buildTimeline(loadScenario(join(dir, 'example.yaml')));
    // crash at 12.5 s: last beat 12 s, dead at 15 s (+ up to 0.02 s jitter), takeover 0.5 s later
    expect(tl.recovered_at!).toBeGreaterThanOrEqual(15.5);
    expect(tl.recovered_at!).toBeLessThan(15.52);
  });
});
