/**
 * The bench harness end to end, quickly: every suite runs in --quick mode and
 * prints well-formed JSON lines (finite numbers, ratios where a native
 * reference ran); --baseline flags a regression beyond the noise with exit 3
 * and passes a run against itself. No timing is asserted.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from './run.ts';
import { SUITES } from './suites/index.ts';
import { compareWithBaseline, readBenchLines } from './harness/baseline.ts';
import { summarize, measureRounds } from './harness/harness.ts';
import type { BenchCase } from './harness/harness.ts';
import { fileDir } from '../test/tmp.ts';

async function quiet(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '', err = '';
  const ow = process.stdout.write.bind(process.stdout), ew = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string) => { out += s; return true; }) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => { err += s; return true; }) as typeof process.stderr.write;
  try {
    return { code: await main(argv), out, err };
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
  }
}

const dir = fileDir('bench-test-');

describe('npm run bench', () => {
  it('runs every suite in --quick mode with well-formed JSON lines', async () => {
    const out = join(dir, 'all.jsonl');
    const r = await quiet(['--quick', '--json', '--out', out]);
    expect(r.code, r.err).toBe(0);
    const lines = r.out.trim().split('\n').map((l) => JSON.parse(l) as BenchCase);
    expect(readBenchLines(out)).toEqual(lines);
    for (const s of SUITES) expect(lines.some((c) => c.suite === s.name), s.name).toBe(true);
    for (const c of lines) {
      expect(typeof c.case).toBe('string');
      expect(Number.isFinite(c.ops_per_s) && c.ops_per_s > 0, `${c.suite}/${c.case} ops_per_s`).toBe(true);
      expect(Number.isFinite(c.spread) && c.spread! >= 0).toBe(true);
      if (c.native_ops_per_s !== undefined || c.ratio !== undefined) {
        expect(Number.isFinite(c.native_ops_per_s) && c.native_ops_per_s! > 0).toBe(true);
        expect(Number.isFinite(c.ratio) && c.ratio! > 0, `${c.suite}/${c.case} ratio`).toBe(true);
        expect(c.ratio).toBeCloseTo(c.ops_per_s / c.native_ops_per_s!, 9);
      }
    }
    // The hash suite compares every selector with C, after checking C gives the same buckets.
    const hash = lines.filter((c) => c.suite === 'hash');
    expect(hash.length).toBeGreaterThanOrEqual(7);
    for (const c of hash) {
      expect(c.ratio).toBeDefined();
      expect(c.verified_packets).toBeGreaterThan(0);
    }
  }, 180_000);

  it('--baseline exits 3 on a regression beyond the noise, 0 against an equal run', async () => {
    const first = join(dir, 'schemes.jsonl');
    const r1 = await quiet(['schemes', '--quick', '--json', '--out', first]);
    expect(r1.code).toBe(0);
    const inflated = join(dir, 'inflated.jsonl');
    writeFileSync(inflated, readBenchLines(first).map((c) => JSON.stringify({ ...c, ops_per_s: c.ops_per_s * 1000, spread: 0 })).join('\n') + '\n');
    const r2 = await quiet(['schemes', '--quick', '--baseline', inflated]);
    expect(r2.code).toBe(3);
    expect(r2.err).toMatch(/REGRESSION/);
    const deflated = join(dir, 'deflated.jsonl');
    writeFileSync(deflated, readBenchLines(first).map((c) => JSON.stringify({ ...c, ops_per_s: c.ops_per_s / 1000 })).join('\n') + '\n');
    const r3 = await quiet(['schemes', '--quick', '--baseline', deflated]);
    expect(r3.code).toBe(0);
  }, 120_000);

  it('rejects unknown suites and options with exit 2', async () => {
    expect((await quiet(['nosuchsuite'])).code).toBe(2);
    expect((await quiet(['--repeats', 'x'])).code).toBe(2);
    expect((await quiet(['--frobnicate'])).code).toBe(2);
    const h = await quiet(['--help']);
    expect(h.code).toBe(0);
    expect(h.out).toMatch(/--baseline FILE/);
  });
});

describe('baseline comparison', () => {
  const c = (o: Partial<BenchCase>): BenchCase => ({ suite: 's', case: 'c', ops_per_s: 100, spread: 0.02, ...o });
  it('compares ratios when both runs have them, ops/s otherwise', () => {
    const [a] = compareWithBaseline([c({ ratio: 0.8, native_spread: 0.02 })], [c({ ratio: 1.0, native_spread: 0.02 })]);
    expect(a!.metric).toBe('ratio');
    expect(a!.regression).toBe(true); // -20 % against 8 % noise
    const [b] = compareWithBaseline([c({ ops_per_s: 97 })], [c({ ops_per_s: 100 })]);
    expect(b!.metric).toBe('ops_per_s');
    expect(b!.regression).toBe(false); // -3 % is within the 5 % floor
    const [d] = compareWithBaseline([c({ ops_per_s: 70, spread: 0.4 })], [c({ ops_per_s: 100, spread: 0.1 })]);
    expect(d!.regression).toBe(false); // -30 % but the runs were that noisy
  });
  it('names the line of a bad baseline file', () => {
    const f = join(dir, 'bad.jsonl');
    writeFileSync(f, '{"suite":"s","case":"c","ops_per_s":1}\nnot json\n');
    expect(() => readBenchLines(f)).toThrow(/bad\.jsonl:2/);
  });
});

describe('harness helpers', () => {
  it('summarize gives the median and the relative spread', () => {
    expect(summarize([3, 1, 2])).toEqual({ median: 2, spread: 1 });
    expect(summarize([1, 2, 3, 4]).median).toBe(2.5);
  });
  it('measureRounds runs every contender once per round after the warm-up', () => {
    const calls: string[] = [];
    const s = measureRounds([{ name: 'a', run: () => (calls.push('a'), 1) }, { name: 'b', run: () => (calls.push('b'), 2) }], 3, 1);
    expect(s).toEqual([[1, 1, 1], [2, 2, 2]]);
    expect(calls.length).toBe(8);
  });
});
