/**
 * `glue probe` against a real cluster (issue 20): three nft nodes in network
 * namespaces, applied by glue; the command runs in the client namespace and
 * probes every bucket from 10.201.0.0/24 (a prefix the nodes route back via
 * the client). Every bucket is answered by the node the config predicts, by
 * TCP SYN and by ICMP echo. Then the test moves node number 2 from node2 to
 * node3 behind the tool's back (its own nft commands on the nodes) and the
 * probe exits 3 naming that bucket and node3.
 *
 * Independent of the tool: the MACs the report uses are compared with the
 * ones the test reads itself, the SYN-ACK answers come from listeners the test
 * started, and the tampering is the test's own nft commands.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ClusterNet, CLIENT_IP, CLUSTER_IP, runPrefix } from '../../test/netns-cluster.ts';
import { loadClusters, type ClusterConfig } from '../../sim/core/cluster-config.ts';
import { applyConfig, removeConfig } from '../control/apply.ts';
import type { ProbeReport } from './prober.ts';
import { SCHEMA_VERSION } from '../../sim/core/version.ts';

const PREFIX = runPrefix('cipsim-pr-');
const PORT = 8083;
const SOURCES = '10.201.0.0/24';
const NAMES = ['node1', 'node2', 'node3'];
const ROOT = resolve(import.meta.dirname, '../..');

let net: ClusterNet;
let c: ClusterConfig;
let file: string;

function probe(...extra: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('ip', ['netns', 'exec', net.client, process.execPath, '--import', 'tsx', 'cli/main.ts', 'glue', 'probe', '--config', file, '--sources', SOURCES, '--wait', '1500', ...extra], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Each node's MAC on eth0, read by the test. */
const macs = (): Record<string, string> => Object.fromEntries(net.nodes.map((ns, i) => [NAMES[i]!, (JSON.parse(net.ns(ns, ['ip', '-j', 'link', 'show', 'dev', 'eth0'])) as { address: string }[])[0]!.address]));

/** The node's nft table of this cluster, found by the test (not through the tool's naming code). */
function tableOf(ns: string): string {
  const t = net.ns(ns, ['nft', 'list', 'tables']).split('\n').find((l) => l.startsWith('table ip ') && l.includes('clusterip_sim'));
  if (!t) throw new Error(`no clusterip_sim ip table in ${ns}`);
  return t.split(' ')[2]!;
}

beforeAll(async () => {
  net = await ClusterNet.open({ prefix: PREFIX, nodes: 3, clientHosts: [] }, async (n) => {
    for (const ns of n.nodes) n.ns(ns, ['ip', 'route', 'add', SOURCES, 'via', CLIENT_IP]);
    await n.startNameServers(NAMES, PORT);
    file = join(n.dir, 'cluster.yaml');
    writeFileSync(file, `cluster: { name: web, ip: ${CLUSTER_IP}, interface: eth0, mac: "01:00:5e:00:00:30", backend: nft, seed: 0x5eed, total_nodes: 3 }
nodes:
${n.nodes.map((ns, i) => `  - { name: ${NAMES[i]}, owns: [${i + 1}], host: { netns: ${ns} } }`).join('\n')}
`);
    c = loadClusters(file)[0]!.config;
    const r = await applyConfig(c, {});
    if (!r.ok) throw new Error(`apply failed: ${JSON.stringify(r.hosts.map((h) => h.error))}`);
  });
}, 120_000);

afterAll(async () => {
  try {
    if (c) await removeConfig(c, {});
  } finally {
    net?.teardown();
  }
});

describe('glue probe on a live nft cluster', () => {
  it('TCP SYN: every bucket answered (SYN-ACK) by its predicted node, told apart by the MACs the test reads', () => {
    const r = probe('--port', String(PORT), '--json');
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as ProbeReport & { schema_version: number };
    expect(rep.schema_version).toBe(SCHEMA_VERSION);
    expect(rep.macs).toEqual(macs());
    expect(rep.buckets.map((b) => [b.number, b.expected, b.answered, b.kinds])).toEqual([1, 2, 3].map((k) => [k, [NAMES[k - 1]], [NAMES[k - 1]], ['syn-ack']]));
    // Three different sources: the source address is what this hash reads.
    expect(new Set(rep.buckets.map((b) => b.source)).size).toBe(3);
  }, 90_000);

  it('ICMP echo: every bucket answered by its predicted node', () => {
    const r = probe('--proto', 'icmp');
    expect(r.code, r.stderr).toBe(0);
    for (const k of [1, 2, 3]) expect(r.stdout).toMatch(new RegExp(`node number ${k} \\(bucket ${k - 1}\\): .* predicted ${NAMES[k - 1]}, answered ${NAMES[k - 1]} \\(echo-reply\\)`));
  }, 90_000);

  it('an owner set changed behind the tool\'s back: exit 3, naming the bucket and the node that answered', () => {
    const [, n2, n3] = net.nodes as [string, string, string];
    net.ns(n2, ['nft', 'delete', 'element', 'ip', tableOf(n2), 'owned', '{ 2 }']);
    net.ns(n3, ['nft', 'add', 'element', 'ip', tableOf(n3), 'owned', '{ 2 }']);
    const r = probe('--port', String(PORT));
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.stdout).toMatch(/node number 2 \(bucket 1\): .* predicted node2, answered node3 \(syn-ack\)  <-- DISAGREES/);
    expect(r.stdout).toMatch(/node number 1 \(bucket 0\): .* predicted node1, answered node1 \(syn-ack\)\n/);
    expect(r.stderr).toMatch(/node number 2 \(bucket 1\) predicted node2, answered by node3/);
  }, 90_000);
});
