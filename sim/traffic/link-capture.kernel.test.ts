/**
 * `tuples` against `tshark -T fields`, column for column, on captures tcpdump
 * made on a real kernel (issue 17 item 6), and NFLOG captures
 * (`tcpdump -i nflog:N`, item 8) from an nft `log group` rule.
 *
 * Two namespaces joined by a veth pair. Traffic: ICMP and ICMPv6 echo (ping),
 * ICMP errors (UDP to a closed port: port unreachable, v4 and v6), a TCP
 * connection refused (RST), and, put onto the wire by tcpreplay (this
 * kernel has no GRE, ESP or SCTP of its own), GRE with and without a key,
 * ESP in IPv4 and IPv6 and an SCTP INIT, which the receiving kernel answers
 * with ICMP protocol-unreachable errors. tcpdump captures it on the Ethernet
 * device; in the receiving namespace an nft rule logs every packet it sends
 * and receives to an NFLOG group, and a second tcpdump reads that group.
 * Needs root; the namespaces (runPrefix('cipsim-tdl-'), this file's own) are created here
 * and always removed.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareRows, tsharkRows, type Row } from '../../test/tshark.ts';
import * as fr from '../../test/frames.ts';
import { capturing, deleteNetns, inNs, removeCaptures, sh, vethPair } from '../../test/capture-tools.ts';
import { sctpInit } from '../../test/kernel-captures.ts';
import { cleanupStale, runPrefix } from '../../test/netns-cluster.ts';

const root = resolve(import.meta.dirname, '../..');
const PREFIX = runPrefix('cipsim-tdl-');
const A = `${PREFIX}a`, B = `${PREFIX}b`;
const GROUP = 23;
let dir = '';
const caps: Record<string, string> = {};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tdl-'));
  cleanupStale(PREFIX);
  // MACs the hand-built frames carry (test/frames.ts ether()), so that B takes them.
  vethPair(A, B, '10.78.0', 'fd78::', true);
  sh(['ip', 'netns', 'exec', B, 'nft', '-f', '-'], `table inet tdl {\n chain in { type filter hook input priority 0; log group ${GROUP}; }\n chain out { type filter hook output priority 0; log group ${GROUP}; }\n}\n`);
  // Protocols this kernel has no handler for, sent from A's addresses to B's (B answers protocol unreachable).
  const v4 = (proto: number, l4: Uint8Array, id: number): Uint8Array => fr.ether(fr.ipv4({ proto, src: '10.78.0.1', dst: '10.78.0.2', id }, l4), 0x0800);
  const inner = fr.ipv4({ proto: 6, src: '192.168.9.1', dst: '192.168.9.2' }, fr.tcp(1234, 80, 0x02));
  const crafted = [
    v4(47, fr.gre(inner, 0x0800, 0x00c0ffee), 1),
    v4(47, fr.gre(inner, 0x0800), 2),
    v4(50, fr.esp(0x0badcafe, 1), 3),
    v4(132, sctpInit(2905, 36412, 0x5eed), 4),
    fr.ether(fr.ipv6('fd78::1', 'fd78::2', [], 50, fr.esp(0xabc, 9)), 0x86dd),
  ];
  const craftedFile = join(dir, 'crafted.pcap');
  writeFileSync(craftedFile, fr.pcap(crafted.map((data, k) => ({ ts: [1700000000, k], data }))));
  caps.eth = join(dir, 'eth.pcap');
  caps.nflog = join(dir, 'nflog.pcap');
  await capturing(B, [[['-i', 'vB'], caps.eth], [['-i', `nflog:${GROUP}`], caps.nflog]], async () => {
    inNs(A, 'ping', '-c', '2', '-i', '0.2', '10.78.0.2');
    inNs(A, 'ping', '-6', '-c', '2', '-i', '0.2', 'fd78::2');
    inNs(A, 'tcpreplay', '-q', '-i', 'vA', craftedFile);
    // UDP to closed ports (ICMP port unreachable back), a refused TCP connection (RST back).
    inNs(A, process.execPath, '-e', `const d=require('dgram'),n=require('net');
      const u=d.createSocket('udp4');u.on('error',()=>{});u.send(Buffer.alloc(20),9,'10.78.0.2',()=>{
        const u6=d.createSocket('udp6');u6.on('error',()=>{});u6.send(Buffer.alloc(20),9,'fd78::2',()=>{
          const c=n.connect(1,'10.78.0.2');c.on('error',()=>setTimeout(()=>process.exit(0),300));});});`);
    await new Promise((r) => setTimeout(r, 1000));
  });
}, 120_000);

afterAll(() => {
  deleteNetns([A, B]);
  removeCaptures(dir);
});

/** `clusterip-sim tuples FILE` as a user runs it, its CSV read back into the judge's rows. */
function tuplesRows(file: string): Row[] {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'cli/main.ts'), 'tuples', file], { cwd: root, encoding: 'utf8', maxBuffer: 1 << 28 });
  expect(r.status, r.stderr).toBe(0);
  const lines = r.stdout.trim().split('\n');
  expect(lines[0]).toBe('ts,proto,saddr,sport,daddr,dport,wirelen,l4_id');
  return lines.slice(1).map((l) => {
    const [ts, proto, src, sp, dst, dp, len, id] = l.split(',');
    return { ts: ts!, proto: Number(proto), src: src!, dst: dst!, sport: sp === '' ? null : Number(sp), dport: dp === '' ? null : Number(dp), len: Number(len), l4id: id === '' ? null : id!, frag: false, fragKey: '' };
  });
}

