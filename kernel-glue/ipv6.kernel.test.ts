/**
 * An IPv6 cluster address end to end on the running kernel, in network
 * namespaces (a bridge, a client and three nodes; every address in
 * fd00:200::/64, which never leaves them): for xt_cluster (ip6tables-legacy)
 * and nft (`jhash ct original ip6 saddr`), apply puts every host in place,
 * the client's neighbour discovery learns the cluster MAC, every client flow
 * is answered by exactly the node the simulator predicts and the per-node
 * counters agree; a move is followed by the traffic; import gives the config
 * back; remove leaves nothing of ours.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterNet, CLUSTER_IP6, clientIp6 } from '../test/netns-cluster.ts';
import { parseClusters, parseConfig, type ClusterConfig } from '../sim/core/cluster-config.ts';
import { selectorSpecOf } from '../sim/select/from-config.ts';
import { parseIPv6 } from '../sim/core/addr.ts';
import { applyConfig, clusterStatus, moveBucket, removeConfig, type StatusReport } from './control/apply.ts';
import { predictNodeNumbers, predictNodes, type Flow } from './predict.ts';
import { configYaml, importHosts } from './import/assemble.ts';

const PREFIX = 'cipsim-v6-';
const PORT = 8080;
const CLIENT_HOSTS = Array.from({ length: 60 }, (_, i) => 1 + i);
const NAMES = ['node1', 'node2', 'node3'];
const MAC = '01:00:5e:00:00:26';

let net: ClusterNet;
let roundNo = 0;

function config(backend: 'xt_cluster' | 'nft', owns = ['[1]', '[2]', '[3]'], seed = '0x9e3779b9'): ClusterConfig {
  return parseConfig(`cluster:
  ip: ${CLUSTER_IP6}
  interface: eth0
  mac: "${MAC}"
  backend: ${backend}
  seed: ${seed}
  total_nodes: 3
nodes:
  - { name: node1, owns: ${owns[0]}, host: { netns: ${PREFIX}n1 } }
  - { name: node2, owns: ${owns[1]}, host: { netns: ${PREFIX}n2 } }
  - { name: node3, owns: ${owns[2]}, host: { netns: ${PREFIX}n3 } }
`, 'v6.yaml').config;
}

/** One round of client flows over IPv6, compared with the simulator and with the kernel's counters. */
async function trafficRound(c: ClusterConfig): Promise<string[]> {
  const r = roundNo++;
  const flows = CLIENT_HOSTS.flatMap((h, i) => [0, 1].map((j) => ({ src: clientIp6(h), sport: 20000 + r * 400 + j * 200 + i })));
  const daddr6 = parseIPv6(CLUSTER_IP6)!;
  const sim: Flow[] = flows.map((f) => ({ proto: 6, saddr: 0, sport: f.sport, daddr: 0, dport: PORT, saddr6: parseIPv6(f.src)!, daddr6 }));
  const predicted = predictNodes(c, sim);
  const before = await clusterStatus(c);
  const answers = net.connectAll(flows, PORT, 3000, CLUSTER_IP6);
  const after = await clusterStatus(c);
  expect(answers).toEqual(predicted);
  const numbers = predictNodeNumbers(selectorSpecOf(c), sim);
  for (const h of after.hosts) {
    const prev = before.hosts.find((x) => x.host === h.host)!;
    const rose = Object.keys(h.counters).map(Number).filter((k) => h.counters[k]!.packets > (prev.counters[k]?.packets ?? 0));
    const hit = new Set(numbers.filter((_, i) => predicted[i] === h.host));
    expect(new Set(rose), `${h.host}: node numbers whose counters rose`).toEqual(hit);
    expect(h.dropped!.packets, `${h.host} drops what others own`).toBeGreaterThan(prev.dropped?.packets ?? 0);
  }
  return answers;
}

