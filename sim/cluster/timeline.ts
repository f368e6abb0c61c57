/**
 * Packets against the ownership timeline: each packet is accepted by one node,
 * by none (lost) or by several (duplicated), and TCP connections break when
 * their packets reach a node without their conntrack entry (conntrack.ts).
 *
 * Built for flow-partitioned parallelism: the ownership timeline depends only
 * on the scenario (and, for least-loaded, on measurements from the traffic
 * before the first fault, taken in a first pass with BucketMeter); per-flow
 * state depends only on that flow's packets, in time order. So route packets to
 * workers by `connectionHash` (cluster/conn-key.ts) (each flow to one worker, in order), give every worker
 * the same timelines, and sum the partial results with `mergeFailoverPartials`:
 * the answer is the same for any worker count. Partials are plain data
 * (structured-clone safe).
 */
import { DataError } from '../core/errors.ts';
import { F, L4, PROTO, type TupleBatch } from '../traffic/batch.ts';
import { NO_BUCKET, UNKNOWN_BUCKET, type Selector } from '../select/selector.ts';
import type { FailoverPhaseLoad, FailoverTotals } from '../core/result.ts';
import { popcount32 } from './ownership.ts';
import { HolderTable, FS } from './conntrack.ts';
import type { OwnershipTimeline } from './heartbeat.ts';
import type { ConntrackParams } from './scenario.ts';
import type { Measurements } from './policies.ts';

export interface EvalOptions {
  /** Capture time of scenario time 0 (seconds; 0 for synthetic traffic, the first packet's ts for a capture). */
  t0: number;
  /** Width of a timeline bin, seconds. */
  bin_s: number;
  conntrack: ConntrackParams;
}

/** One timeline's (one policy's) sums. */
export interface RunPartial {
  lost: number;
  lost_bytes: number;
  duplicated: number;
  broken: number;
  /** Packets of broken connections after they broke: the client got a RST (or stalled) and would not have sent them. */
  after_break: number;
  /** TCP connections seen (a SYN, or a flow first seen mid-stream). */
  connections: number;
  /** [phase * nodes + node]: packets / bytes accepted. Phases: 0 before, 1 during, 2 after. */
  phase_packets: number[];
  phase_bytes: number[];
  /** [bin * nodes + node]: packets accepted per bin. */
  bin_node: number[];
  bin_lost: number[];
  bin_dup: number[];
  bin_broken: number[];
}

export interface FailoverPartial {
  nodes: number;
  t0: number;
  bin_s: number;
  packets: number;
  bytes: number;
  /** Scenario-time range of the packets seen (Infinity/-Infinity when none). */
  min_t: number;
  max_t: number;
  /** Conntrack-INVALID: dropped by every node, failover or not. */
  invalid: number;
  /** No rule fires (e.g. IPv6 at CLUSTERIP, an nft key of another protocol). */
  no_node: number;
  /** The capture lacks bytes the kernel hashed (snaplen). */
  unknown: number;
  runs: RunPartial[];
}

function emptyRun(nodes: number): RunPartial {
  return { lost: 0, lost_bytes: 0, duplicated: 0, broken: 0, after_break: 0, connections: 0, phase_packets: new Array(3 * nodes).fill(0), phase_bytes: new Array(3 * nodes).fill(0), bin_node: [], bin_lost: [], bin_dup: [], bin_broken: [] };
}

/** Evaluates batches against one or more timelines (same cluster, e.g. one per policy) in one pass. */
/** Timeline bins one run may hold (a guard against timestamps far from the scenario's time 0). */
export const MAX_BINS = 1_000_000;

export class FailoverEvaluator {
  private readonly res: Int32Array;
  private readonly flows: HolderTable;
  private readonly segPtr: Int32Array;
  private readonly p: FailoverPartial;
  private bins = 0;

  constructor(private readonly tls: OwnershipTimeline[], private readonly sel: Selector, private readonly opt: EvalOptions, batchCapacity = 65536) {
    if (!tls.length) throw new RangeError('FailoverEvaluator needs at least one timeline');
    const nodes = tls[0]!.names.length;
    for (const tl of tls) if (tl.buckets !== sel.buckets) throw new RangeError(`the timeline has ${tl.buckets} buckets but the selector ${sel.buckets}`);
    this.res = new Int32Array(batchCapacity);
    this.flows = new HolderTable(tls.length);
    this.segPtr = new Int32Array(tls.length);
    this.p = { nodes, t0: opt.t0, bin_s: opt.bin_s, packets: 0, bytes: 0, min_t: Infinity, max_t: -Infinity, invalid: 0, no_node: 0, unknown: 0, runs: tls.map(() => emptyRun(nodes)) };
  }

