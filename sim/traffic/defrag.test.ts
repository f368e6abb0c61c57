/**
 * Fragments carry their datagram's L4 fields (the kernel defragments before
 * conntrack, kernel-semantics §4.2): in order, out of order, missing pieces,
 * timeouts and the memory cap. tshark (which reassembles too) is the judge
 * where it can be.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBatch, F } from './batch.ts';
import { openCaptureBuffer, type CaptureOptions } from './capture.ts';
import { compareRows, ourRows, tsharkRows } from '../../test/tshark.ts';
import * as fr from '../../test/frames.ts';

let dir = '';
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'defrag-test-')); });
afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

/** Splits an L4 datagram into IPv4 fragments at the given byte offsets (multiples of 8). */
function frags4(l4: Uint8Array, proto: number, cuts: number[], id: number, src = '10.9.8.7'): Uint8Array[] {
  const edges = [0, ...cuts, l4.length];
  const out: Uint8Array[] = [];
  for (let k = 0; k + 1 < edges.length; k++) {
    out.push(fr.ether(fr.ipv4({ proto, src, dst: '192.0.2.10', id, fragOff: edges[k]!, mf: k + 2 < edges.length }, l4.subarray(edges[k]!, edges[k + 1]!)), 0x0800));
  }
  return out;
}
function frags6(l4: Uint8Array, proto: number, cuts: number[], id: number): Uint8Array[] {
  const edges = [0, ...cuts, l4.length];
  const out: Uint8Array[] = [];
  const dstopt = new Uint8Array(8); dstopt[2] = 1; dstopt[3] = 4;
  for (let k = 0; k + 1 < edges.length; k++) {
    const chain: [number, Uint8Array][] = [[60, dstopt], [44, fr.frag6(edges[k]!, k + 2 < edges.length, id)]];
    out.push(fr.ether(fr.ipv6('2001:db8::7', '2001:db8::10', chain, proto, l4.subarray(edges[k]!, edges[k + 1]!)), 0x86dd));
  }
  return out;
}
const plain = (sport: number): Uint8Array => fr.ether(fr.ipv4({ proto: 17, src: '10.0.0.1', dst: '192.0.2.10' }, fr.udp(sport, 53, 10)), 0x0800);

function file(name: string, frames: Uint8Array[], times?: number[]): string {
  const f = join(dir, name);
  writeFileSync(f, fr.pcap(frames.map((d, k) => ({ ts: [1700000000 + (times?.[k] ?? 0), k], data: d }))));
  return f;
}
function decode(frames: Uint8Array[], times?: number[], opts: CaptureOptions = {}) {
  const src = openCaptureBuffer(fr.pcap(frames.map((d, k) => ({ ts: [1700000000 + (times?.[k] ?? 0), k], data: d }))), opts);
  const b = createBatch(3);
  const rows: { sport: number; dport: number; frag: boolean; usec: number; proto: number; flags: number }[] = [];
  while (src.fill(b) > 0) for (let i = 0; i < b.count; i++) rows.push({ sport: b.sport[i]!, dport: b.dport[i]!, frag: (b.flags[i]! & F.FRAGMENT) !== 0, usec: Math.round((b.ts[i]! % 1) * 1e6), proto: b.proto[i]!, flags: b.flags[i]! });
  return { rows, stats: src.stats };
}

