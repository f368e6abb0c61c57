/**
 * FragmentHold (live capture, the merge's replay of carried fragments):
 * fragments wait for their datagram and come out with its L4 fields when it
 * completes, or are counted when it is given up (timeout, killing overlap,
 * no room, end of input).
 */
import { describe, expect, it } from 'vitest';
import { createBatch, F, L4, type TupleBatch } from './batch.ts';
import { DEC, decodeFrame } from './decode.ts';
import { FragmentHold } from './frag-hold.ts';
import * as fr from '../../test/frames.ts';

/** IPv4 fragments of a UDP datagram (sport, 53) at the given byte offsets. */
function frags(sport: number, id: number, cuts: number[], size = 480): Uint8Array[] {
  const l4 = fr.udp(sport, 53, size - 8);
  const edges = [0, ...cuts, l4.length];
  return edges.slice(0, -1).map((off, k) => fr.ether(fr.ipv4({ proto: 17, src: '10.9.8.7', dst: '192.0.2.10', id, fragOff: off, mf: k + 2 < edges.length }, l4.subarray(off, edges[k + 1]!)), 0x0800));
}

function harness(capacity?: number): { feed: (frame: Uint8Array, ts: number) => void; hold: FragmentHold; out: { sport: number; dport: number; completes: boolean; frag: boolean }[]; skipped: Record<string, number> } {
  const out: { sport: number; dport: number; completes: boolean; frag: boolean }[] = [];
  const skipped: Record<string, number> = {};
  const hold = new FragmentHold(
    (b: TupleBatch, j: number) => out.push({ sport: b.sport[j]!, dport: b.dport[j]!, completes: (b.l4flags[j]! & L4.COMPLETES) !== 0, frag: (b.flags[j]! & F.FRAGMENT) !== 0 }),
    (r) => { skipped[r] = (skipped[r] ?? 0) + 1; },
    capacity,
  );
  const b = createBatch(1);
  const feed = (frame: Uint8Array, ts: number): void => {
    expect(decodeFrame(frame, 0, frame.length, 1, b, 0, 0)).toBe(DEC.FRAGMENT);
    b.ts[0] = ts;
    hold.add(b, 0, ts, frame);
  };
  return { feed, hold, out, skipped };
}

describe('FragmentHold', () => {
  it('holds fragments until the datagram completes (first fragment last), then delivers each with its ports', () => {
    const h = harness();
    const f = frags(4242, 7, [160, 320]).reverse();
    h.feed(f[0]!, 1); h.feed(f[1]!, 1.001);
    expect(h.out).toEqual([]);
    expect(h.hold.waiting).toBe(2);
    h.feed(f[2]!, 1.002);
    expect(h.out).toEqual([
      { sport: 4242, dport: 53, completes: false, frag: true },
      { sport: 4242, dport: 53, completes: false, frag: true },
      { sport: 4242, dport: 53, completes: true, frag: true },
    ]);
    expect(h.hold.waiting).toBe(0);
    expect(h.skipped).toEqual({});
  });

  it('gives a datagram up after the kernel timeout (IPv4 30 s), not before, and counts its fragments', () => {
    const h = harness();
    const f = frags(5000, 8, [160, 320]);
    h.feed(f[0]!, 100); h.feed(f[2]!, 100.5);
    h.hold.expire(129);
    expect(h.hold.waiting).toBe(2);
    h.hold.expire(131);
    expect(h.hold.waiting).toBe(0);
    expect(h.out).toEqual([]);
    expect(h.skipped).toEqual({ 'unresolved-fragment': 2 });
  });

  it('an overlap kills the datagram: the killer is a bad fragment, the held ones unresolved; a duplicate is dropped alone', () => {
    const h = harness();
    const f = frags(6000, 9, [160, 320]);
    h.feed(f[0]!, 1);
    h.feed(frags(6000, 9, [80, 160])[1]!, 1.1); // [80, 160) lies inside [0, 160): a duplicate
    expect(h.skipped).toEqual({ 'duplicate-fragment': 1 });
    h.feed(frags(6000, 9, [80, 240])[1]!, 1.2); // [80, 240) overlaps [0, 160) partly: kills
    expect(h.skipped).toEqual({ 'duplicate-fragment': 1, 'bad-fragment': 1, 'unresolved-fragment': 1 });
    expect(h.out).toEqual([]);
  });

  it('counts what cannot wait (no room) and what is still waiting at the end', () => {
    const h = harness(1);
    h.feed(frags(7000, 10, [160])[0]!, 1);
    h.feed(frags(7001, 11, [160])[0]!, 1);
    expect(h.skipped).toEqual({ 'unresolved-fragment': 1 });
    h.hold.dropAll();
    expect(h.skipped).toEqual({ 'unresolved-fragment': 2 });
  });
});
