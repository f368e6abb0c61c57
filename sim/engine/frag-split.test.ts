/**
 * countSplitDatagrams groups fragments as the kernel's reassembly would
 * (addresses, protocol, IP id) and, like it, lets an IP id be reused once the
 * reassembly timeout (30 s) has passed: two datagrams with one id, each whole
 * on its own node, are not one split datagram.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as fr from '../../test/frames.ts';
import { canSplitWithoutConntrack, countSplitDatagrams } from './frag-split.ts';
import type { SelectorSpec } from '../select/selector.ts';
import { buildSelector } from '../select/build.ts';
import { createBatch } from '../traffic/batch.ts';
import { writeTupleV4 } from '../traffic/tuple.ts';

const dir = mkdtempSync(join(tmpdir(), 'frag-split-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const SPEC: SelectorSpec = { backend: 'nft', expr: 'jhash ip saddr . th sport mod 3 seed 0x3', kernel: '6.18', endian: 'little' };

/** Two fragments of one UDP datagram whose second fragment starts with the same 4 bytes as its header: one node. */
function whole(sport: number, id: number): Uint8Array[] {
  const l4 = fr.udp(sport, 53, 64 - 8);
  l4[6] = l4[7] = 0;
  l4.set(l4.subarray(0, 4), 32);
  return [0, 32].map((off) => fr.ether(fr.ipv4({ proto: 17, src: '10.1.1.1', dst: '192.0.2.10', id, fragOff: off, mf: off === 0 }, l4.subarray(off, off + 32)), 0x0800));
}

function bucketOf(sport: number): number {
  const b = createBatch(1), out = new Int32Array(1);
  writeTupleV4(b, 0, 17, 0x0a010101, sport, 0xc000020a, 53);
  b.count = 1;
  buildSelector(SPEC).select(b, out);
  return out[0]!;
}

describe('countSplitDatagrams', () => {
  it('an IP id reused after the reassembly timeout starts a new datagram; within it, it is the same one', () => {
    const a = 40000;
    let b = a + 1;
    while (bucketOf(b) === bucketOf(a)) b++;
    const write = (gap: number): string => {
      const recs = [...whole(a, 7).map((d, k) => ({ ts: [1000 + k, 0] as [number, number], data: d })), ...whole(b, 7).map((d, k) => ({ ts: [1000 + gap + k, 0] as [number, number], data: d }))];
      return fr.writePcap(join(dir, `gap${gap}.pcap`), recs);
    };
    expect(canSplitWithoutConntrack(SPEC)).toBe(true);
    expect(countSplitDatagrams([write(100)], [SPEC], null)).toEqual([0]);
    expect(countSplitDatagrams([write(5)], [SPEC], null)).toEqual([1]);
    // Only packets to the cluster IP meet the rule.
    expect(countSplitDatagrams([write(5)], [SPEC], 0xc000020b)).toEqual([0]);
  });

  it('only keys with ports and without ct can split a datagram', () => {
    expect(canSplitWithoutConntrack({ ...SPEC, expr: 'jhash ip saddr mod 3 seed 0x3' })).toBe(false);
    expect(canSplitWithoutConntrack({ ...SPEC, expr: 'jhash ct original ip saddr . th sport mod 3 seed 0x3' })).toBe(false);
    expect(canSplitWithoutConntrack({ backend: 'xt_cluster', totalNodes: 3, hashSeed: 1, kernel: '6.18', endian: 'little' })).toBe(false);
  });
});
