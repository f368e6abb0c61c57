/**
 * Merges worker partials. Per-packet counters and flow summaries add up. The
 * connections a share could not end on its own (open at its end, or opened
 * near its start and so maybe the continuation of one from the share before)
 * are joined share by share in input order through a connection table with
 * the same timeout rule, then end into one more summary. Sums are
 * order-independent and the joining follows input order, so 1 or N workers
 * give the same result.
 */
import { ConnTable, HEAD, META, newRecords, pushRecord, REC } from './conn-table.ts';
import { keyHash } from '../hash/mix.ts';
import { addSummary, emptySummary, FlowSink, type FlowSummary, type SinkOptions } from './flow-sink.ts';
import { mergeSources } from './source-merge.ts';
import type { SourceCounts } from './source-table.ts';
import type { MergeTask, SimPartial } from './task.ts';
import { accountBatch, newStats, type IngestStats, type PacketInput } from '../traffic/input.ts';
import { replayCarried } from '../traffic/frag-carry.ts';
import { copySlot, createBatch, type TupleBatch } from '../traffic/batch.ts';
import { processInput } from './share.ts';
import type { JudgeStats } from '../cluster/ct-model.ts';
import type { ClusterIp } from './cluster-filter.ts';

export interface MergedRun {
  C: number;
  perPacket: { packets: Float64Array; frames: Float64Array; bytes: Float64Array; noNode: number; unknown: number }[];
  flows: FlowSummary;
  mixed: { none: number; several: number } | null;
  ingest: IngestStats;
  notToCluster: number;
  /** The conntrack validity model's counts, summed over shares (null: it did not run). */
  ct: JudgeStats | null;
}

/** The worker-side entry of a MergeTask. */
export function runMerge(t: MergeTask): MergedRun {
  return mergePartials(t.parts, t.sink, t.flowTimeout, t.clusterIp);
}

export function mergePartials(shares: SimPartial[], sink: SinkOptions, flowTimeout: number, clusterIp: ClusterIp | null): MergedRun {
  const parts = [...shares, ...edgePartials(shares, sink, flowTimeout, clusterIp)];
  const bucketsPerConfig = sink.buckets;
  const C = bucketsPerConfig.length;
  const perPacket = bucketsPerConfig.map((n) => ({ packets: new Float64Array(n), frames: new Float64Array(n), bytes: new Float64Array(n), noNode: 0, unknown: 0 }));
  const ingest = newStats();
  ingest.firstTs = Infinity;
  ingest.lastTs = -Infinity;
  let mixed: MergedRun['mixed'] = null;
  let notToCluster = 0;
  let ct: JudgeStats | null = null;
  const flows = emptySummary(sink);
  const sources: SourceCounts[] = [];
  for (const p of parts) {
    for (let c = 0; c < C; c++) {
      const src = p.configs[c]!, dst = perPacket[c]!;
      for (let b = 0; b < dst.packets.length; b++) {
        dst.packets[b] = dst.packets[b]! + src.packets[b]!;
        dst.frames[b] = dst.frames[b]! + src.frames[b]!;
        dst.bytes[b] = dst.bytes[b]! + src.bytes[b]!;
      }
      dst.noNode += src.noNode;
      dst.unknown += src.unknown;
    }
    addSummary(flows, p.summary);
    sources.push(p.summary.sources);
    if (p.mixed) {
      mixed ??= { none: 0, several: 0 };
      mixed.none += p.mixed.none;
      mixed.several += p.mixed.several;
    }
    ingest.packets += p.ingest.packets;
    ingest.bytes += p.ingest.bytes;
    ingest.truncated += p.ingest.truncated;
    ingest.fragments += p.ingest.fragments;
    ingest.untimed += p.ingest.untimed ?? 0;
    for (const [k, v] of Object.entries(p.ingest.skipped)) ingest.skipped[k] = (ingest.skipped[k] ?? 0) + v;
    if (p.ingest.packets > 0) {
      ingest.firstTs = Math.min(ingest.firstTs, p.ingest.firstTs);
      ingest.lastTs = Math.max(ingest.lastTs, p.ingest.lastTs);
    }
    notToCluster += p.notToCluster;
    if (p.ct) {
      ct ??= { invalid: 0, assumed: 0, icmpErrors: 0 };
      ct.invalid += p.ct.invalid; ct.assumed += p.ct.assumed; ct.icmpErrors += p.ct.icmpErrors;
    }
  }
  if (ingest.packets === 0 || !Number.isFinite(ingest.firstTs)) { ingest.firstTs = 0; ingest.lastTs = 0; }
  if (parts.some((p) => p.exports.v4.count + p.exports.v6.count > 0)) {
    const join = joinShares(parts, sink, flowTimeout);
    addSummary(flows, join);
    sources.push(join.sources);
  }
  flows.sources = mergeSources(sources, sink.buckets, sink.spill?.budget ?? Infinity);
  return { C, perPacket, flows, mixed, ingest, notToCluster, ct };
}

