/**
 * Replay into the real CLUSTERIP module (Debian's 6.1 kernel under qemu,
 * test/qemu): the captures are rewritten on the host exactly as `replay`
 * does, then inside one guest, for each hash mode, each of the three nodes in turn gets its rules
 * from kernel-glue's own clusterip plan (planToShellScript), the replay sink,
 * and the frames through `qtool pcap` on v0; its counting rules (connmark per
 * node number after the CLUSTERIP target) are read with iptables-legacy-save
 * and must equal the prediction node by node.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runGuest, type GuestResult } from '../../test/qemu/guest.ts';
import { addVlanTag, captureRealTraffic } from '../../test/replay-fixtures.ts';
import { parseConfig, type ClusterConfig } from '../../sim/core/cluster-config.ts';
import { planToShellScript, shellJoin } from '../plan.ts';
import { clusteripCreatePlan } from '../backends/clusterip/render.ts';
import { parseMangleSave } from '../backends/shared/iptables-legacy.ts';
import { clusteripCountersOf } from '../backends/clusterip/state.ts';
import { parseIPv4 } from '../../sim/core/addr.ts';
import { parseMac, rewriteCapture, writeRewrittenPcap, type Rewritten } from './rewrite.ts';
import { predict, sinkSteps } from './verify.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const NODES = ['node1', 'node2', 'node3'];
const FIXTURES = ['mix', 'real', 'vlan'] as const;

const MODES = ['sourceip', 'sourceip-sourceport', 'sourceip-sourceport-destport'] as const;
type Mode = (typeof MODES)[number];
const configText = (mode: Mode, seed: string): string => `cluster:
  ip: 10.99.0.100
  interface: v1
  mac: 01:00:5e:00:00:20
  backend: clusterip
  hashmode: ${mode}
  seed: ${seed}
  total_nodes: 3
  kernel: "6.1"
nodes:
  - { name: node1, owns: [1] }
  - { name: node2, owns: [2] }
  - { name: node3, owns: [3] }
`;

const SEEDS: Record<Mode, string> = { sourceip: '0', 'sourceip-sourceport': '0x2545f491', 'sourceip-sourceport-destport': '0xdeadbeef' };
const cfg = {} as Record<Mode, ClusterConfig>;
const rw: Record<string, Rewritten> = {};
let guest: GuestResult;
let dir = '';

/** Sections "@@ <mode> <node> <fixture>" ... of the guest's output. */
function section(mode: Mode, node: string, fx: string): string {
  const m = new RegExp(`^@@ ${mode} ${node} ${fx}\\n([\\s\\S]*?)^@@ end$`, 'm').exec(guest.output);
  if (!m) throw new Error(`no output for ${mode} ${node} ${fx}:\n${guest.output}\n${guest.console.slice(-3000)}`);
  return m[1]!;
}

beforeAll(async () => {
  for (const m of MODES) cfg[m] = parseConfig(configText(m, SEEDS[m]), `${m}.yaml`).config;
  const c = cfg.sourceip;
  dir = mkdtempSync(join(tmpdir(), 'cipsim-rpq-'));
  try {
    const mix = join(dir, 'mix.pcap');
    const g = spawnSync(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'gen', 'default', '--packets', '3000', '--seed', '5', '--out', mix], { cwd: ROOT, encoding: 'utf8' });
    if (g.status !== 0) throw new Error(g.stderr);
    const real = join(dir, 'real.pcap');
    await captureRealTraffic('cipsim-rpq-', real);
    const vlan = join(dir, 'vlan.pcap');
    addVlanTag(real, vlan);
    const files: Record<string, Buffer> = {};
    for (const [name, path] of [['mix', mix], ['real', real], ['vlan', vlan]] as const) {
      rw[name] = rewriteCapture(path, { clusterIp: parseIPv4(c.cluster.ip)!, clusterMac: parseMac(c.cluster.mac) });
      const out = join(dir, `${name}.rw.pcap`);
      writeRewrittenPcap(out, rw[name]!);
      files[`${name}.pcap`] = readFileSync(out);
    }
    const lines = ['set -u', 'echo "@@ loose $(cat /proc/sys/net/netfilter/nf_conntrack_tcp_loose)"'];
    for (const s of sinkSteps(c, true)) lines.push(shellJoin(s.argv));
    for (const mode of MODES) for (const node of NODES) {
      // each node's plan removes the previous rules and waits for the old /proc entry to go (first --new wins, §4.6)
      files[`${mode}-${node}.sh`] = Buffer.from(planToShellScript(clusteripCreatePlan(cfg[mode], node)));
      lines.push(`sh ${mode}-${node}.sh || { echo "@@ plan ${mode} ${node} failed"; exit 1; }`);
      for (const fx of FIXTURES) {
        lines.push(
          'iptables-legacy -t mangle -Z CLUSTERIP_SIM',
          `qtool pcap v0 ${fx}.pcap >/dev/null`,
          // TCG needs ~20 us a packet; wait until the counters stop moving (bounded).
          'prev=; i=0; while [ $i -lt 50 ]; do sleep 0.2; cur=$(iptables-legacy-save -c -t mangle | grep CLUSTERIP_SIM); [ "$cur" = "$prev" ] && break; prev=$cur; i=$((i+1)); done',
          `echo "@@ ${mode} ${node} ${fx}"`, 'iptables-legacy-save -c -t mangle', 'echo "@@ end"',
        );
      }
    }
    guest = await runGuest({ script: lines.join('\n') + '\n', files, timeoutMs: 240_000 });
    if (!guest.ok) throw new Error(`guest failed (exit ${guest.exitCode}):\n${guest.output}\n${guest.console.slice(-4000)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('replay into CLUSTERIP on Debian 6.1 under qemu (3 nodes)', () => {
  it.each(MODES.flatMap((m) => FIXTURES.map((f) => [m, f] as const)))('%s, %s: every node counts exactly the prediction', (mode, fx) => {
    const c = cfg[mode];
    const loose = /^@@ loose (\d)/m.exec(guest.output)![1] === '1';
    const p = predict(c, rw[fx]!, new Map(NODES.map((n) => [n, loose])), 1);
    let total = 0;
    for (const node of NODES) {
      const counted = clusteripCountersOf(parseMangleSave(section(mode, node, fx), c));
      const got = Object.fromEntries(Object.entries(counted).map(([k, v]) => [k, v.packets]));
      const want: Record<string, number> = { 1: 0, 2: 0, 3: 0 };
      for (const [k, v] of p.perHost.get(node)!) want[k] = v;
      expect(got, `${node} ${fx}`).toEqual(want);
      total += [...p.perHost.get(node)!.values()].reduce((a, b) => a + b, 0);
    }
    // not vacuous: packets were accepted, and fragments were part of it for the real capture
    expect(total).toBeGreaterThan(fx === 'mix' ? 100 : 30);
    if (fx !== 'mix') expect(rw[fx]!.stats.fragmentTrains).toBeGreaterThanOrEqual(7);
  });
});
