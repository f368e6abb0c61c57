/**
 * The benchmark contract. A suite measures our code and, in the same run, the
 * native reference or peer tool it is compared with (the machine is shared and
 * noisy: only ratios taken side by side mean anything).
 *
 * A suite gets a BenchContext, measures (use `measure` or, better for ratios,
 * `measureRounds`, which alternates ours and native so both see the same
 * noise), and emits one BenchCase per case. `bench/run.ts` prints them, saves
 * them (`--out FILE`) and compares them with a saved run (`--baseline FILE`).
 */

import type { BenchCase } from '../../sim/core/result.ts';
export type { BenchCase };

export interface BenchContext {
  /** Smaller inputs for a smoke run (tests use it); full size otherwise. */
  quick: boolean;
  /** Folder for generated inputs and native builds (git-ignored). */
  workDir: string;
  /** Progress and human-readable lines (stderr). */
  log(msg: string): void;
  /** Records one result line. */
  emit(c: BenchCase): void;
  /** Measured repeats per case (after warm-up); suites may use fewer in quick mode. Default 5. */
  repeats?: number;
  /** Unmeasured warm-up runs per case. Default 1. */
  warmup?: number;
}

export interface Suite {
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<void>;
}

/** Median and relative spread of repeated measurements. */
export function summarize(samples: number[]): { median: number; spread: number } {
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, spread: median > 0 ? (s[s.length - 1]! - s[0]!) / median : 0 };
}

/** Seconds since an arbitrary origin, nanosecond resolution. */
export function now(): number {
  return Number(process.hrtime.bigint()) / 1e9;
}

/** Runs `fn` `warmup` times unmeasured, then `repeats` times; returns ops/s per repeat. `fn` returns the number of operations it did. */
export function measure(fn: () => number, repeats = 5, warmup = 1): number[] {
  for (let i = 0; i < warmup; i++) fn();
  const out: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = process.hrtime.bigint();
    const ops = fn();
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    out.push(ops / dt);
  }
  return out;
}

/**
 * One contender in `measureRounds`. `run` does one measured pass and returns
 * its ops/s: it times itself, because a native contender runs in another
 * process and reports its own timing (process start-up is not the thing measured).
 */
export interface Contender {
  name: string;
  run(): number;
}

/**
 * Alternates the contenders round by round (warm-up rounds first), so that a
 * burst of load from the shared machine hits all of them rather than one.
 * Returns ops/s samples per contender, in the order given.
 */
export function measureRounds(contenders: readonly Contender[], repeats = 5, warmup = 1): number[][] {
  for (let w = 0; w < warmup; w++) for (const c of contenders) c.run();
  const out = contenders.map(() => [] as number[]);
  for (let r = 0; r < repeats; r++) {
    // Rotate the start so that no contender always runs right after another's cache footprint.
    for (let k = 0; k < contenders.length; k++) {
      const j = (k + r) % contenders.length;
      out[j]!.push(contenders[j]!.run());
    }
  }
  return out;
}

/** Times one call of `fn` that does `ops` operations; returns ops/s. */
export function timeOps(ops: number, fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  return ops / dt;
}

/**
 * Builds the BenchCase of "ours vs native": medians, spreads and the ratio of
 * the medians (ours / native, higher is better).
 */
export function ratioCase(suite: string, name: string, ours: number[], native: number[] | null, extra: Record<string, unknown> = {}): BenchCase {
  const o = summarize(ours);
  const c: BenchCase = { suite, case: name, ops_per_s: o.median, spread: o.spread, repeats: ours.length };
  if (native && native.length) {
    const n = summarize(native);
    c.native_ops_per_s = n.median;
    c.native_spread = n.spread;
    c.ratio = n.median > 0 ? o.median / n.median : Number.NaN;
    // Samples taken round by round (measureRounds) pair up: the median of the
    // per-round ratios shrugs off a load burst that hit one round.
    if (native.length === ours.length) c.ratio_paired = summarize(ours.map((x, i) => x / native[i]!)).median;
  }
  return Object.assign(c, extra);
}

/** Repeats and warm-up a suite should use, from the context (quick runs do 2 repeats, no warm-up). */
export function plan(ctx: BenchContext): { repeats: number; warmup: number } {
  if (ctx.quick) return { repeats: ctx.repeats ?? 2, warmup: ctx.warmup ?? 0 };
  return { repeats: ctx.repeats ?? 5, warmup: ctx.warmup ?? 1 };
}
