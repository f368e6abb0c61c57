/**
 * kernel-glue on the running kernel, in network namespaces: a bridge, a
 * client and three nodes sharing the cluster IP; node 3 reached over a real
 * sshd. For xt_cluster and nft: every client flow is answered by exactly the
 * node the simulator predicts; per-node counters agree; move, status, a
 * second apply (no change) and a failing apply (rolled back) behave.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { expectAsConfigured, expectCountersFollow } from '../test/glue-checks.ts';
import { ClusterNet, CLUSTER_IP, SUBNET, sh, runPrefix } from '../test/netns-cluster.ts';
import { parseConfig, type ClusterConfig } from '../sim/core/cluster-config.ts';
import { selectorSpecOf } from '../sim/select/from-config.ts';
import { applyConfig, clusterStatus, moveBucket, removeConfig, type GlueOptions, type StatusReport } from './control/apply.ts';
import { runnerFor, viaNetns } from './exec/runner.ts';
import { createPlan } from './backends/index.ts';
import { isRun, planToShellScript, type RunStep } from './plan.ts';
import { predictNodeNumbers, predictNodes, type Flow } from './predict.ts';
import { parseIPv4 } from '../sim/core/addr.ts';

const PREFIX = runPrefix('cipsim-glue-');
const PORT = 8080;
const CLIENT_HOSTS = Array.from({ length: 70 }, (_, i) => 20 + i);
const NAMES = ['node1', 'node2', 'node3'];

let net: ClusterNet;
let ssh: { identity: string; known_hosts: string; dest: string };
let roundNo = 0;

function configText(backend: 'xt_cluster' | 'nft', seed: string, owns: string[]): string {
  return `cluster:
  ip: ${CLUSTER_IP}
  interface: eth0
  mac: 01:00:5e:00:00:20
  backend: ${backend}
  seed: ${seed}
  total_nodes: 3
nodes:
  - { name: node1, owns: ${owns[0]}, host: { netns: ${PREFIX}n1 } }
  - { name: node2, owns: ${owns[1]}, host: { netns: ${PREFIX}n2 } }
  - { name: node3, owns: ${owns[2]}, host: { ssh: ${ssh.dest}, identity: ${ssh.identity}, known_hosts: ${ssh.known_hosts} } }
`;
}

function config(backend: 'xt_cluster' | 'nft', seed = '0x9e3779b9', owns = ['[1]', '[2]', '[3]']): { c: ClusterConfig; file: string } {
  const text = configText(backend, seed, owns);
  const file = join(net.dir, `${backend}-${seed}-${owns.join('').replace(/\W/g, '')}.yaml`);
  writeFileSync(file, text);
  return { c: parseConfig(text, file).config, file };
}

/** The test process is outside every namespace: ssh must start from the client namespace, which can reach node3. */
const opts = (extra: GlueOptions = {}): GlueOptions => ({
  runnerOf: (n) => (typeof n.host === 'object' && 'ssh' in n.host ? viaNetns(net.client, runnerFor(n.name, n.host)) : runnerFor(n.name, n.host)),
  ...extra,
});

