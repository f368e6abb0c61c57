/**
 * Compares a run with a saved earlier one (`npm run bench -- --baseline FILE`).
 *
 * The machine is shared, so absolute ops/s drift with whatever else runs; a
 * ratio to native code measured in the same run cancels most of that. So a
 * case is compared by its ratio when both runs have one, by ops/s otherwise,
 * and flagged only when it fell by more than the noise both runs measured
 * (their spreads added) and by at least `minDrop`.
 */
import { readFileSync } from 'node:fs';
import type { BenchCase } from './harness.ts';

export interface Comparison {
  suite: string;
  case: string;
  metric: 'ratio' | 'ops_per_s';
  before: number;
  after: number;
  /** after / before - 1 (negative = slower). */
  change: number;
  /** The drop that counts as noise for this case (a positive fraction). */
  noise: number;
  regression: boolean;
}

/** Reads a file of JSON lines as written by `--json` or `--out`; names file:line on a bad line. */
export function readBenchLines(file: string): BenchCase[] {
  const text = readFileSync(file, 'utf8');
  const out: BenchCase[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new Error(`${file}:${i + 1}: not a JSON line (${(e as Error).message})`);
    }
    const c = v as BenchCase;
    if (typeof c !== 'object' || c === null || typeof c.suite !== 'string' || typeof c.case !== 'string' || typeof c.ops_per_s !== 'number') {
      throw new Error(`${file}:${i + 1}: a bench line needs string 'suite', string 'case' and number 'ops_per_s'`);
    }
    out.push(c);
  });
  return out;
}

/**
 * Pairs cases by suite+case and decides which regressed. `minDrop` is the
 * smallest drop ever flagged (default 5 %), so two unusually quiet runs do not
 * flag a 1 % wobble.
 */
export function compareWithBaseline(current: readonly BenchCase[], baseline: readonly BenchCase[], minDrop = 0.05): Comparison[] {
  const base = new Map(baseline.map((c) => [`${c.suite}\u0000${c.case}`, c]));
  const out: Comparison[] = [];
  for (const c of current) {
    const b = base.get(`${c.suite}\u0000${c.case}`);
    if (!b) continue;
    const useRatio = finite(c.ratio) && finite(b.ratio);
    const before = useRatio ? b.ratio! : b.ops_per_s;
    const after = useRatio ? c.ratio! : c.ops_per_s;
    if (!(before > 0) || !Number.isFinite(after)) continue;
    // A ratio carries the noise of both of its medians.
    const spreadOf = (x: BenchCase): number => (num(x.spread) + (useRatio ? num(x.native_spread) : 0));
    const noise = Math.max(minDrop, spreadOf(c) + spreadOf(b));
    const change = after / before - 1;
    out.push({ suite: c.suite, case: c.case, metric: useRatio ? 'ratio' : 'ops_per_s', before, after, change, noise, regression: change < -noise });
  }
  return out;
}

function finite(x: unknown): x is number {
  return typeof x === 'number' && Number.isFinite(x) && x > 0;
}

function num(x: unknown): number {
  return typeof x === 'number' && Number.isFinite(x) ? Math.abs(x) : 0;
}