describe('IPv4 and IPv6 fragments', () => {
  it('in order and out of order, every fragment carries the datagram ports, like tshark reassembles', () => {
    const dg = fr.udp(4444, 5555, 3000);
    const a = frags4(dg, 17, [1480, 2960], 0x1111);
    const v6 = frags6(fr.udp(6666, 7777, 2500), 17, [1232], 0xabcdef);
    const frames = [a[0]!, plain(1), a[1]!, a[2]!, plain(2), a[2]!.slice(), v6[1]!, plain(3), v6[0]!];
    // the duplicate a[2] arrives after completion: kernel-wise a new queue that never completes
    frames.splice(5, 1);
    const f = file('order.pcap', frames);
    expect(compareRows(ourRows(f), tsharkRows(f))).toEqual([]);
    const { rows, stats } = decode(frames);
    expect(rows.map((r) => r.sport)).toEqual([4444, 1, 4444, 4444, 2, 6666, 3, 6666]);
    expect(rows.map((r) => r.usec)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]); // capture order kept while held back
    expect(rows.filter((r) => r.frag)).toHaveLength(5);
    expect(stats.fragments).toBe(5);
    expect(stats.skipped['unresolved-fragment'] ?? 0).toBe(0);
  });

  it('the first fragment last; a TCP header split over two fragments gets its flags from both', () => {
    const seg = fr.tcp(33333, 443, 0x18, 100);
    const f = frags4(seg, 6, [8], 0x2222);
    const { rows } = decode([f[1]!, plain(9), f[0]!]);
    expect(rows.map((r) => [r.sport, r.dport, r.frag])).toEqual([[33333, 443, true], [9, 53, false], [33333, 443, true]]);
    expect(rows[0]!.flags & (F.ACK | F.TRUNCATED)).toBe(F.ACK);
  });

  it('a datagram missing a fragment is never hashed: its fragments are skipped and counted', () => {
    const f = frags4(fr.udp(1, 2, 4000), 17, [1480, 2960], 0x3333);
    const { rows, stats } = decode([f[0]!, plain(5), f[2]!, plain(6)]);
    expect(rows.map((r) => r.sport)).toEqual([5, 6]);
    expect(stats.skipped['unresolved-fragment']).toBe(2);
  });

  it('fragments more than 30 s apart (ipfrag_time) do not reassemble', () => {
    const f = frags4(fr.udp(7, 8, 2000), 17, [1480], 0x4444);
    const late = decode([f[0]!, plain(1), f[1]!], [0, 10, 40]);
    expect(late.rows.map((r) => r.sport)).toEqual([1]);
    expect(late.stats.skipped['unresolved-fragment']).toBe(2);
    const inTime = decode([f[0]!, plain(1), f[1]!], [0, 10, 29]);
    expect(inTime.rows.map((r) => r.sport)).toEqual([7, 1, 7]);
  });

  it('the table is bounded: beyond its capacity the oldest datagram is given up', () => {
    const d = [1, 2, 3].map((k) => frags4(fr.udp(100 + k, 200, 2000), 17, [1480], 0x5000 + k, `10.0.0.${k}`));
    const frames = [d[0]![0]!, d[1]![0]!, d[2]![0]!, d[2]![1]!, d[1]![1]!, d[0]![1]!];
    const big = decode(frames);
    expect(big.rows.map((r) => r.sport)).toEqual([101, 102, 103, 103, 102, 101]);
    const small = decode(frames, undefined, { defrag: { entries: 2 } });
    expect(small.stats.skipped['unresolved-fragment']).toBeGreaterThanOrEqual(2);
    expect(small.rows.map((r) => r.sport)).toContain(103);
    expect(small.rows.map((r) => r.sport)).not.toContain(101);
  });

  it('thousands of interleaved datagrams with shuffled fragments all resolve, with a small batch', () => {
    const frames: Uint8Array[] = [];
    let seed = 7;
    const rnd = (): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed / 2 ** 32; };
    const pending: Uint8Array[][] = [];
    for (let k = 0; k < 2000; k++) {
      pending.push(frags4(fr.udp(k + 1, 9, 1600 + (k % 5) * 400), 17, [1480], k, `10.1.${k >> 8}.${k & 255}`));
      while (pending.length > 20 || (k === 1999 && pending.length)) {
        const j = Math.floor(rnd() * pending.length);
        const g = pending[j]!;
        frames.push(g.splice(Math.floor(rnd() * g.length), 1)[0]!);
        if (!g.length) pending.splice(j, 1);
      }
    }
    const { rows, stats } = decode(frames);
    expect(rows).toHaveLength(frames.length);
    expect(stats.skipped['unresolved-fragment'] ?? 0).toBe(0);
    expect(rows.every((r) => r.frag && r.dport === 9 && r.sport >= 1)).toBe(true);
  });
});

