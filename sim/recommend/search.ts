/**
 * The search: every hash structure the kernels allow (backend, CLUSTERIP hash
 * mode, bucket count, optionally other seeds), each hashed once over the flow
 * table, each given its best owner sets (layout.ts), ranked by the score on
 * the part of the traffic it was tuned on, then judged on parts it never saw.
 *
 * Bound, for F direction flows, H structures, N <= 32 buckets, K nodes:
 * time O(F * H) for hashing and summing, plus 16 * F per candidate shown (its
 * randomness band: 32 seeds over the held-out half), plus per structure the
 * layout search (layout.ts, independent of F); memory O(F): the table and one
 * bucket array (~104 bytes a flow) and the held-out half once more for the
 * band, plus O(H * N) for the results.
 */
import type { ClusterConfig } from '../core/cluster-config.ts';
import { CLUSTERIP_MAX_NODES, CLUSTERIP_MODES, XT_CLUSTER_MAX_NODES, specJson, type Backend, type SelectorSpec } from '../core/spec.ts';
import type { Metric, RecommendCandidate, RecommendImbalance, RecommendMigration, RecommendVerdict } from '../core/result.ts';
import { selectorSpecOf } from '../select/from-config.ts';
import { resolveProfile } from '../select/profile.ts';
import { bandSeeds, reseed } from '../select/reseed.ts';
import { MAX_BUCKETS } from '../cluster/ownership.ts';
import type { PolicyConfig } from '../cluster/policies.ts';
import { untimedNote } from '../traffic/input.ts';
import { subTable, type FlowTable } from './flows.ts';
import { aggregate, allSplit, hashRows, metricIndex, partLoads, sourceSplit, timeSplit } from './loads.ts';
import { bestLayout, maxOverMean, nodeLoads, scoreLayout, type LayoutProblem, type LayoutScore } from './layout.ts';
import { candidateConfig, homeOf, ownsOf, sameStructure, structureOf, type Structure } from './config-out.ts';

export interface RecommendOptions {
  table: FlowTable;
  /** The config in place: nodes, addresses and hosts stay; the search changes the structure and owner sets. */
  current: ClusterConfig;
  metric: Metric;
  policy: PolicyConfig;
  /** Backends the operator allows (those the kernel cannot run are refused with the reason). */
  backends: Backend[];
  /** The kernel the hosts run. */
  kernel: string;
  hashmodeMayChange: boolean;
  /** Upper limit on buckets (besides each backend's own). */
  maxBuckets?: number;
  /** Other seeds to try per structure (0: keep the current seed). */
  seeds: number;
  /** Weight of the worst after-failure imbalance in the score. */
  failureWeight: number;
  /** Smallest held-out gain in max/mean worth a change. */
  minGain: number;
  /** Candidates to report. */
  top: number;
  /**
   * Accept a gain that holds on later traffic but not on unseen sources: for
   * heavy sources that persist (NAT gateways, proxies), a layout tuned to
   * them is the point, not an accident. Default false.
   */
  timeOnly?: boolean;
}

export interface Recommendation {
  current: RecommendCandidate;
  candidates: RecommendCandidate[];
  chosen: RecommendCandidate | null;
  chosenConfig: ClusterConfig | null;
  refused: { backend: string; why: string }[];
  allowedBackends: Backend[];
  maxBuckets: Record<string, number>;
  splits: { time: string; sources: string };
  summary: string;
  warnings: string[];
  structures: number;
  exhaustive: number;
}

interface Evaluated {
  s: Structure;
  spec: SelectorSpec;
  config: ClusterConfig;
  home: Int32Array;
  exhaustive: boolean;
  tuned: LayoutScore;
  heldOut: LayoutScore;
  /** Computed for the candidates shown only (a second layout search). */
  unseen: () => LayoutScore;
  whole: LayoutScore;
}

