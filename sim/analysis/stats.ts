/**
 * Imbalance statistics over per-node loads, and what randomness alone would
 * give. Loads are sums of per-flow weights (1 for flows/connections, the
 * flow's packets or bytes otherwise): a few heavy flows make a spread uneven
 * without any fault in the hash, and the expectations here account for that.
 */
import type { DistributionStats, Metric } from '../core/result.ts';
import { decideVerdict } from './verdict.ts';

/** ln Γ(x), Lanczos (g = 7, n = 9). */
function lnGamma(x: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  x -= 1;
  let a = c[0]!;
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Regularised upper incomplete gamma Q(a, x) (series below a+1, continued fraction above). */
export function gammaQ(a: number, x: number): number {
  if (x <= 0) return 1;
  if (x < a + 1) {
    let sum = 1 / a, del = sum, ap = a;
    for (let n = 0; n < 1000; n++) {
      ap += 1;
      del *= x / ap;
      sum += del;
      if (Math.abs(del) < Math.abs(sum) * 1e-15) break;
    }
    return Math.max(0, 1 - sum * Math.exp(-x + a * Math.log(x) - lnGamma(a)));
  }
  let b = x + 1 - a, c = 1 / 1e-300, d = 1 / b, h = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < 1e-300) d = 1e-300;
    c = b + an / c;
    if (Math.abs(c) < 1e-300) c = 1e-300;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return Math.min(1, Math.exp(-x + a * Math.log(x) - lnGamma(a)) * h);
}

/** P(X >= chi2) for a chi-square variable with df degrees of freedom. */
export function chiSquarePValue(chi2: number, df: number): number {
  if (df <= 0) return 1;
  return gammaQ(df / 2, chi2 / 2);
}

/** Inverse of the standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (p <= 0) return -Infinity;
  if (p >= 1) return Infinity;
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  if (p > 1 - lo) return -normalQuantile(1 - p);
  const q = p - 0.5, r = q * q;
  return ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}

/**
 * max/mean that a uniformly random assignment of these weighted items to n
 * nodes stays below 95 % of the time (normal approximation of the largest of
 * n loads, each a sum of weights kept with probability 1/n).
 */
export function randomMaxOverMeanP95(n: number, sumW: number, sumW2: number): number {
  if (n <= 1 || sumW <= 0) return 1;
  const p = 1 / n;
  const z = normalQuantile(Math.pow(0.95, 1 / n));
  return 1 + (z * Math.sqrt(p * (1 - p) * sumW2)) / (p * sumW);
}

/**
 * Statistics of `loads` (one per node). `band`, when given, is the measured
 * randomness band (see seed-band.ts); otherwise the analytic one for
 * independent items is used. `sumW`/`sumW2` are the sum and the
 * sum of squares of the per-item weights that make up the loads; the
 * chi-square is scaled by sumW/sumW2 (the effective number of items), so a
 * handful of elephant flows is not mistaken for a biased hash.
 */
export function distributionStats(metric: Metric, loads: ArrayLike<number>, sumW: number, sumW2: number, band?: number): DistributionStats {
  const n = loads.length;
  let total = 0, max = -Infinity, min = Infinity, sq = 0;
  for (let i = 0; i < n; i++) {
    const x = loads[i]!;
    total += x;
    sq += x * x;
    if (x > max) max = x;
    if (x < min) min = x;
  }
  const mean = n ? total / n : 0;
  let chi = 0, varSum = 0;
  for (let i = 0; i < n; i++) {
    const dx = loads[i]! - mean;
    varSum += dx * dx;
    if (mean > 0) chi += (dx * dx) / mean;
  }
  const scale = sumW2 > 0 ? sumW / sumW2 : 1;
  const chi2 = chi * scale;
  const df = Math.max(0, n - 1);
  const st = {
    metric,
    total,
    mean,
    max_over_mean: mean > 0 ? max / mean : 0,
    min_over_mean: mean > 0 ? min / mean : 0,
    cv: mean > 0 ? Math.sqrt(varSum / n) / mean : 0,
    jain: sq > 0 ? (total * total) / (n * sq) : 1,
    chi2,
    chi2_df: df,
    p_value: mean > 0 ? chiSquarePValue(chi2, df) : 1,
    random_max_over_mean_p95: band ?? randomMaxOverMeanP95(n, sumW, sumW2),
    independent_max_over_mean_p95: randomMaxOverMeanP95(n, sumW, sumW2),
  };
  return { ...st, verdict: decideVerdict(st) };
}
