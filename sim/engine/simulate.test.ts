/**
 * The engine's per-node counts must equal what the selectors give tuple by
 * tuple (the `hash` contract), for every backend; and must not depend on how
 * many workers ran.
 */
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runSimulation } from './run.ts';
import { buildSelector } from '../select/build.ts';
import type { SelectorSpec } from '../select/selector.ts';
import { createBatch } from '../traffic/batch.ts';
import { writeTupleV4 } from '../traffic/tuple.ts';
import { analyse } from '../analysis/distribution.ts';
import { directionDependent } from './share.ts';
import { testDir } from '../../test/tmp.ts';

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
}

const SPECS: SelectorSpec[] = [
  { backend: 'clusterip', hashmode: 'sourceip-sourceport-destport', totalNodes: 5, hashInit: 0x1234, kernel: '6.1', endian: 'little' },
  { backend: 'clusterip', hashmode: 'sourceip-sourceport', totalNodes: 3, hashInit: 0, kernel: '2.6.32', endian: 'big' },
  { backend: 'xt_cluster', totalNodes: 4, hashSeed: 0xdeadbeef, kernel: '6.18', endian: 'little' },
  { backend: 'nft', expr: 'jhash ip saddr . tcp sport mod 7 seed 0x5 offset 0', kernel: '6.18', endian: 'little' },
];

describe('simulate engine', () => {
  it('per-node packets and bytes equal the per-tuple answers, all backends', async () => {
    const rnd = lcg(7);
    const rows: { proto: number; s: number; sp: number; d: number; dp: number; len: number }[] = [];
    for (let i = 0; i < 3000; i++) {
      const proto = [6, 17, 1, 50][Math.floor(rnd() * 4)]!;
      rows.push({ proto, s: Math.floor(rnd() * 2 ** 32), sp: Math.floor(rnd() * 65536), d: 0xc000020a, dp: [80, 443, 53][i % 3]!, len: 60 + Math.floor(rnd() * 1400) });
    }
    const dir = testDir('cipsim-');
    const csv = join(dir, 't.csv');
    const ip = (v: number): string => `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
    writeFileSync(csv, rows.map((r, i) => `${r.proto},${ip(r.s)},${r.sp},${ip(r.d)},${r.dp},${i},${r.len}`).join('\n'));
    const sels = SPECS.map((s) => buildSelector(s));
    const run = await runSimulation({ inputs: [{ kind: 'csv', path: csv }], selectors: SPECS, buckets: sels.map((s) => s.buckets), clusterIp: null, mixed: null, workers: 0 });
    const { configs } = analyse(run.merged, sels, { ids: SPECS.map((_, i) => String(i)), dirDep: sels.map(directionDependent) });
    // Independent expectation: hash each tuple on its own.
    const b = createBatch(1);
    const out = new Int32Array(1);
    sels.forEach((sel, c) => {
      const pk = new Array<number>(sel.buckets).fill(0), by = new Array<number>(sel.buckets).fill(0);
      let none = 0;
      for (const r of rows) {
        writeTupleV4(b, 0, r.proto, r.s, r.sp, r.d, r.dp, 0, r.len);
        b.count = 1;
        sel.select(b, out);
        if (out[0]! >= 0) { pk[out[0]!]! += 1; by[out[0]!]! += r.len; } else none++;
      }
      expect(configs[c]!.nodes.map((n) => n.packets), sel.description).toEqual(pk);
      expect(configs[c]!.nodes.map((n) => n.bytes), sel.description).toEqual(by);
      expect(configs[c]!.unassigned.no_node).toBe(none);
    });
    // The bench's diagnostic without connection tracking counts the same packets for the selectors that allow it.
    const indep = SPECS.filter((_, c) => !directionDependent(sels[c]!));
    const flat = await runSimulation({ inputs: [{ kind: 'csv', path: csv }], selectors: indep, buckets: indep.map((s) => buildSelector(s).buckets), clusterIp: null, mixed: null, workers: 2, connections: false });
    expect(flat.merged.flows.connections).toBe(0);
    indep.forEach((spec, k) => expect(Array.from(flat.merged.perPacket[k]!.packets)).toEqual(configs[SPECS.indexOf(spec)]!.nodes.map((n) => n.packets)));
    // The nft tcp-port key fires only for TCP: something must have been unassigned.
    expect(configs[3]!.unassigned.no_node).toBeGreaterThan(0);

    // A mixed cluster: a 3-node CLUSTERIP where node 2 runs an old kernel.
    const mixedSpecs: SelectorSpec[] = [
      { backend: 'clusterip', hashmode: 'sourceip', totalNodes: 3, hashInit: 0, kernel: '6.1', endian: 'little' },
      { backend: 'clusterip', hashmode: 'sourceip', totalNodes: 3, hashInit: 0, kernel: '3.10', endian: 'little' },
    ];
    const ms = mixedSpecs.map((s) => buildSelector(s));
    const mixed = [0, 1, 0];
    const mr = await runSimulation({ inputs: [{ kind: 'csv', path: csv }], selectors: mixedSpecs, buckets: [3, 3], clusterIp: null, mixed, workers: 0 });
    let none = 0, several = 0;
    const o0 = new Int32Array(1), o1 = new Int32Array(1);
    for (const r of rows) {
      writeTupleV4(b, 0, r.proto, r.s, r.sp, r.d, r.dp, 0, r.len);
      b.count = 1;
      ms[0]!.select(b, o0);
      ms[1]!.select(b, o1);
      const acc = mixed.filter((c, k) => (c === 0 ? o0[0] : o1[0]) === k).length;
      if (acc === 0) none++;
      else if (acc > 1) several++;
    }
    expect(mr.merged.mixed).toEqual({ none, several });
    expect(none).toBeGreaterThan(0);
    expect(several).toBeGreaterThan(0);
  });
});