/**
 * The fragments shares carried (frag-carry.ts) replayed per stream, in stream
 * order, through one reassembler. The datagrams that complete are counted as
 * a share would count them, as one more partial per share edge: placed just
 * before the share holding each datagram's completing fragment, every
 * connection of it a head (it may continue what the share before left open,
 * and the share after may continue it), so joinShares sees the connection
 * as a single pass does. What stays incomplete is counted as skipped once.
 */
function edgePartials(parts: SimPartial[], sink: SinkOptions, flowTimeout: number, clusterIp: ClusterIp | null): SimPartial[] {
  const out: SimPartial[] = [];
  const inputs = [...new Set(parts.filter((p) => p.carry).map((p) => p.chain.input))].sort((a, b) => a - b);
  for (const input of inputs) {
    const chain = parts.filter((p) => p.chain.input === input && p.carry).sort((a, b) => a.chain.share - b.chain.share);
    const r = replayCarried(chain.map((p) => p.carry!));
    const base = { selectors: sink.selectors, clusterIp, mixed: sink.mixed, flowTimeout, topSources: sink.sources, sourceSpill: null };
    chain.forEach((p, g) => {
      const keep = batchWhere(r.batch, r.group, g);
      // The skip counts of the replay go with the first edge (they belong to no share of their own).
      if (keep.count === 0 && g > 0) return;
      const part = processInput({ ...base, chain: { input, share: p.chain.share - 0.5, first: false, last: false } }, new BatchInput(keep, g === 0 ? r.stats.skipped : {}), true);
      out.push(part);
    });
  }
  return out;
}

/**
 * Workers count every connection they saw end, including those cut by a
 * share boundary, as if whole. Here the exported halves meet again, in share
 * order, through a connection table with the same timeout rule; when two
 * join, their separate counts are taken out and the whole connection's put
 * in. Returns that correction (only joined connections cost work here).
 */
