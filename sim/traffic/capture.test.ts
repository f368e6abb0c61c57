/**
 * pcap/pcapng readers against real tools: captures written by `gen`, converted
 * by editcap/mergecap, made by randpkt, and hand-built frames of every link
 * type; tshark's decoding is the reference, compared field by field.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBatch, F, L4 } from './batch.ts';
import { openCapture, openCaptureBuffer } from './capture.ts';
import { planShares } from './share-plan.ts';
import { openSynthetic } from './synthetic.ts';
import { PcapWriter } from './pcap-writer.ts';
import { DataError } from '../core/errors.ts';
import { compareRows, ourRows, tsharkRows } from '../../test/tshark.ts';
import * as fr from '../../test/frames.ts';

let dir = '';
const p = (name: string): string => join(dir, name);
const run = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

function gen(name: string, scenario: string, packets: number, snaplen = 262144, seed = 1): string {
  const w = new PcapWriter(p(name), snaplen);
  const s = openSynthetic(scenario, { packets, seed });
  const b = createBatch(4096);
  while (s.fill(b) > 0) w.write(b);
  w.close();
  return p(name);
}

function expectSameAsTshark(file: string): void {
  const theirs = tsharkRows(file);
  expect(theirs.length).toBeGreaterThan(0);
  expect(compareRows(ourRows(file), theirs)).toEqual([]);
}

/** A mix of hand-built IPv4/IPv6 packets exercising options, extension headers, ICMP and truncation. */
function mixedPackets(): Uint8Array[] {
  const v4 = (l4: Uint8Array, proto: number, extra: Partial<fr.Ip4Opts> = {}): Uint8Array => fr.ipv4({ proto, src: '10.1.2.3', dst: '192.0.2.10', ...extra }, l4);
  const dstopt = new Uint8Array(8); dstopt[2] = 1; dstopt[3] = 4; // PadN
  const hbh = new Uint8Array(8); hbh[2] = 1; hbh[3] = 4;
  const rh = new Uint8Array(24); rh[2] = 0; rh[3] = 0; // routing type 0, segments left 0, one address
  return [
    v4(fr.tcp(40000, 80, 0x02), 6),
    v4(fr.udp(5353, 53, 20), 17),
    v4(fr.udp(1234, 4321, 4), 17, { options: [0x94, 0x04, 0, 0, 1, 1, 1, 0] }), // router alert + NOPs
    v4(fr.icmpEcho(8, 0x1234, 7), 1),
    v4(fr.icmpEcho(0, 0x1234, 7), 1),
    fr.ipv6('2001:db8::1', '2001:db8::10', [], 6, fr.tcp(50000, 443, 0x12)),
    fr.ipv6('2001:db8::1', '2001:db8::10', [[0, hbh], [60, dstopt]], 17, fr.udp(5000, 6000, 10)),
    fr.ipv6('2001:db8::2', '2001:db8::10', [[43, rh]], 58, fr.icmpEcho(128, 99, 3)),
    fr.ipv6('fe80::1', 'ff02::1', [[0, hbh]], 58, fr.icmpEcho(129, 5, 6)),
  ];
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cap-test-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('pcap and pcapng from real tools decode like tshark', () => {
  it('a generated Ethernet pcap, and editcap conversions to pcapng and nanosecond pcap', () => {
    const f = gen('mix.pcap', 'default', 3000);
    expectSameAsTshark(f);
    run('editcap', ['-F', 'pcapng', f, p('mix.pcapng')]);
    run('editcap', ['-F', 'nsecpcap', f, p('mix-ns.pcap')]);
    expectSameAsTshark(p('mix.pcapng'));
    expectSameAsTshark(p('mix-ns.pcap'));
    // Same packets whatever the container.
    expect(ourRows(p('mix.pcapng'))).toEqual(ourRows(f));
  });

  it('snaplen: editcap -s cuts frames; cut transport headers are flagged, never given ports 0', () => {
    const f = gen('full.pcap', 'default', 2000);
    run('editcap', ['-s', '50', f, p('cut50.pcap')]);
    expectSameAsTshark(p('cut50.pcap'));
    const src = openCapture(p('cut50.pcap'));
    const b = createBatch(4096);
    let truncated = 0;
    while (src.fill(b) > 0) {
      for (let i = 0; i < b.count; i++) {
        if (b.proto[i] === 6) {
          // 14 + 20 + 16 bytes: ports and seq present, the TCP flags byte is not.
          expect(b.flags[i]! & F.TRUNCATED).toBe(F.TRUNCATED);
          expect(b.l4flags[i]! & (L4.HAS4 | L4.HAS8)).toBe(L4.HAS4 | L4.HAS8);
          truncated++;
        }
        expect(b.wirelen[i]).toBeGreaterThanOrEqual(54);
      }
    }
    expect(truncated).toBeGreaterThan(100);
    expect(src.stats.truncated).toBe(truncated);
    run('editcap', ['-s', '36', f, p('cut36.pcap')]);
    const s2 = openCapture(p('cut36.pcap'));
    while (s2.fill(b) > 0) for (let i = 0; i < b.count; i++) { expect(b.l4flags[i]! & L4.HAS4).toBe(0); expect(b.flags[i]! & F.TRUNCATED).toBe(F.TRUNCATED); }
    expect(s2.stats.truncated).toBe(s2.stats.packets);
  });

  it('mergecap of Ethernet and raw-IP captures: one pcapng, two interfaces with their own link types', () => {
    const f = gen('eth.pcap', 'uniform', 500, 262144, 3);
    run('editcap', ['-C', '14', '-T', 'rawip', f, p('raw.pcap')]);
    expectSameAsTshark(p('raw.pcap'));
    writeFileSync(p('mixed.pcap'), fr.pcap(mixedPackets().map((d, k) => ({ ts: [1700000000, 10 + k], data: d })), { linktype: 101 }));
    run('mergecap', ['-F', 'pcapng', '-w', p('merged.pcapng'), f, p('raw.pcap'), p('mixed.pcap')]);
    const idbs = run('capinfos', ['-I', '-T', p('merged.pcapng')]);
    expect(idbs.length).toBeGreaterThan(0);
    expectSameAsTshark(p('merged.pcapng'));
    expect(ourRows(p('merged.pcapng')).length).toBe(500 + 500 + mixedPackets().length);
  });

  it('randpkt: every packet we take from random Ethernet frames matches tshark field by field', () => {
    // randpkt puts random bytes after a protocol template. Where the kernel
    // would drop a frame (IPv6 inside ethertype 0x0800, bogus headers, fragments
    // of datagrams that never complete) we skip it while tshark still shows
    // something, so the frames are matched by their (unique) timestamps.
    let taken = 0;
    for (const t of ['ip', 'ipv6', 'udp', 'icmp', 'dns', 'sctp', 'bgp', 'arp']) {
      const f = p(`rand-${t}.pcap`);
      run('randpkt', ['-b', '400', '-c', '300', '-t', t, f]);
      const theirs = new Map(tsharkRows(f).map((r) => [r.ts.replace(/0+$/, ''), r]));
      const ours = ourRows(f, { lenient: true });
      const pairs = ours.map((r) => [r, theirs.get(Number(r.ts).toFixed(9).replace(/0+$/, ''))!] as const);
      expect(pairs.filter(([, x]) => !x).length, t).toBe(0);
      expect(compareRows(pairs.map(([a]) => a), pairs.map(([, x]) => x)), t).toEqual([]);
      taken += ours.length;
    }
    expect(taken).toBeGreaterThan(1000);
  });

  it('randpkt with link types we do not decode (Token Ring, FDDI, USB): a DataError naming the type', () => {
    for (const [t, lt] of [['tr', 6], ['fddi', 10], ['usb-linux', 189]] as const) {
      run('randpkt', ['-c', '5', '-t', t, p(`odd-${t}.pcap`)]);
      expect(() => openCapture(p(`odd-${t}.pcap`))).toThrow(new RegExp(`odd-${t}.pcap: byte 20: link type ${lt} is not supported`));
    }
  });
});

describe('every link type, byte order and precision', () => {
  const pk = mixedPackets();
  const et = (d: Uint8Array): number => (d[0]! >> 4 === 6 ? 0x86dd : 0x0800);
  const cases: [string, number, (d: Uint8Array) => Uint8Array][] = [
    ['ethernet', 1, (d) => fr.ether(d, et(d))],
    ['802.1Q', 1, (d) => fr.ether(d, et(d), [0x8100])],
    ['QinQ 88a8+8100', 1, (d) => fr.ether(d, et(d), [0x88a8, 0x8100])],
    ['QinQ 9100', 1, (d) => fr.ether(d, et(d), [0x9100, 0x8100])],
    ['Linux cooked v1', 113, (d) => fr.sll(d, et(d))],
    ['Linux cooked v2', 276, (d) => fr.sll2(d, et(d))],
    ['raw 101', 101, (d) => d],
    ['raw BSD 12', 12, (d) => d],
    ['raw BSD 14', 14, (d) => d],
    ['NULL little-endian', 0, (d) => fr.nullHdr(d, d[0]! >> 4 === 6 ? 24 : 2, true)],
    ['NULL big-endian', 0, (d) => fr.nullHdr(d, d[0]! >> 4 === 6 ? 30 : 2, false)],
    ['LOOP', 108, (d) => fr.nullHdr(d, d[0]! >> 4 === 6 ? 24 : 2, false)],
  ];
  for (const [name, lt, wrap] of cases) {
    for (const [order, le, nano] of [['le-us', true, false], ['be-ns', false, true]] as const) {
      it(`${name} (${order})`, () => {
        const f = p(`lt-${lt}-${name.replace(/\W/g, '')}-${order}.pcap`);
        writeFileSync(f, fr.pcap(pk.map((d, k) => ({ ts: [1700000000 + k, nano ? 123456789 : 123456], data: wrap(d) })), { linktype: lt, le, nano }));
        expectSameAsTshark(f);
        // ICMP echo identifier/sequence are no ports: they are the l4_id column's.
        expect(ourRows(f).map((r) => r.sport)).toEqual([40000, 5353, 1234, null, null, 50000, 5000, null, null]);
        expect(ourRows(f).map((r) => r.l4id)).toEqual([null, null, null, 'id=4660/seq=7', 'id=4660/seq=7', null, null, 'id=99/seq=3', 'id=5/seq=6']);
      });
    }
  }
  it('IPv4 228 and IPv6 229 link types', () => {
    const v4 = pk.filter((d) => d[0]! >> 4 === 4), v6 = pk.filter((d) => d[0]! >> 4 === 6);
    writeFileSync(p('228.pcap'), fr.pcap(v4.map((d, k) => ({ ts: [1, k], data: d })), { linktype: 228 }));
    writeFileSync(p('229.pcap'), fr.pcap(v6.map((d, k) => ({ ts: [1, k], data: d })), { linktype: 229 }));
    expect(ourRows(p('228.pcap')).map((r) => r.dst)).toEqual(v4.map(() => '192.0.2.10'));
    expect(ourRows(p('229.pcap')).map((r) => r.proto)).toEqual([6, 17, 58, 58]);
  });
  it('non-IP frames (ARP, 802.3) are skipped and counted', () => {
    const arp = fr.ether(new Uint8Array(28), 0x0806);
    const llc = fr.ether(new Uint8Array(40), 40);
    const src = openCaptureBuffer(fr.pcap([{ ts: [1, 0], data: arp }, { ts: [1, 1], data: fr.ether(pk[0]!, 0x0800) }, { ts: [1, 2], data: llc }]));
    const b = createBatch(8);
    expect(src.fill(b)).toBe(1);
    expect(src.stats.skipped['non-ip']).toBe(2);
  });
});

describe('streaming, limits and shares', () => {
  it('gzip files and the time window / limit options', () => {
    const f = gen('w.pcap', 'default', 5000);
    writeFileSync(p('w.pcap.gz'), gzipSync(readFileSync(f)));
    const all = ourRows(f);
    expect(ourRows(p('w.pcap.gz'))).toEqual(all);
    expect(ourRows(f, { limit: 123 })).toEqual(all.slice(0, 123));
    const from = Number(all[1000]!.ts), to = Number(all[2000]!.ts);
    const win = ourRows(f, { from, to });
    expect(win.length).toBeGreaterThan(900);
    expect(win.every((r) => Number(r.ts) >= from && Number(r.ts) <= to)).toBe(true);
  });

  it('planShares: record-aligned ranges whose union is the whole capture (pcap and pcapng)', () => {
    const f = gen('big.pcap', 'default', 40000);
    run('editcap', ['-F', 'pcapng', f, p('big.pcapng')]);
    for (const file of [f, p('big.pcapng')]) {
      const whole = ourRows(file);
      for (const parts of [2, 3, 7]) {
        const shares = planShares(file, parts);
        expect(shares.length).toBe(parts);
        const joined = shares.flatMap((s) => ourRows(file, s));
        expect(joined.length).toBe(whole.length);
        expect(joined).toEqual(whole);
      }
    }
    writeFileSync(p('big.pcap.gz'), gzipSync(readFileSync(f)));
    expect(planShares(p('big.pcap.gz'), 4)).toHaveLength(1);
  });

  it('planShares with weights: ranges in those proportions of the bytes, still record-aligned and whole', () => {
    const f = gen('weighted.pcap', 'default', 40000);
    const whole = ourRows(f);
    const size = statSync(f).size;
    for (const weights of [[1, 0.45], [1, 0.5, 0.5, 0.25]]) {
      const shares = planShares(f, weights.length, weights);
      expect(shares.length).toBe(weights.length);
      expect(shares.flatMap((s) => ourRows(f, s))).toEqual(whole);
      const total = weights.reduce((a, b) => a + b, 0);
      // Each cut lands on the first record boundary after its target: within one record (< 2 KB here).
      shares.forEach((s, k) => expect(Math.abs(s.end - s.start - (size - 24) * weights[k]! / total)).toBeLessThan(4096));
    }
    expect(() => planShares(f, 2, [1])).toThrow(RangeError);
  });

  it('a pcapng with two sections of different byte order', () => {
    const a = gen('s1.pcap', 'nat', 300, 262144, 5), c = gen('s2.pcap', 'zipf', 300, 262144, 6);
    run('editcap', ['-F', 'pcapng', a, p('s1.pcapng')]);
    run('editcap', ['-F', 'pcapng', c, p('s2.pcapng')]);
    const be = swapPcapng(readFileSync(p('s2.pcapng')));
    writeFileSync(p('two.pcapng'), Buffer.concat([readFileSync(p('s1.pcapng')), be]));
    expectSameAsTshark(p('two.pcapng'));
    expect(ourRows(p('two.pcapng'))).toEqual([...ourRows(a), ...ourRows(c)]);
  });
});

describe('bad input: DataError with file and byte offset, or skipped with --lenient', () => {
  const good = (): Uint8Array => fr.pcap(mixedPackets().map((d, k) => ({ ts: [1, k], data: fr.ether(d, d[0]! >> 4 === 6 ? 0x86dd : 0x800) })));
  const drain = (data: Uint8Array, lenient = false): number => {
    const s = openCaptureBuffer(data, { lenient, label: 'x.pcap' });
    const b = createBatch(64);
    let n = 0;
    while (s.fill(b) > 0) n += b.count;
    return n;
  };
  it('bad magic and empty files', () => {
    expect(() => drain(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]))).toThrow(/x.pcap: byte 0: not a pcap or pcapng capture \(magic 01 02 03 04/);
    expect(() => drain(new Uint8Array(0))).toThrow(DataError);
  });
  it('a file cut inside a record', () => {
    const g = good();
    expect(() => drain(g.subarray(0, g.length - 5))).toThrow(/x.pcap: byte \d+: file ends inside a record/);
    expect(drain(g.subarray(0, g.length - 5), true)).toBe(8);
  });
  it('an absurd caplen is an error naming its offset; lenient resynchronises on the next records', () => {
    const g = good();
    const v = new DataView(g.buffer);
    const second = 24 + 16 + v.getUint32(24 + 8, true);
    v.setUint32(second + 8, 0x7fffffff, true);
    expect(() => drain(g)).toThrow(new RegExp(`x.pcap: byte ${second}: record caplen 2147483647`));
    const s = openCaptureBuffer(g, { lenient: true });
    const b = createBatch(64);
    s.fill(b);
    expect(s.stats.skipped['bad-record']).toBe(1);
    expect(b.count).toBeGreaterThanOrEqual(5);
  });
  it('zero-length records are counted, not fatal', () => {
    const s = openCaptureBuffer(fr.pcap([{ ts: [1, 0], data: new Uint8Array(0) }, { ts: [1, 1], data: fr.ether(mixedPackets()[0]!, 0x800) }]));
    const b = createBatch(8);
    expect(s.fill(b)).toBe(1);
    expect(s.stats.skipped['truncated-ip']).toBe(1);
  });
  it('pcapng: block length disagreeing with its trailer', () => {
    const f = gen('t.pcap', 'uniform', 20);
    run('editcap', ['-F', 'pcapng', f, p('t.pcapng')]);
    const d = new Uint8Array(readFileSync(p('t.pcapng')));
    const v = new DataView(d.buffer);
    // walk to the 5th block and break its trailer
    let o = 0;
    for (let k = 0; k < 5; k++) o += v.getUint32(o + 4, true);
    const len = v.getUint32(o + 4, true);
    v.setUint32(o + len - 4, len + 4, true);
    expect(() => drain(d)).toThrow(new RegExp(`byte ${o + len - 4}: block length ${len} at byte ${o + 4} disagrees with its trailing copy ${len + 4}`));
    expect(drain(d, true)).toBe(19);
  });
});

