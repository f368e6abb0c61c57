/**
 * An IPv6 cluster address in simulate, merge, recommend and failover: only
 * packets to the cluster address meet the rule (`ip6 daddr`), every lane of
 * the address compared; the servers' replies, other addresses (each differing
 * from the cluster's in one 32-bit lane), IPv4 traffic to the IPv4 address
 * embedded in ::ffff:... and that mapped address itself are skipped. The
 * reference is the same capture with only the to-cluster packets kept by
 * this test: both must give the same per-node counts.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { runCli } from '../test/cli.ts';
import { fileDir } from '../test/tmp.ts';
import { ipv4, ipv6, tcp, udp, writePcap, type Rec } from '../test/frames.ts';
import { parseIPv6 } from '../sim/core/addr.ts';
import { readPartialHeader } from '../sim/engine/partial-file.ts';
import type { SimulateResult } from '../sim/core/result.ts';

const dir = fileDir('cipsim-v6sim-');
const CIP6 = '2001:db8:1:2::10';
const NEAR = ['2001:db9:1:2::10', '2001:db8:1:3::10', '2001:db8:1:2:1::10', '2001:db8:1:2::11', '::ffff:192.0.2.10'];
const SEL = ['--backend', 'xt_cluster', '--total-nodes', '3', '--hash-seed', '0x9e3779b9', '--compare', "--nft 'jhash ct original ip6 saddr . th sport mod 3 seed 0x5 offset 1'", '--flow-timeout', '30'];

function eth6(ip: Uint8Array): Uint8Array {
  const b = new Uint8Array(14 + ip.length);
  b.set([0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x86, 0xdd], 0);
  b.set(ip, 14);
  return b;
}
function eth4(ip: Uint8Array): Uint8Array {
  const b = eth6(ip);
  b[13] = 0x00; b[12] = 0x08;
  return b;
}

/** The capture: TCP connections and UDP streams from clients in distinct /32s to the cluster, its replies, and the near misses. Returns the count to the cluster. */
function build(): { all: string; only: string; toCluster: number; others: number } {
  const all: Rec[] = [], only: Rec[] = [];
  let t = 0, toCluster = 0;
  const put = (data: Uint8Array, mine: boolean): void => {
    t += 1237;
    const r: Rec = { ts: [1_700_000_000 + Math.floor(t / 1e6), t % 1e6], data };
    all.push(r);
    if (mine) { only.push(r); toCluster++; }
  };
  for (let h = 0; h < 200; h++) {
    const client = `fd${(h % 97).toString(16).padStart(2, '0')}:${(h * 7919 % 65536).toString(16)}::${(h + 1).toString(16)}`;
    const sport = 30000 + h;
    if (h % 3 !== 2) {
      put(eth6(ipv6(client, CIP6, [], 6, tcp(sport, 80, 0x02))), true);
      put(eth6(ipv6(CIP6, client, [], 6, tcp(80, sport, 0x12))), false);
      for (let k = 0; k < 1 + (h % 4); k++) {
        put(eth6(ipv6(client, CIP6, [], 6, tcp(sport, 80, 0x10, 20))), true);
        put(eth6(ipv6(CIP6, client, [], 6, tcp(80, sport, 0x10, 100))), false);
      }
    } else {
      for (let k = 0; k < 3; k++) put(eth6(ipv6(client, CIP6, [], 17, udp(sport, 53, 12))), true);
    }
    // Near misses: the same flow to an address one lane away (or the mapped IPv4), and IPv4 to 192.0.2.10.
    put(eth6(ipv6(client, NEAR[h % NEAR.length]!, [], 17, udp(sport, 53, 12))), false);
    if (h % 10 === 0) put(eth4(ipv4({ proto: 17, src: `198.51.100.${h % 250}`, dst: '192.0.2.10' }, udp(sport, 53, 12))), false);
  }
  return { all: writePcap(join(dir, 'all.pcap'), all), only: writePcap(join(dir, 'only.pcap'), only), toCluster, others: all.length - toCluster };
}

const cap = build();
const cfg = join(dir, 'v6.yaml');
writeFileSync(cfg, `cluster:
  ip: ${CIP6}
  interface: eth0
  mac: "01:00:5e:00:00:26"
  backend: xt_cluster
  seed: 0x9e3779b9
  total_nodes: 3
nodes:
  - { name: node1, owns: [1] }
  - { name: node2, owns: [2] }
  - { name: node3, owns: [3] }
`);

async function cli(args: string[], code = 0): Promise<string> {
  const r = await runCli(args);
  if (r.code !== code) throw new Error(`${args.join(' ')}: exit ${r.code}, want ${code}\n${r.stderr}`);
  return code === 0 ? r.stdout : r.stderr;
}
const sim = async (args: string[]): Promise<SimulateResult> => JSON.parse(await cli(['simulate', ...args, '--json'])) as SimulateResult;
/** What must match between two runs: each configuration's per-node counts and unassigned packets. */
const nodesOf = (r: SimulateResult): unknown => r.configs.map((c) => [c.nodes.map((n) => [n.node, n.name, n.packets, n.frames, n.bytes, n.flows, n.connections]), c.unassigned]);
const sum = (r: SimulateResult, c = 0): number => r.configs[c]!.nodes.reduce((a, n) => a + n.packets, 0) + r.configs[c]!.unassigned.no_node + r.configs[c]!.unassigned.unknown;