/** The other seeds tried per structure: a fixed sequence, distinct from the band's. */
export function searchSeeds(n: number): number[] {
  const out: number[] = [];
  let s = 0x6a09e667;
  for (let i = 0; i < n; i++) { s = (Math.imul(s ^ (s >>> 16), 0x45d9f3b) + 0x3c6ef372) >>> 0; out.push(s); }
  return out;
}

/** Why a kernel cannot run a backend (null: it can). */
export function backendRefusal(b: Backend, kernel: string): string | null {
  const p = resolveProfile(kernel);
  if (b === 'clusterip') return p.clusterip ? null : (p.clusteripAbsent ?? `kernel ${kernel} has no CLUSTERIP`);
  if (b === 'xt_cluster') return p.xtCluster ? null : `the cluster match arrived in Linux 2.6.30; kernel ${kernel} predates it`;
  return p.nftHash ? null : `nft jhash arrived in Linux 4.9; kernel ${kernel} predates it`;
}

/** The most buckets each backend takes (kernel and userspace limits, the policies' 32-bit masks, the operator's limit). */
export function bucketLimit(b: Backend, maxBuckets?: number): number {
  const own = b === 'clusterip' ? CLUSTERIP_MAX_NODES : XT_CLUSTER_MAX_NODES;
  return Math.min(own, MAX_BUCKETS, maxBuckets ?? Infinity);
}

function imbalance(s: LayoutScore, names: string[]): RecommendImbalance {
  return { now: s.now, after_failure: s.afterFailure.map((r, i) => ({ node: names[i]!, max_over_mean: r })), worst_after_failure: s.worstFailure };
}

function describe(s: Structure): string {
  const mode = s.backend === 'clusterip' ? ` ${s.hashmode}` : ' (original source address)';
  return `${s.backend}${mode}, ${s.buckets} buckets, seed 0x${s.seed.toString(16).padStart(8, '0')}`;
}

function changesFrom(cur: Structure, curHome: Int32Array, s: Structure, home: Int32Array): string[] {
  const out: string[] = [];
  if (s.backend !== cur.backend) out.push(`backend ${cur.backend} -> ${s.backend}`);
  if (s.hashmode !== cur.hashmode && s.backend === 'clusterip' && cur.backend === 'clusterip') out.push(`hashmode ${cur.hashmode} -> ${s.hashmode}`);
  if (s.buckets !== cur.buckets) out.push(`total_nodes ${cur.buckets} -> ${s.buckets}`);
  if (s.seed !== cur.seed) out.push(`seed 0x${cur.seed.toString(16)} -> 0x${s.seed.toString(16)}`);
  if (s.buckets !== cur.buckets || home.some((h, b) => h !== curHome[b])) out.push('owner sets');
  return out.length ? out : ['nothing'];
}

/** p-th quantile (0..1) of the values, linear between order statistics (as seed-band.ts). */
function quantile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b), pos = p * (s.length - 1), lo = Math.floor(pos);
  return s[lo]! + (s[Math.min(lo + 1, s.length - 1)]! - s[lo]!) * (pos - lo);
}

