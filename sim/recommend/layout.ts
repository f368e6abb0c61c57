/**
 * Owner sets for one hash structure: which node owns which bucket, chosen
 * from the measured load of every bucket so that the cluster is even now AND
 * after any single node fails. The failure case runs the takeover policy
 * itself (sim/cluster/policies.ts, the code the agent runs), so "even after a
 * failure" means even under the buckets that policy would really move.
 *
 * Score of a layout (lower is better):
 *   now + failureWeight * (worstFailure - 1)
 * where `now` is max/mean of the nodes' loads and `worstFailure` the largest
 * max/mean over the survivors after any one node fails.
 *
 * Small spaces (K^N layouts up to EXHAUSTIVE_LIMIT) are searched exhaustively,
 * so the answer is the optimum; larger ones start from the heaviest-first
 * greedy placement (and from the current layout, when it has the same buckets)
 * and improve it by single moves and by swaps with the heaviest node until
 * none helps (bounded rounds): a local optimum, O(rounds * N * K * K * N) work.
 */
import { assignOwners, type Measurements, type PolicyConfig } from '../cluster/policies.ts';
import type { ClusterModel } from '../cluster/ownership.ts';

export const EXHAUSTIVE_LIMIT = 1 << 15;
const MAX_ROUNDS = 12;

export interface LayoutScore {
  score: number;
  /** max/mean over nodes, nobody failed. */
  now: number;
  /** Per failed node index: max/mean over the survivors (empty with one node). */
  afterFailure: number[];
  worstFailure: number;
}

export interface LayoutProblem {
  /** Load of each bucket (the metric tuned on). */
  w: ArrayLike<number>;
  /** Node names, config order. */
  names: string[];
  policy: PolicyConfig;
  failureWeight: number;
}

/** Node loads (by node index) of a home assignment. */
export function nodeLoads(home: ArrayLike<number>, w: ArrayLike<number>, K: number): Float64Array {
  const out = new Float64Array(K);
  for (let b = 0; b < home.length; b++) { const h = home[b]!; if (h >= 0) out[h] = out[h]! + w[b]!; }
  return out;
}

/** max / mean of `x` over the indexes in `keep` (all when null); 1 when there is no load. */
export function maxOverMean(x: ArrayLike<number>, skip = -1): number {
  let tot = 0, max = 0, n = 0;
  for (let i = 0; i < x.length; i++) {
    if (i === skip) continue;
    n++; tot += x[i]!; if (x[i]! > max) max = x[i]!;
  }
  return tot > 0 ? max / (tot / n) : 1;
}

/** Loads of every node after node `f` fails, under the policy (measurements: the bucket loads). */
export function loadsAfterFailure(home: ArrayLike<number>, w: ArrayLike<number>, names: string[], policy: PolicyConfig, f: number): Float64Array {
  return afterFailure({ names, buckets: home.length, home: Array.from(home) }, { bucket_load: Array.from(w) }, w, policy, f);
}

function afterFailure(m: ClusterModel, meas: Measurements, w: ArrayLike<number>, policy: PolicyConfig, f: number): Float64Array {
  const K = m.names.length, N = m.buckets;
  const all = K >= 32 ? 0xffffffff : ((1 << K) - 1) >>> 0;
  const sets = assignOwners(m, policy, (all & ~(1 << f)) >>> 0, meas);
  const out = new Float64Array(K);
  for (let k = 0; k < K; k++) { const s = sets[k]!; if (s) for (let b = 0; b < N; b++) if ((s >>> b) & 1) out[k] = out[k]! + w[b]!; }
  return out;
}

/** max/mean of the nodes' loads (no allocation: `scratch` holds K values). */
function nowRatio(home: ArrayLike<number>, w: ArrayLike<number>, scratch: Float64Array): number {
  scratch.fill(0);
  let tot = 0;
  for (let b = 0; b < home.length; b++) { const h = home[b]!; if (h >= 0) { scratch[h] = scratch[h]! + w[b]!; tot += w[b]!; } }
  let max = 0;
  for (let k = 0; k < scratch.length; k++) if (scratch[k]! > max) max = scratch[k]!;
  return tot > 0 ? max / (tot / scratch.length) : 1;
}

/** The score of one layout (see the module comment). */
export function scoreLayout(home: ArrayLike<number>, p: LayoutProblem): LayoutScore {
  const K = p.names.length;
  const now = maxOverMean(nodeLoads(home, p.w, K));
  const ratios: number[] = [];
  let worst = 1;
  if (K > 1) {
    const m: ClusterModel = { names: p.names, buckets: home.length, home: Array.from(home) };
    const meas: Measurements = { bucket_load: Array.from(p.w) };
    for (let f = 0; f < K; f++) {
      const r = maxOverMean(afterFailure(m, meas, p.w, p.policy, f), f);
      ratios.push(r);
      if (r > worst) worst = r;
    }
  }
  return { score: now + p.failureWeight * (worst - 1), now, afterFailure: ratios, worstFailure: worst };
}

