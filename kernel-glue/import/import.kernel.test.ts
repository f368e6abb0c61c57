/**
 * `glue import` round trips on the running kernel, in network namespaces (two
 * nodes): a config applied by glue (nft; xt_cluster in iptables-legacy; two
 * clusters on the same hosts) is imported back as the same config, and
 * xt_cluster rules written by hand with iptables-nft (plus the multicast MAC)
 * import as the config they express. The hand-written rules are installed by
 * the test itself, not by the tool.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterNet, CLUSTER_IP, SUBNET, runPrefix } from '../../test/netns-cluster.ts';
import { parseClusters, parseConfig, type ClusterConfig } from '../../sim/core/cluster-config.ts';
import { applyConfig, removeConfig } from '../control/apply.ts';
import { configYaml, importHosts, type ImportNode } from './assemble.ts';

const PREFIX = runPrefix('cipsim-imp-');
const IP2 = `${SUBNET}.102`;
let net: ClusterNet;
let nodes: ImportNode[];

const cfg = (backend: string, seed: string, owns: [string, string], name = '', ip = CLUSTER_IP, mac = '01:00:5e:00:00:20'): ClusterConfig => parseConfig(`cluster: { ${name ? `name: ${name}, ` : ''}ip: ${ip}, interface: eth0, mac: "${mac}", backend: ${backend}, seed: ${seed}, total_nodes: 3 }
nodes:
  - { name: node1, owns: ${owns[0]}, host: { netns: ${PREFIX}n1 } }
  - { name: node2, owns: ${owns[1]}, host: { netns: ${PREFIX}n2 } }
`, 'test.yaml').config;

/** What import gives, through the YAML it writes and the reader simulate and glue use. */
async function imported(): Promise<{ configs: ClusterConfig[]; problems: string[] }> {
  const r = await importHosts(nodes);
  return { configs: parseClusters(configYaml(r.configs), 'imported.yaml').map((l) => l.config), problems: r.problems };
}

beforeAll(() => {
  net = new ClusterNet({ prefix: PREFIX, nodes: 2, clientHosts: [] });
  net.setup();
  nodes = net.nodes.map((ns, i) => ({ name: `node${i + 1}`, host: { netns: ns } }));
});

afterAll(() => net?.teardown());

describe('glue import round trips', () => {
  for (const backend of ['nft', 'xt_cluster'] as const) {
    it(`${backend}: apply a config, import it back, get the same config`, async () => {
      const c = cfg(backend, '0x1234abcd', ['[1, 3]', '[2]']);
      try {
        expect((await applyConfig(c)).ok).toBe(true);
        const r = await imported();
        expect(r.problems).toEqual([]);
        expect(r.configs).toEqual([c]);
      } finally {
        await removeConfig(c);
      }
    });
  }

  it('two clusters on the same hosts import as a two-cluster file', async () => {
    const web = cfg('nft', '0x11', ['[1]', '[2, 3]'], 'web');
    const dns = cfg('xt_cluster', '0x22', ['[2, 3]', '[1]'], 'dns', IP2, '01:00:5e:00:00:21');
    try {
      for (const c of [web, dns]) expect((await applyConfig(c)).ok).toBe(true);
      const r = await imported();
      expect(r.problems).toEqual([]);
      expect(r.configs).toEqual([web, dns]);
    } finally {
      for (const c of [web, dns]) await removeConfig(c);
    }
  });

  it('xt_cluster rules written by hand with iptables-nft import as the config they express', async () => {
    const owns = [[2], [1, 3]];
    try {
      net.nodes.forEach((ns, i) => {
        for (const k of owns[i]!) net.ns(ns, ['iptables-nft', '-t', 'mangle', '-A', 'PREROUTING', '-d', `${CLUSTER_IP}/32`, '-i', 'eth0', '-m', 'cluster', '--cluster-total-nodes', '3', '--cluster-local-node', String(k), '--cluster-hash-seed', '0xfeed', '-j', 'ACCEPT']);
        net.ns(ns, ['iptables-nft', '-t', 'mangle', '-A', 'PREROUTING', '-d', `${CLUSTER_IP}/32`, '-i', 'eth0', '-j', 'DROP']);
        net.ns(ns, ['ip', 'maddr', 'add', '01:00:5e:00:00:2a', 'dev', 'eth0']);
      });
      const r = await imported();
      expect(r.problems).toEqual([]);
      expect(r.configs).toEqual([cfg('xt_cluster', '0xfeed', ['[2]', '[1, 3]'], '', CLUSTER_IP, '01:00:5e:00:00:2a')]);
    } finally {
      for (const ns of net.nodes) {
        net.ns(ns, ['iptables-nft', '-t', 'mangle', '-F', 'PREROUTING']);
        net.ns(ns, ['ip', 'maddr', 'del', '01:00:5e:00:00:2a', 'dev', 'eth0']);
      }
    }
  });
});
