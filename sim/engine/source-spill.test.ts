/**
 * The source counters may spill to sorted run files (source-table.ts) and be
 * merged back by key (source-merge.ts): the heaviest sources must come out
 * exactly as when every counter stayed in memory, for any budget and any
 * number of workers, and the run files must not outlive the run.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { SourceTable, type SourceCounts } from './source-table.ts';
import { mergeSources } from './source-merge.ts';
import { topSources, TOP_SOURCES } from './top-sources.ts';
import { runSimulation } from './run.ts';
import { buildSelector } from '../select/build.ts';
import { analyse } from '../analysis/distribution.ts';
import { directionDependent } from './share.ts';
import type { SelectorSpec } from '../select/selector.ts';
import { runCli } from '../../test/cli.ts';
import { testDir } from '../../test/tmp.ts';

function lcg(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => { s = (Math.imul(s, 1103515245) + 12345) >>> 0; return (s >>> 8) % n; };
}

/** Random source updates: few distinct values (ties are common), some negative (merge.ts's take-backs), IPv4 and IPv6. */
function updates(seed: number, count: number, C: number, N: number): { k: Uint32Array; p: number; b: number }[] {
  const rnd = lcg(seed), out: { k: Uint32Array; p: number; b: number }[] = [];
  for (let i = 0; i < count; i++) {
    const v6 = rnd(5) === 0;
    const k = Uint32Array.of(rnd(C), rnd(N), v6 ? 6 : 4, rnd(400) * 16777259 >>> 0, v6 ? rnd(2) : 0, 0, v6 ? rnd(3) : 0);
    out.push({ k, p: rnd(7) - 1, b: rnd(4) * 100 });
  }
  return out;
}

describe('source counters past their budget', () => {
  it('spilled runs merge to the same heaviest sources as one table in memory', () => {
    const dir = testDir('cipsim-spill-');
    for (const [seed, budget] of [[1, 7], [2, 50], [3, 1000]] as const) {
      const C = 2, N = 4;
      const all = updates(seed, 3000, C, N);
      // Three pieces, as three shares (or two shares and a join correction) would give.
      const whole = new SourceTable();
      const parts = [0, 1, 2].map(() => new SourceTable(1 << 12, { dir, budget }));
      all.forEach((u, i) => { whole.add(u.k, 0, u.p, u.b); parts[i % 3]!.add(u.k, 0, u.p, u.b); });
      const pieces = parts.map((t) => t.columns());
      if (budget < 1000) expect(pieces.every((p) => p.runs.length > 0 && p.count <= budget)).toBe(true);
      const merged = mergeSources(pieces, [N, N], budget);
      const expected = whole.columns();
      for (let c = 0; c < C; c++) expect(topSources(merged, c, N)).toEqual(topSources(expected, c, N));
      if (budget < 1000) expect(merged.count).toBeLessThanOrEqual(C * N * TOP_SOURCES);
    }
  });

  it('keeps the heaviest of every node when they outnumber one merge buffer (nft mod 20000)', () => {
    const dir = testDir('cipsim-spill-');
    const N = 20000, rnd = lcg(11);
    const whole = new SourceTable(), part = new SourceTable(1 << 12, { dir, budget: 4096 });
    const k = new Uint32Array(7);
    for (let i = 0; i < 200_000; i++) {
      k.set([0, rnd(N), 4, rnd(1 << 20), 0, 0, 0]);
      const p = 1 + rnd(9);
      whole.add(k, 0, p, p * 60);
      part.add(k, 0, p, p * 60);
    }
    const merged = mergeSources([part.columns()], [N], 4096);
    expect(topSources(merged, 0, N)).toEqual(topSources(whole.columns(), 0, N));
  });

  it('a run cut short is an error naming the file and byte offset', () => {
    const dir = testDir('cipsim-spill-');
    const t = new SourceTable(16, { dir, budget: 4 });
    for (const u of updates(9, 200, 1, 2)) t.add(u.k, 0, Math.abs(u.p), u.b);
    const src: SourceCounts = t.columns();
    truncateSync(src.runs[0]!, 48 * 2 + 20);
    expect(() => mergeSources([src], [2], 4)).toThrow(new RegExp(`${src.runs[0]!}: source run cut at byte 116`));
  });
});

describe('simulate with a tiny source budget', () => {
  const SPECS: SelectorSpec[] = [
    { backend: 'clusterip', hashmode: 'sourceip-sourceport', totalNodes: 3, hashInit: 7, kernel: '6.1', endian: 'little' },
    { backend: 'xt_cluster', totalNodes: 4, hashSeed: 0x99, kernel: '6.18', endian: 'little' },
  ];
  async function top(path: string, workers: number, sourceBudget?: number): Promise<{ top: unknown; kept: number }> {
    const sels = SPECS.map((s) => buildSelector(s));
    const run = await runSimulation({ inputs: [{ kind: 'pcap', path }], selectors: SPECS, buckets: sels.map((s) => s.buckets), clusterIp: null, mixed: null, workers, sourceBudget });
    const { configs } = analyse(run.merged, sels, { ids: ['A', 'B'], dirDep: sels.map(directionDependent) });
    return { top: configs.map((c) => c.nodes.map((n) => n.top_sources)), kept: run.merged.flows.sources.count };
  }

  it('gives the heaviest sources of the unbounded run, with 0, 1 and 2 workers, and leaves no run files', async () => {
    const work = testDir('cipsim-spill-run-');
    const pcap = join(work, 'mix.pcap');
    const g = await runCli(['gen', 'default', '--out', pcap, '--packets', '40000', '--seed', '4']);
    expect(g.code, g.stderr).toBe(0);
    const base = await top(pcap, 1);
    // The unbounded run keeps every source; a budget of 64 makes every share spill many runs.
    expect(base.kept).toBeGreaterThan(500);
    const tmp = testDir('cipsim-spill-tmp-');
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = tmp;
    try {
      for (const w of [0, 1, 2]) {
        const r = await top(pcap, w, 64);
        expect(r.top).toEqual(base.top);
        // Only the heaviest came back: the merge streamed the runs instead of summing in one table.
        expect(r.kept).toBeLessThanOrEqual((3 + 4) * TOP_SOURCES);
        expect(readdirSync(tmp)).toEqual([]);
      }
    } finally {
      if (saved === undefined) delete process.env.TMPDIR; else process.env.TMPDIR = saved;
    }
  });
});
