/**
 * The randomness band (analysis/seed-band.ts) must describe the same flows as
 * the node loads it is compared with: flows that have no node, or an unknown
 * one, under the measured configuration have none under another seed either.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { runSimulation } from './run.ts';
import type { SelectorSpec } from '../select/selector.ts';
import { runCli } from '../../test/cli.ts';
import { testDir } from '../../test/tmp.ts';

describe('the randomness band', () => {
  it('counts the same flows as the node loads, also when the snaplen cuts the ports', async () => {
    const work = testDir('cipsim-band-');
    const pcap = join(work, 'cut.pcap');
    const g = await runCli(['gen', 'default', '--out', pcap, '--packets', '20000', '--seed', '2', '--snaplen', '37']);
    expect(g.code, g.stderr).toBe(0);
    const spec: SelectorSpec = { backend: 'clusterip', hashmode: 'sourceip-sourceport', totalNodes: 4, hashInit: 0, kernel: '6.1', endian: 'little' };
    const run = await runSimulation({ inputs: [{ kind: 'pcap', path: pcap }], selectors: [spec], buckets: [4], clusterIp: null, mixed: null, workers: 0 });
    const cf = run.merged.flows.configs[0]!;
    const flows = cf.flows.reduce((a, b) => a + b, 0);
    // Some flows have a node and some do not (ports cut), so the check can tell the two apart.
    expect(flows).toBeGreaterThan(0);
    expect(flows).toBeLessThan(run.merged.flows.flows);
    for (let t = 0; t < 32; t++) {
      const base = (t * 4 + 2) * 4;
      expect(cf.band![base]! + cf.band![base + 1]! + cf.band![base + 2]! + cf.band![base + 3]!).toBe(flows);
    }
  });
});