describe('overlaps, duplicates and conflicting ends: the kernel\'s rule (ip_frag_queue, inet_frag_queue_insert)', () => {
  /** IPv4 fragment of `l4` bytes [from, to) at that offset; `mf` defaults to "not the end". */
  const piece = (l4: Uint8Array, from: number, to: number, id: number, mf = to < l4.length): Uint8Array =>
    fr.ether(fr.ipv4({ proto: 17, src: '10.7.7.7', dst: '192.0.2.10', id, fragOff: from, mf }, l4.subarray(from, to)), 0x0800);
  const dg = fr.udp(4321, 53, 2392); // 2400 bytes of L4

  it('a duplicate wholly inside one run is dropped alone; the datagram still completes', () => {
    const { rows, stats } = decode([piece(dg, 0, 1200, 1), piece(dg, 0, 1200, 1), piece(dg, 1200, 2400, 1)]);
    expect(rows.map((r) => r.sport)).toEqual([4321, 4321]);
    expect(stats.skipped['duplicate-fragment']).toBe(1);
    expect(stats.skipped['unresolved-fragment'] ?? 0).toBe(0);
  });

  it('a partial overlap discards the whole datagram (RFC 5722, IPv4 too since 4.19)', () => {
    const { rows, stats } = decode([piece(dg, 0, 1200, 2), piece(dg, 800, 1600, 2), piece(dg, 1600, 2400, 2), plain(1)]);
    // 0-1200 is queued, 800-1600 kills the queue (0-1200 unresolved), 1600-2400 starts a new queue that never completes.
    expect(rows.map((r) => r.sport)).toEqual([1]);
    expect(stats.skipped['bad-fragment']).toBe(1);
    expect(stats.skipped['unresolved-fragment']).toBe(2);
  });

  it('runs: a fragment spanning two adjacent runs is an overlap, one extending the highest run is not', () => {
    // Out of order: 800-1600 then 0-800 make two runs; 0-1600 lies in no single run -> overlap.
    const a = decode([piece(dg, 800, 1600, 3), piece(dg, 0, 800, 3), piece(dg, 0, 1600, 3), piece(dg, 1600, 2400, 3)]);
    expect(a.stats.skipped['bad-fragment']).toBe(1);
    expect(a.rows).toHaveLength(0);
    // In order: 0-800 then 800-1600 extend one run; 0-1600 is then a duplicate.
    const b = decode([piece(dg, 0, 800, 4), piece(dg, 800, 1600, 4), piece(dg, 0, 1600, 4), piece(dg, 1600, 2400, 4)]);
    expect(b.stats.skipped['duplicate-fragment']).toBe(1);
    expect(b.rows.map((r) => r.sport)).toEqual([4321, 4321, 4321]);
  });

  it('two different last fragments, or data past a known end, discard the datagram', () => {
    // The second "last" fragment ends at 2400, not 1600: the queue dies; the head then starts a new one.
    const c = decode([piece(dg, 800, 1600, 5, false), piece(dg, 1600, 2400, 5, false), piece(dg, 0, 800, 5)]);
    expect(c.rows).toHaveLength(0);
    expect(c.stats.skipped['bad-fragment']).toBe(1);
    expect(c.stats.skipped['unresolved-fragment']).toBe(2);
    // A last fragment at 1600, then more data past it: the same.
    const d = decode([piece(dg, 800, 1600, 7, false), piece(dg, 1600, 2400, 7, true), piece(dg, 0, 800, 7)]);
    expect(d.rows).toHaveLength(0);
    expect(d.stats.skipped['bad-fragment']).toBe(1);
    // Control: the same first two, then the missing head, complete.
    const e = decode([piece(dg, 800, 1600, 8, false), piece(dg, 0, 800, 8)]);
    expect(e.rows).toHaveLength(2);
  });

  it('a fragment after its datagram completed starts a new datagram that never completes', () => {
    const { rows, stats } = decode([piece(dg, 0, 1200, 6), piece(dg, 1200, 2400, 6), piece(dg, 1200, 2400, 6), plain(2)]);
    expect(rows.map((r) => r.sport)).toEqual([4321, 4321, 2]);
    expect(stats.skipped['unresolved-fragment']).toBe(1);
  });
});

