/**
 * Issue 17's independent kernel check for CLUSTERIP, on Debian's 6.1 kernel
 * under qemu (test/qemu/guest.ts; CLUSTERIP left the kernel in 6.3).
 *
 * The rules are written here: in mangle PREROUTING on the guest's receiving
 * veth, the CLUSTERIP rule for node k of 3, then a DROP whose counter is the
 * node's count of packets CLUSTERIP let through (a sink before conntrack
 * confirmation: each packet judged alone). The guest's qtool sends the same
 * captures as the namespace test (test/kernel-captures.ts) to the cluster MAC,
 * once per node. Conntrack defragments before mangle (-400 < -150), and
 * CLUSTERIP drops what conntrack marks INVALID on every node
 * (kernel-semantics §4.2), so the counters show one per datagram and none
 * for the lone FINs, RSTs, SYN-ACKs and unanswered ICMP replies.
 */
import { describe, expect, it } from 'vitest';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runGuest } from '../../test/qemu/guest.ts';
import { capturePcap, firstPacketsCapture, mixedCapture } from '../../test/kernel-captures.ts';
import { runCli } from '../../test/cli.ts';

const CIP = '10.200.0.100';
const N = 3;
const HASH_INIT = 0x2a;
const MODES = ['sourceip', 'sourceip-sourceport', 'sourceip-sourceport-destport'] as const;
const CAPTURES = { mixed: capturePcap(mixedCapture(CIP, 30)), firsts: capturePcap(firstPacketsCapture(CIP, 100)) };

/** The guest's job: per capture, mode and node, load the rules, send, print the DROP rule's packet count. */
function script(): string {
  const lines = ['set -e'];
  for (const cap of Object.keys(CAPTURES)) {
    for (const mode of MODES) {
      for (let k = 1; k <= N; k++) {
        lines.push(
          'iptables-legacy -t mangle -F',
          // A config is keyed by cluster IP and the first --new wins (§4.6): wait until the old one is gone.
          'i=0; while [ -e /proc/net/ipt_CLUSTERIP/' + CIP + ' ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done',
          `iptables-legacy -t mangle -A PREROUTING -d ${CIP}/32 -i v1 -j CLUSTERIP --new --hashmode ${mode} --clustermac 01:00:5E:00:00:20 --total-nodes ${N} --local-node ${k} --hash-init ${HASH_INIT}`,
          `iptables-legacy -t mangle -A PREROUTING -d ${CIP}/32 -i v1 -j DROP`,
          `qtool pcap v0 /job/${cap}.pcap >/dev/null`,
          'sleep 0.5',
          `echo "R ${cap} ${mode} ${k} $(iptables-legacy -t mangle -L PREROUTING -v -x -n | awk '$3 == "DROP" { print $1 }')"`,
        );
      }
    }
  }
  return lines.join('\n') + '\n';
}

describe('CLUSTERIP on 6.1 under qemu: every node\'s counter = simulate\'s packets', () => {
  const kernel = new Map<string, number[]>();
  it('the guest runs every capture, mode and node', async () => {
    if (process.getuid?.() !== 0) throw new Error('must run as root (qemu image build with apt-get)');
    const r = await runGuest({ script: script(), files: { 'mixed.pcap': Buffer.from(CAPTURES.mixed), 'firsts.pcap': Buffer.from(CAPTURES.firsts) }, timeoutMs: 600_000 });
    if (!r.ok) throw new Error(`guest failed: ${r.console.slice(-2000)}`);
    for (const line of r.output.split('\n')) {
      const m = /^R (\S+) (\S+) (\d+) (\d+)$/.exec(line.trim());
      if (!m) continue;
      const key = `${m[1]} ${m[2]}`;
      const v = kernel.get(key) ?? new Array<number>(N).fill(-1);
      v[Number(m[3]) - 1] = Number(m[4]);
      kernel.set(key, v);
    }
    expect(kernel.size).toBe(Object.keys(CAPTURES).length * MODES.length);
    for (const [k, v] of kernel) {
      expect(v.every((x) => x >= 0), k).toBe(true);
      process.stderr.write(`kernel 6.1 CLUSTERIP ${k}: counters ${JSON.stringify(v)}\n`);
    }
  });
  for (const cap of Object.keys(CAPTURES) as (keyof typeof CAPTURES)[]) {
    for (const mode of MODES) {
      // The mixed capture's lone FINs, RSTs, SYN|ACKs, flagless segments, echo replies and ICMP errors are
      // INVALID, so no node counts them (cluster/ct-model.ts); fragment trains cut by share edges are carried
      // to the merge (sim/traffic/frag-carry.ts).
      it(`${cap} capture, --hashmode ${mode} (workers 0, 1, 2 and 3)`, async () => {
        const counters = kernel.get(`${cap} ${mode}`);
        if (!counters) throw new Error('no kernel measurement');
        const dir = mkdtempSync(join(tmpdir(), 'cipsim-kq-'));
        try {
          const path = join(dir, `${cap}.pcap`);
          writeFileSync(path, CAPTURES[cap]);
          for (const w of [0, 1, 2, 3]) {
            const r = await runCli(['simulate', '--pcap', path, '--backend', 'clusterip', '--hashmode', mode, '--total-nodes', String(N),
              '--hash-init', String(HASH_INIT), '--cluster-ip', CIP, '--workers', String(w), '--no-hash', '--json']);
            if (r.code !== 0) throw new Error(`simulate exited ${r.code}: ${r.stderr}`);
            const res = JSON.parse(r.stdout) as { configs: { nodes: { node: number; packets: number }[] }[] };
            const packets = new Array<number>(N).fill(0);
            for (const n of res.configs[0]!.nodes) packets[n.node - 1] = n.packets;
            process.stderr.write(`simulate --workers ${w} clusterip ${cap} ${mode}: packets ${JSON.stringify(packets)} (kernel ${JSON.stringify(counters)})\n`);
            expect({ workers: w, packets }).toEqual({ workers: w, packets: counters });
          }
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      });
    }
  }
});