/** Rewrites a little-endian pcapng as big-endian (SHB, IDB, EPB fields and options). */
function swapPcapng(src: Buffer): Buffer {
  const d = Buffer.from(src);
  let o = 0;
  const sw32 = (at: number): void => { d.writeUInt32BE(d.readUInt32LE(at), at); };
  const sw16 = (at: number): void => { d.writeUInt16BE(d.readUInt16LE(at), at); };
  const opts = (from: number, to: number, sizes: Record<number, number[]>): void => {
    let q = from;
    while (q + 4 <= to) {
      const code = d.readUInt16LE(q), len = d.readUInt16LE(q + 2);
      sw16(q); sw16(q + 2);
      for (const f of sizes[code] ?? []) { if (f === 8) { const lo = d.readUInt32LE(q + 4), hi = d.readUInt32LE(q + 8); d.writeUInt32BE(hi, q + 4); d.writeUInt32BE(lo, q + 8); } }
      if (code === 0) break;
      q += 4 + ((len + 3) & ~3);
    }
  };
  while (o < d.length) {
    const type = d.readUInt32LE(o), len = d.readUInt32LE(o + 4);
    sw32(o); sw32(o + 4); sw32(o + len - 4);
    if (type === 0x0a0d0d0a) { sw32(o + 8); sw16(o + 12); sw16(o + 14); const lo = d.readUInt32LE(o + 16), hi = d.readUInt32LE(o + 20); d.writeUInt32BE(hi, o + 16); d.writeUInt32BE(lo, o + 20); opts(o + 24, o + len - 4, {}); }
    else if (type === 1) { sw16(o + 8); sw16(o + 10); sw32(o + 12); opts(o + 16, o + len - 4, { 14: [8] }); }
    else if (type === 6) { for (const k of [8, 12, 16, 20, 24]) sw32(o + k); const cap = d.readUInt32BE(o + 20); opts(o + 28 + ((cap + 3) & ~3), o + len - 4, {}); }
    o += len;
  }
  return d;
}