function joinShares(parts: SimPartial[], o: SinkOptions, timeout: number): FlowSummary {
  const sink = new FlowSink(o);
  const inputs = [...new Set(parts.map((p) => p.chain.input))].sort((a, b) => a - b);
  for (const input of inputs) {
    const chain = parts.filter((p) => p.chain.input === input).sort((a, b) => a.chain.share - b.chain.share);
    for (const fam of ['v4', 'v6'] as const) {
      const kw = fam === 'v4' ? 4 : 10, C = o.buckets.length;
      // An entry can only ever join a head of a later share with its key: the others need no place in
      // the table (most of a share's open entries, on a capture cut into a few long stretches).
      const heads = new KeyFilter(chain.reduce((n, p) => n + (p.chain.first ? 0 : p.exports[fam].count), 0));
      for (const p of chain) {
        if (p.chain.first) continue;
        const r = p.exports[fam];
        for (let n = 0; n < r.count; n++) if (r.rec[n * REC + META]! & HEAD) heads.add(keyHash(r.keys, n, kw));
      }
      const table = new ConnTable({ kw, c: C, timeout, onEnd: () => {}, maxLoad: 0.75 }, 1 << 10);
      const minus = newRecords(kw, C, 64), plus = newRecords(kw, C, 64);
      // Table entries holding a joined connection not counted yet. A connection that crosses many
      // edges (rotated files, many shards) is counted whole once, when it can join no more: each
      // half comes out as it joins, never the wholes in between (they would come in and out again).
      const whole = new Set<number>();
      const settle = (s: number): void => {
        if (s >= 0 && whole.delete(s)) pushRecord(plus, table.keys, table.rec, table.bk, s);
      };
      for (const p of chain) {
        const r = p.exports[fam], last = p.chain.last;
        // Heads first (they may continue what earlier shares left open), then what this share left open.
        // A share exports entries as they end, so two heads of one key come in time order already;
        // entries of different keys never meet.
        for (let n = 0; n < r.count; n++) {
          if (!(r.rec[n * REC + META]! & HEAD)) continue;
          const s = table.lookup(r, n);
          if (s >= 0 && table.continues(s, r, n)) {
            if (!whole.has(s)) pushRecord(minus, table.keys, table.rec, table.bk, s);
            pushRecord(minus, r.keys, r.rec, r.bk, n);
            table.combine(s, r, n);
            whole.add(s);
          } else if (!last && heads.has(keyHash(r.keys, n, kw))) {
            settle(s);
            table.put(s, r, n);
          }
        }
        if (last) continue;
        for (let n = 0; n < r.count; n++) {
          if (r.rec[n * REC + META]! & HEAD || !heads.has(keyHash(r.keys, n, kw))) continue;
          const s = table.lookup(r, n);
          settle(s);
          table.put(s, r, n);
        }
      }
      for (const s of [...whole]) settle(s);
      sink.consume(minus, -1);
      sink.consume(plus, 1);
    }
  }
  return sink.summary();
}

/**
 * A set of key hashes that may say yes wrongly but never no wrongly (two
 * bits per key in a bitmap of 16 bits a key: ~1.4% false yes, which only
 * costs a table entry).
 */
class KeyFilter {
  private readonly bits: Int32Array;
  private readonly mask: number;
  constructor(keys: number) {
    let n = 1 << 16;
    while (n < keys * 16) n <<= 1;
    this.bits = new Int32Array(n >>> 5);
    this.mask = n - 1;
  }
  add(h: number): void {
    const a = h & this.mask, b = Math.imul(h, 0x9e3779b1) >>> 7 & this.mask;
    this.bits[a >>> 5] = this.bits[a >>> 5]! | (1 << (a & 31));
    this.bits[b >>> 5] = this.bits[b >>> 5]! | (1 << (b & 31));
  }
  has(h: number): boolean {
    const a = h & this.mask, b = Math.imul(h, 0x9e3779b1) >>> 7 & this.mask;
    return (this.bits[a >>> 5]! & (1 << (a & 31))) !== 0 && (this.bits[b >>> 5]! & (1 << (b & 31))) !== 0;
  }
}

/** The slots of b whose group is g, in order, as a batch of their own. */
function batchWhere(b: TupleBatch, group: Int32Array, g: number): TupleBatch {
  let n = 0;
  for (let i = 0; i < b.count; i++) if (group[i] === g) n++;
  const out = createBatch(Math.max(1, n));
  let k = 0;
  for (let i = 0; i < b.count; i++) if (group[i] === g) copySlot(b, i, out, k++);
  out.count = n;
  return out;
}

/** A batch already in memory as a PacketInput (one fill), with skip counts to report. */
class BatchInput implements PacketInput {
  readonly stats: IngestStats = newStats();
  private done = false;
  constructor(private readonly b: TupleBatch, skipped: Record<string, number>) {
    this.stats.skipped = { ...skipped };
  }
  fill(out: TupleBatch): number {
    if (this.done || this.b.count === 0) { out.count = 0; return 0; }
    this.done = true;
    const n = Math.min(this.b.count, out.capacity);
    for (let i = 0; i < n; i++) copySlot(this.b, i, out, i);
    out.count = n;
    accountBatch(this.stats, out, 0, n);
    return n;
  }
  close(): void {}
}
