/**
 * The `recommend` command end to end: a skewed capture in, a config out, and
 * that config through `simulate --config` (to the predicted numbers) and
 * `glue plan --offline` (render only, no host touched) for every backend.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../test/cli.ts';
import type { RecommendResult, SimulateResult } from '../sim/core/result.ts';
import { parseConfig } from '../sim/core/cluster-config.ts';
import { candidateConfig, configYaml } from '../sim/recommend/config-out.ts';
import { CLUSTERIP_MODES } from '../sim/core/spec.ts';
import { fileDir } from '../test/tmp.ts';

const dir = fileDir('cipsim-recommend-');
const CUR = join(dir, 'cluster.yaml');
writeFileSync(CUR, `cluster:
  ip: 192.0.2.10
  backend: clusterip
  hashmode: sourceip
  seed: 0x0
  total_nodes: 4
  kernel: "6.1"
nodes:
  - { name: node1, owns: [1] }
  - { name: node2, owns: [2] }
  - { name: node3, owns: [3] }
  - { name: node4, owns: [4] }
failover: { policy: spread }
`);

/** Per node name, summed over the buckets it owns, from a simulate result. */
function byName(s: SimulateResult, metric: 'packets' | 'bytes' | 'flows' | 'connections'): Map<string, number> {
  const m = new Map<string, number>();
  for (const n of s.configs[0]!.nodes) m.set(n.name!, (m.get(n.name!) ?? 0) + n[metric]);
  return m;
}
const ratio = (v: number[]): number => Math.max(...v) / (v.reduce((a, b) => a + b, 0) / v.length);

