/**
 * The one pass over the input: every packet to the cluster goes through the
 * engine's connection table (sim/engine/conn-table.ts, the same timeout rule
 * as `simulate`), and every ended connection leaves one row per direction
 * seen in a flow table. The search then hashes these rows, never the packets
 * again: a candidate costs one selector call per flow, not per packet.
 *
 * A row is the tuple of that direction's packets (so every selector, in any
 * mode, gives the bucket those packets got) with the REPLY flag set when the
 * direction is the conntrack reply (xt_cluster and `ct original` keys then
 * hash the original source, as the kernel does), plus its packets, bytes,
 * and the connection's start and original source (for the held-out splits).
 *
 * Memory: the rows live in one TupleBatch (72 bytes a row) plus 29 bytes of
 * side columns: about 100 bytes a direction flow, so 1M flows take ~100 MB.
 * Time: a pass that only decodes (to find the median packet time) and
 * one over the packets (decode + connection table), in-process.
 */
import { createBatch, F, FAMILY_IPV4, DEFAULT_BATCH_CAPACITY, copySlot, type TupleBatch } from '../traffic/batch.ts';
import { writeTupleV4, writeTupleV6 } from '../traffic/tuple.ts';
import { fmix32 } from '../hash/mix.ts';
import { ConnTable, DEFAULT_FLOW_TIMEOUT, BY0, BY1, LAST, META, PK0, PK1, REC, SEEN0, SEEN1, firstTs, type FlowRecords } from '../engine/conn-table.ts';
import { originalDirection } from '../engine/flow-sink.ts';
import { openInput } from '../engine/inputs.ts';
import type { InputSpec } from '../engine/task.ts';
import { keepToClusterIp, isToClusterIp, type ClusterIp } from '../engine/cluster-filter.ts';

/** Per direction flow: its tuple (in `tuples`, REPLY flag for the reply direction) and what it carried. */
export interface FlowTable {
  count: number;
  tuples: TupleBatch;
  packets: Float64Array;
  bytes: Float64Array;
  /** 1 for the connection's original direction (a connection is counted there), 0 for the reply. */
  orig: Uint8Array;
  /** First packet of this piece of the connection (seconds). */
  start: Float64Array;
  /**
   * 1 for a piece from the median packet time (`cut`) on, 0 before: a
   * connection open at that moment is cut there, so each half holds exactly
   * the packets sent in it (a long elephant counts in both halves, as it loads both).
   */
  late: Uint8Array;
  /** 1 when the row counts as a flow; 0 for the piece of a connection after the cut (counted before it). */
  flowW: Uint8Array;
  /** The median time of the packets to the cluster (seconds): where `late` starts. */
  cut: number;
  /** Packets read after the cut with a timestamp before it (an input not in time order): counted in the later half. */
  outOfOrder: number;
  /** A hash of the connection's original source address: the source-set split. */
  srcHash: Uint32Array;
  /** Packets the pass read and how many were addressed elsewhere (not to the cluster IP). */
  packetsRead: number;
  notToCluster: number;
  /** Packets the inputs gave no timestamp (pcapng simple packet blocks; input.ts untimedNote). */
  untimed: number;
}

export interface CollectOptions {
  inputs: InputSpec[];
  /** Numeric cluster IP: only packets to it meet the cluster rule; null: every packet. */
  clusterIp: ClusterIp | null;
  flowTimeout?: number;
}

/** A growable flow table (doubling; rows copied slot by slot). */
class TableBuilder {
  t: FlowTable;
  constructor(cap = 1 << 14) {
    this.t = emptyTable(cap);
  }
  room(): number {
    const t = this.t;
    if (t.count === t.tuples.capacity) {
      const n = emptyTable(t.count * 2);
      for (let i = 0; i < t.count; i++) copySlot(t.tuples, i, n.tuples, i);
      n.packets.set(t.packets); n.bytes.set(t.bytes); n.orig.set(t.orig); n.start.set(t.start); n.srcHash.set(t.srcHash);
      n.late.set(t.late); n.flowW.set(t.flowW);
      n.count = t.count; n.packetsRead = t.packetsRead; n.notToCluster = t.notToCluster; n.cut = t.cut; n.outOfOrder = t.outOfOrder; n.untimed = t.untimed;
      this.t = n;
    }
    return this.t.count++;
  }
}