/** Heaviest bucket first, each to the node with the least load so far (ties: lower index). */
export function greedyLayout(w: ArrayLike<number>, K: number): Int32Array {
  const N = w.length, home = new Int32Array(N), load = new Float64Array(K);
  const order = Array.from({ length: N }, (_, b) => b).sort((a, b) => w[b]! - w[a]! || a - b);
  order.forEach((b, i) => {
    // The first K buckets go one to each node, so every node owns at least one.
    let best = i < K ? i : 0;
    if (i >= K) for (let k = 1; k < K; k++) if (load[k]! < load[best]!) best = k;
    home[b] = best;
    load[best] = load[best]! + w[b]!;
  });
  return home;
}

/** Buckets whose owner is the same in both layouts. */
function kept(a: ArrayLike<number>, b: ArrayLike<number> | null | undefined): number {
  if (!b || b.length !== a.length) return 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) n++;
  return n;
}

/**
 * Every layout in which each node owns at least one bucket: the best score;
 * among equal scores the one that keeps most buckets where `current` has
 * them (it moves the fewest flows), then the first in counting order.
 */
export function exhaustiveLayout(p: LayoutProblem, N: number, current?: ArrayLike<number> | null): { home: Int32Array; score: LayoutScore } {
  const K = p.names.length;
  const home = new Int32Array(N), count = new Int32Array(K), scratch = new Float64Array(K);
  count[0] = N;
  let best: { home: Int32Array; score: LayoutScore; kept: number } | null = null;
  for (;;) {
    let ok = true;
    for (let k = 0; k < K; k++) if (count[k] === 0) { ok = false; break; }
    // score >= now (every after-failure ratio is at least 1): most layouts are refused on `now` alone.
    if (ok && (!best || nowRatio(home, p.w, scratch) <= best.score.score + 1e-12)) {
      const s = scoreLayout(home, p);
      if (!best || s.score < best.score.score - 1e-12) best = { home: home.slice(), score: s, kept: kept(home, current) };
      else if (s.score <= best.score.score + 1e-12 && current) {
        const k = kept(home, current);
        if (k > best.kept) best = { home: home.slice(), score: s, kept: k };
      }
    }
    // Next layout: count in base K, bucket 0 the lowest digit.
    let b = 0;
    while (b < N) {
      count[home[b]!]!--;
      home[b]!++;
      if (home[b]! < K) { count[home[b]!]!++; break; }
      home[b] = 0; count[0]!++; b++;
    }
    if (b === N) break;
  }
  return best!;
}

/** Improves `start` by single-bucket moves and pairwise swaps (first improvement) until none helps. */
export function localSearch(start: Int32Array, p: LayoutProblem): { home: Int32Array; score: LayoutScore } {
  const K = p.names.length, N = start.length, home = start.slice();
  const count = new Int32Array(K);
  for (let b = 0; b < N; b++) count[home[b]!]!++;
  let cur = scoreLayout(home, p);
  const scratch = new Float64Array(K);
  for (let round = 0; round < MAX_ROUNDS; round++) {
    let improved = false;
    // Swaps only with the heaviest node (the one that sets max/mean): N^2 swaps would cost more than everything else.
    const load = nodeLoads(home, p.w, K);
    let heavy = 0;
    for (let k = 1; k < K; k++) if (load[k]! > load[heavy]!) heavy = k;
    for (let b = 0; b < N; b++) {
      for (let k = 0; k < K; k++) {
        const h = home[b]!;
        if (k === h || count[h] === 1) continue;
        home[b] = k;
        const s = nowRatio(home, p.w, scratch) < cur.score - 1e-12 ? scoreLayout(home, p) : null;
        if (s && s.score < cur.score - 1e-12) { cur = s; count[h]!--; count[k]!++; improved = true; } else home[b] = h;
      }
      for (let c = b + 1; c < N; c++) {
        const hb = home[b]!, hc = home[c]!;
        if (hb === hc || (hb !== heavy && hc !== heavy)) continue;
        home[b] = hc; home[c] = hb;
        const s = nowRatio(home, p.w, scratch) < cur.score - 1e-12 ? scoreLayout(home, p) : null;
        if (s && s.score < cur.score - 1e-12) { cur = s; improved = true; } else { home[b] = hb; home[c] = hc; }
      }
    }
    if (!improved) break;
  }
  return { home, score: cur };
}

/** The best layout found for N buckets over the problem's nodes (N >= nodes). */
export function bestLayout(p: LayoutProblem, N: number, current?: Int32Array | null): { home: Int32Array; score: LayoutScore; exhaustive: boolean } {
  const K = p.names.length;
  if (N < K) throw new RangeError(`${N} buckets cannot give each of ${K} nodes one`);
  if (Math.pow(K, N) <= EXHAUSTIVE_LIMIT) return { ...exhaustiveLayout(p, N, current), exhaustive: true };
  let best = localSearch(greedyLayout(p.w, K), p);
  if (current && current.length === N && new Set(current).size === K) {
    // From the current layout too; on a tie it wins (it moves the fewest flows).
    const c = localSearch(current, p);
    if (c.score.score <= best.score.score + 1e-12) best = c;
  }
  return { ...best, exhaustive: false };
}