describe('recommend command', () => {
  it('a skewed capture: recommends, writes a config that simulate --config reproduces exactly and glue plan renders', async () => {
    const pcap = join(dir, 'nat.pcap');
    expect((await runCli(['gen', 'nat', '--out', pcap, '--packets', '60000', '--seed', '2'])).code).toBe(0);
    const out = join(dir, 'better.yaml'), html = join(dir, 'rec.html');
    const r = await runCli(['recommend', '--pcap', pcap, '--config', CUR, '--backends', 'clusterip,xt_cluster,nft', '--max-buckets', '12', '--out', out, '--report', html, '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as RecommendResult;
    expect(j.kind).toBe('recommend');
    expect(j.policy).toBe('spread');
    expect(j.chosen).not.toBeNull();
    const c = j.candidates.find((x) => x.id === j.chosen)!;
    expect(c.held_out.now).toBeLessThan(j.current.held_out.now - 0.1);
    expect(c.gain_beyond_random).toBeGreaterThan(0);
    expect(existsSync(out)).toBe(true);
    // The written config through simulate: per node name, the predicted whole-input loads.
    const s = await runCli(['simulate', '--pcap', pcap, '--config', out, '--json', '--workers', '0']);
    expect(s.code).toBe(0);
    const sj = JSON.parse(s.stdout) as SimulateResult;
    for (const metric of ['packets', 'flows', 'connections'] as const) {
      const v = [...byName(sj, metric).values()];
      if (metric === 'packets') expect(ratio(v)).toBeCloseTo(c.whole.now, 9);
      expect(v.reduce((a, b) => a + b, 0)).toBe(metric === 'packets' ? j.input.packets : metric === 'flows' ? j.search.flows : j.search.connections);
    }
    const p = await runCli(['glue', 'plan', '--config', out, '--offline']);
    expect(p.code).toBe(0);
    // (glue plan warns on stderr about what a move between backends costs; nothing else may appear there)
    expect(p.stderr.replace(/^migration: .*\n/m, '')).toBe('');
    // The HTML report: before / after side by side, the verdict, the config.
    const page = readFileSync(html, 'utf8');
    expect(page).toContain('id="recommend-side-by-side"');
    expect(page).toContain(`candidate ${c.id}`);
    expect(page).toContain('id="recommend-config"');
  });

  it('long-lived heavy connections count in both halves: a CSV elephant source is split by port; an unsorted CSV is named', async () => {
    let x = 5;
    const r = (): number => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0);
    const rows: [number, string][] = [];
    for (let i = 0; i < 4000; i++) rows.push([i * 0.01, `6,10.${r() >>> 24}.${r() >>> 24}.${(r() >>> 24) | 1},${1024 + (r() % 60000)},192.0.2.10,443,${(i * 0.01).toFixed(2)},${60 + (r() % 1400)}`]);
    // One source, 50 connections open from the first second to the last: all of them start in the first half.
    for (let i = 0; i < 2000; i++) rows.push([i * 0.02, `6,203.0.113.7,${5000 + (i % 50)},192.0.2.10,443,${(i * 0.02).toFixed(2)},1500`]);
    const sorted = join(dir, 'elephant.csv'), unsorted = join(dir, 'unsorted.csv');
    writeFileSync(sorted, [...rows].sort((a, b) => a[0] - b[0]).map((q) => q[1]).join('\n') + '\n');
    writeFileSync(unsorted, rows.map((q) => q[1]).join('\n') + '\n');
    const sel = ['--backend', 'clusterip', '--hashmode', 'sourceip', '--total-nodes', '4', '--policy', 'spread', '--json'];
    const a = JSON.parse((await runCli(['recommend', '--csv', sorted, ...sel])).stdout) as RecommendResult;
    expect(a.chosen).not.toBeNull();
    const c = a.candidates[0]!;
    expect(c.spec.backend === 'clusterip' && c.spec.hashmode).not.toBe('sourceip');
    // The elephant's packets are in both halves, so the later half shows the skew it is tuned against.
    expect(a.current.tuned.now).toBeGreaterThan(1.5);
    expect(a.current.held_out.now).toBeGreaterThan(1.5);
    expect(a.warnings.join(' ')).not.toMatch(/not in time order/);
    const b = JSON.parse((await runCli(['recommend', '--csv', unsorted, ...sel])).stdout) as RecommendResult;
    expect(b.warnings.join(' ')).toMatch(/^\d+ packets came after the cut .*not in time order/);
  });

  it('uniform traffic: nothing worth changing, no file written, exit 0', async () => {
    const out = join(dir, 'none.yaml');
    const r = await runCli(['recommend', '--synthetic', 'uniform', '--packets', '40000', '--backend', 'xt_cluster', '--total-nodes', '4', '--hash-seed', '0x1', '--search-seeds', '4', '--max-buckets', '8', '--out', out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Nothing worth changing/);
    expect(r.stderr).toMatch(/not written/);
    expect(existsSync(out)).toBe(false);
  });

  it('refuses what the hosts cannot run and contradictory flags, naming the flag', async () => {
    const r = await runCli(['recommend', '--synthetic', 'nat', '--packets', '2000', '--config', CUR, '--kernel', '6.18', '--backends', 'clusterip']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--backends.*removed in Linux 6\.3/);
    const b = await runCli(['recommend', '--synthetic', 'nat', '--config', CUR, '--backend', 'xt_cluster']);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/--config describes the cluster in place/);
  });

  it('every backend and hash mode, as written, passes glue plan (render only)', async () => {
    const base = parseConfig(readFileSync(CUR, 'utf8'), CUR).config;
    const home = [0, 1, 2, 3, 0, 1, 2, 3, 2, 1];
    const shapes = [...CLUSTERIP_MODES.map((hashmode) => ({ backend: 'clusterip' as const, hashmode, kernel: '6.1' })), { backend: 'xt_cluster' as const, kernel: '6.18' }, { backend: 'nft' as const, kernel: '6.18' }];
    for (const s of shapes) {
      const cfg = candidateConfig(base, { ...s, buckets: home.length, seed: 0xdeadbeef }, home, s.kernel, 'least-loaded');
      const f = join(dir, `${s.backend}-${'hashmode' in s ? s.hashmode : 'x'}.yaml`);
      writeFileSync(f, configYaml(cfg, ['test']));
      const again = parseConfig(readFileSync(f, 'utf8'), f);
      expect(again.problems).toEqual([]);
      expect(again.config).toEqual(cfg);
      const p = await runCli(['glue', 'plan', '--config', f, '--offline']);
      expect({ code: p.code, stderr: p.stderr.replace(/^migration: .*\n/m, '') }).toEqual({ code: 0, stderr: '' });
      expect(p.stdout).toMatch(s.backend === 'nft' ? /nft/ : s.backend === 'xt_cluster' ? /cluster/ : /CLUSTERIP/);
    }
  });
});
