/** The shard plan: every share of the single run is in exactly one shard, in the same stream order; bad plans are refused. */
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseShard, planRun } from './shard-plan.ts';
import { UsageError } from '../core/errors.ts';
import type { InputSpec } from './task.ts';
import { testDir } from '../../test/tmp.ts';

const files = (n: number): InputSpec[] => Array.from({ length: n }, (_, i) => ({ kind: 'pcap', path: `/nowhere/part-${i}.pcap` }));

describe('shard plan', () => {
  it('deals files in consecutive blocks: every file once, in order, with one chain and its ends marked', () => {
    for (const F of [1, 2, 7, 9, 100]) {
      for (const N of [1, 2, 3, 8].filter((n) => n <= F)) {
        const seen: string[] = [];
        const chains: { share: number; first: boolean; last: boolean }[] = [];
        for (let I = 0; I < N; I++) {
          if (F === 1 && N > 1) continue;
          // workers 1: a file the plan never opens is one share (planInputShares splits only with more workers).
          const w = planRun(files(F), 1, { index: I, count: N });
          expect(w.mode).toBe(N > 1 ? 'files' : 'whole');
          for (const s of w.shares) { seen.push((s.input as { path: string }).path); chains.push(s.chain); }
          expect(w.reports).toEqual(w.shares.map((s) => Number(/part-(\d+)/.exec((s.input as { path: string }).path)![1])));
        }
        expect(seen, `${F} files, ${N} shards`).toEqual(files(F).map((f) => (f as { path: string }).path));
        expect(chains.map((c) => c.share)).toEqual([...chains.map((c) => c.share)].sort((a, b) => a - b));
        expect(chains.filter((c) => c.first)).toHaveLength(1);
        expect(chains.filter((c) => c.last)).toHaveLength(1);
        expect(chains[0]!.first && chains[chains.length - 1]!.last).toBe(true);
      }
    }
  });

  it('the single run is the plan with one shard', () => {
    const a = planRun(files(5), 1);
    expect(a).toEqual(planRun(files(5), 1, { index: 0, count: 1 }));
    expect(new Set(a.shares.map((s) => s.chain.input))).toEqual(new Set([0]));
  });

  it('splits one capture into record-aligned byte ranges that tile it', () => {
    const dir = testDir('cipsim-plan-');
    const path = join(dir, 'one.pcap');
    // A pcap of 20,000 records of 64 bytes (16-byte record header + 48 bytes of data).
    const buf = Buffer.alloc(24 + 20_000 * 64);
    buf.writeUInt32LE(0xa1b2c3d4, 0); buf.writeUInt16LE(2, 4); buf.writeUInt16LE(4, 6); buf.writeUInt32LE(65535, 16); buf.writeUInt32LE(1, 20);
    for (let k = 0; k < 20_000; k++) { const o = 24 + k * 64; buf.writeUInt32LE(1_700_000_000 + k, o); buf.writeUInt32LE(48, o + 8); buf.writeUInt32LE(48, o + 12); }
    writeFileSync(path, buf);
    const N = 8;
    const ranges = Array.from({ length: N }, (_, I) => planRun([{ kind: 'pcap', path }], 2, { index: I, count: N }));
    expect(ranges.every((w) => w.mode === 'bytes' && w.shares.length === 1)).toBe(true);
    expect(ranges[0]!.range!.start).toBe(24);
    expect(ranges[N - 1]!.range!.end).toBe(buf.length);
    for (let I = 1; I < N; I++) {
      expect(ranges[I]!.range!.start).toBe(ranges[I - 1]!.range!.end);
      expect((ranges[I]!.range!.start - 24) % 64).toBe(0);
    }
    expect(ranges.map((w) => w.reports)).toEqual([[0], [], [], [], [], [], [], []]);
  });

  it('refuses what it cannot split, naming the flag', () => {
    expect(() => parseShard('3')).toThrow(/--shard '3': expected I\/N/);
    expect(() => parseShard('4/4')).toThrow(/I must be in 0\.\.3/);
    expect(() => parseShard('0/0')).toThrow(/N must be/);
    expect(parseShard(' 2 / 5 ')).toEqual({ index: 2, count: 5 });
    expect(() => planRun(files(2), 1, { index: 0, count: 3 })).toThrow(UsageError);
    expect(() => planRun([{ kind: 'csv', path: '/x.csv' }], 1, { index: 0, count: 2 })).toThrow(/cannot be split between machines/);
  });
});