/** Every column of every row equal: compareRows, and beyond it ports and l4_id empty exactly where tshark's are. */
function sameColumns(file: string): Row[] {
  const ours = tuplesRows(file), theirs = tsharkRows(file);
  expect(compareRows(ours, theirs, 50)).toEqual([]);
  expect(ours.map((r) => [r.sport, r.dport, r.l4id])).toEqual(theirs.map((r) => [r.sport, r.dport, r.l4id]));
  return theirs;
}

/** What the capture holds, by kind, as tshark reads it. */
function kinds(rows: Row[]): Record<string, number> {
  const k: Record<string, number> = {};
  const add = (s: string): void => { k[s] = (k[s] ?? 0) + 1; };
  for (const r of rows) {
    if (r.proto === 1 || r.proto === 58) add(`${r.proto === 1 ? 'icmp' : 'icmpv6'}-${r.l4id ? 'echo' : 'other'}`);
    else if (r.proto === 47) add(r.l4id ? 'gre-key' : 'gre');
    else if (r.proto === 50) add(r.src.includes(':') ? 'esp6' : 'esp');
    else if (r.proto === 132) add('sctp');
    else if (r.proto === 6) add('tcp');
    else if (r.proto === 17) add('udp');
  }
  return k;
}

describe('tuples equals tshark -T fields, column for column, on real captures', () => {
  it('tcpdump on Ethernet: ICMP echo and errors, ICMPv6, GRE with and without key, ESP, SCTP, UDP, TCP', () => {
    const k = kinds(sameColumns(caps.eth!));
    // 2 pings each way and family; port unreachable (v4, v6) and protocol unreachable for GRE x2, ESP, SCTP (v4)
    expect(k['icmp-echo']).toBe(4);
    expect(k['icmp-other']).toBeGreaterThanOrEqual(5);
    expect(k['icmpv6-echo']).toBe(4);
    expect(k['icmpv6-other']).toBeGreaterThanOrEqual(1);
    expect([k['gre-key'], k.gre, k.esp, k.esp6, k.sctp]).toEqual([1, 1, 1, 1, 1]);
    expect(k.tcp).toBeGreaterThanOrEqual(2);
    expect(k.udp).toBeGreaterThanOrEqual(2);
  });

  it('tcpdump -i nflog:N (an nft log group rule): the same packets, decoded from NFLOG TLVs', () => {
    expect(sh(['capinfos', '-E', caps.nflog!])).toMatch(/NFLOG/);
    const rows = sameColumns(caps.nflog!);
    const k = kinds(rows);
    expect(k['icmp-echo']).toBe(4);
    expect(k['icmp-other']).toBeGreaterThanOrEqual(5);
    expect([k['gre-key'], k.gre, k.esp, k.sctp]).toEqual([1, 1, 1, 1]);
    // Every IP packet the Ethernet capture shows passed B's input or output hook: the NFLOG capture has the same
    // tuples (NFLOG has no frame of its own: compared without ts and length; ICMPv6 neighbour discovery aside).
    const key = (r: Row): string => [r.proto, r.src, r.sport, r.dst, r.dport, r.l4id].join('|');
    const eth = tsharkRows(caps.eth!).filter((r) => r.proto !== 58 || r.l4id !== null).map(key).sort();
    const nfl = rows.filter((r) => r.proto !== 58 || r.l4id !== null).map(key).sort();
    expect(nfl).toEqual(eth);
  });
});

describe('live NFLOG', () => {
  it('tuples --live nflog:N prints the packets the nft log rule sees as they come', async () => {
    const p = spawn('ip', ['netns', 'exec', B, process.execPath, '--import', 'tsx', join(root, 'cli/main.ts'), 'tuples', '--live', `nflog:${GROUP}`, '--duration', '5'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const exited = new Promise<number | null>((r) => p.once('exit', r));
    for (let k = 0; k < 300 && !out.includes('ts,proto') && p.exitCode === null; k++) await new Promise((r) => setTimeout(r, 100));
    inNs(A, 'ping', '-c', '2', '-i', '0.2', '10.78.0.2');
    const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('timeout'), 20_000))]);
    if (code === 'timeout') p.kill('SIGKILL');
    expect(code, err).toBe(0);
    // Request in (input hook), reply out (output hook), twice: echo id/seq in l4_id, no ports. (IPv4 ICMP only:
    // the rule logs IPv6 multicast listener reports too, whenever the kernel sends them.)
    const rows = out.trim().split('\n').slice(1).map((l) => l.split(',').slice(1)).filter((r) => r[0] === '1');
    expect(rows.map((r) => [r[0], r[1], r[2], r[3], r[4]])).toEqual([
      ['1', '10.78.0.1', '', '10.78.0.2', ''], ['1', '10.78.0.2', '', '10.78.0.1', ''],
      ['1', '10.78.0.1', '', '10.78.0.2', ''], ['1', '10.78.0.2', '', '10.78.0.1', ''],
    ]);
    expect(rows.map((r) => r[6]!.replace(/^id=\d+/, 'id=N'))).toEqual(['id=N/seq=1', 'id=N/seq=1', 'id=N/seq=2', 'id=N/seq=2']);
  }, 60_000);
});