describe('simulate with an IPv6 cluster address', () => {
  it('the fixture: to-cluster packets spread over the nodes, and as many others', () => {
    expect(cap.toCluster).toBeGreaterThan(500);
    expect(cap.others).toBeGreaterThan(500);
  });

  it('--cluster-ip counts exactly the packets to it, as the capture holding only them, for 0 and 2 workers', async () => {
    const ref = await sim(['--pcap', cap.only, ...SEL, '--cluster-ip', CIP6, '--workers', '0']);
    expect(ref.input.skipped['not to the cluster ip'] ?? 0).toBe(0);
    expect(sum(ref, 0)).toBe(cap.toCluster);
    for (const n of ref.configs[0]!.nodes) expect(n.packets, `node ${n.node}`).toBeGreaterThan(cap.toCluster / 10);
    for (const w of ['0', '2']) {
      const r = await sim(['--pcap', cap.all, ...SEL, '--cluster-ip', CIP6, '--workers', w]);
      expect(r.input.skipped['not to the cluster ip'], `workers ${w}`).toBe(cap.others);
      expect(nodesOf(r), `workers ${w}`).toEqual(nodesOf(ref));
    }
  }, 120_000);

  it('--config with an IPv6 cluster.ip filters by it, node names from the config', async () => {
    const r = await sim(['--pcap', cap.all, '--config', cfg, '--workers', '0']);
    const ref = await sim(['--pcap', cap.only, '--config', cfg, '--workers', '0']);
    expect(r.input.skipped['not to the cluster ip']).toBe(cap.others);
    expect(ref.input.skipped['not to the cluster ip'] ?? 0).toBe(0);
    expect(nodesOf(r)).toEqual(nodesOf(ref));
    expect(r.configs[0]!.nodes.map((n) => n.name)).toEqual(['node1', 'node2', 'node3']);
    expect(sum(r)).toBe(cap.toCluster);
  }, 120_000);

  it('shards carry the IPv6 address in their partials; merge equals the single run', async () => {
    const single = await sim(['--pcap', cap.all, ...SEL, '--cluster-ip', CIP6, '--workers', '0']);
    const parts: string[] = [];
    for (let i = 0; i < 3; i++) {
      const out = join(dir, `s${i}.part`);
      await cli(['simulate', '--pcap', cap.all, ...SEL, '--cluster-ip', CIP6, '--shard', `${i}/3`, '--partial', out, '--workers', String(i % 2 ? 2 : 0)]);
      parts.push(out);
    }
    expect((readPartialHeader(parts[1]!).job as { clusterIp: unknown }).clusterIp).toEqual(Array.from(parseIPv6(CIP6)!));
    const merged = JSON.parse(await cli(['merge', parts[2]!, parts[0]!, parts[1]!, '--json'])) as SimulateResult;
    expect(nodesOf(merged)).toEqual(nodesOf(single));
    expect(merged.input.skipped).toEqual(single.input.skipped);
    // A partial of another cluster address does not merge with these.
    const other = join(dir, 'other.part');
    await cli(['simulate', '--pcap', cap.all, ...SEL, '--cluster-ip', NEAR[3]!, '--shard', '0/3', '--partial', other, '--workers', '0']);
    expect(await cli(['merge', other, parts[1]!, parts[2]!, '--json'], 1)).toMatch(/s1\.part: .*cluster address 2001:db8:1:2::10 here, 2001:db8:1:2::11 there/);
  }, 180_000);

  it('built-in traffic (IPv4 only) with an IPv6 cluster address is refused, not run to zero packets', async () => {
    expect(await cli(['simulate', '--synthetic', 'nat', '--packets', '1000', '--cluster-ip', CIP6], 2)).toMatch(/IPv6.*IPv4 only.*--pcap/);
    expect(await cli(['recommend', '--synthetic', 'nat', '--packets', '1000', '--config', cfg], 2)).toMatch(/IPv6.*IPv4 only.*--pcap/);
    expect(await cli(['simulate', '--pcap', cap.all, ...SEL, '--cluster-ip', '2001:db8::g'], 2)).toMatch(/not an IPv4 or IPv6 address/);
  }, 60_000);
});

describe('recommend and failover with an IPv6 cluster address', () => {
  it('recommend reads only the packets to the cluster address', async () => {
    const r = JSON.parse(await cli(['recommend', '--pcap', cap.all, '--config', cfg, '--backends', 'xt_cluster,nft', '--json'])) as { input: { packets: number; skipped: Record<string, number> } };
    expect(r.input.packets).toBe(cap.toCluster);
    expect(r.input.skipped['not to the cluster ip']).toBe(cap.others);
  }, 120_000);

  it('failover --pcap with an IPv6 scenario counts the packets to the cluster; generated traffic is refused', async () => {
    const sc = join(dir, 'sc.yaml');
    writeFileSync(sc, `cluster:
  cluster: { ip: "${CIP6}", backend: xt_cluster, total_nodes: 3, seed: 0x9e3779b9 }
  nodes: [{ name: node1, owns: [1] }, { name: node2, owns: [2] }, { name: node3, owns: [3] }]
heartbeat: { interval_s: 1, dead_after: 3, takeover_delay_s: 0.5 }
events:
  - { at: 0.1s, crash: node2 }
`);
    const r = JSON.parse(await cli(['failover', '--scenario', sc, '--pcap', cap.all, '--json', '--workers', '0'])) as { input: { packets: number } };
    expect(r.input.packets).toBe(cap.toCluster);
    expect(await cli(['failover', '--scenario', sc], 2)).toMatch(/IPv6.*IPv4 only.*--pcap/);
  }, 120_000);
});
