import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CT, ctClass, parseMac, rewriteCapture } from './rewrite.ts';
import { serializeFrames } from './sender.ts';
import { predict } from './verify.ts';
import { parseConfig } from '../../sim/core/cluster-config.ts';
import { L4 } from '../../sim/traffic/batch.ts';
import { fileDir } from '../../test/tmp.ts';

const CIP = 0x0ac80064; // 10.200.0.100
const MAC = parseMac('01:00:5e:00:00:20');

/** Independent one's-complement sum (a second implementation, not the module's). */
function csum(bytes: number[]): number {
  let s = 0;
  for (let i = 0; i < bytes.length; i += 2) s += (bytes[i]! << 8) + (bytes[i + 1] ?? 0);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return s;
}

function ipv4(proto: number, src: number[], dst: number[], payload: number[], opts: { id?: number; frag?: number; tot?: number } = {}): number[] {
  const tot = opts.tot ?? 20 + payload.length;
  const h = [0x45, 0, tot >> 8, tot & 255, (opts.id ?? 1) >> 8, (opts.id ?? 1) & 255, (opts.frag ?? 0) >> 8, (opts.frag ?? 0) & 255, 64, proto, 0xde, 0xad, ...src, ...dst];
  return [...h, ...payload];
}
const eth = (type: number, body: number[], vlan?: number): number[] => [
  2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, ...(vlan !== undefined ? [0x81, 0x00, vlan >> 8, vlan & 255] : []), type >> 8, type & 255, ...body,
];
const tcp = (sport: number, dport: number, flags: number, data: number[] = []): number[] => [sport >> 8, sport & 255, dport >> 8, dport & 255, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0x12, 0x34, 0, 0, ...data];
const udp = (sport: number, dport: number, data: number[]): number[] => {
  const l = 8 + data.length;
  return [sport >> 8, sport & 255, dport >> 8, dport & 255, l >> 8, l & 255, 0x55, 0x55, ...data];
};

const DIR = fileDir('rw-');

function pcap(frames: { f: number[]; cap?: number }[]): string {
  const parts: Buffer[] = [];
  const h = Buffer.alloc(24);
  h.writeUInt32LE(0xa1b2c3d4, 0); h.writeUInt16LE(2, 4); h.writeUInt16LE(4, 6); h.writeUInt32LE(65535, 16); h.writeUInt32LE(1, 20);
  parts.push(h);
  frames.forEach(({ f, cap }, i) => {
    const r = Buffer.alloc(16);
    const c = cap ?? f.length;
    r.writeUInt32LE(1000, 0); r.writeUInt32LE(i * 1000, 4); r.writeUInt32LE(c, 8); r.writeUInt32LE(f.length, 12);
    parts.push(r, Buffer.from(f.slice(0, c)));
  });
  const file = join(mkdtempSync(join(DIR, 'p-')), 'x.pcap');
  writeFileSync(file, Buffer.concat(parts));
  return file;
}

const A = [192, 0, 2, 7], B = [198, 51, 100, 9];
const bigUdp = udp(4000, 53, Array.from({ length: 40 }, (_, i) => i));
const FRAMES = [
  { f: eth(0x0800, ipv4(6, A, B, tcp(1234, 80, 0x02)), 7) }, // VLAN, SYN, checksum field garbage
  { f: eth(0x0800, ipv4(6, A, B, tcp(1234, 80, 0x10, [1, 2, 3]))) }, // ACK with data
  { f: eth(0x0800, ipv4(6, B, A, tcp(80, 1234, 0x12))) }, // SYN|ACK
  { f: eth(0x0800, ipv4(1, A, B, [8, 0, 0, 0, 0, 9, 0, 1, 5, 5, 5])) }, // echo request (odd length)
  { f: eth(0x0800, ipv4(1, B, A, [0, 0, 0, 0, 0, 9, 0, 1])) }, // echo reply
  // a UDP datagram of 48 bytes in two fragments (24 + 24), out of order
  { f: eth(0x0800, ipv4(17, A, B, bigUdp.slice(24), { id: 77, frag: 3 })) },
  { f: eth(0x0800, ipv4(17, A, B, bigUdp.slice(0, 24), { id: 77, frag: 0x2000 })) },
  { f: eth(0x86dd, new Array(40).fill(0)) }, // IPv6
  { f: eth(0x0806, new Array(28).fill(0)) }, // ARP
  { f: eth(0x0800, ipv4(17, A, B, udp(1, 2, new Array(100).fill(1)))), cap: 60 }, // cut by snaplen
  { f: eth(0x0800, ipv4(132, A, B, new Array(16).fill(0))) }, // SCTP: not modelled
];

