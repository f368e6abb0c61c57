import { describe, expect, it } from 'vitest';
import { parseClusters, type ClusterConfig } from '../../sim/core/cluster-config.ts';
import { parseIPv4 } from '../../sim/core/addr.ts';
import { planProbes, sourceRange } from './plan.ts';
import { judge } from './prober.ts';
import { jhash1word } from '../../sim/hash/lookup3.ts';
import { multiplyShift } from '../../sim/hash/reduce.ts';

/**
 * xt_cluster_hash() on a little-endian CPU, written from the kernel source: jhash_1word of the
 * network-order saddr loaded as a CPU word (no ntohl), reciprocal_scale to N.
 */
const bswap = (x: number): number => ((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24);
const xtClusterBucket = (saddr: number, seed: number, n: number): number => multiplyShift(jhash1word(bswap(saddr), seed) >>> 0, n);

function config(cluster: string, owns: string[]): ClusterConfig {
  const nodes = owns.map((o, i) => `  - { name: n${i + 1}, owns: ${o} }`).join('\n');
  return parseClusters(`cluster: { ip: 10.200.0.100, interface: eth0, ${cluster} }\nnodes:\n${nodes}\n`, 't.yaml')[0]!.config;
}

describe('planProbes', () => {
  it('one probe per node number, from the given prefix, predicted owners attached', () => {
    const c = config('backend: nft, seed: 0x11, total_nodes: 5', ['[1, 2]', '[3]', '[4, 5]']);
    const t = planProbes(c, { proto: 'tcp', port: 8080, sources: '10.201.0.0/24' });
    expect(t.map((x) => x.number)).toEqual([1, 2, 3, 4, 5]);
    expect(t.map((x) => x.expected)).toEqual([['n1'], ['n1'], ['n2'], ['n3'], ['n3']]);
    const { first, count } = sourceRange('10.201.0.0/24');
    for (const x of t) {
      expect(x.saddr - first).toBeGreaterThanOrEqual(0);
      expect(x.saddr - first).toBeLessThan(count);
      expect([x.dport, x.daddr]).toEqual([8080, parseIPv4('10.200.0.100')]);
    }
  });

  it('the chosen sources land where an independent xt_cluster hash puts them', () => {
    const c = config('backend: xt_cluster, seed: 0x22, total_nodes: 4', ['[1, 2]', '[3, 4]']);
    const t = planProbes(c, { proto: 'icmp', port: 0, sources: '10.201.0.0/24' });
    for (const x of t) expect(xtClusterBucket(x.saddr, 0x22, 4) + 1).toBe(x.number);
  });

  it('refuses what it cannot aim: ICMP under a port hash mode, a prefix too narrow', () => {
    const cip = config('backend: clusterip, hashmode: sourceip-sourceport, seed: 0, total_nodes: 2', ['[1]', '[2]']);
    expect(() => planProbes(cip, { proto: 'icmp', port: 0, sources: '10.201.0.0/24' })).toThrow(/--proto icmp: CLUSTERIP hashmode sourceip-sourceport/);
    // One address: every source-address hash lands in one bucket.
    const nft = config('backend: nft, seed: 0x11, total_nodes: 3', ['[1]', '[2]', '[3]']);
    expect(() => planProbes(nft, { proto: 'tcp', port: 80, sources: '10.201.0.9/32' })).toThrow(/--sources 10\.201\.0\.9\/32: no candidate tuple .* node number\(s\) (\d, )*\d; give a wider prefix/);
    expect(() => sourceRange('10.1.2/8')).toThrow(/--sources 10\.1\.2\/8/);
  });

  it('a port hash mode is covered from a single address by the source ports', () => {
    const cip = config('backend: clusterip, hashmode: sourceip-sourceport, seed: 0, total_nodes: 3', ['[1]', '[2]', '[3]']);
    const t = planProbes(cip, { proto: 'tcp', port: 80, sources: '10.201.0.9/32' });
    expect(new Set(t.map((x) => x.saddr))).toEqual(new Set([parseIPv4('10.201.0.9')]));
    expect(new Set(t.map((x) => x.sport)).size).toBe(3);
  });
});

describe('judge', () => {
  const c = config('backend: nft, seed: 0x11, total_nodes: 3', ['[1]', '[2]', '[3]']);
  const t = planProbes(c, { proto: 'tcp', port: 80, sources: '10.201.0.0/24' }).map((x) => ({ ...x, seq: 0xffffffff }));
  const macs = new Map([['n1', '02:00:00:00:00:01'], ['n2', '02:00:00:00:00:02'], ['n3', '02:00:00:00:00:03']]);
  const ans = (i: number, mac: string, flags = 0x12, ack = 0) => ({ mac, proto: 'tcp' as const, saddr: t[i]!.saddr, sport: t[i]!.sport, dport: t[i]!.dport, tcpFlags: flags, ack });

  it('an answer to an earlier run (another acknowledgement number) is not an answer', () => {
    const r = judge(t, [ans(0, '02:00:00:00:00:02', 0x12, 0x1234), ans(0, '02:00:00:00:00:01')], macs);
    expect(r[0]!.answered).toEqual(['n1']);
  });

  it('agreement, a wrong node, a second answerer, a stranger, silence', () => {
    const r = judge(t, [ans(0, '02:00:00:00:00:01'), ans(0, '02:00:00:00:00:01'), ans(1, '02:00:00:00:00:03', 0x14), ans(2, '02:00:00:00:00:03'), ans(2, '02:00:00:00:00:09')], macs);
    expect(r.map((b) => [b.number, b.answered, b.kinds, b.ok])).toEqual([
      [1, ['n1'], ['syn-ack'], true],
      [2, ['n3'], ['rst'], false],
      [3, ['n3', 'unknown MAC 02:00:00:00:00:09'], ['syn-ack', 'syn-ack'], false],
    ]);
    expect(judge(t, [], macs).map((b) => b.ok)).toEqual([false, false, false]);
  });
});
