/**
 * From the flow table to loads: every row hashed by one selector (one call
 * over the whole table), summed per bucket for each part of a split. This is
 * the search's inner loop: O(flows) per hash structure, no allocation beyond
 * the reused bucket array.
 */
import { F } from '../traffic/batch.ts';
import { buildSelector } from '../select/build.ts';
import { directionDependent } from '../engine/share.ts';
import type { SelectorSpec } from '../core/spec.ts';
import type { Metric } from '../core/result.ts';
import type { FlowTable } from './flows.ts';

export const METRICS: readonly Metric[] = ['packets', 'bytes', 'flows', 'connections'];
export const metricIndex = (m: Metric): number => METRICS.indexOf(m);

/**
 * A split of the rows into parts: part[i] is 0 (tuned on) or 1 (held out).
 * The time split cuts connections open at the median packet time (each half gets its
 * packets); the source split never cuts one.
 */
export interface Split {
  name: 'time' | 'sources' | 'all';
  part: Uint8Array;
  /** How the split was made, in words. */
  description: string;
}

/** The packets before the median packet time against those after (connections open then are cut there: flows.ts). */
export function timeSplit(t: FlowTable): Split {
  return { name: 'time', part: t.late.subarray(0, t.count), description: `tuned on the packets before ${t.cut.toFixed(3)} s (the median packet time), checked on the packets after it` };
}

/** Two disjoint sets of original source addresses (by a hash of the address). */
export function sourceSplit(t: FlowTable): Split {
  const part = new Uint8Array(t.count);
  for (let i = 0; i < t.count; i++) part[i] = t.srcHash[i]! & 1;
  return { name: 'sources', part, description: 'tuned on one half of the source addresses, checked on the other half (no source in both)' };
}

/** Every row in part 0 (the full traffic). */
export function allSplit(t: FlowTable): Split {
  return { name: 'all', part: new Uint8Array(t.count), description: 'all traffic' };
}

/**
 * Every row's bucket under `spec` into `out` (reused between calls); returns
 * the selector's bucket count. Rows the selector gives no bucket get a
 * negative value and count nowhere, as in `simulate`.
 */
export function hashRows(t: FlowTable, spec: SelectorSpec, out: Int32Array): number {
  const sel = buildSelector(spec);
  const n = t.count, b = t.tuples;
  // Selectors that follow the conntrack direction read REPLY; the others must not see it (flow-sink.ts does the same).
  if (directionDependent(sel) || !hasReply(t)) sel.select(b, out, 0, n);
  else {
    const saved = b.flags.slice(0, n);
    for (let i = 0; i < n; i++) b.flags[i] = saved[i]! & ~F.REPLY;
    try { sel.select(b, out, 0, n); } finally { b.flags.set(saved); }
  }
  return sel.buckets;
}

const replyRows = new WeakMap<FlowTable, boolean>();
/** Whether any row is a reply direction (with a cluster IP, none is: replies leave the cluster). */
function hasReply(t: FlowTable): boolean {
  let r = replyRows.get(t);
  if (r === undefined) {
    r = false;
    for (let i = 0; i < t.count; i++) if (t.tuples.flags[i]! & F.REPLY) { r = true; break; }
    replyRows.set(t, r);
  }
  return r;
}

/** Per bucket loads of each part of a split: out[(part * 4 + metric) * N + bucket]. */
export function aggregate(t: FlowTable, buckets: Int32Array, N: number, split: Split): Float64Array {
  const loads = new Float64Array(2 * 4 * N);
  const part = split.part;
  for (let i = 0; i < t.count; i++) {
    const x = buckets[i]!;
    if (x < 0) continue;
    const base = part[i]! * 4 * N + x;
    loads[base] = loads[base]! + t.packets[i]!;
    loads[base + N] = loads[base + N]! + t.bytes[i]!;
    loads[base + 2 * N] = loads[base + 2 * N]! + t.flowW[i]!;
    loads[base + 3 * N] = loads[base + 3 * N]! + t.orig[i]!;
  }
  return loads;
}

/** One part's loads of one metric (a view). */
export function partLoads(loads: Float64Array, N: number, part: number, metric: number): Float64Array {
  return loads.subarray((part * 4 + metric) * N, (part * 4 + metric + 1) * N);
}
