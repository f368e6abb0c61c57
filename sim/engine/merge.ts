/**
 * Merges worker partials. Counters add up; flow tables are unioned by key,
 * and a flow seen by several shares keeps the buckets of its earliest packet.
 * Every rule is order-independent, so 1 or N workers give the same result.
 */
import { FlowTable, KEY_WORDS } from './flow-table.ts';
import type { SimPartial } from './task.ts';
import { newStats, type IngestStats } from '../traffic/source.ts';

export interface MergedRun {
  C: number;
  perPacket: { packets: Float64Array; bytes: Float64Array; noNode: number; unknown: number }[];
  flows: FlowTable;
  bucketOrig: Int32Array;
  bucketReply: Int32Array;
  mixed: { none: number; several: number } | null;
  ingest: IngestStats;
  notToCluster: number;
}

export function mergePartials(parts: SimPartial[], bucketsPerConfig: number[]): MergedRun {
  const C = bucketsPerConfig.length;
  const perPacket = bucketsPerConfig.map((n) => ({ packets: new Float64Array(n), bytes: new Float64Array(n), noNode: 0, unknown: 0 }));
  const total = parts.reduce((s, p) => s + p.flows.count, 0);
  const flows = new FlowTable(Math.max(16, total));
  let bucketOrig = new Int32Array(flows.capacity * C);
  let bucketReply = new Int32Array(flows.capacity * C);
  const ingest = newStats();
  ingest.firstTs = Infinity;
  ingest.lastTs = -Infinity;
  let mixed: MergedRun['mixed'] = null;
  let notToCluster = 0;
  for (const p of parts) {
    for (let c = 0; c < C; c++) {
      const src = p.configs[c]!, dst = perPacket[c]!;
      for (let b = 0; b < dst.packets.length; b++) {
        dst.packets[b] = dst.packets[b]! + src.packets[b]!;
        dst.bytes[b] = dst.bytes[b]! + src.bytes[b]!;
      }
      dst.noNode += src.noNode;
      dst.unknown += src.unknown;
    }
    const f = p.flows;
    for (let i = 0; i < f.count; i++) {
      const g = flows.upsertKey(f.keys, i);
      if (flows.capacity * C > bucketOrig.length) {
        const o = new Int32Array(flows.capacity * C); o.set(bucketOrig); bucketOrig = o;
        const r = new Int32Array(flows.capacity * C); r.set(bucketReply); bucketReply = r;
      }
      const fresh = flows.packets[g] === 0;
      const earlier = f.firstTs[i]! < flows.firstTs[g]!;
      const tie = f.firstTs[i]! === flows.firstTs[g]!;
      for (let c = 0; c < C; c++) {
        const o = f.count ? p.bucketOrig[i * C + c]! : 0, r = p.bucketReply[i * C + c]!;
        if (fresh || earlier) {
          bucketOrig[g * C + c] = o;
          bucketReply[g * C + c] = r;
        } else if (tie) {
          // Same first timestamp from two shares: keep the smaller answer, whatever the order.
          bucketOrig[g * C + c] = Math.min(bucketOrig[g * C + c]!, o);
          bucketReply[g * C + c] = Math.min(bucketReply[g * C + c]!, r);
        }
      }
      if (fresh || earlier) flows.flags[g] = f.flags[i]!;
      else if (tie) flows.flags[g] = flows.flags[g]! | f.flags[i]!;
      flows.packets[g] = flows.packets[g]! + f.packets[i]!;
      flows.bytes[g] = flows.bytes[g]! + f.bytes[i]!;
      if (f.firstTs[i]! < flows.firstTs[g]!) flows.firstTs[g] = f.firstTs[i]!;
      if (f.lastTs[i]! > flows.lastTs[g]!) flows.lastTs[g] = f.lastTs[i]!;
    }
    if (p.mixed) {
      mixed ??= { none: 0, several: 0 };
      mixed.none += p.mixed.none;
      mixed.several += p.mixed.several;
    }
    ingest.packets += p.ingest.packets;
    ingest.bytes += p.ingest.bytes;
    ingest.truncated += p.ingest.truncated;
    ingest.fragments += p.ingest.fragments;
    for (const [k, v] of Object.entries(p.ingest.skipped)) ingest.skipped[k] = (ingest.skipped[k] ?? 0) + v;
    if (p.ingest.packets > 0) {
      ingest.firstTs = Math.min(ingest.firstTs, p.ingest.firstTs);
      ingest.lastTs = Math.max(ingest.lastTs, p.ingest.lastTs);
    }
    notToCluster += p.notToCluster;
  }
  if (ingest.packets === 0 || !Number.isFinite(ingest.firstTs)) { ingest.firstTs = 0; ingest.lastTs = 0; }
  return { C, perPacket, flows, bucketOrig: bucketOrig.slice(0, flows.count * C), bucketReply: bucketReply.slice(0, flows.count * C), mixed, ingest, notToCluster };
}

/** Compares flow keys a and b lexicographically (a deterministic tie-break). */
export function compareKeys(keys: Uint32Array, a: number, b: number): number {
  for (let w = 0; w < KEY_WORDS; w++) {
    const d = keys[a * KEY_WORDS + w]! - keys[b * KEY_WORDS + w]!;
    if (d !== 0) return d;
  }
  return 0;
}
