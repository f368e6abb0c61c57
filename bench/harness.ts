/**
 * The benchmark contract. A suite measures our code and, in the same run, the
 * native reference or peer tool it is compared with (the machine is shared and
 * noisy: only ratios taken side by side mean anything).
 */

/** One JSON line per case. */
export interface BenchCase {
  suite: string;
  case: string;
  /** Our throughput, operations (selections, packets, …) per second: the median of the repeats. */
  ops_per_s: number;
  /** The native (C) reference measured in the same run, if any. */
  native_ops_per_s?: number;
  /** ops_per_s / native_ops_per_s (higher is better). */
  ratio?: number;
  /** Relative spread of the repeats ((max-min)/median). */
  spread?: number;
  [extra: string]: unknown;
}

export interface BenchContext {
  /** Smaller inputs for a smoke run (tests use it); full size otherwise. */
  quick: boolean;
  /** Folder for generated inputs and native builds (git-ignored). */
  workDir: string;
  /** Progress and human-readable lines (stderr). */
  log(msg: string): void;
  /** Records one result line. */
  emit(c: BenchCase): void;
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

/** Runs `fn` `warmup` times unmeasured, then `repeats` times; returns ops/s per repeat. */
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