/** An empty table with room for `cap` rows (the bench fills one directly). */
export function emptyTable(cap: number): FlowTable {
  return {
    count: 0, tuples: createBatch(cap), packets: new Float64Array(cap), bytes: new Float64Array(cap), orig: new Uint8Array(cap),
    start: new Float64Array(cap), srcHash: new Uint32Array(cap), late: new Uint8Array(cap), flowW: new Uint8Array(cap), cut: 0, outOfOrder: 0, packetsRead: 0, notToCluster: 0, untimed: 0,
  };
}

/**
 * Connections open at the cut, by key: when their last packet was and which
 * canonical direction was the original, so that the piece after the cut is
 * recognised (within the timeout) and keeps the conntrack direction it had.
 */
type OpenAtCut = Map<string, { last: number; orig: 0 | 1 }>;

const keyText = (keys: Uint32Array, ko: number, kw: number): string => {
  let s = '';
  for (let w = 0; w < kw; w++) s += `${keys[ko + w]!},`;
  return s;
};

/** Appends the ended connections of `r` (one row per direction seen); `late` after the cut, `open` holds what the cut ended. */
function addRecords(tb: TableBuilder, r: FlowRecords, late: 0 | 1, cutting: boolean, open: OpenAtCut, timeout: number): void {
  const { keys, rec, kw } = r, v6 = kw === 10, aw = v6 ? 4 : 1;
  for (let n = 0; n < r.count; n++) {
    const q = n * REC, ko = n * kw, meta = rec[q + META]!;
    let o = originalDirection(rec, q);
    const start = firstTs(rec, q);
    let cont = false;
    if (cutting) open.set(keyText(keys, ko, kw), { last: rec[q + LAST]!, orig: o });
    else if (late && open.size) {
      const k = keyText(keys, ko, kw), before = open.get(k);
      if (before) {
        open.delete(k);
        // The same connection as before the cut (conntrack would still hold it): not a new flow, same direction.
        if (start - before.last <= timeout) { cont = true; o = before.orig; }
      }
    }
    // The original source: endpoint A when direction 0 opened the connection, else B.
    const so = ko + 1 + (o === 0 ? 0 : aw);
    let h = 0x5bd1e995;
    for (let w = 0; w < aw; w++) h = fmix32(h ^ keys[so + w]!);
    const proto = keys[ko]! & 0xff, ports = keys[ko + kw - 1]!, pA = ports >>> 16, pB = ports & 0xffff;
    for (let d = 0; d < 2; d++) {
      if (!(meta & (d === 0 ? SEEN0 : SEEN1))) continue;
      const i = tb.room(), t = tb.t, b = t.tuples;
      if (v6) {
        const A = keys.subarray(ko + 1, ko + 5), B = keys.subarray(ko + 5, ko + 9);
        if (d === 0) writeTupleV6(b, i, proto, A, pA, B, pB); else writeTupleV6(b, i, proto, B, pB, A, pA);
      } else if (d === 0) writeTupleV4(b, i, proto, keys[ko + 1]!, pA, keys[ko + 2]!, pB);
      else writeTupleV4(b, i, proto, keys[ko + 2]!, pB, keys[ko + 1]!, pA);
      if (d !== o) b.flags[i] = b.flags[i]! | F.REPLY;
      t.packets[i] = rec[q + (d === 0 ? PK0 : PK1)]!;
      t.bytes[i] = rec[q + (d === 0 ? BY0 : BY1)]!;
      t.orig[i] = d === o && !cont ? 1 : 0;
      t.flowW[i] = cont ? 0 : 1;
      t.late[i] = late;
      t.start[i] = start;
      t.srcHash[i] = h >>> 0;
    }
  }
}

const RESERVOIR = 1 << 16;

/**
 * Where to cut the input in time: the median timestamp of the packets to the
 * cluster, so that both halves carry about the same load (the middle of the
 * time range is not: traffic that tails off would leave the later half a few
 * percent of the packets). Estimated from a uniform sample of 65536 packets
 * (reservoir sampling with a fixed seed: the same input gives the same cut),
 * in a pass that only decodes. Infinity when the packets span no time.
 */
