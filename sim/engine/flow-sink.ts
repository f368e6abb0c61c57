/**
 * Where ended connections go: each entry of the connection table becomes one
 * or two flows (one per direction seen) and one connection, and is folded
 * into counters that only add up: per node flows, connections and (for
 * selectors that follow the conntrack direction) packets and bytes; the
 * heaviest sources; the loads under 32 other seeds (the randomness band);
 * migration matrices; flows a mixed cluster drops or doubles. A worker keeps
 * one sink, the main thread adds the workers' summaries: memory is the size
 * of the counters, not of the capture.
 */
import { createBatch, F, type TupleBatch } from '../traffic/batch.ts';
import { writeTupleV4, writeTupleV6 } from '../traffic/tuple.ts';
import { buildSelector } from '../select/build.ts';
import type { Selector, SelectorSpec } from '../select/selector.ts';
import { BAND_SEEDS, bandSeeds, reseed } from '../select/reseed.ts';
import { SourceTable, type SourceCounts, type SourceSpill, SRC_KW } from './source-table.ts';
import { BY0, BY1, firstTs, FR0, META, PK0, PK1, REC, SEEN0, SEEN1, SYN0, SYN1, T0, T1, LAST, type FlowRecords } from './conn-table.ts';

/** Metrics in the order the band arrays hold them. */
export const BAND_METRICS = ['packets', 'bytes', 'flows', 'connections'] as const;

export interface ConfigFlowCounts {
  flows: Float64Array;
  connections: Float64Array;
  /** Per-node packets, frames and bytes summed per flow (used for direction-dependent selectors). */
  packets: Float64Array;
  frames: Float64Array;
  bytes: Float64Array;
  /** band[(seed * 4 + metric) * N + node]: loads under reseeded copies; null when the selector has no seed. */
  band: Float64Array | null;
}

export interface FlowSummary {
  /** Direction flows and connections ended. */
  flows: number;
  connections: number;
  /** Sum and sum of squares of per-flow packets and bytes (the effective number of items behind a load). */
  sumP: number; sumP2: number; sumB: number; sumB2: number;
  firstTs: number;
  lastTs: number;
  configs: ConfigFlowCounts[];
  /** migrations[j - 1]: configuration 0 -> j, matrices [from node * Nj + to node] of flows, connections, packets, bytes. */
  migrations: { flows: Float64Array; connections: Float64Array; packets: Float64Array; bytes: Float64Array }[];
  mixed: { none: number; several: number } | null;
  sources: SourceCounts;
}

export interface SinkOptions {
  selectors: SelectorSpec[];
  buckets: number[];
  dirDep: boolean[];
  mixed: number[] | null;
  /**
   * Count every source address per node for the heaviest sources (default
   * true). Exact, so it needs one counter per distinct source: without
   * `spill`, the one part of a run's memory that grows with the capture
   * rather than with the connections active within the timeout.
   */
  sources?: boolean;
  /** Spill the source counters to sorted runs in this directory past this many entries (source-table.ts); null: hold them all. */
  spill?: SourceSpill | null;
}

const BAND_CHUNK = 8192;
/**
 * Words from one seed's buckets to the next in bandOut: a chunk and one cache line. Rows a
 * multiple of 4 KB apart would put a flow's 32 buckets in one L1 set (8 ways), a miss per
 * bucket read (measured: that load was the hottest line of the band).
 */
const BAND_ROW = BAND_CHUNK + 16;
/** Queue slots hashed under every seed before their sums: 32 seeds' buckets of a block (128 KB) stay in L2. A multiple of 16. */
const BAND_BLOCK = 1024;

export function emptySummary(o: SinkOptions): FlowSummary {
  const C = o.buckets.length;
  return {
    flows: 0, connections: 0, sumP: 0, sumP2: 0, sumB: 0, sumB2: 0, firstTs: Infinity, lastTs: -Infinity,
    configs: o.selectors.map((spec, c) => {
      const N = o.buckets[c]!;
      return { flows: new Float64Array(N), connections: new Float64Array(N), packets: new Float64Array(N), frames: new Float64Array(N), bytes: new Float64Array(N), band: reseed(spec, 1) ? new Float64Array(BAND_SEEDS * 4 * N) : null };
    }),
    migrations: Array.from({ length: Math.max(0, C - 1) }, (_, j) => {
      const n = o.buckets[0]! * o.buckets[j + 1]!;
      return { flows: new Float64Array(n), connections: new Float64Array(n), packets: new Float64Array(n), bytes: new Float64Array(n) };
    }),
    mixed: o.mixed ? { none: 0, several: 0 } : null,
    sources: { count: 0, keys: new Uint32Array(0), vals: new Float64Array(0), runs: [] },
  };
}