/** Everything of ours a host has, without counters: equal dumps = nothing changed. */
function dump(i: number): string {
  const ns = net.nodes[i]!;
  return [
    net.ns(ns, ['nft', '-s', 'list', 'ruleset']),
    net.ns(ns, ['iptables-legacy-save']).replace(/^#.*$/gm, '').replace(/\[\d+:\d+\]/g, ''),
    net.ns(ns, ['ip', 'maddr', 'show', 'dev', 'eth0']),
    net.ns(ns, ['cat', '/proc/sys/net/netfilter/nf_conntrack_tcp_loose']),
  ].join('\n---\n');
}
const dumps = (): string[] => [0, 1, 2].map(dump);

/** One round of client flows, each answered by one node; compared with the simulator and with the counters. */
async function trafficRound(c: ClusterConfig): Promise<{ answers: string[]; predicted: string[] }> {
  const r = roundNo++;
  const flows = CLIENT_HOSTS.flatMap((h, i) => [0, 1].map((j) => ({ src: `${SUBNET}.${h}`, sport: 20000 + r * 400 + j * 200 + i })));
  const sim: Flow[] = flows.map((f) => ({ proto: 6, saddr: parseIPv4(f.src)!, sport: f.sport, daddr: parseIPv4(CLUSTER_IP)!, dport: PORT }));
  const predicted = predictNodes(c, sim);
  const before = await clusterStatus(c, opts());
  const answers = net.connectAll(flows, PORT);
  const after = await clusterStatus(c, opts());
  expect(answers).toEqual(predicted);
  // Per-node counters: on each host exactly the node numbers its flows hashed to went up.
  const numbers = predictNodeNumbers(selectorSpecOf(c), sim);
  expectCountersFollow(before, after, numbers, predicted);
  return { answers, predicted };
}

beforeAll(async () => {
  net = await ClusterNet.open({ prefix: PREFIX, nodes: 3, clientHosts: CLIENT_HOSTS }, async (n) => {
    ssh = await n.startSshd(2);
    await n.startNameServers(NAMES, PORT);
  });
});

afterAll(() => {
  net?.teardown();
});

describe.each(['xt_cluster', 'nft'] as const)('backend %s on the running kernel', (backend) => {
  it('apply puts every host in place; status reads it back; flows go to the predicted node', async () => {
    await removeConfig(config('xt_cluster').c, opts());
    const { c } = config(backend);
    const rep = await applyConfig(c, opts());
    expect(rep.hosts.map((h) => [h.host, h.outcome, h.error])).toEqual(NAMES.map((n) => [n, 'applied', undefined]));
    // Between 'remove' and this apply no ARP mangling existed: a node's own ARP request for a client may have taught
    // the client that node's real MAC for the cluster IP (the poisoning of §4.7). Real migrations have the same gap.
    net.ns(net.client, ['ip', 'neigh', 'flush', 'to', CLUSTER_IP]);
    const s = await clusterStatus(c, opts());
    expectAsConfigured(s, NAMES);
    expect(s.hosts.map((h) => h.actual)).toEqual([[1], [2], [3]]);
    const { answers } = await trafficRound(c);
    // every node answered something: the spread is real, not one node taking all
    for (const n of NAMES) expect(answers.filter((a) => a === n).length, n).toBeGreaterThan(10);
    // ARP for the cluster IP was answered with the cluster MAC (nft arp mangling), so the client sends to the multicast MAC.
    expect(net.ns(net.client, ['ip', 'neigh', 'show', CLUSTER_IP, 'dev', 'eth0'])).toContain('lladdr 01:00:5e:00:00:20');
  });

  it('a second apply changes nothing (same rule dumps, every host unchanged)', async () => {
    const { c } = config(backend);
    const before = dumps();
    const rep = await applyConfig(c, opts());
    expect(rep.hosts.map((h) => h.outcome)).toEqual(['unchanged', 'unchanged', 'unchanged']);
    expect(rep.hosts.every((h) => h.steps.length === 0)).toBe(true);
    expect(dumps()).toEqual(before);
    // --dry-run with another config: says what it would do, changes nothing
    const dry = await applyConfig(config(backend, '0x1', ['[2]', '[3]', '[1]']).c, opts({ dryRun: true }));
    expect(dry.hosts.map((h) => h.outcome)).toEqual(['would change', 'would change', 'would change']);
    expect(dry.hosts[0]!.steps.some((x) => x.outcome === 'would-run')).toBe(true);
    expect(dumps()).toEqual(before);
  });

  it('move shifts a bucket, traffic follows, status shows the drift; apply puts the config back', async () => {
    const { c } = config(backend);
    const rep = await moveBucket(c, 1, 'node3', 'add-first', opts());
    expect(rep.ok).toBe(true);
    expect(rep.hosts.map((h) => [h.host, h.before, h.after])).toEqual([['node3', [3], [1, 3]], ['node1', [1], []]]);
    const s = await clusterStatus(c, opts());
    expect(s.owners).toEqual({ 1: ['node3'], 2: ['node2'], 3: ['node3'] });
    expect(s.drift).toBe(true);
    expect(s.hosts.find((h) => h.host === 'node1')!.missing).toEqual([1]);
    expect(s.hosts.find((h) => h.host === 'node3')!.extra).toEqual([1]);
    const moved = config(backend, '0x9e3779b9', ['[]', '[2]', '[1, 3]']).c;
    const { answers } = await trafficRound(moved);
    expect(answers.includes('node1')).toBe(false);
    // release-first (formerly remove-first): the old owner lets go before the new one takes it
    const rf = await moveBucket(c, 2, 'node1', 'release-first', opts());
    expect(rf.hosts.map((h) => [h.host, h.before, h.after])).toEqual([['node2', [2], []], ['node1', [], [2]]]);
    expect((await clusterStatus(c, opts())).owners).toEqual({ 1: ['node3'], 2: ['node1'], 3: ['node3'] });
    const back = await applyConfig(c, opts());
    // gainers first: node2 gets 2 back, node1 swaps 2 for 1, node3 gives 1 up
    expect(back.hosts.map((h) => [h.host, h.outcome])).toEqual([['node2', 'owners updated'], ['node1', 'owners updated'], ['node3', 'owners updated']]);
    expectAsConfigured(await clusterStatus(c, opts()), NAMES);
  });

  it('a command failing mid-apply leaves every host as it was', async () => {
    const before = dumps();
    const other = config(backend, '0x12345678', ['[3]', '[2]', '[1]']).c;
    const rep = await applyConfig(other, opts({ inject: { host: 'node2', afterStep: 1, argv: ['false'] } }));
    expect(rep.ok).toBe(false);
    const by = Object.fromEntries(rep.hosts.map((h) => [h.host, h]));
    // node2 keeps its owners, so it goes last: node1 and node3 (over ssh) were changed and are rolled back.
    expect(rep.hosts.map((h) => h.host)).toEqual(['node1', 'node3', 'node2']);
    expect(by.node2!.outcome).toBe('failed, rolled back');
    expect(by.node2!.error).toContain(`node2 (netns ${PREFIX}n2): 'false' failed (exit 1)`);
    expect([by.node1!.outcome, by.node3!.outcome]).toEqual(['rolled back', 'rolled back']);
    expect(dumps()).toEqual(before);
    const { c } = config(backend);
    expectAsConfigured(await clusterStatus(c, opts()), NAMES);
    await trafficRound(c);
  });
});

describe('backend clusterip on the running kernel', () => {
  it('is refused on a 6.3+ kernel before anything changes, saying what to use instead', async () => {
    const kernel = sh(['uname', '-r']).trim();
    const m = /^(\d+)\.(\d+)/.exec(kernel)!;
    if (Number(m[1]) * 1000 + Number(m[2]) < 6003) return expect.fail(`this test expects a 6.3+ kernel (CLUSTERIP itself is tested under qemu), got ${kernel}`);
    const before = dumps();
    const text = configText('nft', '0x1', ['[1]', '[2]', '[3]']).replace('backend: nft', 'backend: clusterip\n  hashmode: sourceip');
    const c = parseConfig(text, 'clusterip.yaml').config;
    const rep = await applyConfig(c, opts());
    expect(rep.ok).toBe(false);
    expect(rep.hosts.map((h) => h.outcome)).toEqual(['refused', 'refused', 'refused']);
    expect(rep.hosts[0]!.error).toContain(`kernel ${kernel} has no CLUSTERIP target (removed in Linux 6.3); use backend xt_cluster or nft`);
    expect(dumps()).toEqual(before);
  });
});

describe('unreachable hosts', () => {
  it('stop apply before any host changes, naming host and command', async () => {
    const { c } = config('nft');
    const before = dumps();
    const broken = structuredClone(c);
    broken.cluster.seed = 0x5eed;
    broken.nodes[1]!.host = { netns: `${PREFIX}gone` };
    const badKey = structuredClone(broken);
    badKey.nodes[1]!.host = c.nodes[1]!.host;
    badKey.nodes[2]!.host = { ssh: ssh.dest, identity: `${ssh.identity}.pub`, known_hosts: ssh.known_hosts };
    for (const cfg of [broken, badKey]) {
      const rep = await applyConfig(cfg, opts());
      expect(rep.ok).toBe(false);
      const bad = rep.hosts.find((h) => h.outcome === 'unreachable')!;
      expect((bad.error ?? '').startsWith(cfg === broken ? `node2 (netns ${PREFIX}gone): 'uname -r' failed` : `node3 (ssh root@10.200.0.13 via netns ${PREFIX}c): 'uname -r' failed (exit 255) (ssh could not connect or log in`), bad.error).toBe(true);
      expect(rep.hosts.filter((h) => h !== bad).map((h) => h.outcome)).toEqual(['not attempted', 'not attempted']);
      expect(dumps()).toEqual(before);
    }
  });
});

describe('the glue command line', () => {
  it('status --json and a no-op apply through the CLI, run from the client namespace (ssh to node3 for real)', () => {
    const { file } = config('nft');
    const cli = (args: string[]): string =>
      execFileSync('ip', ['netns', 'exec', net.client, process.execPath, '--import', 'tsx', 'cli/main.ts', 'glue', ...args, '--config', file], { encoding: 'utf8', cwd: join(import.meta.dirname, '..') });
    const s = JSON.parse(cli(['status', '--json'])) as StatusReport;
    expect(s.drift).toBe(false);
    expect(s.hosts.map((h) => [h.host, h.where, h.actual])).toEqual([['node1', `netns ${PREFIX}n1`, [1]], ['node2', `netns ${PREFIX}n2`, [2]], ['node3', 'ssh root@10.200.0.13', [3]]]);
    expect(cli(['plan']).match(/apply would change nothing here/g)?.length).toBe(3);
    const a = JSON.parse(cli(['apply', '--json'])) as { ok: boolean; hosts: { outcome: string }[] };
    expect(a.ok).toBe(true);
    expect(a.hosts.map((h) => h.outcome)).toEqual(['unchanged', 'unchanged', 'unchanged']);
    // move --save: the hosts and the file change together, so status shows no drift afterwards
    const m = JSON.parse(cli(['move', '--bucket', '1', '--to', 'node2', '--save', '--json'])) as { ok: boolean };
    expect(m.ok).toBe(true);
    const s2 = JSON.parse(cli(['status', '--json'])) as StatusReport;
    expect([s2.drift, s2.owners]).toEqual([false, { 1: ['node2'], 2: ['node2'], 3: ['node3'] }]);
    expect(readFileSync(file, 'utf8')).toContain('- { name: node2, owns: [ 1, 2 ]');
    const r = JSON.parse(cli(['remove', '--json'])) as { ok: boolean; hosts: { outcome: string }[] };
    expect(r.hosts.map((h) => h.outcome)).toEqual(['removed', 'removed', 'removed']);
    for (const ns of net.nodes) expect(sh(['ip', 'netns', 'exec', ns, 'nft', 'list', 'tables'])).not.toContain('clusterip_sim');
  });
});

describe('plans as shell scripts', () => {
  it('the nft plans, run as POSIX sh scripts in the node namespaces, give the same cluster as apply', async () => {
    const { c } = config('nft');
    for (const [i, n] of NAMES.entries()) net.ns(net.nodes[i]!, ['sh', '-c', planToShellScript(createPlan(c, n))]);
    net.ns(net.client, ['ip', 'neigh', 'flush', 'to', CLUSTER_IP]);
    expectAsConfigured(await clusterStatus(c, opts()), NAMES);
    await trafficRound(c);
    // and the script is idempotent too
    const before = dumps();
    net.ns(net.nodes[0]!, ['sh', '-c', planToShellScript(createPlan(c, 'node1'))]);
    expect(dumps()).toEqual(before);
    await removeConfig(c, opts());
  });

  it('the clusterip rule set passes iptables-legacy-restore --test (libipt_CLUSTERIP option checks)', () => {
    const text = configText('nft', '0xfeedface', ['[]', '[1, 3]', '[2]']).replace('backend: nft', 'backend: clusterip\n  hashmode: sourceip-sourceport-destport');
    const c = parseConfig(text, 'clusterip.yaml').config;
    for (const n of NAMES) {
      const restore = createPlan(c, n).steps.find((s): s is RunStep => isRun(s) && s.argv[0] === 'iptables-legacy-restore')!;
      expect(net.ns(net.client, ['iptables-legacy-restore', '--test', '--noflush'], restore.stdin)).toBe('');
    }
    // and the userspace check really runs: a unicast cluster MAC is refused
    const bad = createPlan(c, 'node1').steps.find((s): s is RunStep => isRun(s) && s.argv[0] === 'iptables-legacy-restore')!.stdin!.replace('01:00:5E:00:00:20', '02:00:5E:00:00:20');
    expect(() => net.ns(net.client, ['iptables-legacy-restore', '--test', '--noflush'], bad)).toThrow(/multicast/);
  });
});
