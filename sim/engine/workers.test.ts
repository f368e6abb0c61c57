/**
 * The answer must not depend on how many workers ran (DESIGN.md: merge is
 * order-independent). Synthetic traffic is dealt to shares by flow; a pcap is
 * split by byte ranges that resynchronise on record headers, so flows do span
 * shares there.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { runCli } from '../../test/cli.ts';
import type { SimulateResult } from '../core/result.ts';
import { fileDir } from '../../test/tmp.ts';

const dir = fileDir('cipsim-workers-');

function comparable(r: SimulateResult): unknown {
  const { run: _run, generated_at: _g, ...rest } = r;
  return rest;
}

async function simulate(args: string[], workers: number): Promise<SimulateResult> {
  const r = await runCli(['simulate', ...args, '--json', '--workers', String(workers)]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as SimulateResult;
}

const SEL = ['--backend', 'xt_cluster', '--total-nodes', '5', '--hash-seed', '0x1234', '--compare', '--backend clusterip --hashmode sourceip-sourceport-destport', '--compare', '--backend nft --nft "jhash ip saddr . tcp sport mod 5 seed 0x9 offset 1"'];

describe('worker-count invariance', () => {
  it('synthetic traffic: 0, 1, 2 and 3 workers give the same result', async () => {
    const args = ['--synthetic', 'default', '--packets', '60000', '--seed', '3', ...SEL];
    const base = await simulate(args, 0);
    expect(base.input.packets).toBe(60000);
    for (const w of [1, 2, 3]) expect(comparable(await simulate(args, w))).toEqual(comparable(base));
  });
  it('synthetic NAT traffic reusing 5-tuples, with a short flow timeout: 0, 2 and 3 workers agree', async () => {
    // Few addresses, many ports: 5-tuples recur, so shares must be dealt by connection key, not by flow.
    const args = ['--synthetic', 'nat', '--packets', '60000', '--seed', '5', '--flow-timeout', '0.5', ...SEL];
    const base = await simulate(args, 0);
    for (const w of [2, 3]) expect(comparable(await simulate(args, w))).toEqual(comparable(base));
  });
  it('a pcap split into byte ranges: 1, 2 and 3 workers give the same result', async () => {
    const pcap = join(dir, 'mix.pcap');
    const g = await runCli(['gen', 'default', '--out', pcap, '--packets', '50000', '--seed', '11']);
    expect(g.code, g.stderr).toBe(0);
    const args = ['--pcap', pcap, '--cluster-ip', '192.0.2.10', ...SEL];
    const base = await simulate(args, 1);
    expect(base.input.packets).toBe(50000);
    expect(base.configs[0]!.nodes.reduce((s, n) => s + n.packets, 0)).toBeGreaterThan(10000);
    for (const w of [2, 3]) expect(comparable(await simulate(args, w))).toEqual(comparable(base));
  });
});

describe('failover worker-count invariance', () => {
  async function failover(args: string[], workers: number): Promise<Record<string, unknown>> {
    const r = await runCli(['failover', ...args, '--json', '--workers', String(workers)]);
    expect(r.code, r.stderr).toBe(0);
    const { run: _r, generated_at: _g, ...rest } = JSON.parse(r.stdout) as Record<string, unknown>;
    return rest;
  }
  it('the built-in scenario (all policies compared): 0, 1, 2, 3 workers agree', async () => {
    const base = await failover(['--compare-policies'], 0);
    expect((base.totals as { lost_packets: number }).lost_packets).toBeGreaterThan(0);
    for (const w of [1, 2, 3]) expect(await failover(['--compare-policies'], w)).toEqual(base);
  });
  it('synthetic shares and a pcap dealt by connection: 1 and 3 workers agree', async () => {
    const syn = ['--synthetic', 'default', '--packets', '40000'];
    expect(await failover(syn, 3)).toEqual(await failover(syn, 1));
    const pcap = join(dir, 'fo.pcap');
    expect((await runCli(['gen', 'default', '--out', pcap, '--packets', '40000', '--seed', '5'])).code).toBe(0);
    const a = await failover(['--pcap', pcap], 1);
    // Only packets to the cluster IP meet the rule, as simulate reads the same capture (its skipped count says how many do not).
    const sim = await runCli(['simulate', '--pcap', pcap, '--backend', 'clusterip', '--hashmode', 'sourceip-sourceport', '--total-nodes', '4', '--cluster-ip', '192.0.2.10', '--json', '--workers', '0']);
    const notToCluster = (JSON.parse(sim.stdout) as { input: { skipped: Record<string, number> } }).input.skipped['not to the cluster ip'] ?? 0;
    expect(notToCluster).toBeGreaterThan(0);
    expect((a.input as { packets: number }).packets).toBe(40000 - notToCluster);
    expect(await failover(['--pcap', pcap], 3)).toEqual(a);
  });
});
