import { describe, expect, it } from 'vitest';
import { answersInPcap, probeDatagram } from './packets.ts';
import { parseIPv4 } from '../../sim/core/addr.ts';

/** A second, plain one's-complement sum (not the module's) over 16-bit words. */
function onesSum(bytes: number[]): number {
  let s = 0;
  for (let i = 0; i < bytes.length; i += 2) s += (bytes[i]! << 8) | (bytes[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

const SRC = parseIPv4('10.201.0.7')!;
const DST = parseIPv4('10.200.0.100')!;

describe('probe datagrams', () => {
  it('a TCP SYN with valid IP and TCP checksums, our addresses and ports', () => {
    const d = probeDatagram({ proto: 'tcp', saddr: SRC, daddr: DST, sport: 33001, dport: 8080 }, 7);
    expect(d.length).toBe(44);
    expect(onesSum([...d.subarray(0, 20)])).toBe(0xffff);
    const pseudo = [...d.subarray(12, 20), 0, 6, 0, 24];
    expect(onesSum([...pseudo, ...d.subarray(20)])).toBe(0xffff);
    expect(d.readUInt32BE(12)).toBe(SRC);
    expect(d.readUInt32BE(16)).toBe(DST);
    expect([d.readUInt16BE(20), d.readUInt16BE(22), d[33]]).toEqual([33001, 8080, 0x02]);
  });

  it('an ICMP echo request with a valid checksum, identifier and sequence', () => {
    const d = probeDatagram({ proto: 'icmp', saddr: SRC, daddr: DST, sport: 4242, dport: 3 });
    expect(onesSum([...d.subarray(0, 20)])).toBe(0xffff);
    expect(onesSum([...d.subarray(20)])).toBe(0xffff);
    expect([d[9], d[20], d.readUInt16BE(24), d.readUInt16BE(26)]).toEqual([1, 8, 4242, 3]);
  });
});

/** An Ethernet frame from `mac` carrying `ip` (an IPv4 datagram). */
function frame(mac: number, ip: Buffer, vlan = false): Buffer {
  const eth = Buffer.alloc(vlan ? 18 : 14);
  eth.set([2, 0, 0, 0, 0, 1], 0);
  eth.set([2, 0, 0, 0, 0, mac], 6);
  if (vlan) { eth.writeUInt16BE(0x8100, 12); eth.writeUInt16BE(5, 14); eth.writeUInt16BE(0x0800, 16); } else eth.writeUInt16BE(0x0800, 12);
  return Buffer.concat([eth, ip]);
}

function pcap(frames: Buffer[], cutLast = 0): Buffer {
  const h = Buffer.alloc(24);
  h.writeUInt32LE(0xa1b2c3d4, 0); h.writeUInt16LE(2, 4); h.writeUInt16LE(4, 6); h.writeUInt32LE(65535, 16); h.writeUInt32LE(1, 20);
  const recs = frames.map((f) => {
    const r = Buffer.alloc(16);
    r.writeUInt32LE(f.length, 8); r.writeUInt32LE(f.length, 12);
    return Buffer.concat([r, f]);
  });
  const all = Buffer.concat([h, ...recs]);
  return all.subarray(0, all.length - cutLast);
}

/** The answer a node would send: addresses and ports swapped, `flags` set. */
function reply(from: number, probe: Buffer, flags: number): Buffer {
  const r = Buffer.from(probe);
  r.writeUInt32BE(from, 12); r.writeUInt32BE(probe.readUInt32BE(12), 16);
  if (r[9] === 6) { r.writeUInt16BE(probe.readUInt16BE(22), 20); r.writeUInt16BE(probe.readUInt16BE(20), 22); r.writeUInt32BE((probe.readUInt32BE(24) + 1) >>> 0, 28); r[33] = flags; } else r[20] = 0;
  return r;
}

describe('answers in a capture', () => {
  const syn = probeDatagram({ proto: 'tcp', saddr: SRC, daddr: DST, sport: 33001, dport: 8080, seq: 0xfffffff0 });
  const echo = probeDatagram({ proto: 'icmp', saddr: SRC, daddr: DST, sport: 9, dport: 2 });

  it('reads SYN-ACK, RST (behind a VLAN tag) and echo replies from the cluster IP, passes over others and a cut record', () => {
    const other = reply(parseIPv4('10.200.0.11')!, syn, 0x12);
    const ack = reply(DST, syn, 0x10);
    const file = pcap([frame(0x11, reply(DST, syn, 0x12)), frame(0x12, reply(DST, syn, 0x14), true), frame(0x13, other), frame(0x14, ack), frame(0x15, reply(DST, echo, 0)), frame(0x16, reply(DST, syn, 0x12))], 10);
    const a = answersInPcap(file, DST, 'test.pcap');
    expect(a.map((x) => [x.mac, x.proto, x.saddr, x.sport, x.dport, x.tcpFlags, x.ack])).toEqual([
      ['02:00:00:00:00:11', 'tcp', SRC, 33001, 8080, 0x12, 0xfffffff1],
      ['02:00:00:00:00:12', 'tcp', SRC, 33001, 8080, 0x14, 0xfffffff1],
      ['02:00:00:00:00:15', 'icmp', SRC, 9, 2, 0, 0],
    ]);
  });

  it('refuses a file that is not pcap, naming the byte', () => {
    expect(() => answersInPcap(Buffer.alloc(40, 7), DST, 'x.pcap')).toThrow(/x\.pcap at byte 0: not a pcap/);
  });
});