/**
 * The conntrack original direction of an ended entry: the direction whose
 * first packet was a SYN without ACK (it opened the connection), else the one
 * seen first, else (a tie) direction 0, whose key sorts first.
 */
export function originalDirection(rec: Float64Array, o: number): 0 | 1 {
  const m = rec[o + META]!;
  if (!(m & SEEN1)) return 0;
  if (!(m & SEEN0)) return 1;
  const s0 = (m & SYN0) !== 0, s1 = (m & SYN1) !== 0;
  if (s0 !== s1) return s0 ? 0 : 1;
  return rec[o + T1]! < rec[o + T0]! ? 1 : 0;
}

export class FlowSink {
  private readonly o: SinkOptions;
  private readonly s: FlowSummary;
  private readonly src: SourceTable;
  private readonly band: { c: number; sels: Selector[] }[] = [];
  private readonly bandBatch: TupleBatch;
  /** Bucket of each queued flow under each seed: [seed * BAND_ROW + slot], and a view per seed for its selector. */
  private readonly bandOut: Int32Array;
  private readonly bandOuts: Int32Array[];
  /** bandFlush's list of the queued flows a node loads (slots of the band batch). */
  private readonly bandLive: Int32Array;
  private readonly bandPk = new Float64Array(BAND_CHUNK);
  private readonly bandBy = new Float64Array(BAND_CHUNK);
  /** Per queued flow: +1, or -1 when taking a flow out. */
  private readonly bandW = new Float64Array(BAND_CHUNK);
  private readonly bandConn = new Float64Array(BAND_CHUNK);
  private readonly bandReply = new Uint8Array(BAND_CHUNK);
  /** Per queued flow and configuration: the flow's bucket under that configuration as measured. */
  private readonly bandBk: Int32Array;
  private bandN = 0;
  private readonly sk = new Uint32Array(SRC_KW);
  private readonly sources: boolean;

  constructor(o: SinkOptions) {
    this.o = o;
    this.s = emptySummary(o);
    this.sources = o.sources ?? true;
    this.src = new SourceTable(1 << 12, o.spill ?? null);
    const seeds = bandSeeds();
    o.selectors.forEach((spec, c) => {
      if (this.s.configs[c]!.band) this.band.push({ c, sels: seeds.map((seed) => buildSelector(reseed(spec, seed)!)) });
    });
    this.bandBatch = createBatch(BAND_CHUNK);
    this.bandOut = new Int32Array(BAND_SEEDS * BAND_ROW);
    this.bandOuts = Array.from({ length: BAND_SEEDS }, (_, t) => this.bandOut.subarray(t * BAND_ROW, t * BAND_ROW + BAND_CHUNK));
    this.bandLive = new Int32Array(BAND_CHUNK);
    this.bandBk = new Int32Array(BAND_CHUNK * o.selectors.length);
  }

  /**
   * Folds ended entries into the counters; with sign -1, takes them out again
   * (merge.ts, when two halves counted apart turn out to be one connection).
   */
  consume(r: FlowRecords, sign: 1 | -1 = 1): void {
    for (let n = 0; n < r.count; n++) this.consumeEntry(r, n, sign);
  }

