/**
 * kernel-glue's clusterip backend on the real module (Debian's 6.1 kernel under
 * qemu, test/qemu): the plans glue renders, run as guest scripts, give the node
 * its owner set in /proc (read back), a second apply changes nothing, an owner
 * move rewrites /proc and traffic follows it (the plan's per-node counters
 * equal the prediction), `glue import` reads the applied rules and /proc back
 * into the same config, and remove makes the kernel drop the config.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { runGuest, type GuestResult } from '../test/qemu/guest.ts';
import { tupleFile, type ProbeTuple } from '../test/qemu/clusterip-probe.ts';
import { parseConfig, type ClusterConfig } from '../sim/core/cluster-config.ts';
import { selectorSpecOf } from '../sim/select/from-config.ts';
import { planToShellScript } from './plan.ts';
import { createPlan, ownerPlan, removePlan } from './backends/index.ts';
import { parseMangleSave } from './backends/shared/iptables-legacy.ts';
import { clusteripCountersOf, parseProcOwners } from './backends/clusterip/state.ts';
import { buildSelector } from '../sim/select/build.ts';
import { createBatch } from '../sim/traffic/batch.ts';
import { writeTupleV4 } from '../sim/traffic/tuple.ts';
import { formatIPv4 } from '../sim/core/addr.ts';
import { parseSave } from './backends/shared/iptables-save.ts';
import { findClusterips } from './backends/clusterip/discover.ts';
import { assemble } from './import/assemble.ts';

const CONFIG = `cluster:
  ip: 192.0.2.10
  interface: v1
  mac: 01:00:5e:00:00:20
  backend: clusterip
  hashmode: sourceip-sourceport-destport
  seed: 0x1234abcd
  total_nodes: 4
  kernel: "6.1"
nodes:
  - { name: nodeA, owns: [1, 3] }
  - { name: nodeB, owns: [2, 4] }
`;
const PROC = '/proc/net/ipt_CLUSTERIP/192.0.2.10';

let cfg: ClusterConfig;
let guest: GuestResult;
const tuples: ProbeTuple[] = [];

function section(name: string): string {
  const m = new RegExp(`^@@ ${name}\\n([\\s\\S]*?)^@@ end$`, 'm').exec(guest.output);
  if (!m) throw new Error(`no section ${name} in the guest output:\n${guest.output}\n--- console ---\n${guest.console.slice(-3000)}`);
  return m[1]!;
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('this test boots a kernel under qemu and must run as root');
  cfg = parseConfig(CONFIG, 'clusterip.yaml').config;
  // TCP and UDP flows from varied sources; valid first packets (qtool computes the checksums).
  let s = 0x9e3779b9;
  const r = (): number => (s = (Math.imul(s ^ (s >>> 16), 0x45d9f3b) + 0x3c6ef372) >>> 0);
  for (let i = 0; i < 600; i++) {
    tuples.push({ proto: i % 3 === 0 ? 17 : 6, saddr: formatIPv4(0x0b000000 + (r() & 0x00ffffff)), sport: 1024 + (r() % 60000), daddr: '192.0.2.10', dport: [80, 443, 53][i % 3]! });
  }
  const save = `iptables-legacy-save -c -t mangle | grep -v '^#'`;
  const sec = (name: string, cmd: string): string => `echo '@@ ${name}'; ${cmd}; echo '@@ end'`;
  const script = [
    'set -u',
    'sh apply.sh',
    sec('proc-applied', `cat ${PROC}`),
    sec('import-save', 'iptables-legacy-save'),
    `iptables-legacy-save -t mangle | grep -v '^#' > /tmp/rules1`,
    'sh apply.sh',
    sec('proc-reapplied', `cat ${PROC}`),
    `iptables-legacy-save -t mangle | grep -v '^#' > /tmp/rules2`,
    sec('same-rules', 'cmp -s /tmp/rules1 /tmp/rules2 && echo same || diff /tmp/rules1 /tmp/rules2'),
    'sh move.sh',
    sec('proc-moved', `cat ${PROC}`),
    'qtool inject v0 01:00:5E:00:00:20 tuples.txt',
    'sleep 1',
    sec('counters', save),
    sec('mac', 'grep v1 /proc/net/dev_mcast || true'),
    'sh remove.sh',
    'sleep 0.3',
    sec('removed', `[ -e ${PROC} ] && echo present || echo gone; grep v1 /proc/net/dev_mcast || true`),
  ].join('\n');
  guest = await runGuest({
    script,
    files: {
      'apply.sh': planToShellScript(createPlan(cfg, 'nodeA')),
      'move.sh': planToShellScript(ownerPlan(cfg, 'nodeA', [1, 3], [2, 3])),
      'remove.sh': planToShellScript(removePlan(cfg, 'nodeA')),
      'tuples.txt': tupleFile(tuples),
    },
    timeoutMs: 240_000,
  });
  if (!guest.ok) throw new Error(`guest failed (exit ${guest.exitCode}, timed out: ${guest.timedOut}):\n${guest.output}\n--- console ---\n${guest.console.slice(-4000)}`);
}, 300_000);

describe('kernel-glue clusterip plans on Debian 6.1 (real ipt_CLUSTERIP)', () => {
  it('apply gives the node its owner set, read back from /proc', () => {
    expect(parseProcOwners(section('proc-applied'))).toEqual([1, 3]);
  });
  it('glue import reads the applied rules and /proc back into the same config', () => {
    const d = findClusterips(parseSave(section('import-save'), 'iptables-legacy'), (ip) => (ip === '192.0.2.10' ? parseProcOwners(section('proc-applied')) : null));
    expect(d.skipped).toEqual([]);
    const r = assemble([{ node: { name: 'nodeA', host: 'local' }, found: d.found }]);
    expect(r.problems).toEqual([]);
    // The kernel release is not in the rules (the config names it for the simulator); everything else round-trips.
    const { kernel: _k, ...cluster } = cfg.cluster;
    expect(r.configs).toEqual([{ cluster, nodes: [{ name: 'nodeA', owns: [1, 3], host: 'local' }] }]);
  });
  it('a second apply changes nothing', () => {
    expect(parseProcOwners(section('proc-reapplied'))).toEqual([1, 3]);
    expect(section('same-rules').trim()).toBe('same');
  });
  it('an owner move rewrites /proc and the traffic follows: per-node counters equal the prediction', () => {
    expect(parseProcOwners(section('proc-moved'))).toEqual([2, 3]);
    const sel = buildSelector(selectorSpecOf(cfg));
    const b = createBatch(tuples.length);
    tuples.forEach((t, i) => {
      const [a, bb, c, d] = t.saddr.split('.').map(Number) as [number, number, number, number];
      writeTupleV4(b, i, t.proto, ((a << 24) | (bb << 16) | (c << 8) | d) >>> 0, t.sport, 0xc000020a, t.dport);
    });
    b.count = tuples.length;
    const out = new Int32Array(tuples.length);
    sel.select(b, out);
    const want: Record<number, number> = { 1: 0, 2: 0, 3: 0, 4: 0 };
    for (const x of out) if (x === 1 || x === 2) want[x + 1]! += 1; // node numbers 2 and 3 are owned now
    const got = clusteripCountersOf(parseMangleSave(section('counters'), cfg));
    const counted = Object.fromEntries([1, 2, 3, 4].map((k) => [k, got[k]?.packets ?? 0]));
    expect(counted).toEqual(want);
    expect(want[2]! + want[3]!).toBeGreaterThan(200);
    console.log(`clusterip on 6.1: ${want[2]! + want[3]!} of ${tuples.length} injected packets accepted exactly where predicted (node numbers 2, 3)`);
  });
  it('the cluster MAC is on the interface while the rule exists; remove drops the config', () => {
    // /proc/net/dev_mcast lists link-layer multicast addresses as bare hex.
    expect(section('mac')).toMatch(/01005e000020/);
    const removed = section('removed');
    expect(removed).toMatch(/^gone$/m);
    expect(removed).not.toMatch(/01005e000020/);
  });
});
