/**
 * `simulate --no-conntrack` against a real kernel: a namespace in which
 * nothing uses conntrack (no ct expression, no NAT, no conntrack-using rule)
 * holds, in a prerouting chain, one counter per node value of an nft jhash
 * rule (`jhash KEY mod 3 seed S == k counter`: what node k's cluster rule
 * counts; one namespace holds all three so every counter sees the same
 * frames). The test installs those counters itself, replays a fragmented
 * capture into the namespace with tcpreplay over a veth pair, and holds each
 * counter equal to simulate's `packets` for that node. Namespaces are named
 * `noctk.<pid>-*` (runPrefix), and nothing leaves them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanupStale, deleteNetns, sh, runPrefix } from '../test/netns-cluster.ts';
import { buildFragCapture, FRAG_DST } from '../test/frag-capture.ts';
import { runCli } from '../test/cli.ts';
import type { SimulateResult } from '../sim/core/result.ts';

const PREFIX = runPrefix('noctk-');
const TX = `${PREFIX}tx`, RX = `${PREFIX}rx`;
const KEYS = [
  'jhash ip saddr . th sport . th dport mod 3 seed 0x5',
  'jhash ip saddr . udp sport mod 3 seed 0x7',
  'jhash ip saddr mod 3 seed 0x9',
];
let dir = '';

beforeAll(() => {
  cleanupStale(PREFIX);
  dir = mkdtempSync(join(tmpdir(), 'noctk-'));
  sh(['ip', 'netns', 'add', TX]);
  sh(['ip', 'netns', 'add', RX]);
  // The veth pair is created in TX with its peer moved straight into RX: nothing in the host namespace.
  sh(['ip', '-n', TX, 'link', 'add', 'tx0', 'type', 'veth', 'peer', 'name', 'rx0', 'netns', RX]);
  // The capture's frames go to 02:00:00:00:00:02 (test/frames.ts ether): the receiver's own MAC, so ip_rcv takes them.
  sh(['ip', '-n', RX, 'link', 'set', 'rx0', 'address', '02:00:00:00:00:02']);
  for (const [ns, dev] of [[TX, 'tx0'], [RX, 'rx0']] as const) {
    sh(['ip', 'netns', 'exec', ns, 'sysctl', '-qw', `net.ipv6.conf.${dev}.disable_ipv6=1`]);
    sh(['ip', '-n', ns, 'link', 'set', dev, 'up']);
  }
  const rules = KEYS.flatMap((k, c) => [0, 1, 2].map((v) => `  ip daddr ${FRAG_DST} ${k} ${v} counter comment "c${c}n${v}"`));
  sh(['ip', 'netns', 'exec', RX, 'nft', '-f', '-'], `table ip noctk {\n chain pre {\n  type filter hook prerouting priority -500; policy accept;\n${rules.join('\n')}\n }\n}\n`);
});

afterAll(() => {
  deleteNetns([TX, RX]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The counters the test installed: per key, packets of node values 0, 1, 2. */
function counters(): number[][] {
  const j = JSON.parse(sh(['ip', 'netns', 'exec', RX, 'nft', '-j', 'list', 'table', 'ip', 'noctk'])) as { nftables: { rule?: { comment?: string; expr: { counter?: { packets: number } }[] } }[] };
  const out = KEYS.map(() => [0, 0, 0]);
  for (const item of j.nftables) {
    const r = item.rule;
    const m = r?.comment ? /^c(\d)n(\d)$/.exec(r.comment) : null;
    if (!r || !m) continue;
    out[Number(m[1])]![Number(m[2])] = r.expr.find((e) => e.counter)!.counter!.packets;
  }
  return out;
}

describe('--no-conntrack against a namespace without conntrack', () => {
  it('every node counter equals simulate --no-conntrack packets (fragments in and out of order)', async () => {
    const cap = buildFragCapture(dir, 120);
    sh(['ip', 'netns', 'exec', TX, 'tcpreplay', '-q', '--topspeed', '-i', 'tx0', cap.path]);
    // No conntrack in the receiving namespace: nothing defragmented what the counters saw.
    expect(sh(['ip', 'netns', 'exec', RX, 'sh', '-c', 'cat /proc/net/nf_conntrack 2>/dev/null | wc -l']).trim()).toBe('0');
    const got = counters();
    for (const [c, key] of KEYS.entries()) {
      const r = await runCli(['simulate', '--pcap', cap.path, '--backend', 'nft', '--nft', key, '--cluster-ip', FRAG_DST, '--no-conntrack', '--json', '--workers', '0']);
      expect(r.code, r.stderr).toBe(0);
      const j = JSON.parse(r.stdout) as SimulateResult;
      expect(j.configs[0]!.nodes.map((n) => n.packets), key).toEqual(got[c]);
    }
    // The frames were fragments, counted one by one: the ports key saw every frame.
    expect(got[0]!.reduce((a, b) => a + b, 0)).toBe(cap.frames.length);
  });
});