  /**
   * Entry n of `r`. A function of its own rather than the body of consume's
   * loop: V8 compiles a long-running loop while it runs and drops that code
   * when a branch first taken later needs it; with the body inline, each time
   * was a compile of consume with everything it calls inlined (three on the
   * 1M capture), now it is one of this body.
   */
  private consumeEntry(r: FlowRecords, n: number, sign: number): void {
    const S = this.s, C = r.c, C4 = 4 * C, kw = r.kw, v6 = kw === 10, aw = v6 ? 4 : 1;
    const { keys, rec, bk } = r;
    const mixed = this.o.mixed, dirDep = this.o.dirDep;
    const q = n * REC, ko = n * kw;
    const orig = originalDirection(rec, q);
    const meta = rec[q + META]!;
    S.connections += sign;
    const start = firstTs(rec, q);
    if (start < S.firstTs) S.firstTs = start;
    if (rec[q + LAST]! > S.lastTs) S.lastTs = rec[q + LAST]!;
    for (let d = 0; d < 2; d++) {
      if (!(meta & (d === 0 ? SEEN0 : SEEN1))) continue;
      const reply = d !== orig;
      const pk = rec[q + (d === 0 ? PK0 : PK1)]!, by = rec[q + (d === 0 ? BY0 : BY1)]!;
      S.flows += sign;
      S.sumP += sign * pk; S.sumP2 += sign * pk * pk; S.sumB += sign * by; S.sumB2 += sign * by * by;
      const bo = n * C4 + d * 2 + (reply ? 1 : 0);
      // Source address of this direction: endpoint A for direction 0, B for 1.
      const sa = ko + 1 + (d === 0 ? 0 : aw);
      const sk = this.sk;
      sk[2] = v6 ? 6 : 4;
      for (let w = 0; w < 4; w++) sk[3 + w] = w < aw ? keys[sa + w]! : 0;
      for (let c = 0; c < C; c++) {
        const b = bk[bo + c * 4]!;
        if (b < 0) continue;
        const cf = S.configs[c]!;
        cf.flows[b] = cf.flows[b]! + sign;
        if (!reply) cf.connections[b] = cf.connections[b]! + sign;
        if (dirDep[c]) {
          cf.packets[b] = cf.packets[b]! + sign * pk;
          cf.frames[b] = cf.frames[b]! + sign * rec[q + FR0 + d]!;
          cf.bytes[b] = cf.bytes[b]! + sign * by;
        }
        if (this.sources) { sk[0] = c; sk[1] = b; this.src.add(sk, 0, sign * pk, sign * by); }
      }
      const x = bk[bo]!;
      for (let j = 1; j < C; j++) {
        const y = bk[bo + j * 4]!;
        if (x < 0 || y < 0) continue;
        const m = S.migrations[j - 1]!, cell = x * this.o.buckets[j]! + y;
        m.flows[cell] = m.flows[cell]! + sign;
        if (!reply) m.connections[cell] = m.connections[cell]! + sign;
        m.packets[cell] = m.packets[cell]! + sign * pk;
        m.bytes[cell] = m.bytes[cell]! + sign * by;
      }
      if (mixed && S.mixed) {
        // Node k accepts the flow when the selector it runs puts it in bucket k-1.
        let acc = 0;
        for (let k = 0; k < mixed.length; k++) if (bk[bo + mixed[k]! * 4] === k) acc++;
        if (acc === 0) S.mixed.none += sign;
        else if (acc > 1) S.mixed.several += sign;
      }
      if (this.band.length) this.bandAdd(keys, ko, kw, d, sign, pk, by, reply, bk, bo);
    }
  }

  /** Queues one direction flow for the band: its tuple as that direction's packets carried it. */
  private bandAdd(keys: Uint32Array, ko: number, kw: number, d: number, sign: number, pk: number, by: number, reply: boolean, bk: Int32Array, bo: number): void {
    const i = this.bandN++, b = this.bandBatch, C = this.o.selectors.length;
    for (let c = 0; c < C; c++) this.bandBk[i * C + c] = bk[bo + c * 4]!;
    const k0 = keys[ko]!, proto = k0 & 0xff, ports = keys[ko + kw - 1]!;
    const pA = ports >>> 16, pB = ports & 0xffff;
    if (kw === 10) {
      const A = keys.subarray(ko + 1, ko + 5), B = keys.subarray(ko + 5, ko + 9);
      if (d === 0) writeTupleV6(b, i, proto, A, pA, B, pB); else writeTupleV6(b, i, proto, B, pB, A, pA);
    } else if (d === 0) writeTupleV4(b, i, proto, keys[ko + 1]!, pA, keys[ko + 2]!, pB);
    else writeTupleV4(b, i, proto, keys[ko + 2]!, pB, keys[ko + 1]!, pA);
    this.bandPk[i] = sign * pk; this.bandBy[i] = sign * by; this.bandW[i] = sign; this.bandConn[i] = reply ? 0 : sign; this.bandReply[i] = reply ? 1 : 0;
    if (this.bandN === BAND_CHUNK) this.bandFlush();
  }

  private bandFlush(): void {
    const n = this.bandN;
    if (n === 0) return;
    this.bandBatch.count = n;
    for (let j = 0; j < this.band.length; j++) this.bandConfig(this.band[j]!.c, this.band[j]!.sels, n);
    this.bandN = 0;
  }