describe('rewriteCapture', () => {
  const rw = rewriteCapture(pcap(FRAMES), { clusterIp: CIP, clusterMac: MAC });

  it('sends every IPv4 packet it can make valid, counts the rest by reason', () => {
    expect(rw.stats.records).toBe(11);
    expect(rw.count).toBe(7);
    expect(rw.stats.skipped).toEqual({ ipv6: 1, 'non-ip': 1, truncated: 1, 'protocol-132': 1 });
    expect(rw.stats.vlanStripped).toBe(1);
    expect(rw.stats.fragments).toBe(2);
    expect(rw.stats.fragmentTrains).toBe(1);
    expect(rw.stats.datagrams).toBe(6);
    Array.from(rw.ts).forEach((t, i) => expect(t).toBeCloseTo(i * 0.001, 9));
  });

  it('every frame: cluster MAC, untagged IPv4 to the cluster IP, source kept, valid IP and L4 checksums', () => {
    for (let i = 0; i < rw.count; i++) {
      const f = Array.from(rw.bytes.subarray(rw.start[i]!, rw.start[i]! + rw.len[i]!));
      expect(f.slice(0, 6)).toEqual(Array.from(MAC));
      expect(f.slice(12, 14)).toEqual([8, 0]);
      const ip = f.slice(14);
      expect(ip.slice(12, 16), `source of frame ${i}`).toEqual([A, A, B, A, B, A, A][i]);
      expect(ip.slice(16, 20)).toEqual([10, 200, 0, 100]);
      expect(csum(ip.slice(0, 20)), `IP header of frame ${i}`).toBe(0xffff);
      const frag = ((ip[6]! << 8) | ip[7]!) & 0x3fff;
      if (frag) continue;
      const l4 = ip.slice(20);
      const pseudo = [...ip.slice(12, 20), 0, ip[9]!, l4.length >> 8, l4.length & 255];
      expect(csum(ip[9] === 1 ? l4 : [...pseudo, ...l4]), `L4 of frame ${i}`).toBe(0xffff);
    }
  });

  it('a fragmented datagram: its UDP checksum is fixed over the reassembled payload (first fragment patched)', () => {
    const frags = [5, 6].map((i) => Array.from(rw.bytes.subarray(rw.start[i]! + 14, rw.start[i]! + rw.len[i]!)));
    const first = frags.find((f) => ((f[6]! << 8) | f[7]!) === 0x2000)!;
    const second = frags.find((f) => ((f[6]! << 8) | f[7]!) === 3)!;
    const l4 = [...first.slice(20), ...second.slice(20)];
    expect(l4.length).toBe(48);
    const pseudo = [...first.slice(12, 20), 0, 17, 0, 48];
    expect(csum([...pseudo, ...l4])).toBe(0xffff);
  });

  it('what the kernel sees: one tuple per datagram with its conntrack class', () => {
    const v = rw.visible;
    expect(v.count).toBe(6);
    const rows = Array.from({ length: v.count }, (_, i) => [v.proto[i], v.saddr[i]! >>> 0, v.sport[i], v.daddr[i]! >>> 0, v.dport[i], rw.ct[i]]);
    const a = 0xc0000207, b = 0xc6336409;
    expect(rows).toEqual([
      [6, a, 1234, CIP, 80, CT.NEW],
      [6, a, 1234, CIP, 80, CT.LOOSE],
      [6, b, 80, CIP, 1234, CT.INVALID],
      [1, a, 9, CIP, 1, CT.NEW],
      [1, b, 9, CIP, 1, CT.INVALID],
      [17, a, 4000, CIP, 53, CT.NEW],
    ]);
    expect(v.l4flags[2]! & L4.CT_INVALID).toBe(L4.CT_INVALID);
  });

  it('predict: per host and node number, loops multiply, mid-stream TCP only where tcp_loose is on', () => {
    const c = parseConfig('cluster:\n  ip: 10.200.0.100\n  backend: nft\n  total_nodes: 1\nnodes:\n  - { name: n, owns: [1] }\n', 'c.yaml').config;
    expect(predict(c, rw, new Map([['n', false]]), 3).perHost.get('n')).toEqual(new Map([[1, 9]]));
    expect(predict(c, rw, new Map([['n', true]]), 3).perHost.get('n')).toEqual(new Map([[1, 12]]));
  });

  it('serializes frames for the sender as [u32 len][u64 ns][bytes]', () => {
    const s = serializeFrames(rw);
    expect(s.readUInt32LE(0)).toBe(rw.len[0]);
    expect(s.readBigUInt64LE(12 + rw.len[0]! + 4)).toBe(1_000_000n);
    expect(s.length).toBe(Array.from(rw.len).reduce((x, y) => x + 12 + y, 0));
  });
});