  private growBins(bin: number): void {
    const N = this.p.nodes;
    if (bin > MAX_BINS) {
      throw new DataError('traffic', `a packet at scenario time ${(bin * this.p.bin_s).toFixed(1)} s would need ${bin + 1} timeline bins of ${this.p.bin_s} s (more than ${MAX_BINS}): its timestamps do not start near the scenario's time 0 (give t0 = the first packet's time) or span far longer than the scenario`);
    }
    const to = Math.max(bin + 1, this.bins * 2, 64);
    for (const r of this.p.runs) {
      for (let i = this.bins * N; i < to * N; i++) r.bin_node.push(0);
      for (let i = this.bins; i < to; i++) { r.bin_lost.push(0); r.bin_dup.push(0); r.bin_broken.push(0); }
    }
    this.bins = to;
  }

  add(batch: TupleBatch): void {
    const n = batch.count;
    const res = n <= this.res.length ? this.res : new Int32Array(n);
    this.sel.select(batch, res, 0, n);
    const { ts, wirelen, proto, flags, l4flags } = batch;
    const { t0, bin_s, conntrack } = this.opt;
    const sync = conntrack.state_sync, loose = conntrack.tcp_loose;
    const p = this.p;
    const N = p.nodes;
    const tls = this.tls;
    const R = tls.length;
    const flows = this.flows;
    for (let i = 0; i < n; i++) {
      const b = res[i]!;
      const len = wirelen[i]!;
      p.packets++;
      p.bytes += len;
      const t = ts[i]! - t0;
      if (t < p.min_t) p.min_t = t;
      if (t > p.max_t) p.max_t = t;
      if (b === NO_BUCKET) {
        if (l4flags[i]! & L4.CT_INVALID) p.invalid++;
        else p.no_node++;
        continue;
      }
      if (b === UNKNOWN_BUCKET) { p.unknown++; continue; }
      let bin = Math.floor(t / bin_s);
      if (bin < 0) bin = 0;
      if (bin >= this.bins) this.growBins(bin);
      const fl = flags[i]!;
      const tcp = proto[i] === PROTO.TCP && (fl & F.PORTS) !== 0;
      const slot = tcp ? flows.slot(batch, i) : -1;
      const isSyn = (fl & (F.SYN | F.ACK)) === F.SYN;
      for (let k = 0; k < R; k++) {
        const tl = tls[k]!;
        const run = p.runs[k]!;
        // Segment lookup: the cached one, the next one, or a binary search.
        const starts = tl.starts;
        let s = this.segPtr[k]!;
        if (!(starts[s]! <= t && (s + 1 >= starts.length || t < starts[s + 1]!))) {
          if (s + 1 < starts.length && starts[s + 1]! <= t && (s + 2 >= starts.length || t < starts[s + 2]!)) s++;
          else {
            let lo = 0, hi = starts.length - 1;
            while (lo < hi) {
              const mid = (lo + hi + 1) >> 1;
              if (starts[mid]! <= t) lo = mid;
              else hi = mid - 1;
            }
            s = lo;
          }
          this.segPtr[k] = s;
        }
        const own = tl.owners[s * tl.buckets + b]!;
        let acc = own;
        if (tcp) {
          const q = slot * R + k;
          let st = flows.state[q]!;
          if (st === FS.OPEN) {
            // Conntrack tables lost (crash, leave) since this flow's previous packet.
            const last = flows.lastSeg[q]!;
            let h = flows.holders[q]!;
            for (let x = last + 1; x <= s; x++) h &= ~tl.wiped[x]!;
            flows.holders[q] = h >>> 0;
          }
          flows.lastSeg[q] = s;
          if (isSyn) {
            if (st === FS.UNSEEN || st === FS.BROKEN || st === FS.CLOSED) run.connections++;
            if (own === 0) st = FS.PENDING;
            else if ((own & (own - 1)) !== 0) {
              // Two nodes accept the SYN and both answer it (each its own ISN). The client's ACK of the first
              // SYN-ACK reaches the second node as an unacceptable ACK in SYN-RECV, which answers with a RST
              // whose sequence number is that ACK's acknowledgement, i.e. exactly what the client expects
              // next: the client accepts it and the connection is reset (RFC 9293 §3.10.7.4; Linux
              // tcp_check_req, source reading; measured as resets in agent.kernel.test.ts).
              flows.holders[q] = own;
              run.broken++;
              run.bin_broken[bin]!++;
              st = FS.BROKEN;
              // The SYN itself was accepted (twice: acc = own); what follows belongs to a reset connection.
            } else {
              flows.holders[q] = (st === FS.OPEN ? flows.holders[q]! | own : own) >>> 0;
              st = FS.OPEN;
            }
          } else if (st === FS.BROKEN || st === FS.CLOSED) {
            run.after_break += st === FS.BROKEN ? 1 : 0;
            acc = st === FS.BROKEN ? -1 : own;
          } else if (st === FS.UNSEEN || st === FS.PENDING) {
            // First seen mid-stream (established before the capture) or the SYN was lost and
            // the client's retry got through: the entry is made where the packet lands.
            if (st === FS.UNSEEN) run.connections++;
            if (own !== 0) {
              flows.holders[q] = own;
              st = FS.OPEN;
            } else st = FS.PENDING;
          } else if (own !== 0 && !sync) {
            const missing = (own & ~flows.holders[q]!) >>> 0;
            if (missing !== 0) {
              // Stateless takeover (kernel-semantics §10 item 4): the node without the entry
              // resets the connection (tcp_loose=1) or drops the packet as INVALID (tcp_loose=0).
              run.broken++;
              run.bin_broken[bin]!++;
              st = FS.BROKEN;
              if (!loose) acc = (own & flows.holders[q]!) >>> 0;
            }
          }
          if (st !== FS.BROKEN && (fl & F.RST) !== 0 && acc !== 0) st = FS.CLOSED;
          flows.state[q] = st;
          if (acc === -1) continue;
        }
        if (acc === 0) {
          run.lost++;
          run.lost_bytes += len;
          run.bin_lost[bin]!++;
          continue;
        }
        if ((acc & (acc - 1)) !== 0) {
          run.duplicated++;
          run.bin_dup[bin]!++;
        }
        const ff = tl.first_fault, ra = tl.settled_at;
        const phase = ff === null || t < ff ? 0 : ra === null || t < ra ? 1 : 2;
        for (let a = acc; a !== 0; a &= a - 1) {
          const node = 31 - Math.clz32(a & -a);
          run.phase_packets[phase * N + node]!++;
          run.phase_bytes[phase * N + node]! += len;
          run.bin_node[bin * N + node]!++;
        }
      }
    }
  }