  /**
   * The queued flows' loads under configuration c's reseeded selectors.
   * (bandFlush, bandConfig and bandSums are three functions, not one, so that
   * V8 compiles each hot loop by itself: with the loops nested in one
   * function, each first run of an inner loop threw away the compiled code
   * of the whole, measured as four compiles of bandFlush on the 1M capture.)
   */
  private bandConfig(c: number, sels: Selector[], n: number): void {
    const b = this.bandBatch;
    // Selectors that follow the conntrack direction read the reply flag; the others must not see it.
    if (this.o.dirDep[c]) for (let i = 0; i < n; i++) b.flags[i] = this.bandReply[i] ? b.flags[i]! | F.REPLY : b.flags[i]! & ~F.REPLY;
    else for (let i = 0; i < n; i++) b.flags[i] = b.flags[i]! & ~F.REPLY;
    const C = this.o.selectors.length, bk = this.bandBk;
    // Only the flows the node loads count: the queued tuple is rebuilt from the key with whole
    // ports and no INVALID flag, so a flow with no node or an unknown one (ports cut by the
    // snaplen) would get a node here. Neither outcome depends on the seed, so the flows that
    // count are listed once for all 32 seeds (in queue order, so the sums are added in the same order).
    const live = this.bandLive;
    let m = 0;
    for (let i = 0; i < n; i++) if (bk[i * C + c]! >= 0) live[m++] = i;
    // Seed by seed over a block of queue slots, then flow by flow over the seeds: consecutive
    // additions go to different seeds' cells, so none waits for the one before (seed-major,
    // each flow's add to the node of the flow before it was one dependent chain). Each cell
    // still adds its flows in queue order. Blocks are whole multiples of 16 slots: the
    // WebAssembly selectors take 16 packets at a time and leave a range's odd tail to the
    // (much slower) TypeScript path; blocks cut at live flows sent a fifth of the selects there.
    let j0 = 0;
    for (let s0 = 0; s0 < n && j0 < m; s0 += BAND_BLOCK) {
      const s1 = Math.min(n, s0 + BAND_BLOCK);
      let j1 = j0;
      while (j1 < m && live[j1]! < s1) j1++;
      if (j1 === j0) continue;
      for (let t = 0; t < sels.length; t++) sels[t]!.select(b, this.bandOuts[t]!, s0, s1);
      this.bandSums(this.s.configs[c]!.band!, this.o.buckets[c]!, sels.length, j0, j1);
      j0 = j1;
    }
  }

  /** Adds queued flows live[j0 .. j1) to `band` (N nodes, T seeds) at the nodes bandOut holds for them. */
  private bandSums(band: Float64Array, N: number, T: number, j0: number, j1: number): void {
    const live = this.bandLive, outs = this.bandOut;
    const pk = this.bandPk, by = this.bandBy, w = this.bandW, conn = this.bandConn;
    for (let j = j0; j < j1; j++) {
      const i = live[j]!, p = pk[i]!, y = by[i]!, f = w[i]!, k = conn[i]!;
      for (let t = 0; t < T; t++) {
        const x = outs[t * BAND_ROW + i]!;
        if (x < 0) continue;
        const base = t * 4 * N + x;
        band[base] = band[base]! + p;
        band[base + N] = band[base + N]! + y;
        band[base + 2 * N] = band[base + 2 * N]! + f;
        band[base + 3 * N] = band[base + 3 * N]! + k;
      }
    }
  }

  /** The counters so far (flushes pending work); plain data, for posting to the main thread. */
  summary(): FlowSummary {
    this.bandFlush();
    this.s.sources = this.src.columns();
    return this.s;
  }
}


/**
 * Adds summary `b` into `a` (every field is a sum, a min or a max: order does
 * not matter), except the sources: source-merge.ts merges those (they may
 * live in spilled runs).
 */
export function addSummary(a: FlowSummary, b: FlowSummary): void {
  a.flows += b.flows; a.connections += b.connections;
  a.sumP += b.sumP; a.sumP2 += b.sumP2; a.sumB += b.sumB; a.sumB2 += b.sumB2;
  a.firstTs = Math.min(a.firstTs, b.firstTs);
  a.lastTs = Math.max(a.lastTs, b.lastTs);
  const add = (x: Float64Array, y: Float64Array): void => { for (let i = 0; i < x.length; i++) x[i] = x[i]! + y[i]!; };
  a.configs.forEach((c, i) => {
    const o = b.configs[i]!;
    add(c.flows, o.flows); add(c.connections, o.connections); add(c.packets, o.packets); add(c.frames, o.frames); add(c.bytes, o.bytes);
    if (c.band && o.band) add(c.band, o.band);
  });
  a.migrations.forEach((m, i) => {
    const o = b.migrations[i]!;
    add(m.flows, o.flows); add(m.connections, o.connections); add(m.packets, o.packets); add(m.bytes, o.bytes);
  });
  if (a.mixed && b.mixed) { a.mixed.none += b.mixed.none; a.mixed.several += b.mixed.several; }
}
