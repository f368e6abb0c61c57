/**
 * Corner cases real captures from other projects hit (issue 17 item 8), each
 * against what tshark and libpcap (tcpdump -r) do with the same file:
 * IPv6 extension-header chains of any length, pcapng simple packet blocks
 * (no timestamp), nanosecond pcaps whose sub-second field overflows, pcapng
 * section versions and pcap link-type fields libpcap refuses.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataError } from '../core/errors.ts';
import { createBatch } from './batch.ts';
import { openCapture } from './capture.ts';
import { compareRows, ourRows, tsharkRows } from '../../test/tshark.ts';
import * as fr from '../../test/frames.ts';

const root = resolve(import.meta.dirname, '../..');
let dir = '';
const p = (name: string): string => join(dir, name);
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'corner-')); });
afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

/** tcpdump -r (libpcap) on a file: exit code and stderr. */
function libpcap(file: string): { code: number; err: string; out: string } {
  const r = spawnSync('tcpdump', ['-tt', '-n', '-r', file], { encoding: 'utf8' });
  return { code: r.status ?? -1, err: r.stderr, out: r.stdout };
}
function cli(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'cli/main.ts'), ...args], { cwd: root, encoding: 'utf8' });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}
function readError(file: string): DataError {
  try {
    const src = openCapture(file);
    const b = createBatch(16);
    try { while (src.fill(b) > 0); } finally { src.close(); }
  } catch (e) {
    if (e instanceof DataError) return e;
    throw e;
  }
  throw new Error(`${file} was read without an error`);
}

const udp4 = (k: number): Uint8Array => fr.ipv4({ proto: 17, src: '10.0.0.1', dst: '10.0.0.2', id: k }, fr.udp(1000 + k, 53, 12));

describe('IPv6 extension header chains', () => {
  it('a chain of 40 destination-options headers is walked to its end, as ipv6_skip_exthdr does: UDP, with its ports', () => {
    const opt = (): [number, Uint8Array] => { const h = new Uint8Array(8); h[2] = 1; h[3] = 4; return [60, h]; };
    const pk = [10, 31, 32, 33, 40, 100].map((n) => fr.ipv6('2001:db8::1', '2001:db8::2', Array.from({ length: n }, opt), 17, fr.udp(4000 + n, 53, 8)));
    // and one whose chain runs past the capture: the walk stops where the bytes end (truncated), not at a count
    const long = fr.ipv6('2001:db8::1', '2001:db8::2', Array.from({ length: 50 }, opt), 6, fr.tcp(5000, 80, 2));
    const f = fr.writePcap(p('chain.pcap'), [...pk.map((d, k) => ({ ts: [1700000000, k] as [number, number], data: fr.ether(d, 0x86dd) })),
      { ts: [1700000001, 0], data: fr.ether(long, 0x86dd), caplen: 14 + 40 + 30 * 8 }]);
    const ours = ourRows(f);
    expect(ours.map((r) => [r.proto, r.sport, r.dport])).toEqual([[17, 4010, 53], [17, 4031, 53], [17, 4032, 53], [17, 4033, 53], [17, 4040, 53], [17, 4100, 53], [60, null, null]]);
    expect(compareRows(ours.slice(0, 6), tsharkRows(f).slice(0, 6))).toEqual([]);
  });
});

describe('pcapng simple packet blocks: no timestamp', () => {
  const recs = (): fr.NgRec[] => [{ data: fr.ether(udp4(0), 0x800) }, { ts: 1700000000123456, data: fr.ether(udp4(1), 0x800) }, { data: fr.ether(udp4(2), 0x800) }, { ts: 1700000001000000, data: fr.ether(udp4(3), 0x800) }];
  it('tuples prints an empty ts (JSON null) where tshark shows no frame.time_epoch, and says what time it uses', () => {
    const f = p('spb.pcapng');
    writeFileSync(f, fr.pcapng(recs()));
    const theirs = tsharkRows(f);
    expect(theirs.map((r) => r.ts)).toEqual(['', '1700000000.123456000', '', '1700000001.000000000']);
    expect(compareRows(ourRows(f), theirs)).toEqual([]);
    expect(ourRows(f).map((r) => r.ts)).toEqual(['', '1700000000.123456', '', '1700000001.000000']);
    const t = cli(['tuples', f]);
    expect(t.code).toBe(0);
    expect(t.out.split('\n')[3]).toBe(',17,10.0.0.1,1002,10.0.0.2,53,54,');
    expect(t.err).toMatch(/2 packets have no timestamp \(pcapng simple packet blocks\)/);
    const j = JSON.parse(cli(['tuples', f, '--json']).out) as { packets: { ts: number | null }[]; stats: { untimed: number } };
    expect(j.packets.map((x) => x.ts)).toEqual([null, 1700000000.123456, null, 1700000001]);
    expect(j.stats.untimed).toBe(2);
    // simulate (and recommend, through the same note) say it in their warnings
    const sim = cli(['simulate', '--pcap', f, '--backend', 'xt_cluster', '--total-nodes', '2', '--hash-seed', '1', '--cluster-ip', '10.0.0.2', '--json']);
    expect(sim.code, sim.err).toBe(0);
    expect((JSON.parse(sim.out) as { warnings?: string[] }).warnings).toEqual(expect.arrayContaining([expect.stringMatching(/^2 packets have no timestamp/)]));
  });
  it('time-based state takes an untimed packet as arriving with no time passed since the one before', () => {
    writeFileSync(p('spb2.pcapng'), fr.pcapng(recs()));
    const src = openCapture(p('spb2.pcapng'));
    const b = createBatch(16);
    expect(src.fill(b)).toBe(4);
    src.close();
    expect(Array.from(b.ts.subarray(0, 4))).toEqual([0, 1700000000.123456, 1700000000.123456, 1700000001]);
    expect(src.stats.untimed).toBe(2);
    // --from/--to judge it by that time too: the third packet goes with the second.
    expect(ourRows(p('spb2.pcapng'), { from: 1700000000, to: 1700000000.5 }).map((r) => r.sport)).toEqual([1001, 1002]);
  });
});

