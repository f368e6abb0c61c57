/**
 * Processes one share of the input (a byte range of a capture, a synthetic
 * share, a CSV file): decode -> flow table -> every selector -> counters.
 * Runs inside a worker or in-process; everything it returns merges by sums
 * and unions, so the answer does not depend on how the input was split.
 */
import { copySlot, createBatch, F, FAMILY_IPV4, DEFAULT_BATCH_CAPACITY, type TupleBatch } from '../traffic/batch.ts';
import { buildSelector } from '../select/build.ts';
import type { Selector } from '../select/selector.ts';
import { FlowTable } from './flow-table.ts';
import { openSource } from './sources.ts';
import type { ConfigPartial, SimPartial, SimTask } from './task.ts';

/** Selectors whose answer depends on the conntrack direction (they hash the original source). */
export function directionDependent(sel: Selector): boolean {
  if (sel.backend === 'xt_cluster') return true;
  return sel.backend === 'nft' && sel.spec.backend === 'nft' && /\bct\s+original\b/.test(sel.spec.expr);
}

const SYN_ONLY = 1;

export function processShare(task: SimTask): SimPartial {
  const selectors = task.selectors.map((s) => buildSelector(s));
  const C = selectors.length;
  const dirDep = selectors.map(directionDependent);
  const anyDirDep = dirDep.some(Boolean);
  const configs: ConfigPartial[] = selectors.map((s) => ({
    packets: new Float64Array(s.buckets),
    bytes: new Float64Array(s.buckets),
    noNode: 0,
    unknown: 0,
  }));
  const cap = task.batchCapacity ?? DEFAULT_BATCH_CAPACITY;
  const batch: TupleBatch = createBatch(cap);
  const outO = selectors.map(() => new Int32Array(cap));
  const outR = selectors.map((_, c) => (dirDep[c] ? new Int32Array(cap) : null));
  const flowIdx = new Int32Array(cap);
  const firstOfFlow = new Uint8Array(cap);
  const flows = new FlowTable(1 << 14);
  // Per-flow packets, bytes, first and last timestamp, interleaved (stride 4): one cache line per
  // packet instead of four separate arrays; copied into the table's columns at the end.
  let acc = new Float64Array(flows.capacity * 4);
  let bucketOrig = new Int32Array(flows.capacity * C);
  let bucketReply = new Int32Array(flows.capacity * C);
  const mixed = task.mixed;
  const mixedOut = mixed ? { none: 0, several: 0, nonePkts: new Float64Array(0), severalPkts: new Float64Array(0) } : null;
  const progress = task.progress ? new Float64Array(task.progress.buffer) : null;
  const clusterIp = task.clusterIp;
  let notToCluster = 0;
  let done = 0;

  const src = openSource(task.source);
  try {
    for (;;) {
      const n = src.fill(batch);
      if (n === 0) break;
      // Keep only packets addressed to the cluster IP (the others never meet the rule).
      if (clusterIp !== null) {
        let w = 0;
        for (let i = 0; i < n; i++) {
          if (batch.family[i] === FAMILY_IPV4 && batch.daddr[i] === (clusterIp >>> 0)) {
            if (w !== i) copySlot(batch, i, batch, w);
            w++;
          }
        }
        notToCluster += n - w;
        batch.count = w;
      }
      const m = batch.count;
      // Flow of every packet.
      for (let i = 0; i < m; i++) {
        const f = flows.upsert(batch, i);
        flowIdx[i] = f;
        if (f * 4 >= acc.length) {
          const a = new Float64Array(flows.capacity * 4);
          a.set(acc);
          acc = a;
        }
        const o = f * 4;
        const t = batch.ts[i]!;
        if (acc[o] === 0) {
          firstOfFlow[i] = 1;
          if ((batch.flags[i]! & (F.SYN | F.ACK)) === F.SYN) flows.flags[f] = SYN_ONLY;
          acc[o + 2] = t;
          acc[o + 3] = t;
        } else {
          firstOfFlow[i] = 0;
          if (t < acc[o + 2]!) acc[o + 2] = t;
          if (t > acc[o + 3]!) acc[o + 3] = t;
        }
        acc[o] = acc[o]! + 1;
        acc[o + 1] = acc[o + 1]! + batch.wirelen[i]!;
      }
      if (flows.capacity * C > bucketOrig.length) {
        const o = new Int32Array(flows.capacity * C); o.set(bucketOrig); bucketOrig = o;
        const r = new Int32Array(flows.capacity * C); r.set(bucketReply); bucketReply = r;
      }
      // Every selector over the whole batch, as original direction; and as reply direction where that matters.
      for (let c = 0; c < C; c++) selectors[c]!.select(batch, outO[c]!, 0, m);
      if (anyDirDep) {
        for (let i = 0; i < m; i++) batch.flags[i] = batch.flags[i]! | F.REPLY;
        for (let c = 0; c < C; c++) if (outR[c]) selectors[c]!.select(batch, outR[c]!, 0, m);
        for (let i = 0; i < m; i++) batch.flags[i] = batch.flags[i]! & ~F.REPLY;
      }
      for (let c = 0; c < C; c++) {
        const o = outO[c]!, r = outR[c], cp = configs[c]!, exact = !dirDep[c];
        for (let i = 0; i < m; i++) {
          const b = o[i]!;
          const f = flowIdx[i]!;
          if (firstOfFlow[i] === 1) {
            bucketOrig[f * C + c] = b;
            bucketReply[f * C + c] = r ? r[i]! : b;
          }
          if (b >= 0) {
            if (exact) {
              cp.packets[b] = cp.packets[b]! + 1;
              cp.bytes[b] = cp.bytes[b]! + batch.wirelen[i]!;
            }
          } else if (b === -1) cp.noNode++;
          else cp.unknown++;
        }
      }
      if (mixed && mixedOut) {
        // Node k accepts when the selector it runs puts the packet in bucket k-1.
        for (let i = 0; i < m; i++) {
          let acc = 0;
          for (let k = 0; k < mixed.length; k++) if (outO[mixed[k]!]![i] === k) acc++;
          if (acc === 0) mixedOut.none++;
          else if (acc > 1) mixedOut.several++;
        }
      }
      done += n;
      if (progress) progress[task.progress!.slot] = done;
    }
  } finally {
    src.close();
  }
  const n = flows.count;
  for (let f = 0; f < n; f++) {
    flows.packets[f] = acc[f * 4]!;
    flows.bytes[f] = acc[f * 4 + 1]!;
    flows.firstTs[f] = acc[f * 4 + 2]!;
    flows.lastTs[f] = acc[f * 4 + 3]!;
  }
  return {
    configs,
    flows: flows.columns(),
    bucketOrig: bucketOrig.slice(0, n * C),
    bucketReply: bucketReply.slice(0, n * C),
    mixed: mixedOut,
    ingest: { ...src.stats, skipped: { ...src.stats.skipped } },
    notToCluster,
  };
}

