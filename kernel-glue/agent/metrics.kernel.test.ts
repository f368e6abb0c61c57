/**
 * The agent's /metrics on the running kernel: two agents (nft backend) in
 * network namespaces, each serving metrics on 127.0.0.1 inside its
 * namespace; a plain HTTP client (node:http, run in the namespace) scrapes
 * them. The text parses as the Prometheus exposition format, and its counters
 * move as the test drives the cluster: beats sent and received grow, client
 * flows raise the per-node accepted packets, and when node2 is killed node1
 * counts the death and the takeover and shows itself as owner of node2's
 * node number.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ClusterNet, CLUSTER_IP, SUBNET, nodeIp, runPrefix } from '../../test/netns-cluster.ts';
import { parsePrometheus, sampleValue, type Sample } from '../../test/prometheus.ts';
import { parseConfig } from '../../sim/core/cluster-config.ts';
import { removeConfig } from '../control/apply.ts';

const PREFIX = runPrefix('cipsim-met-');
const MAIN = resolve(__dirname, '../../cli/main.ts');
const METRICS_PORT = 9464;
const PORT = 8082;
const NAMES = ['node1', 'node2'];
const CLIENT_HOSTS = Array.from({ length: 16 }, (_, i) => 60 + i);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let net: ClusterNet;
let file: string;

function configText(keyFile: string): string {
  return `cluster: { ip: ${CLUSTER_IP}, interface: eth0, mac: "01:00:5e:00:00:20", backend: nft, seed: 0x5eed, total_nodes: 2 }
nodes:
  - { name: node1, owns: [1], host: { netns: ${PREFIX}n1 }, address: ${nodeIp(1)} }
  - { name: node2, owns: [2], host: { netns: ${PREFIX}n2 }, address: ${nodeIp(2)} }
heartbeat: { interval_s: 0.2, dead_after: 3, port: 7947, key_file: ${keyFile} }
metrics: { port: ${METRICS_PORT} }
`;
}

/** GET /metrics from inside a node's namespace with node:http; the parsed samples. */
function scrape(i: number): Sample[] {
  const code = `require('http').get({host:'127.0.0.1',port:${METRICS_PORT},path:'/metrics'},r=>{let b='';r.setEncoding('utf8');r.on('data',d=>b+=d);r.on('end',()=>{if(r.statusCode!==200||!/^text\\/plain; version=0\\.0\\.4/.test(r.headers['content-type']))process.exit(2);process.stdout.write(b)})}).on('error',e=>{console.error(e.message);process.exit(1)})`;
  return parsePrometheus(net.ns(net.nodes[i]!, [process.execPath, '-e', code])).samples;
}

async function until<T>(what: string, fn: () => T | null | undefined | false, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

const procs: ChildProcess[] = [];

beforeAll(async () => {
  net = await ClusterNet.open({ prefix: PREFIX, nodes: 2, clientHosts: CLIENT_HOSTS }, async (n) => {
    await n.startNameServers(NAMES, PORT);
    const keyFile = join(n.dir, 'hb.key');
    writeFileSync(keyFile, 'metrics-test-heartbeat-key-0123456789\n');
    chmodSync(keyFile, 0o600);
    file = join(n.dir, 'cluster.yaml');
    writeFileSync(file, configText(keyFile));
  });
}, 120_000);

afterAll(async () => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  try {
    await removeConfig(parseConfig(readFileSync(file, 'utf8'), file).config);
  } finally {
    net?.teardown();
  }
});

describe('agent /metrics', () => {
  it('parses as Prometheus text and its counters follow beats, traffic and a takeover', async () => {
    for (const [i, n] of NAMES.entries()) {
      procs.push(await net.startDaemon(net.nodes[i]!, [process.execPath, '--import', 'tsx', MAIN, 'glue', 'agent', '--config', file, '--node', n, '--json-log', join(net.dir, `${n}.jsonl`)], /"event":"start"/, 60_000).catch(async (e) => {
        await sleep(500);
        throw new Error(`agent ${n}: ${(e as Error).message}\n${readFileSync(join(net.dir, `${n}.jsonl`), 'utf8')}`);
      }));
    }
    // Both established with one node number each (the policy's owner sets for two live nodes).
    await until('both agents serve metrics with one node number each', () => {
      try {
        return [0, 1].every((i) => scrape(i).filter((s) => s.name === 'clusterip_sim_agent_kernel_owned').length === 1);
      } catch {
        return false;
      }
    }, 30_000);
    const a = scrape(0);
    const sent0 = sampleValue(a, 'clusterip_sim_agent_heartbeats_sent_total', { node: 'node1' })!;
    const recv0 = sampleValue(a, 'clusterip_sim_agent_heartbeats_received_total', { node: 'node1', peer: 'node2' })!;
    expect(sent0).toBeGreaterThan(0);
    expect(recv0).toBeGreaterThan(0);
    await sleep(1000);
    const b = scrape(0);
    expect(sampleValue(b, 'clusterip_sim_agent_heartbeats_sent_total', { node: 'node1' })!).toBeGreaterThan(sent0);
    expect(sampleValue(b, 'clusterip_sim_agent_heartbeats_received_total', { node: 'node1', peer: 'node2' })!).toBeGreaterThan(recv0);

    // Client flows: each node's accepted-packets counter for its own node number rises (read back every interval, at least 1 s).
    const owned = (s: Sample[]): string => s.find((x) => x.name === 'clusterip_sim_agent_kernel_owned')!.labels.node_number!;
    const mine = [owned(b), owned(scrape(1))];
    const before = [0, 1].map((i) => sampleValue(scrape(i), 'clusterip_sim_agent_accepted_packets_total', { node_number: mine[i]! }) ?? 0);
    net.ns(net.client, ['ip', 'neigh', 'flush', 'all']);
    const answers = net.connectAll(CLIENT_HOSTS.map((h, j) => ({ src: `${SUBNET}.${h}`, sport: 40000 + j })), PORT);
    for (const n of NAMES) expect(answers, n).toContain(n);
    await until('accepted packets rose on both nodes', () => [0, 1].every((i) => (sampleValue(scrape(i), 'clusterip_sim_agent_accepted_packets_total', { node_number: mine[i]! }) ?? 0) > before[i]!), 5000);

    // node2 dies: node1 declares it dead, takes its node number over, and says so.
    const takeovers0 = sampleValue(scrape(0), 'clusterip_sim_agent_takeovers_total')!;
    procs[1]!.kill('SIGKILL');
    const after = await until('node1 took over', () => {
      const s = scrape(0);
      return sampleValue(s, 'clusterip_sim_agent_takeovers_total')! > takeovers0 ? s : null;
    }, 10_000);
    expect(sampleValue(after, 'clusterip_sim_agent_deaths_total')).toBe(1);
    expect(after.filter((s) => s.name === 'clusterip_sim_agent_owner' && s.labels.owner === 'node1').map((s) => s.labels.node_number).sort()).toEqual(['1', '2']);
    expect(after.filter((s) => s.name === 'clusterip_sim_agent_kernel_owned').map((s) => s.labels.node_number).sort()).toEqual(['1', '2']);
  });
});
