/** The `hash` command: answers, formats, and every kind of bad input with its exit code and place. */
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../test/cli.ts';
import { fileDir } from '../test/tmp.ts';

const dir = fileDir('cipsim-hash-');
function csv(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}
const CIP = ['hash', '--backend', 'clusterip', '--hashmode', 'sourceip-sourceport-destport', '--total-nodes', '3'];

describe('hash command', () => {
  it('answers one tuple from the command line (golden row 1 of clusterip.csv)', async () => {
    const r = await runCli([...CIP, 'tcp', '10.0.0.1:256', '10.20.30.40:80']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('proto,saddr,sport,daddr,dport,node\n6,10.0.0.1,256,10.20.30.40,80,3\n');
    expect(r.stderr).toBe('');
  });
  it('reads CSV with or without header, names, comments, stdin, IPv6', async () => {
    const body = 'proto,saddr,sport,daddr,dport\n# a comment\ntcp,71.141.221.87,54641,10.0.0.10,22677\n17,2001:db8::1,53,2001:db8::2,53\n';
    const r = await runCli(['hash', '--backend', 'xt_cluster', '--total-nodes', '4', '--hash-seed', '0xdeadbeef', '--input', csv('a.csv', body)]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[1]).toBe('6,71.141.221.87,54641,10.0.0.10,22677,3');
    expect(lines[2]).toMatch(/^17,2001:db8::1,53,2001:db8::2,53,[1-4]$/);
    expect(r.stderr).toMatch(/IPv6.*no IPv6 packet was measured/);
    const s = await runCli(['hash', '--nft', 'jhash ip saddr . tcp sport . tcp dport mod 16 seed 0', '--input', '-'], '6,71.141.221.87,54641,10.0.0.10,22677\n');
    expect(s.stdout.trim().split('\n')[1]).toBe('6,71.141.221.87,54641,10.0.0.10,22677,6');
  });
  it('--rule takes an iptables rule and marks what its local node accepts', async () => {
    const rule = '-d 10.0.0.1 -i eth0 -j CLUSTERIP --new --hashmode sourceip --clustermac 01:00:5E:00:00:20 --total-nodes 2 --local-node 1';
    const r = await runCli(['hash', '--rule', rule, 'tcp', '10.0.0.1:4000', '10.0.0.1:80']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('proto,saddr,sport,daddr,dport,node,accepted\n6,10.0.0.1,4000,10.0.0.1,80,1,1\n');
  });
  it('--json prints one document with the facts', async () => {
    const r = await runCli([...CIP, '--json', 'udp', '10.0.0.1:1', '10.0.0.2:2']);
    const doc = JSON.parse(r.stdout) as { rows: { node: number }[]; facts: { evidence: string }[]; selector: { buckets: number } };
    expect(doc.rows).toHaveLength(1);
    expect(doc.selector.buckets).toBe(3);
    expect(doc.facts.every((f) => f.evidence.startsWith('measured'))).toBe(true);
  });
  it('says so on stderr when an answer rests on source reading only', async () => {
    const r = await runCli([...CIP, '--kernel', '2.6.20', 'udp', '10.0.0.1:1', '10.0.0.2:2']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/\[source\].*lookup2/);
    expect(r.stderr).toMatch(/\[unverified\]/);
    const be = await runCli([...CIP, '--endian', 'big', 'udp', '10.0.0.1:1', '10.0.0.2:2']);
    expect(be.stderr).toMatch(/\[measured 6\.1\.176 s390x\] byte order: big-endian/);
    const oldBe = await runCli([...CIP, '--kernel', '3.10', '--endian', 'big', 'udp', '10.0.0.1:1', '10.0.0.2:2']);
    expect(oldBe.stderr).toMatch(/\[source\] byte order: big-endian/);
  });

  const bad: [string, string[], string | null, number, RegExp][] = [
    ['malformed CSV line', CIP, '6,10.0.0.1,80\n', 1, /:1: expected 5 fields/],
    ['bad address', CIP, 'tcp,10.0.0.1,80,10.0.0.2,80\ntcp,10.0.0.300,80,10.0.0.2,80\n', 1, /:2: field saddr: '10\.0\.0\.300'/],
    ['bad port', CIP, 'tcp,10.0.0.1,65536,10.0.0.2,80\n', 1, /:1: field sport: '65536'/],
    ['bad protocol', CIP, 'tcpx,10.0.0.1,1,10.0.0.2,80\n', 1, /:1: field proto: 'tcpx'/],
    ['mixed families', CIP, '6,10.0.0.1,1,2001:db8::1,80\n', 1, /field daddr/],
    ['nodes out of range', ['hash', '--backend', 'clusterip', '--hashmode', 'sourceip', '--total-nodes', '17'], null, 2, /out of range.*0-16/],
    ['xt nodes out of range', ['hash', '--backend', 'xt_cluster', '--total-nodes', '33', '--hash-seed', '1'], null, 2, /1-32/],
    ['seed out of range', [...CIP, '--hash-init', '0x123456789'], null, 2, /--hash-init.*32-bit/],
    ['missing xt seed', ['hash', '--backend', 'xt_cluster', '--total-nodes', '3'], null, 2, /--cluster-hash-seed must be specified/],
    ['contradictory flags', [...CIP, '--hash-seed', '1'], null, 2, /--hash-seed is the cluster match/],
    ['rule plus flags', ['hash', '--rule', '-j CLUSTERIP --new', '--total-nodes', '3'], null, 2, /--rule carries the whole configuration/],
    ['removed kernel', [...CIP, '--kernel', '6.6'], null, 2, /removed in Linux 6\.3/],
    ['unknown backend', ['hash', '--backend', 'ipvs'], null, 2, /.*/],
    ['nft mod 0', ['hash', '--nft', 'jhash ip saddr mod 0'], null, 2, /ERANGE/],
    ['non-multicast MAC', ['hash', '--rule', '-d 10.0.0.1 -j CLUSTERIP --new --hashmode sourceip --clustermac 00:11:22:33:44:55 --total-nodes 2 --local-node 1'], null, 2, /multicast/],
  ];
  for (const [what, args, input, code, msg] of bad) {
    it(`refuses ${what} with exit ${code}`, async () => {
      const full = input === null ? [...args, 'tcp', '10.0.0.1:1', '10.0.0.2:2'] : [...args, '--input', csv(`${what.replace(/\W/g, '_')}.csv`, input)];
      const r = await runCli(full);
      expect(r.code).toBe(code);
      expect(r.stderr).toMatch(msg);
      if (input !== null) expect(r.stderr).toMatch(/\.csv:\d+/);
    });
  }
  it('refuses a missing input file, naming it', async () => {
    const r = await runCli([...CIP, '--input', join(dir, 'nope.csv')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/nope\.csv: no such file/);
  });
});
