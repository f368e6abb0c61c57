/**
 * Early signs of trouble on the running kernel: two nft agents in network
 * namespaces ping their default gateway (the client namespace) through
 * raw-socket. The test installs its own nft table in node2's namespace that
 * drops the echo replies; node2 must leave through the normal leave path
 * (its node number moves to node1, node2 exits 0) while its heartbeats still
 * flow, so no peer declares it dead, and with add-first handover (node1
 * claims before node2 releases) no bucket is orphaned even for a moment.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ClusterNet, CLUSTER_IP, CLIENT_IP, nodeIp, runPrefix } from '../../test/netns-cluster.ts';
import { readLog, until, type LogLine } from '../../test/agent-log.ts';
import { parseConfig, type ClusterConfig } from '../../sim/core/cluster-config.ts';
import { clusterStatus, removeConfig } from '../control/apply.ts';

const PREFIX = runPrefix('cipsim-gw-');
const MAIN = resolve(__dirname, '../../cli/main.ts');
const NAMES = ['node1', 'node2'];
const INTERVAL = 0.2, DEAD_AFTER = 5, PING_S = 0.1, FAILS = 3;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let net: ClusterNet;
let file: string;
let c: ClusterConfig;
const procs: ChildProcess[] = [];

const logOf = (n: string): string => join(net.dir, `${n}.jsonl`);

beforeAll(() => {
  net = new ClusterNet({ prefix: PREFIX, nodes: 2, clientHosts: [] });
  net.setup();
  const keyFile = join(net.dir, 'hb.key');
  writeFileSync(keyFile, 'gateway-test-heartbeat-key-0123456789\n');
  chmodSync(keyFile, 0o600);
  file = join(net.dir, 'cluster.yaml');
  writeFileSync(file, `cluster: { ip: ${CLUSTER_IP}, interface: eth0, mac: "01:00:5e:00:00:20", backend: nft, seed: 0x9a7e, total_nodes: 2 }
nodes:
  - { name: node1, owns: [1], host: { netns: ${PREFIX}n1 }, address: ${nodeIp(1)} }
  - { name: node2, owns: [2], host: { netns: ${PREFIX}n2 }, address: ${nodeIp(2)} }
heartbeat: { interval_s: ${INTERVAL}, dead_after: ${DEAD_AFTER}, port: 7948, key_file: ${keyFile} }
health: { gateway: { address: ${CLIENT_IP}, interval_s: ${PING_S}, fails: ${FAILS} } }
failover: { handover: add-first }
`);
  c = parseConfig(readFileSync(file, 'utf8'), file).config;
}, 60_000);

afterAll(async () => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  try {
    await removeConfig(c);
  } finally {
    net?.teardown();
  }
});

describe('agent: the gateway stops answering', () => {
  it('the node leaves before anyone declares it dead; its bucket moves, none is orphaned', async () => {
    for (const [i, n] of NAMES.entries()) {
      procs.push(await net.startDaemon(net.nodes[i]!, [process.execPath, '--import', 'tsx', MAIN, 'glue', 'agent', '--config', file, '--node', n, '--json-log', logOf(n), '--leave-timeout', '3'], /"event":"start"/, 60_000));
    }
    const exit2 = new Promise<number | null>((r) => procs[1]!.on('exit', (code) => r(code)));
    await until('owner sets {1} and {2}', async () => JSON.stringify((await clusterStatus(c)).hosts.map((h) => h.actual)) === '[[1],[2]]', 30_000);
    // The gateway answers both while nothing is dropped.
    await sleep(1000);
    for (const n of NAMES) expect(readLog(logOf(n)).filter((l) => l.event === 'trouble'), n).toEqual([]);

    const t0 = Date.now();
    net.ns(net.nodes[1]!, ['nft', '-f', '-'], 'table ip cipsim_gw_drop {\n\tchain input {\n\t\ttype filter hook input priority -300; policy accept;\n\t\ticmp type echo-reply drop\n\t}\n}\n');
    expect(await Promise.race([exit2, sleep(15_000).then(() => 'timeout')]), 'node2 exits after its leave').toBe(0);
    const l2 = readLog(logOf('node2'));
    const trouble = l2.find((l) => l.event === 'trouble')!;
    expect(trouble).toMatchObject({ check: 'gateway', gateway: CLIENT_IP, misses: FAILS });
    expect(l2.some((l) => l.event === 'leave' && l.peer === 'node2')).toBe(true);
    expect(l2.some((l) => l.event === 'left')).toBe(true);
    // Noticed in about FAILS ping intervals, well before dead_after heartbeats (the heartbeats never stopped anyway).
    const noticedS = (Date.parse(trouble.ts) - t0) / 1000;
    console.log(`[gateway] echo replies dropped -> trouble after ${noticedS.toFixed(3)} s (ping every ${PING_S} s, ${FAILS} misses; dead_after x interval = ${DEAD_AFTER * INTERVAL} s)`);
    const l1 = readLog(logOf('node1'));
    expect(l1.some((l) => l.event === 'leave' && l.peer === 'node2')).toBe(true);
    expect(l1.filter((l) => l.event === 'dead' && l.peer === 'node2' && Date.parse(l.ts) < Date.parse(l2.find((x) => x.event === 'exit')!.ts))).toEqual([]);
    expect(l1.filter((l) => (l.event === 'orphaned') && Date.parse(l.ts) >= t0)).toEqual([]);
    const s = await clusterStatus(c);
    expect(s.hosts.map((h) => h.actual)).toEqual([[1, 2], []]);
    expect(s.orphaned).toEqual([]);
  });
});