describe('nanosecond pcap whose sub-second field overflows', () => {
  it('carries into the seconds, as the microsecond path does (tshark and tcpdump print the raw field)', () => {
    const d = fr.ether(udp4(0), 0x800);
    const ns = fr.writePcap(p('ns.pcap'), [{ ts: [1700000000, 1500000000], data: d }, { ts: [1700000000, 999999999], data: d }, { ts: [1700000000, 4294967295], data: d }], { nano: true });
    const us = fr.writePcap(p('us.pcap'), [{ ts: [1700000000, 1500000], data: d }, { ts: [1700000000, 999999], data: d }, { ts: [1700000000, 4294967295], data: d }]);
    expect(ourRows(ns).map((r) => r.ts)).toEqual(['1700000001.500000000', '1700000000.999999999', '1700000004.294967295']);
    expect(ourRows(us).map((r) => r.ts)).toEqual(['1700000001.500000', '1700000000.999999', '1700004294.967295']);
    // What the tools print, for the record: the field raw after the dot (not a time), so we do not follow them there.
    expect(execFileSync('tshark', ['-r', ns, '-T', 'fields', '-e', 'frame.time_epoch'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0]).toBe('1700000000.1500000000');
    expect(libpcap(ns).out.split('\n')[0]).toMatch(/^1700000000\.1500000 /);
  });
});

describe('what libpcap refuses, refused with file and byte offset', () => {
  const base = (): Uint8Array => fr.pcapng([{ ts: 1700000000000000, data: fr.ether(udp4(0), 0x800) }]);
  it('pcapng section versions: 1.0 and 1.2 read, 1.1 and 1.3 refused (tcpdump: "unsupported pcapng savefile version")', () => {
    for (const minor of [0, 1, 2, 3]) {
      const f = p(`v1${minor}.pcapng`);
      writeFileSync(f, fr.pcapng([{ ts: 1700000000000000, data: fr.ether(udp4(0), 0x800) }], { minor }));
      const lp = libpcap(f);
      if (minor === 0 || minor === 2) {
        expect(lp.code).toBe(0);
        expect(ourRows(f)).toHaveLength(1);
      } else {
        expect(lp.err).toMatch(new RegExp(`unsupported pcapng savefile version 1\\.${minor}`));
        const e = readError(f);
        expect(e.where).toBe(`${f}: byte 12`);
        expect(e.what).toMatch(new RegExp(`pcapng section version 1\\.${minor} is not supported`));
        // lenient skips damaged records, not a format it cannot read
        expect(() => ourRows(f, { lenient: true })).toThrow(DataError);
      }
    }
    // a second section of version 1.1 later in the file: its SHB's offset
    const one = base(), bad = fr.pcapng([], { minor: 1 });
    const f = p('two-sections.pcapng');
    writeFileSync(f, Buffer.concat([one, bad]));
    expect(readError(f).where).toBe(`${f}: byte ${one.length + 12}`);
  });
  it('pcap link-type field with reserved bits 16-25 set refused; FCS bits 26-31 read (as libpcap)', () => {
    const d = fr.ether(udp4(0), 0x800);
    for (const field of [0x00010001, 0x02000001, 0x04000001, 0x14000001]) {
      const f = fr.writePcap(p(`lt-${field.toString(16)}.pcap`), [{ ts: [1700000000, 0], data: d }]);
      const b = Buffer.from(readFileSync(f));
      b.writeUInt32LE(field, 20);
      writeFileSync(f, b);
      const lp = libpcap(f);
      if (field & 0x03ff0000) {
        expect(lp.err).toMatch(/unknown data link type/);
        const e = readError(f);
        expect(e.where).toBe(`${f}: byte 20`);
        expect(e.what).toMatch(/reserved bits 16-25/);
      } else {
        expect(lp.code).toBe(0);
        expect(ourRows(f).map((r) => r.sport)).toEqual([1000]);
      }
    }
  });
});
