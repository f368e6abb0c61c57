/**
 * Per node, `packets` is what the node's netfilter counter shows (conntrack
 * defragments first: one per datagram, counted where it completes), `frames`
 * the capture records behind them, `bytes` their wire bytes. Held for a
 * direction-independent selector (counted packet by packet) and a
 * direction-dependent one (counted per connection), for 0, 1 and 2 workers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSimulation } from './run.ts';
import { buildSelector } from '../select/build.ts';
import type { SelectorSpec } from '../select/selector.ts';
import { analyse } from '../analysis/distribution.ts';
import { directionDependent } from './share.ts';
import * as fr from '../../test/frames.ts';

const SPECS: SelectorSpec[] = [
  { backend: 'clusterip', hashmode: 'sourceip-sourceport', totalNodes: 3, hashInit: 0x77, kernel: '6.1', endian: 'little' },
  { backend: 'xt_cluster', totalNodes: 3, hashSeed: 0x1, kernel: '6.18', endian: 'little' },
];

let dir = '';
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'pkt-frames-')); });
afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

describe('packets (datagrams) vs frames (records) per node', () => {
  it('a fragmented datagram is one packet and as many frames as fragments, on every selector and worker count', async () => {
    const recs: { ts: [number, number]; data: Uint8Array }[] = [];
    // Expected per datagram: source, fragments, wire bytes of all its frames.
    const dgs: { src: string; sport: number; frames: number; bytes: number }[] = [];
    let t = 0;
    for (let k = 0; k < 60; k++) {
      const src = `10.3.${k % 7}.${1 + k}`, sport = 20000 + k;
      const nfrag = 1 + (k % 3); // 1 = unfragmented
      const l4 = fr.udp(sport, 53, 8 * 30 * nfrag - 8);
      const edges = Array.from({ length: nfrag + 1 }, (_, j) => Math.min(l4.length, j * 240));
      let bytes = 0;
      const frames: Uint8Array[] = [];
      for (let j = 0; j < nfrag; j++) {
        const ip = nfrag === 1
          ? fr.ipv4({ proto: 17, src, dst: '192.0.2.10' }, l4)
          : fr.ipv4({ proto: 17, src, dst: '192.0.2.10', id: 0x100 + k, fragOff: edges[j]!, mf: j + 1 < nfrag }, l4.subarray(edges[j]!, edges[j + 1]!));
        frames.push(fr.ether(ip, 0x0800));
      }
      // Fragments out of order for every third datagram.
      if (k % 3 === 2) frames.reverse();
      for (const f of frames) { recs.push({ ts: [1700000000 + Math.floor(t / 1e6), t % 1e6], data: f }); bytes += f.length; t += 1000; }
      dgs.push({ src, sport, frames: nfrag, bytes });
    }
    const file = join(dir, 'frags.pcap');
    writeFileSync(file, fr.pcap(recs));
    const sels = SPECS.map((s) => buildSelector(s));
    const answers: string[] = [];
    for (const workers of [0, 1, 2]) {
      const run = await runSimulation({ inputs: [{ kind: 'pcap', path: file }], selectors: SPECS, buckets: sels.map((s) => s.buckets), clusterIp: null, mixed: null, workers });
      const { configs } = analyse(run.merged, sels, { ids: ['a', 'b'], dirDep: sels.map(directionDependent) });
      for (const c of configs) {
        const sum = (k: 'packets' | 'frames' | 'bytes'): number => c.nodes.reduce((a, n) => a + n[k], 0);
        expect(sum('packets')).toBe(dgs.length);
        expect(sum('frames')).toBe(dgs.reduce((a, d) => a + d.frames, 0));
        expect(sum('bytes')).toBe(dgs.reduce((a, d) => a + d.bytes, 0));
        expect(c.nodes.some((n) => n.frames > n.packets)).toBe(true);
      }
      expect(run.merged.ingest.skipped['unresolved-fragment'] ?? 0).toBe(0);
      answers.push(JSON.stringify(configs.map((c) => c.nodes.map((n) => [n.packets, n.frames, n.bytes]))));
    }
    expect(new Set(answers).size).toBe(1);
    // Per node, independently: each datagram's node from `hash`-style selection of its whole tuple.
    const clusterip = JSON.parse(answers[0]!)[0] as number[][];
    const exp = [0, 0, 0].map(() => [0, 0, 0]);
    const { createBatch } = await import('../traffic/batch.ts');
    const { writeTupleV4 } = await import('../traffic/tuple.ts');
    const b = createBatch(1), out = new Int32Array(1);
    for (const d of dgs) {
      const [a, b2, c2, e] = d.src.split('.').map(Number) as [number, number, number, number];
      writeTupleV4(b, 0, 17, ((a << 24) | (b2 << 16) | (c2 << 8) | e) >>> 0, d.sport, 0xc000020a, 53);
      b.count = 1;
      sels[0]!.select(b, out);
      const row = exp[out[0]!]!;
      row[0]! += 1; row[1]! += d.frames; row[2]! += d.bytes;
    }
    expect(clusterip).toEqual(exp);
  });
});
