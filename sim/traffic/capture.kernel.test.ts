/**
 * Real captures from a real kernel: two network namespaces joined by a veth
 * pair, traffic from ping, UDP, TCP (handshake, data, FIN; a refused
 * connection), fragmented pings and datagrams in IPv4 and IPv6, plus 802.1Q
 * and QinQ frames sent onto the wire by tcpreplay (the test kernels have no
 * 8021q module), captured by tcpdump as Ethernet and Linux cooked v1 and v2,
 * converted by editcap (pcapng, nanosecond pcap, raw IP) and merged by
 * mergecap. Every capture must decode to exactly what tshark reports, field
 * by field.
 * Needs root; the namespaces are created here and always removed.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareRows, ourRows, tsharkRows } from '../../test/tshark.ts';
import * as fr from '../../test/frames.ts';
import { capturing, deleteNetns, inNs, removeCaptures, sh, vethPair } from '../../test/capture-tools.ts';
import { openCapture } from './capture.ts';
import { createBatch } from './batch.ts';
import { openSynthetic } from './synthetic.ts';
import { PcapWriter } from './pcap-writer.ts';
import { cleanupStale, runPrefix } from '../../test/netns-cluster.ts';

const PREFIX = runPrefix('cipsim-kcap-');
const A = `${PREFIX}a`, B = `${PREFIX}b`;
let dir = '';
const caps: Record<string, string> = {};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kcap-'));
  cleanupStale(PREFIX);
  vethPair(A, B, '10.77.0', 'fd77::');
  // VLAN-tagged frames to put on the wire with tcpreplay.
  const tagged: Uint8Array[] = [];
  const tags = [[0x8100], [0x88a8, 0x8100], [0x9100, 0x8100]];
  for (const [k, t] of tags.entries()) {
    tagged.push(fr.ether(fr.ipv4({ proto: 17, src: '10.77.100.1', dst: '10.77.100.2', id: k }, fr.udp(4000 + k, 53, 30)), 0x0800, t));
    tagged.push(fr.ether(fr.ipv4({ proto: 6, src: '10.77.100.1', dst: '10.77.100.2', id: 9 + k }, fr.tcp(5000 + k, 80, 0x02)), 0x0800, t));
    tagged.push(fr.ether(fr.ipv6('fd77:100::1', 'fd77:100::2', [], 58, fr.icmpEcho(128, 77, k)), 0x86dd, t));
  }
  // A `gen` capture, replayed onto the wire: tcpreplay must accept what gen writes.
  const genFile = join(dir, 'gen.pcap');
  const w = new PcapWriter(genFile);
  const syn = openSynthetic('nat', { packets: 200, seed: 3 });
  const gb = createBatch(256);
  while (syn.fill(gb) > 0) w.write(gb);
  w.close();
  const vlanFile = join(dir, 'vlan-in.pcap');
  writeFileSync(vlanFile, fr.pcap(tagged.map((d, k) => ({ ts: [1700000000, k], data: d }))));
  caps.eth = join(dir, 'eth.pcap');
  caps.sll2 = join(dir, 'any.pcap');
  caps.sll = join(dir, 'any-sll1.pcap');
  await capturing(B, [[['-i', 'vB'], caps.eth], [['-i', 'any'], caps.sll2], [['-i', 'any', '-y', 'LINUX_SLL'], caps.sll]], async () => {
    // A TCP server in B: reads, answers, closes.
    const server = spawn('ip', ['netns', 'exec', B, process.execPath, '-e',
      "require('net').createServer(s=>{s.on('data',d=>s.end(Buffer.alloc(3000,65)))}).listen(8080,'::',()=>console.log('up'))"], { stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise<void>((res) => server.stdout!.once('data', () => res()));
    try {
      inNs(A, 'ping', '-c', '3', '-i', '0.2', '10.77.0.2');
      inNs(A, 'ping', '-c', '2', '-i', '0.2', '-s', '3000', '10.77.0.2');
      inNs(A, 'tcpreplay', '-q', '-i', 'vA', vlanFile);
      inNs(A, 'tcpreplay', '-q', '--pps', '2000', '-i', 'vA', genFile);
      inNs(A, 'ping', '-6', '-c', '2', '-i', '0.2', 'fd77::2');
      inNs(A, 'ping', '-6', '-c', '2', '-i', '0.2', '-s', '3000', 'fd77::2');
      const client = `const n=require('net'),d=require('dgram');
        const u=d.createSocket('udp4');u.send(Buffer.alloc(100),5353,'10.77.0.2',()=>u.send(Buffer.alloc(4000),5354,'10.77.0.2',()=>{
          const u6=d.createSocket('udp6');u6.send(Buffer.alloc(3500),5355,'fd77::2',()=>{u6.close();u.close();
          const c=n.connect(8080,'10.77.0.2',()=>c.write('hello'));c.on('data',()=>{});c.on('end',()=>{
            const r=n.connect(1,'10.77.0.2');r.on('error',()=>{
              const c6=n.connect(8080,'fd77::2',()=>c6.write('x'));c6.on('data',()=>{});c6.on('end',()=>process.exit(0));});});});}));`;
      inNs(A, process.execPath, '-e', client);
      await new Promise((r) => setTimeout(r, 1000));
    } finally {
      server.kill('SIGKILL');
    }
  });
}, 120_000);

afterAll(() => {
  deleteNetns([A, B]);
  removeCaptures(dir);
});

function same(file: string): number {
  const theirs = tsharkRows(file);
  expect(compareRows(ourRows(file), theirs)).toEqual([]);
  return theirs.length;
}

describe('captures made by tcpdump on a veth pair in namespaces', () => {
  it('Ethernet (with 802.1Q frames), fragments in IPv4 and IPv6, TCP, UDP, ICMP: same tuples as tshark', () => {
    expect(same(caps.eth!)).toBeGreaterThan(40);
    const rows = ourRows(caps.eth!);
    expect(rows.filter((r) => r.frag).length).toBeGreaterThanOrEqual(8);
    expect(rows.some((r) => r.proto === 6 && r.dport === 8080)).toBe(true);
    expect(rows.some((r) => r.src === 'fd77::1' && r.proto === 58)).toBe(true);
    // the tcpreplayed 802.1Q / QinQ frames
    expect(rows.filter((r) => r.src === '10.77.100.1' || r.src === 'fd77:100::1').map((r) => r.sport ?? (r.l4id ? Number(/id=(\d+)/.exec(r.l4id)![1]) : null))).toEqual([4000, 5000, 77, 4001, 5001, 77, 4002, 5002, 77]);
    // the replayed gen capture arrives intact: same tuples as the scenario itself (timestamps aside)
    const strip = (r: { ts: string }): object => ({ ...r, ts: '' });
    const replayed = rows.filter((r) => r.src.startsWith('203.0.113.') || r.dst.startsWith('203.0.113.'));
    expect(replayed.map(strip)).toEqual(ourRows(join(dir, 'gen.pcap')).map(strip));
    const src = openCapture(caps.eth!);
    const batch = createBatch(64);
    while (src.fill(batch) > 0);
    src.close();
    expect(src.stats.skipped['unresolved-fragment'] ?? 0).toBe(0);
    expect(src.stats.fragments).toBe(rows.filter((r) => r.frag).length);
  });

  it('Linux cooked v2 (-i any) and v1 (-y LINUX_SLL)', () => {
    expect(sh(['capinfos', '-E', caps.sll2!])).toMatch(/Linux cooked-mode capture v2/);
    expect(sh(['capinfos', '-E', caps.sll!])).toMatch(/Linux cooked-mode capture v1/);
    expect(same(caps.sll2!)).toBeGreaterThan(40);
    expect(same(caps.sll!)).toBeGreaterThan(40);
  });

  it('editcap to pcapng, nanosecond pcap and raw IP; mergecap of all link types', () => {
    const ng = join(dir, 'eth.pcapng'), ns = join(dir, 'eth-ns.pcap'), raw = join(dir, 'raw.pcap'), merged = join(dir, 'all.pcapng');
    sh(['editcap', '-F', 'pcapng', caps.eth!, ng]);
    sh(['editcap', '-F', 'nsecpcap', caps.eth!, ns]);
    sh(['editcap', '-C', '16', '-T', 'rawip', caps.sll!, raw]);
    expect(sh(['capinfos', '-E', raw])).toMatch(/Raw IP/);
    sh(['mergecap', '-F', 'pcapng', '-w', merged, caps.eth!, caps.sll2!, caps.sll!, raw]);
    expect(ourRows(ng)).toEqual(ourRows(caps.eth!));
    same(ng);
    same(ns);
    expect(same(raw)).toBeGreaterThan(40);
    // Merged, every datagram is there four times (one capture per link type). The kernel's defrag, which the
    // reader follows, completes the first copy and drops the others' fragments (duplicates, or queues that never
    // complete); tshark reassembles every copy. So fragments are compared per capture above, and here every
    // unfragmented packet of every link type comes through.
    const whole = (f: string): number => ourRows(f).filter((r) => !r.frag).length;
    expect(whole(merged)).toBe(whole(caps.eth!) + whole(caps.sll2!) + whole(caps.sll!) + whole(raw));
    expect(compareRows(ourRows(merged).filter((r) => !r.frag), tsharkRows(merged).filter((r) => !r.frag))).toEqual([]);
  });
});
