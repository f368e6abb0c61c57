/**
 * Two cluster IPs on the same hosts (issue 20): `web` (nft, 10.200.0.100) and
 * `dns` (xt_cluster, 10.200.0.101) in one file, two nodes in network
 * namespaces. Both are applied; flows to each IP are answered by the node the
 * simulator predicts; a move in one and the removal of one leave the other's
 * objects byte for byte as they were (our own dump of its nft tables, its
 * iptables chain and jump, without counters) and its traffic as predicted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ClusterNet, CLUSTER_IP, SUBNET, runPrefix } from '../test/netns-cluster.ts';
import { loadClusters, type ClusterConfig } from '../sim/core/cluster-config.ts';
import { parseIPv4 } from '../sim/core/addr.ts';
import { applyConfig, clusterStatus, moveBucket, removeConfig, type GlueOptions } from './control/apply.ts';
import { predictNodes, type Flow } from './predict.ts';

const PREFIX = runPrefix('cipsim-mc-');
const PORT = 8081;
const IP2 = `${SUBNET}.101`;
const CLIENT_HOSTS = Array.from({ length: 24 }, (_, i) => 40 + i);
const NAMES = ['node1', 'node2'];

let net: ClusterNet;
let web: ClusterConfig;
let dns: ClusterConfig;
const opts: GlueOptions = {};

function fileText(): string {
  const nodes = (o1: string, o2: string): string => `
    nodes:
      - { name: node1, owns: ${o1}, host: { netns: ${PREFIX}n1 } }
      - { name: node2, owns: ${o2}, host: { netns: ${PREFIX}n2 } }`;
  return `clusters:
  - cluster: { name: web, ip: ${CLUSTER_IP}, interface: eth0, mac: "01:00:5e:00:00:20", backend: nft, seed: 0x11, total_nodes: 2 }${nodes('[1]', '[2]')}
  - cluster: { name: dns, ip: ${IP2}, interface: eth0, mac: "01:00:5e:00:00:21", backend: xt_cluster, seed: 0x22, total_nodes: 2 }${nodes('[2]', '[1]')}
`;
}

/** One cluster's objects on a node, without counters: equal dumps = untouched. */
function dumpOf(i: number, name: 'web' | 'dns'): string {
  const ns = net.nodes[i]!;
  const tables = net.ns(ns, ['nft', 'list', 'tables']).split('\n').filter((l) => l.includes(`clusterip_sim_${name}`));
  const nft = tables.map((t) => net.ns(ns, ['nft', '-s', 'list', ...t.trim().split(/\s+/)])).join('\n');
  const chain = `CLUSTERIP_SIM_${name.toUpperCase()}`;
  const ipt = net.ns(ns, ['iptables-legacy-save', '-t', 'mangle']).split('\n').filter((l) => l.includes(chain)).join('\n');
  return `${nft}\n---\n${ipt}`;
}

/** Flows to `ip` from the client: answered by the node the simulator predicts for that cluster. */
function expectPredicted(c: ClusterConfig, round: number): string[] {
  const flows = CLIENT_HOSTS.map((h, i) => ({ src: `${SUBNET}.${h}`, sport: 30000 + round * 100 + i }));
  const sim: Flow[] = flows.map((f) => ({ proto: 6, saddr: parseIPv4(f.src)!, sport: f.sport, daddr: parseIPv4(c.cluster.ip)!, dport: PORT }));
  const answers = net.connectAll(flows, PORT, 3000, c.cluster.ip);
  expect(answers, `flows to ${c.cluster.ip} (${c.cluster.name})`).toEqual(predictNodes(c, sim));
  return answers;
}

beforeAll(async () => {
  net = await ClusterNet.open({ prefix: PREFIX, nodes: 2, clientHosts: CLIENT_HOSTS }, async (n) => {
    for (const ns of n.nodes) n.ns(ns, ['ip', 'addr', 'add', `${IP2}/32`, 'dev', 'eth0']);
    await n.startNameServers(NAMES, PORT);
    await n.startNameServers(NAMES, PORT, IP2);
    const file = join(n.dir, 'two.yaml');
    writeFileSync(file, fileText());
    [web, dns] = loadClusters(file).map((l) => l.config) as [ClusterConfig, ClusterConfig];
  });
});

afterAll(async () => {
  try {
    if (web) await removeConfig(web, opts);
    if (dns) await removeConfig(dns, opts);
  } finally {
    net?.teardown();
  }
});

describe('two clusters on the same hosts', () => {
  it('both apply, both read back as configured, flows to each IP go to the predicted node', async () => {
    for (const c of [web, dns]) {
      const rep = await applyConfig(c, opts);
      expect(rep.hosts.map((h) => [h.host, h.outcome, h.error])).toEqual(NAMES.map((n) => [n, 'applied', undefined]));
    }
    net.ns(net.client, ['ip', 'neigh', 'flush', 'all']);
    for (const c of [web, dns]) {
      const s = await clusterStatus(c, opts);
      expect(s.drift, `${c.cluster.name}: ${JSON.stringify(s.hosts.map((h) => h.gaps))}`).toBe(false);
    }
    // Each node answers for both IPs (the spread is real), with owner sets that differ between the clusters.
    for (const [c, r] of [[web, 0], [dns, 1]] as const) {
      const a = expectPredicted(c, r);
      for (const n of NAMES) expect(a.filter((x) => x === n).length, `${c.cluster.name}: ${n}`).toBeGreaterThan(2);
    }
  });

  it('a move in web leaves dns untouched', async () => {
    const before = [0, 1].map((i) => dumpOf(i, 'dns'));
    const rep = await moveBucket(web, 1, 'node2', 'add-first', opts);
    expect(rep.ok, JSON.stringify(rep.hosts.map((h) => h.error))).toBe(true);
    expect((await clusterStatus(web, opts)).hosts.map((h) => h.actual)).toEqual([[], [1, 2]]);
    expect([0, 1].map((i) => dumpOf(i, 'dns'))).toEqual(before);
    expect((await clusterStatus(dns, opts)).drift).toBe(false);
    expect(new Set(expectPredicted({ ...web, nodes: [{ ...web.nodes[0]!, owns: [] }, { ...web.nodes[1]!, owns: [1, 2] }] }, 2))).toEqual(new Set(['node2']));
    expectPredicted(dns, 3);
  });

  it('removing web leaves dns untouched and working', async () => {
    const before = [0, 1].map((i) => dumpOf(i, 'dns'));
    const rep = await removeConfig(web, opts);
    expect(rep.ok).toBe(true);
    for (const i of [0, 1]) {
      expect(dumpOf(i, 'web')).toBe('\n---\n');
      expect(dumpOf(i, 'dns')).toBe(before[i]);
      // dns's multicast MAC is still joined, web's is gone.
      const maddr = net.ns(net.nodes[i]!, ['ip', 'maddr', 'show', 'dev', 'eth0']);
      expect(maddr).toContain('01:00:5e:00:00:21');
      expect(maddr).not.toContain('01:00:5e:00:00:20');
    }
    expect((await clusterStatus(dns, opts)).drift).toBe(false);
    expectPredicted(dns, 4);
  });
});