/** Runs the search (see the module comment). Pure: the same table and options give the same answer. */
export function recommend(o: RecommendOptions): Recommendation {
  const t = o.table, cur = o.current, K = cur.nodes.length, names = cur.nodes.map((n) => n.name);
  const m = metricIndex(o.metric);
  const warnings: string[] = [];
  const refused: { backend: string; why: string }[] = [];
  const allowed: Backend[] = [];
  for (const b of o.backends) {
    const why = backendRefusal(b, o.kernel);
    if (why) refused.push({ backend: b, why }); else allowed.push(b);
  }
  const curS = structureOf(cur), curHome = homeOf(cur);
  const curRefusal = backendRefusal(curS.backend, o.kernel);
  if (curRefusal) warnings.push(`the current config's backend cannot run on kernel ${o.kernel}: ${curRefusal}`);
  const split = { time: timeSplit(t), sources: sourceSplit(t) };
  const bk = new Int32Array(Math.max(1, t.count));
  const problem = (w: ArrayLike<number>): LayoutProblem => ({ w, names, policy: o.policy, failureWeight: o.failureWeight });

  /** Hash once, sum per split; the layout tuned on each split's part 0. */
  const evaluate = (s: Structure, fixedHome: Int32Array | null, kernel = o.kernel): Evaluated => {
    const spec = selectorSpecOf(candidateConfig(cur, s, new Int32Array(s.buckets), kernel, o.policy.policy));
    const N = hashRows(t, spec, bk);
    const lt = aggregate(t, bk, N, split.time), ls = aggregate(t, bk, N, split.sources);
    const wT0 = partLoads(lt, N, 0, m), wT1 = partLoads(lt, N, 1, m), wS0 = partLoads(ls, N, 0, m), wS1 = partLoads(ls, N, 1, m);
    const whole = new Float64Array(N);
    for (let b = 0; b < N; b++) whole[b] = wT0[b]! + wT1[b]!;
    const start = sameStructure(s, curS) ? curHome : null;
    const lay = fixedHome ? { home: fixedHome, score: scoreLayout(fixedHome, problem(wT0)), exhaustive: false } : bestLayout(problem(wT0), N, start);
    let unseen: LayoutScore | null = null;
    return {
      s, spec, home: lay.home, exhaustive: lay.exhaustive, tuned: lay.score,
      config: candidateConfig(cur, s, lay.home, kernel, o.policy.policy),
      heldOut: scoreLayout(lay.home, problem(wT1)), whole: scoreLayout(lay.home, problem(whole)),
      unseen: () => (unseen ??= scoreLayout(fixedHome ?? bestLayout(problem(wS0), N, start).home, problem(wS1))),
    };
  };

  // The configuration in place, with its own owner sets (an orphaned bucket counts as nobody's load), on its own kernel.
  const current = evaluate(curS, curHome, selectorSpecOf(cur).kernel);

  const seeds = [curS.seed, ...searchSeeds(o.seeds)];
  const maxB: Record<string, number> = {};
  const all: Evaluated[] = [];
  let exhaustive = 0;
  // nft rules as the cluster config writes them hash exactly as xt_cluster (kernel-semantics §7, from-config.ts):
  // searching both would find every candidate twice. The one in place (or xt_cluster) stands for both.
  const twin = allowed.includes('xt_cluster') && allowed.includes('nft') ? (curS.backend === 'nft' ? 'xt_cluster' : 'nft') : null;
  if (twin) warnings.push(`${twin} hashes as ${twin === 'nft' ? 'xt_cluster' : 'nft'} does (the same jhash of the original source): its candidates are the same and are not listed twice`);
  for (const b of allowed) {
    if (b === twin) continue;
    const modes = b !== 'clusterip' ? [undefined] : o.hashmodeMayChange ? [...CLUSTERIP_MODES] : [curS.backend === 'clusterip' ? curS.hashmode! : 'sourceip'];
    const hi = bucketLimit(b, o.maxBuckets);
    maxB[b] = hi;
    if (hi < K) { refused.push({ backend: b, why: `${K} nodes need at least ${K} buckets; the limit is ${hi}` }); continue; }
    for (const hashmode of modes) {
      for (let N = K; N <= hi; N++) {
        for (const seed of seeds) {
          const ev = evaluate({ backend: b, ...(hashmode ? { hashmode } : {}), buckets: N, seed }, null);
          if (ev.exhaustive) exhaustive++;
          all.push(ev);
        }
      }
    }
  }
  // Best tuned score first; ties: the current backend, fewer buckets, enumeration order (stable sort).
  const order = all.map((e, i) => ({ e, i })).sort((a, b) =>
    a.e.tuned.score - b.e.tuned.score || Number(b.e.s.backend === curS.backend) - Number(a.e.s.backend === curS.backend) || a.e.s.buckets - b.e.s.buckets || a.i - b.i);
  const shown = order.slice(0, Math.max(1, o.top)).map((x) => x.e);
  // The cheapest change (same hash, owner sets only) is always shown: it moves the fewest flows.
  const relaid = all.find((e) => sameStructure(e.s, curS));
  if (relaid && !shown.includes(relaid)) shown.push(relaid);

  // Randomness: held-out imbalance under the band's seeds, hashing only the held-out rows (half the table).
  const later = subTable(t, split.time.part, 1), laterAll = allSplit(later);
  const heldOutBand = (e: Evaluated): number[] => {
    const out: number[] = [];
    for (const seed of bandSeeds()) {
      const spec = reseed(e.spec, seed);
      if (!spec) return [];
      const N = hashRows(later, spec, bk);
      const w = partLoads(aggregate(later, bk, N, laterAll), N, 0, m);
      out.push(maxOverMean(nodeLoads(e.home, w, K)));
    }
    return out;
  };
  const curBand = heldOutBand(current);
  const curP5 = curBand.length ? quantile(curBand, 0.05) : current.heldOut.now;

  // Per flow: the node (index) it lands on now, for migration costs.
  const curNode = new Int32Array(t.count);
  hashRows(t, current.spec, bk);
  for (let i = 0; i < t.count; i++) curNode[i] = bk[i]! >= 0 ? curHome[bk[i]!]! : -1;
  const migrationTo = (e: Evaluated): RecommendMigration => {
    hashRows(t, e.spec, bk);
    let fl = 0, co = 0, pk = 0, by = 0, tf = 0, tc = 0, tb = 0;
    for (let i = 0; i < t.count; i++) {
      tf += t.flowW[i]!; tc += t.orig[i]!; tb += t.bytes[i]!;
      const a = curNode[i]!, x = bk[i]!;
      const b = x >= 0 ? e.home[x]! : -1;
      if (a !== b) { fl += t.flowW[i]!; co += t.orig[i]!; pk += t.packets[i]!; by += t.bytes[i]!; }
    }
    return { flows: fl, connections: co, packets: pk, bytes: by, flows_share: tf ? fl / tf : 0, connections_share: tc ? co / tc : 0, bytes_share: tb ? by / tb : 0 };
  };

  const card = (e: Evaluated, verdict: RecommendVerdict | null, band: number[]): RecommendCandidate => {
    const gain = current.heldOut.now - e.heldOut.now;
    const beyond = Math.max(0, curP5 - e.heldOut.now);
    const srcGain = current.unseen().now - e.unseen().now;
    const tunedGain = current.tuned.now - e.tuned.now;
    const changes = changesFrom(curS, curHome, e.s, e.home);
    const f = (x: number): string => x.toFixed(3);
    let v: RecommendVerdict, reason: string;
    if (verdict) { v = verdict; reason = 'the configuration in place'; }
    else if (changes[0] === 'nothing') { v = 'no-gain'; reason = 'the search found nothing better than the configuration in place'; }
    else if (gain < o.minGain) {
      v = tunedGain >= o.minGain ? 'chance' : 'no-gain';
      reason = `on later traffic max/mean ${f(e.heldOut.now)} against ${f(current.heldOut.now)} now (gain ${f(gain)}, below ${o.minGain})` +
        (tunedGain >= o.minGain ? `; the ${f(tunedGain)} gain on the part it was tuned on did not hold up` : '');
    } else if (beyond <= 0) {
      v = 'chance';
      reason = `later traffic: ${f(e.heldOut.now)} against ${f(current.heldOut.now)}, but reseeding the current config alone reaches ${f(curP5)} (1 seed in 20): the gain is what randomness gives`;
    } else if (srcGain < o.minGain && !o.timeOnly) {
      v = 'does-not-hold';
      reason = `better on later traffic (${f(e.heldOut.now)} against ${f(current.heldOut.now)}) but not on sources it never saw (${f(e.unseen().now)} against ${f(current.unseen().now)})`;
    } else {
      v = 'recommended';
      reason = `later traffic ${f(current.heldOut.now)} -> ${f(e.heldOut.now)} (${f(beyond)} of it beyond the best reseed, ${f(curP5)}); unseen sources ${f(current.unseen().now)} -> ${f(e.unseen().now)}` +
        (srcGain < o.minGain ? ' (not better there: accepted because the heavy sources are taken to persist, --time-only)' : '');
    }
    return {
      id: '', description: describe(e.s), changes, spec: specJson(e.spec), buckets: e.s.buckets,
      owners: ownsOf(e.home, K).map((owns, i) => ({ node: names[i]!, owns })),
      layout_search: e.exhaustive ? 'exhaustive' : 'local',
      tuned_score: e.tuned.score, tuned: imbalance(e.tuned, names), held_out: imbalance(e.heldOut, names), unseen_sources: imbalance(e.unseen(), names), whole: imbalance(e.whole, names),
      random_p95: band.length ? quantile(band, 0.95) : NaN, gain, gain_beyond_random: beyond,
      migration: migrationTo(e), verdict: v, reason,
    };
  };

  const currentCard = card(current, 'current', curBand);
  currentCard.id = 'current';
  const cards = shown.map((e, i) => {
    const c = card(e, null, heldOutBand(e));
    c.id = String.fromCharCode(65 + i);
    return c;
  });
  // Only the best by tuned score may be chosen: picking among several by their held-out numbers would tune on those too.
  const top = cards[0] ?? null;
  const chosen = top && top.verdict === 'recommended' ? top : null;
  for (const c of cards) if (c !== top && c.verdict === 'recommended') { c.verdict = 'holds-up'; c.reason += ' (ranked below the first by its tuned score, so not the one chosen)'; }
  if (t.outOfOrder) warnings.push(`${t.outOfOrder} packets came after the cut (the median packet time) with earlier timestamps (the input is not in time order): they count in the later half`);
  if (!Number.isFinite(t.cut)) warnings.push('the input spans no time: there is no later half to check on');
  if (t.count < 1000) warnings.push(`only ${t.count} flows: held-out numbers are noisy`);
  const untimed = untimedNote(t.untimed);
  if (untimed) warnings.push(untimed);
  // The verdict is about the spread with every node up; a layout that only spreads a failure better is named, not chosen.
  function failureNote(): string {
    const better = cards.filter((c) => current.heldOut.worstFailure - c.held_out.worst_after_failure >= 0.1).sort((a, b) => a.held_out.worst_after_failure - b.held_out.worst_after_failure)[0];
    return better ? ` After a single node failure, though, the current layout reaches ${current.heldOut.worstFailure.toFixed(3)} on later traffic and candidate ${better.id} ${better.held_out.worst_after_failure.toFixed(3)} (${better.changes.join(', ')}; moves ${(better.migration.flows_share * 100).toFixed(1)}% of flows): worth it if failures matter more than the move.` : '';
  }
  const summary = chosen
    ? `Deploy candidate ${chosen.id} (${chosen.changes.join(', ')}): ${chosen.reason}. It moves ${(chosen.migration.flows_share * 100).toFixed(1)}% of flows (${(chosen.migration.connections_share * 100).toFixed(1)}% of connections); worst single-node failure ${chosen.held_out.worst_after_failure.toFixed(3)} (now ${current.heldOut.worstFailure.toFixed(3)}).`
    : `Nothing worth changing: ${top ? `the best candidate (${top.description}) ${top.reason}` : 'no candidate could be evaluated'}.` + failureNote();
  return {
    current: currentCard, candidates: cards, chosen, chosenConfig: chosen ? shown[0]!.config : null,
    refused, allowedBackends: allowed, maxBuckets: maxB,
    splits: { time: split.time.description, sources: split.sources.description },
    summary, warnings, structures: all.length, exhaustive,
  };
}