export function medianTime(inputs: InputSpec[], clusterIp: ClusterIp | null): number {
  const batch = createBatch(DEFAULT_BATCH_CAPACITY);
  const sample = new Float64Array(RESERVOIR);
  let seen = 0, rng = 0x9e3779b9, first = Infinity, last = -Infinity;
  for (const spec of inputs) {
    const input = openInput(spec);
    try {
      for (;;) {
        const n = input.fill(batch);
        if (n === 0) break;
        for (let i = 0; i < n; i++) {
          if (clusterIp !== null && !isToClusterIp(batch, i, clusterIp)) continue;
          const ts = batch.ts[i]!;
          if (ts < first) first = ts;
          if (ts > last) last = ts;
          if (seen < RESERVOIR) sample[seen] = ts;
          else {
            rng = (Math.imul(rng ^ (rng >>> 15), 0x2c1b3c6d) + 0x297a2d39) >>> 0;
            const j = Math.floor((rng / 4294967296) * (seen + 1));
            if (j < RESERVOIR) sample[j] = ts;
          }
          seen++;
        }
      }
    } finally {
      input.close();
    }
  }
  if (!(last > first)) return Infinity;
  const s = sample.subarray(0, Math.min(seen, RESERVOIR)).sort();
  return s[s.length >> 1]!;
}

/**
 * Reads every input once, in this thread, and returns its flow table. The
 * connection rule is `simulate`'s (one idle timeout, conn-table.ts), so the
 * rows sum to the flows, connections, packets and bytes `simulate` counts.
 */
export function collectFlows(o: CollectOptions): FlowTable {
  const tb = new TableBuilder();
  const timeout = o.flowTimeout ?? DEFAULT_FLOW_TIMEOUT;
  // The median packet time: a first pass that only decodes finds it.
  const cut = medianTime(o.inputs, o.clusterIp);
  let late: 0 | 1 = 0, cutting = false;
  let open: OpenAtCut = new Map();
  const onEnd = (r: FlowRecords): void => addRecords(tb, r, late, cutting, open, timeout);
  const batch = createBatch(DEFAULT_BATCH_CAPACITY);
  let read = 0, other = 0, early = 0;
  for (const spec of o.inputs) {
    // Each input is a stream of its own (as simulate's chains): its connections end with it.
    let v4 = new ConnTable({ kw: 4, c: 0, timeout, onEnd });
    let v6 = new ConnTable({ kw: 10, c: 0, timeout, onEnd }, 16);
    late = 0;
    open = new Map();
    const input = openInput(spec);
    try {
      for (;;) {
        const n = input.fill(batch);
        if (n === 0) break;
        read += n;
        let m = n;
        if (o.clusterIp !== null) {
          other += keepToClusterIp(batch, o.clusterIp);
          m = batch.count;
        }
        v4.sweep(); v6.sweep();
        for (let i = 0; i < m; i++) {
          if (!late && batch.ts[i]! >= cut) {
            // The cut: every open connection ends here (remembered), the rest of the input is the later half.
            cutting = true;
            v4.finish(true); v6.finish(true);
            cutting = false;
            late = 1;
            v4 = new ConnTable({ kw: 4, c: 0, timeout, onEnd });
            v6 = new ConnTable({ kw: 10, c: 0, timeout, onEnd }, 16);
          }
          else if (late && batch.ts[i]! < cut) early++;
          if (batch.family[i] === FAMILY_IPV4) v4.trackV4(batch, i, NONE, NONE_R);
          else v6.trackV6(batch, i, NONE, NONE_R);
        }
      }
    } finally {
      input.close();
    }
    tb.t.untimed += input.stats.untimed;
    v4.finish(true); v6.finish(true);
  }
  tb.t.packetsRead = read;
  tb.t.cut = cut;
  tb.t.outOfOrder = early;
  tb.t.notToCluster = other;
  return tb.t;
}

const NONE: Int32Array[] = [];
const NONE_R: (Int32Array | null)[] = [];

/** The rows of `t` whose part is `which`, as a table of their own (the held-out half, hashed 32 times for the band). */
export function subTable(t: FlowTable, part: Uint8Array, which: number): FlowTable {
  let n = 0;
  for (let i = 0; i < t.count; i++) if (part[i] === which) n++;
  const s = emptyTable(Math.max(1, n));
  for (let i = 0; i < t.count; i++) {
    if (part[i] !== which) continue;
    const j = s.count++;
    copySlot(t.tuples, i, s.tuples, j);
    s.packets[j] = t.packets[i]!; s.bytes[j] = t.bytes[i]!; s.orig[j] = t.orig[i]!; s.start[j] = t.start[i]!; s.srcHash[j] = t.srcHash[i]!;
    s.late[j] = t.late[i]!; s.flowW[j] = t.flowW[i]!;
  }
  return s;
}