function expectAsConfigured(s: StatusReport): void {
  expect(s.hosts.map((h) => [h.host, h.reachable, h.matchesConfig, h.gaps])).toEqual(NAMES.map((n) => [n, true, true, []]));
  expect([s.orphaned, s.doublyOwned, s.drift]).toEqual([[], [], false]);
}

beforeAll(async () => {
  net = new ClusterNet({ prefix: PREFIX, nodes: 3, clientHosts: CLIENT_HOSTS, ipv6: true });
  try {
    net.setup();
    await net.startNameServers(NAMES, PORT, CLUSTER_IP6);
  } catch (e) {
    net.teardown();
    throw e;
  }
});

afterAll(() => {
  net?.teardown();
});

describe.each(['xt_cluster', 'nft'] as const)('IPv6 cluster address, backend %s, on the running kernel', (backend) => {
  it('apply; neighbour discovery gives the cluster MAC; flows go to the predicted node', async () => {
    const c = config(backend);
    const rep = await applyConfig(c);
    expect(rep.hosts.map((h) => [h.host, h.outcome, h.error])).toEqual(NAMES.map((n) => [n, 'applied', undefined]));
    // Before the ND table existed the client may have learnt a node's own MAC (the poisoning of §4.7, IPv6 alike).
    net.ns(net.client, ['ip', '-6', 'neigh', 'flush', 'dev', 'eth0']);
    expectAsConfigured(await clusterStatus(c));
    const answers = await trafficRound(c);
    for (const n of NAMES) expect(answers.filter((a) => a === n).length, n).toBeGreaterThan(10);
    // The advertisement carried the cluster MAC and a valid ICMPv6 checksum (a bad one is dropped, the entry would stay INCOMPLETE).
    expect(net.ns(net.client, ['ip', '-6', 'neigh', 'show', CLUSTER_IP6, 'dev', 'eth0'])).toContain(`lladdr ${MAC}`);
  });

  it('a second apply changes nothing; move shifts a bucket and traffic follows; apply puts it back', async () => {
    const c = config(backend);
    expect((await applyConfig(c)).hosts.map((h) => h.outcome)).toEqual(['unchanged', 'unchanged', 'unchanged']);
    const rep = await moveBucket(c, 1, 'node3', 'add-first', {});
    expect(rep.hosts.map((h) => [h.host, h.before, h.after])).toEqual([['node3', [3], [1, 3]], ['node1', [1], []]]);
    const s = await clusterStatus(c);
    expect([s.owners, s.drift]).toEqual([{ 1: ['node3'], 2: ['node2'], 3: ['node3'] }, true]);
    const answers = await trafficRound(config(backend, ['[]', '[2]', '[1, 3]']));
    expect(answers.includes('node1')).toBe(false);
    const back = await applyConfig(c);
    expect(back.hosts.map((h) => h.outcome).sort()).toEqual(['owners updated', 'owners updated', 'unchanged']);
    expectAsConfigured(await clusterStatus(c));
    await trafficRound(c);
  });

  it('import gives the applied config back; remove leaves nothing of ours', async () => {
    const c = config(backend, ['[1, 3]', '[2]', '[]'], '0x1234abcd');
    expect((await applyConfig(c)).ok).toBe(true);
    const r = await importHosts(c.nodes.map((n) => ({ name: n.name, host: n.host })));
    expect(r.problems).toEqual([]);
    expect(parseClusters(configYaml(r.configs), 'imported.yaml').map((l) => l.config)).toEqual([c]);
    const rm = await removeConfig(c);
    expect(rm.hosts.map((h) => h.outcome)).toEqual(['removed', 'removed', 'removed']);
    for (const ns of net.nodes) {
      expect(net.ns(ns, ['nft', 'list', 'tables'])).not.toContain('clusterip_sim');
      expect(net.ns(ns, ['ip6tables-legacy-save', '-t', 'mangle'])).not.toContain('CLUSTERIP_SIM');
      expect(net.ns(ns, ['ip', 'maddr', 'show', 'dev', 'eth0'])).not.toContain(MAC);
    }
  });
});