  partial(): FailoverPartial {
    return this.p;
  }
}

/** Sums partial results (any order, any grouping: the same answer). */
export function mergeFailoverPartials(parts: FailoverPartial[]): FailoverPartial {
  if (!parts.length) throw new RangeError('nothing to merge');
  const f = parts[0]!;
  const N = f.nodes;
  const out: FailoverPartial = { nodes: N, t0: f.t0, bin_s: f.bin_s, packets: 0, bytes: 0, min_t: Infinity, max_t: -Infinity, invalid: 0, no_node: 0, unknown: 0, runs: f.runs.map(() => emptyRun(N)) };
  const addArr = (to: number[], from: number[]): void => {
    while (to.length < from.length) to.push(0);
    for (let i = 0; i < from.length; i++) to[i]! += from[i]!;
  };
  for (const p of parts) {
    if (p.nodes !== N || p.runs.length !== f.runs.length || p.bin_s !== f.bin_s || p.t0 !== f.t0) throw new RangeError('partials from different scenarios cannot be merged');
    out.packets += p.packets;
    out.bytes += p.bytes;
    out.min_t = Math.min(out.min_t, p.min_t);
    out.max_t = Math.max(out.max_t, p.max_t);
    out.invalid += p.invalid;
    out.no_node += p.no_node;
    out.unknown += p.unknown;
    p.runs.forEach((r, k) => {
      const o = out.runs[k]!;
      o.lost += r.lost; o.lost_bytes += r.lost_bytes; o.duplicated += r.duplicated; o.broken += r.broken;
      o.after_break += r.after_break; o.connections += r.connections;
      addArr(o.phase_packets, r.phase_packets);
      addArr(o.phase_bytes, r.phase_bytes);
      addArr(o.bin_node, r.bin_node);
      addArr(o.bin_lost, r.bin_lost);
      addArr(o.bin_dup, r.bin_dup);
      addArr(o.bin_broken, r.bin_broken);
    });
  }
  // Trailing empty bins depend on how arrays grew; trim them so the result is canonical.
  for (const o of out.runs) {
    let last = -1;
    const bins = o.bin_lost.length;
    for (let b = 0; b < bins; b++) {
      let any = o.bin_lost[b]! || o.bin_dup[b]! || o.bin_broken[b]!;
      for (let x = 0; !any && x < N; x++) any = o.bin_node[b * N + x]!;
      if (any) last = b;
    }
    o.bin_lost.length = o.bin_dup.length = o.bin_broken.length = last + 1;
    o.bin_node.length = (last + 1) * N;
  }
  return out;
}

