/**
 * The comparison's numbers mean what they say: bucket takeover with one
 * bucket per node doubles a survivor's load, M buckets spread it; adding a
 * node to B = N re-hashes about half the flows; every scheme here restores
 * the original placement when a node returns; and the flow table counts right.
 */
import { describe, expect, it } from 'vitest';
import { collectFlows, DirectedFlowTable } from './flows.ts';
import { syntheticBatches } from '../traffic/synthetic.ts';
import { compareSchemes } from './compare.ts';
import { main } from '../../cli/main.ts';

describe('flow table', () => {
  it('folds packets into flows with their packet and byte counts', async () => {
    // The expected counts: every packet's tuple folded in a plain Map, packet by packet.
    const want = new Map<string, { p: number; b: number }>();
    const t = new DirectedFlowTable();
    for (const b of syntheticBatches('mix', { flows: 3000, seed: 8 }, 1000)) {
      for (let i = 0; i < b.count; i++) {
        const k = `${b.proto[i]},${b.saddr[i]},${b.sport[i]},${b.daddr[i]},${b.dport[i]}`;
        const w = want.get(k) ?? { p: 0, b: 0 };
        w.p += 1; w.b += b.wirelen[i]!;
        want.set(k, w);
      }
      t.add(b);
    }
    expect(want.size).toBeGreaterThan(2900); // a few flows share a tuple; most do not
    const fs = t.result();
    expect(fs.flows.count).toBe(want.size);
    for (let i = 0; i < fs.flows.count; i++) {
      const k = `${fs.flows.proto[i]},${fs.flows.saddr[i]},${fs.flows.sport[i]},${fs.flows.daddr[i]},${fs.flows.dport[i]}`;
      expect(fs.packets[i]).toBe(want.get(k)!.p);
      expect(fs.bytes[i]).toBe(want.get(k)!.b);
    }
  });
});

describe('compareSchemes', () => {
  it('shows takeover imbalance, re-hash on growth, and minimal disruption where promised', async () => {
    const fs = await collectFlows(syntheticBatches('mix', { flows: 30000, seed: 4 }));
    const r = compareSchemes(fs, { nodes: 4, failNode: 2, speedSeconds: 0 });
    const by = new Map(r.schemes.map((s) => [s.name, s]));
    expect([...by.keys()]).toEqual(['clusterip', 'clusterip-16', 'xt_cluster', 'xt_cluster-32', 'nft', 'nft-256', 'maglev', 'rendezvous', 'jump']);
    for (const name of ['clusterip', 'xt_cluster', 'nft']) {
      const s = by.get(name)!;
      expect(s.balance_after_fail.flows, name).toBeGreaterThan(1.35); // one survivor carries two shares
      expect(s.disruption.add!.moved, name).toBeGreaterThan(2 * s.disruption.add!.ideal); // --total-nodes N+1 re-hashes
    }
    for (const name of ['clusterip-16', 'xt_cluster-32', 'nft-256', 'maglev', 'rendezvous', 'jump']) {
      expect(by.get(name)!.balance_after_fail.flows, name).toBeLessThan(1.2);
    }
    for (const s of r.schemes) {
      expect(s.disruption.return.restored, s.name).toBe(1);
      expect(s.disruption.fail.moved, s.name).toBeGreaterThanOrEqual(s.disruption.fail.ideal - 1e-12);
      if (s.name !== 'maglev') expect(s.disruption.fail.moved, s.name).toBeCloseTo(s.disruption.fail.ideal, 12);
      expect(s.balance.flows).toBeGreaterThanOrEqual(1);
      expect(s.balance.flows).toBeLessThan(1.1);
    }
    // Maglev moves a little more than the minimum, but not much.
    const mg = by.get('maglev')!.disruption.fail;
    expect(mg.moved - mg.ideal).toBeLessThan(0.01);
    expect(r.wins.length).toBeGreaterThan(5);
    for (const w of r.wins) for (const n of w.scheme.split(', ')) expect(by.has(n)).toBe(true);
  });
});

describe('clusterip-sim compare-schemes', () => {
  const run = async (args: string[]): Promise<{ code: number; out: string; err: string }> => {
    let out = '', err = '';
    const ow = process.stdout.write.bind(process.stdout), ew = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((s: string) => { out += s; return true; }) as typeof process.stdout.write;
    process.stderr.write = ((s: string) => { err += s; return true; }) as typeof process.stderr.write;
    try {
      const code = await main(args);
      return { code, out, err };
    } finally {
      process.stdout.write = ow;
      process.stderr.write = ew;
      process.exitCode = undefined;
    }
  };

  it('prints one JSON document with every scheme', async () => {
    const r = await run(['compare-schemes', '--flows', '4000', '--nodes', '3', '--speed-seconds', '0', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.nodes).toBe(3);
    expect(j.schemes.map((s: { name: string }) => s.name)).toContain('maglev');
    expect(j.flows).toBeGreaterThan(3900);
  });

  it('prints a table with the wins', async () => {
    const r = await run(['compare-schemes', '--flows', '3000', '--schemes', 'clusterip,rendezvous', '--speed-seconds', '0']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/where each scheme wins/);
    expect(r.out).toMatch(/^clusterip /m);
  });

  it('refuses bad usage with exit 2', async () => {
    for (const args of [['--nodes', '1'], ['--schemes', 'bogus'], ['--synthetic', 'nope'], ['--fail-node', '9']]) {
      const r = await run(['compare-schemes', '--speed-seconds', '0', '--flows', '100', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err).toMatch(/clusterip-sim: /);
    }
  });

  it('--pcap is wired: a missing capture is bad input (exit 1) naming the file', async () => {
    const r = await run(['compare-schemes', '--speed-seconds', '0', '--pcap', 'no-such-capture.pcap']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/no-such-capture\.pcap/);
  });
});