describe('raw records from pcapng (nextRaw over enhanced packet blocks)', () => {
  it('the same capture converted by editcap to pcapng and to nanosecond pcap rewrites to the same frames', () => {
    const src = pcap(FRAMES);
    const ref = rewriteCapture(src, { clusterIp: CIP, clusterMac: MAC });
    for (const fmt of ['pcapng', 'nsecpcap']) {
      const dst = `${src}.${fmt}`;
      execFileSync('editcap', ['-F', fmt, src, dst]);
      const r = rewriteCapture(dst, { clusterIp: CIP, clusterMac: MAC });
      expect(r.count, fmt).toBe(ref.count);
      expect(Buffer.from(r.bytes).equals(Buffer.from(ref.bytes)), fmt).toBe(true);
      Array.from(r.ts).forEach((t, i) => expect(t).toBeCloseTo(ref.ts[i]!, 9));
    }
  });
});

describe('rewriteCapture limits', () => {
  it('skips datagrams larger than the MTU (GRO super-packets) and calls a datagram longer than its whole frame malformed', () => {
    const big = { f: eth(0x0800, ipv4(6, A, B, tcp(1, 2, 0x10, new Array(3000).fill(0)))) };
    const liar = { f: eth(0x0800, ipv4(17, A, B, udp(1, 2, [1, 2]), { tot: 200 })) };
    const ok = { f: eth(0x0800, ipv4(6, A, B, tcp(1, 2, 0x02))) };
    const r = rewriteCapture(pcap([big, liar, ok]), { clusterIp: CIP, clusterMac: MAC, mtu: 1500 });
    expect(r.count).toBe(1);
    expect(r.stats.skipped).toEqual({ 'larger-than-mtu': 1, 'malformed-ip': 1 });
  });
});

describe('ctClass (nf_conntrack_proto_tcp tcp_valid_flags / tcp_conntracks "new" column)', () => {
  const cls = (flags: number): number => ctClass(Uint8Array.from(ipv4(6, A, B, tcp(1, 2, flags))), 0);
  it.each([
    [0x02, CT.NEW], [0x22, CT.NEW], [0x0a, CT.NEW], [0xc2, CT.NEW], // SYN, SYN|URG, SYN|PSH, SYN with ECE|CWR
    [0x10, CT.LOOSE], [0x18, CT.LOOSE], [0x30, CT.LOOSE],
    [0x12, CT.INVALID], [0x04, CT.INVALID], [0x14, CT.INVALID], [0x11, CT.INVALID], [0x00, CT.INVALID], [0x03, CT.INVALID], [0x01, CT.INVALID],
  ])('flags %i -> class %i', (f, want) => {
    expect(cls(f)).toBe(want);
  });
});

describe('rewriteCapture reassembles as the receiving kernel does (sim/traffic/defrag.ts)', () => {
  const dg = udp(5000, 53, Array.from({ length: 40 }, (_, i) => i)); // 48 bytes: fragments of 24
  const frag = (from: number, to: number, id: number, last = to >= dg.length): { f: number[] } =>
    ({ f: eth(0x0800, ipv4(17, A, B, dg.slice(from, to), { id, frag: (last ? 0 : 0x2000) | (from / 8) })) });

  it('a duplicate fragment is sent but does not stop the train; an overlapping train never becomes visible', () => {
    const rw = rewriteCapture(pcap([frag(0, 24, 5), frag(0, 24, 5), frag(24, 48, 5), frag(0, 24, 6), frag(16, 48, 6)]), { clusterIp: CIP, clusterMac: MAC });
    expect(rw.count).toBe(5); // every frame is sent: the node's kernel drops what it drops
    expect(rw.stats.fragmentTrains).toBe(1);
    expect(rw.visible.count).toBe(1);
    expect(rw.visible.sport[0]).toBe(5000);
    // id 6: 16-48 overlaps 0-24, the kernel discards the train
    expect(rw.stats.incompleteTrains).toBe(1);
  });
});