/** Per-bucket traffic before the first fault: what least-loaded decides by. Mergeable by summing. */
export class BucketMeter {
  readonly packets: number[];
  private readonly res: Int32Array;
  constructor(private readonly sel: Selector, private readonly t0: number, private readonly until: number, batchCapacity = 65536) {
    this.packets = new Array(sel.buckets).fill(0);
    this.res = new Int32Array(batchCapacity);
  }
  add(batch: TupleBatch): void {
    const n = batch.count;
    const res = n <= this.res.length ? this.res : new Int32Array(n);
    this.sel.select(batch, res, 0, n);
    for (let i = 0; i < n; i++) {
      const b = res[i]!;
      if (b >= 0 && batch.ts[i]! - this.t0 < this.until) this.packets[b]!++;
    }
  }
  measurements(): Measurements {
    return { bucket_load: [...this.packets] };
  }
}

export interface RunSummary {
  totals: FailoverTotals & { recovered: boolean; lost_bytes: number; after_break_packets: number; connections: number };
  phases: FailoverPhaseLoad[];
  /** Largest node share of accepted packets in the during or after phase (what a policy's choice costs the busiest node). */
  max_node_share: number;
}

/** Turns one run's sums into totals and per-phase loads. */
export function summarizeRun(p: FailoverPartial, k: number, tl: OwnershipTimeline): RunSummary {
  const r = p.runs[k]!;
  const N = p.nodes;
  const lo = Number.isFinite(p.min_t) ? p.min_t : 0;
  const hi = Number.isFinite(p.max_t) ? p.max_t : 0;
  const ff = tl.first_fault, ra = tl.settled_at;
  const bounds: [number, number][] = [
    [lo, ff === null ? hi : Math.min(ff, hi)],
    [ff === null ? hi : Math.max(ff, lo), ff === null ? hi : ra === null ? hi : Math.max(Math.min(ra, hi), lo)],
    [ff === null ? hi : ra === null ? hi : Math.max(Math.min(ra, hi), lo), hi],
  ];
  const names = ['before', 'during', 'after'] as const;
  const phases: FailoverPhaseLoad[] = names.map((phase, ph) => {
    let tot = 0;
    for (let x = 0; x < N; x++) tot += r.phase_packets[ph * N + x]!;
    const from = bounds[ph]![0], to = Math.max(bounds[ph]![0], bounds[ph]![1]);
    return {
      phase,
      from_s: from,
      to_s: to,
      per_node: tl.names.map((node, x) => {
        const packets = r.phase_packets[ph * N + x]!;
        return { node, packets, bytes: r.phase_bytes[ph * N + x]!, share: tot ? packets / tot : 0, packets_per_s: to > from ? packets / (to - from) : 0 };
      }),
    };
  });
  // The busiest node while the cluster is degraded or settling (during and after the first fault).
  const pick = [phases[1]!, phases[2]!];
  const rec = tl.recovered_at;
  const recovery_s = ff === null ? 0 : rec === null ? Math.max(0, hi - ff) : rec - ff;
  return {
    totals: { lost_packets: r.lost, duplicated_packets: r.duplicated, broken_connections: r.broken, recovery_s, recovered: ff === null || rec !== null, lost_bytes: r.lost_bytes, after_break_packets: r.after_break, connections: r.connections },
    phases,
    max_node_share: Math.max(0, ...pick.flatMap((ph) => ph.per_node.map((x) => x.share))),
  };
}

export { popcount32 };
