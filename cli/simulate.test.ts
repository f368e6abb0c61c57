/** The `simulate` command: JSON shape, gates and their exit codes, config errors, reports. */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../test/cli.ts';
import type { SimulateResult } from '../sim/core/result.ts';
import { fileDir } from '../test/tmp.ts';

const dir = fileDir('cipsim-sim-');
const csv = join(dir, 'flows.csv');
{
  let s = 5;
  const r = (): number => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
  const lines: string[] = [];
  for (let i = 0; i < 4000; i++) lines.push(`6,${r() >>> 24}.${r() >>> 24}.${r() >>> 24}.${(r() >>> 24) | 1},${1024 + (r() % 60000)},192.0.2.10,443,${i * 0.01},${60 + (r() % 1400)}`);
  // One heavy source: 2000 packets of one flow.
  for (let i = 0; i < 2000; i++) lines.push(`6,203.0.113.7,5555,192.0.2.10,443,${i * 0.02},1500`);
  writeFileSync(csv, lines.join('\n') + '\n');
}
const SEL = ['--backend', 'clusterip', '--hashmode', 'sourceip-sourceport', '--total-nodes', '4'];

describe('simulate command', () => {
  it('--json gives per node packets, bytes, flows and the statistics', async () => {
    const r = await runCli(['simulate', '--csv', csv, ...SEL, '--compare', '--backend xt_cluster --hash-seed 0x1', '--json', '--workers', '0']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as SimulateResult;
    expect(j.kind).toBe('simulate');
    expect(j.configs).toHaveLength(2);
    const a = j.configs[0]!;
    expect(a.nodes.map((n) => n.node)).toEqual([1, 2, 3, 4]);
    expect(a.nodes.reduce((s, n) => s + n.packets, 0)).toBe(6000);
    expect(a.nodes.reduce((s, n) => s + n.flows, 0)).toBe(4001);
    for (const k of ['packets', 'bytes', 'flows', 'connections']) expect(a.stats.map((x) => x.metric)).toContain(k);
    // The heavy flow makes packets far more uneven than flows, and the randomness band says it is the traffic's doing.
    const pk = a.stats.find((x) => x.metric === 'packets')!, fl = a.stats.find((x) => x.metric === 'flows')!;
    expect(pk.max_over_mean).toBeGreaterThan(fl.max_over_mean);
    expect(pk.random_max_over_mean_p95).toBeGreaterThan(fl.random_max_over_mean_p95);
    const hot = a.nodes.find((n) => n.top_sources[0]?.addr === '203.0.113.7')!;
    expect(hot.top_sources[0]!.packets).toBe(2000);
    expect(j.migrations[0]!.flows_moved_share).toBeGreaterThan(0.5);
    expect(j.migrations[0]!.matrix.flat().reduce((s, x) => s + x, 0)).toBe(4001);
  });
  it('--no-top-sources leaves the heaviest sources out and every count as it was', async () => {
    const args = ['simulate', '--csv', csv, ...SEL, '--json', '--workers', '2'];
    // One after the other: runCli captures this process's stdout.
    const withSources = await runCli(args);
    const without = await runCli([...args, '--no-top-sources']);
    expect(withSources.code, withSources.stderr).toBe(0);
    expect(without.code, without.stderr).toBe(0);
    const a = (JSON.parse(withSources.stdout) as SimulateResult).configs[0]!, b = (JSON.parse(without.stdout) as SimulateResult).configs[0]!;
    expect(a.nodes.some((n) => n.top_sources.length > 0)).toBe(true);
    for (const n of b.nodes) expect(n.top_sources).toEqual([]);
    expect(b.nodes.map(({ top_sources: _, ...rest }) => rest)).toEqual(a.nodes.map(({ top_sources: _, ...rest }) => rest));
    expect(b.stats).toEqual(a.stats);
  });
  it('the randomness band is measured over other seeds: flows that hash together widen it', async () => {
    // 40 sources with 100 connections each: under sourceip every source moves as one item.
    const few = join(dir, 'few.csv');
    const lines: string[] = [];
    for (let src = 0; src < 40; src++) for (let c = 0; c < 100; c++) lines.push(`6,10.9.${src}.1,${2000 + c},192.0.2.10,80,${c},100`);
    writeFileSync(few, lines.join('\n'));
    const byMode = async (mode: string): Promise<SimulateResult['configs'][0]['stats'][0]> => {
      const r = await runCli(['simulate', '--csv', few, '--backend', 'clusterip', '--hashmode', mode, '--total-nodes', '4', '--json', '--workers', '0']);
      return (JSON.parse(r.stdout) as SimulateResult).configs[0]!.stats.find((x) => x.metric === 'flows')!;
    };
    const ip = await byMode('sourceip'), port = await byMode('sourceip-sourceport');
    expect(ip.random_max_over_mean_p95).toBeGreaterThan(ip.independent_max_over_mean_p95 + 0.1);
    expect(port.random_max_over_mean_p95).toBeLessThan(ip.random_max_over_mean_p95);
    expect(port.random_max_over_mean_p95).toBeLessThan(port.independent_max_over_mean_p95 + 0.05);
  });
  it('a failed gate exits 3 and says which', async () => {
    const r = await runCli(['simulate', '--csv', csv, ...SEL, '--max-imbalance', '1.01', '--workers', '0']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/gate max-imbalance packets A/);
    const ok = await runCli(['simulate', '--csv', csv, ...SEL, '--max-imbalance', '4', '--workers', '0']);
    expect(ok.code).toBe(0);
    const mig = await runCli(['simulate', '--csv', csv, ...SEL, '--compare', '--total-nodes 5', '--max-migration', '0.1', '--workers', '0']);
    expect(mig.code).toBe(3);
    // Multiply-shift keeps a flow when floor(4x) = floor(5x): intervals of total length 0.2+0.15+0.1+0.05 = 0.5.
    const share = Number(/migration A -> B: ([\d.]+)% of flows/.exec(mig.stdout)![1]) / 100;
    expect(share).toBeGreaterThan(0.45);
    expect(share).toBeLessThan(0.55);
  });
  it('a config with an unknown key is exit 1 naming file and line', async () => {
    const cfg = join(dir, 'bad.yaml');
    writeFileSync(cfg, 'cluster:\n  ip: 192.0.2.10\n  backend: xt_cluster\n  total_nodes: 2\n  sede: 1\nnodes:\n  - { name: a, owns: [1] }\n  - { name: b, owns: [2] }\n');
    const r = await runCli(['simulate', '--csv', csv, '--config', cfg]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad\.yaml:\d+: cluster: unknown key 'sede'/);
  });
  it('a config drives names and the cluster IP filter', async () => {
    const cfg = join(dir, 'ok.yaml');
    writeFileSync(cfg, 'cluster:\n  ip: 192.0.2.10\n  backend: nft\n  seed: 0x5\n  total_nodes: 3\nnodes:\n  - { name: alpha, owns: [1, 3] }\n  - { name: beta, owns: [2] }\n');
    const r = await runCli(['simulate', '--csv', csv, '--config', cfg, '--json', '--workers', '0']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as SimulateResult;
    expect(j.configs[0]!.nodes.map((n) => n.name)).toEqual(['alpha', 'beta', 'alpha']);
    expect(j.configs[0]!.selector.description).toMatch(/jhash ct original ip saddr mod 3 seed 0x00000005 offset 1/);
  });
  it('--report writes a self-contained HTML file', async () => {
    const out = join(dir, 'r.html');
    const r = await runCli(['simulate', '--csv', csv, ...SEL, '--report', out, '--workers', '0']);
    expect(r.code).toBe(0);
    expect(existsSync(out)).toBe(true);
    const html = readFileSync(out, 'utf8');
    expect(html).not.toMatch(/<script[^>]+src=/);
    expect(html).toMatch(/CLUSTERIP sourceip-sourceport, 4 nodes/);
  });
  it('usage errors exit 2', async () => {
    expect((await runCli(['simulate', '--csv', csv, '--synthetic', 'zipf'])).code).toBe(2);
    expect((await runCli(['simulate', '--csv', csv, ...SEL, '--mixed', 'A,Z,A,A'])).code).toBe(2);
    expect((await runCli(['simulate', '--csv', csv, ...SEL, '--workers', '-1'])).code).toBe(2);
  });

  it('selector flags without a backend, or beside --config, are refused, not ignored', async () => {
    const r = await runCli(['simulate', '--csv', csv, '--total-nodes', '7', '--hashmode', 'sourceip', '--workers', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--hashmode, --total-nodes without a backend would be ignored/);
    const h = await runCli(['simulate', '--csv', csv, '--hash-init', '0x5', '--workers', '0']);
    expect(h.code).toBe(2);
    expect(h.stderr).toContain('--hash-init');
    const neg = await runCli(['simulate', '--csv', csv, '--backend', 'clusterip', '--hashmode', 'sourceip', '--total-nodes', '-4', '--workers', '0']);
    expect(neg.code).toBe(2);
    const cfg = join(dir, 'c.yaml');
    writeFileSync(cfg, 'cluster: { ip: 192.0.2.10, backend: clusterip, hashmode: sourceip, total_nodes: 2 }\nnodes:\n  - { name: a, owns: [1] }\n  - { name: b, owns: [2] }\n');
    const c = await runCli(['simulate', '--csv', csv, '--config', cfg, '--total-nodes', '7', '--workers', '0']);
    expect(c.code).toBe(2);
    expect(c.stderr).toContain('--config carries the whole configuration; drop --total-nodes');
    // With a backend the same flags take effect.
    const ok = await runCli(['simulate', '--csv', csv, '--backend', 'clusterip', '--total-nodes', '7', '--hashmode', 'sourceip', '--json', '--workers', '0']);
    expect(ok.code).toBe(0);
    const j = JSON.parse(ok.stdout) as SimulateResult;
    expect(j.configs[0]!.nodes).toHaveLength(7);
    expect(j.configs[0]!.selector.spec).toMatchObject({ backend: 'clusterip', hashmode: 'sourceip', total_nodes: 7 });
  });
});
