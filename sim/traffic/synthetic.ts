/**
 * Synthetic traffic, the one generator family behind `gen`, `simulate`'s
 * built-in scenarios, `failover`'s built-in flows (`steady`) and
 * `compare-schemes` (`mix`): seeded, deterministic, straight into TupleBatches
 * (no file needed).
 *
 * Flows are numbered 0, 1, 2, … and everything about flow f (client, ports,
 * size, timing, sequence numbers) comes from the PRNG seeded by (seed, f)
 * (sim/core/prng.ts), so a share produces its own flows (those whose
 * connection key it owns) without making the others' packets, and the shares
 * add up exactly to the whole scenario. Flows start in flow order; within a
 * share packets come out in time order (a binary heap of active flows, ties
 * by flow number); within a flow timestamps increase. Timestamps are whole
 * microseconds, so a pcap written by `gen` decodes back to the same batches.
 *
 * Hot path: one pass per packet over typed arrays (slots per active flow, the
 * heap's keys beside its slots), 32-bit integer PRNG steps, no per-packet or
 * per-flow objects.
 */
import { createBatch, DEFAULT_BATCH_CAPACITY, F, L4, FAMILY_IPV4, type TupleBatch } from './batch.ts';
import { newStats, accountBatch, accountSums, type IngestStats, type PacketInput } from './input.ts';
import { checksumOf } from './checksum.ts';
import { UsageError } from '../core/errors.ts';
import { mulberryValue, MULBERRY_INCREMENT, seedMix, UNIT } from '../core/prng.ts';
import { openWasmGenerator, type WasmGenerator } from './synthetic-wasm.ts';

export const CLUSTER_IP = 0xc000020a; // 192.0.2.10

/** Capture time of scenario time 0 for the capture-like scenarios (a 2023 date, so pcaps look ordinary). */
export const SYNTHETIC_EPOCH = 1700000000;

export const SCENARIOS: Record<string, { description: string }> = {
  default: { description: 'realistic mix: TCP connections (handshake, data both ways, FIN) of heavy-tailed size, DNS-like UDP, QUIC-like UDP streams, pings; clients from CIDR pools and heavy hitters' },
  uniform: { description: 'uniformly random IPv4 clients and source ports, short TCP connections to :80' },
  cidr: { description: 'clients drawn from a few CIDR pools (10/8, 172.16/12, 192.168/16, 100.64/10, 198.18/15), short TCP connections' },
  zipf: { description: 'Zipf-skewed heavy hitters: 50,000 clients, the top few send most flows' },
  nat: { description: 'four NAT gateways (203.0.113.1-4), many source ports each' },
  portscan: { description: 'one scanner (198.51.100.7) sending a SYN to every port of the cluster IP' },
  synflood: { description: 'SYN flood to :80 from random spoofed sources, one packet per flow' },
  steady: { description: 'failover\'s flows: --flows connections (TCP and UDP, client to cluster) over --duration seconds at a steady rate, some already open at time 0; timestamps from 0' },
  mix: { description: 'compare-schemes\' mix: --flows flows to three VIPs (198.51.100.1-3), 80 % TCP, 17 % UDP, 2 % ICMP, 1 % ESP, Pareto sizes' },
};

/** What a synthetic input is asked for. Which fields a scenario reads is in SCENARIOS' descriptions; others are refused. */
export interface SyntheticOptions {
  seed?: number;
  /** Stop after this many packets (default 100,000 for the capture-like scenarios, no limit for `steady` and `mix`). */
  packets?: number;
  /** Only the flows whose connection key falls in share `index` of `count`. */
  share?: { index: number; count: number };
  /** `steady`, `mix`: number of flows (default 2000 for steady, 10,000 for mix). */
  flows?: number;
  /** `steady`: seconds of traffic (default 60). */
  duration_s?: number;
  /** `steady`: share of TCP flows, the rest UDP (default 0.8). */
  tcp_share?: number;
  /** `steady`: distinct clients (default flows / 2, at least 1). */
  clients?: number;
  /** `steady`: the cluster IP the flows go to (default 192.0.2.10). */
  server?: number;
}

const SC_DEFAULT = 0, SC_UNIFORM = 1, SC_CIDR = 2, SC_ZIPF = 3, SC_NAT = 4, SC_PORTSCAN = 5, SC_SYNFLOOD = 6, SC_STEADY = 7, SC_MIX = 8;
const SCENARIO_CODE: Record<string, number> = { default: SC_DEFAULT, uniform: SC_UNIFORM, cidr: SC_CIDR, zipf: SC_ZIPF, nat: SC_NAT, portscan: SC_PORTSCAN, synflood: SC_SYNFLOOD, steady: SC_STEADY, mix: SC_MIX };

/** Flow kinds: the first five are the capture-like scenarios' (both directions), ONEWAY is client-to-server only (steady, mix). */
const K_TCP = 0, K_DNS = 1, K_UDPSTREAM = 2, K_PING = 3, K_SYN = 4, K_ONEWAY = 5;

const POOLS_BASE = [0x0a000000, 0xac100000, 0xc0a80000, 0x64400000, 0xc6120000];
const POOLS_MASK = [0x00ffffff, 0x000fffff, 0x0000ffff, 0x003fffff, 0x0001ffff];
const NAT = [0xcb007101, 0xcb007102, 0xcb007103, 0xcb007104];
const ZIPF_N = 50000;
const MIX_BLOCKS = [0x0a000000, 0xc0a80000, 0x64400000, 0x2d000000, 0x59000000, 0xb9000000];
const MIX_VIPS = [0xc6336401, 0xc6336402, 0xc6336403];
/**
 * Buckets of the timing wheel (64 µs each: 2.1 s ahead). A flow's next packet
 * is never further ahead of the current bucket than its longest gap plus one
 * bucket (a ping's reply, 1 s; steady's packets, 0.95 s at most), and a wheel
 * that is empty starts again at the next flow's time.
 */
const WHEEL = 1 << 15;
const WHEEL_MASK = WHEEL - 1;

/** `steady`: flows start up to this long before time 0 (about a long flow's life), so the load is steady from 0 on. */
const STEADY_WARMUP_US = 20_000_000;

let zipfCdf: Float64Array | null = null;
/** The Zipf(1.1) CDF over 50,000 ranks, built once per thread. */
function zipfTable(): Float64Array {
  if (!zipfCdf) {
    const cdf = new Float64Array(ZIPF_N);
    let sum = 0;
    for (let k = 0; k < ZIPF_N; k++) { sum += 1 / Math.pow(k + 1, 1.1); cdf[k] = sum; }
    for (let k = 0; k < ZIPF_N; k++) cdf[k] = cdf[k]! / sum;
    zipfCdf = cdf;
  }
  return zipfCdf;
}

/** Pareto-ish flow size: many small flows, a few large ones. */
function heavySize(u: number, min: number, max: number): number {
  const x = min / Math.pow(1 - u * 0.999999, 1 / 1.2);
  return Math.min(max, Math.max(min, Math.floor(x)));
}

/** UDP checksum of a header with zero payload (the payload `gen` writes is zeros). */
export function udpChecksum(saddr: number, daddr: number, sport: number, dport: number, len: number): number {
  const s = (saddr >>> 16) + (saddr & 0xffff) + (daddr >>> 16) + (daddr & 0xffff) + 17 + len + sport + dport + len;
  const c = checksumOf(s);
  return c === 0 ? 0xffff : c;
}

/** One share of one scenario as a PacketInput. */
class SyntheticInput implements PacketInput {
  readonly stats: IngestStats = newStats();
  private readonly sc: number;
  private readonly seed: number;
  private readonly total: number;
  private readonly maxFlows: number;
  private readonly index: number;
  private readonly count: number;
  private readonly gapUs: number;
  private readonly epoch: number;
  private readonly server: number;
  // steady's parameters
  private readonly durUs: number;
  private readonly spanUs: number;
  private readonly tcpShare: number;
  private readonly clients: number;

  // flows not yet started: the next one of this share, with everything drawn for it
  private nextFlow = 0;
  private assigned = 0;
  private exhausted = false;
  private pF = -1;
  private pStart = 0;
  private pFirst = 0;
  private pK0 = 0;
  private pSize = 0;
  private pKind = 0;
  private pProto = 0;
  private pClient = 0;
  private pServer = 0;
  private pCport = 0;
  private pSport = 0;
  private pLen = 0;
  private pGap = 0;
  /** PRNG state after the flow's set-up draws (its packets' draws continue from here). */
  private pR = 0;

  // active flows, in slots
  private cap = 0;
  private fId = new Float64Array(0);
  private fNext = new Float64Array(0);
  private fIdx = new Int32Array(0);
  private fSize = new Int32Array(0);
  private fRng = new Int32Array(0);
  private fKind = new Uint8Array(0);
  private fProto = new Uint8Array(0);
  private fClient = new Uint32Array(0);
  private fServer = new Uint32Array(0);
  private fCport = new Uint16Array(0);
  private fSport = new Uint16Array(0);
  private fCseq = new Uint32Array(0);
  private fSseq = new Uint32Array(0);
  private fLen = new Uint16Array(0);
  private fGap = new Float64Array(0);
  private free = new Int32Array(0);
  private freeN = 0;
  // The active flows by next packet time (µs), ties by flow number, in two tiers: a binary
  // min-heap (key beside slot) holds every flow due before the end of the current 64 µs bucket;
  // the later ones wait in a timing wheel of WHEEL buckets (a list of slots each, and a bit per
  // bucket to find the next non-empty one), so a packet costs a heap of a few entries instead of
  // one of every active flow (hundreds to tens of thousands).
  private hKey = new Float64Array(0);
  private hSlot = new Int32Array(0);
  private heapN = 0;
  private readonly wHead = new Int32Array(WHEEL).fill(-1);
  private readonly wBits = new Int32Array(WHEEL >>> 5);
  private wLink = new Int32Array(0);
  private wN = 0;
  /** The current bucket: its number (time >> 6), its place in the wheel, and where it ends (µs). */
  private curIdx = -1;
  private curPos = 0;
  private curEnd = 0;

  constructor(name: string, o: SyntheticOptions) {
    const sc = SCENARIO_CODE[name];
    if (sc === undefined) throw new UsageError(`unknown scenario '${name}' (one of: ${Object.keys(SCENARIOS).join(', ')})`);
    this.sc = sc;
    const oneway = sc === SC_STEADY || sc === SC_MIX;
    const refuse = (key: keyof SyntheticOptions, who: string): void => {
      if (o[key] !== undefined) throw new UsageError(`${key}: scenario '${name}' has no ${key} (only ${who})`);
    };
    if (!oneway) refuse('flows', 'steady and mix');
    for (const k of ['duration_s', 'tcp_share', 'clients', 'server'] as const) if (sc !== SC_STEADY) refuse(k, 'steady');
    this.seed = (o.seed ?? 1) | 0;
    this.total = o.packets ?? (oneway ? Infinity : 100000);
    this.index = o.share?.index ?? 0;
    this.count = o.share?.count ?? 1;
    if (this.total !== Infinity && (!Number.isInteger(this.total) || this.total < 0)) throw new UsageError(`packets: '${o.packets}' is not a whole number`);
    if (!(this.count >= 1 && this.index >= 0 && this.index < this.count)) throw new UsageError(`share ${this.index} of ${this.count} does not exist`);
    this.maxFlows = oneway ? o.flows ?? (sc === SC_STEADY ? 2000 : 10000) : Infinity;
    if (this.maxFlows !== Infinity && (!Number.isInteger(this.maxFlows) || this.maxFlows < 0)) throw new UsageError(`flows: '${o.flows}' is not a whole number`);
    const dur = o.duration_s ?? 60;
    if (!(dur > 0 && dur < 1e9)) throw new UsageError(`duration_s: '${o.duration_s}' is not a positive number of seconds`);
    this.durUs = Math.floor(dur * 1e6);
    this.spanUs = this.durUs + STEADY_WARMUP_US;
    this.tcpShare = o.tcp_share ?? 0.8;
    if (!(this.tcpShare >= 0 && this.tcpShare <= 1)) throw new UsageError(`tcp_share: '${o.tcp_share}' is not in 0..1`);
    this.clients = sc === SC_STEADY ? Math.max(1, o.clients ?? Math.floor(this.maxFlows / 2)) : 1;
    if (!Number.isInteger(this.clients)) throw new UsageError(`clients: '${o.clients}' is not a whole number`);
    this.server = (o.server ?? CLUSTER_IP) >>> 0;
    this.gapUs = sc === SC_SYNFLOOD || sc === SC_PORTSCAN ? 10 : sc === SC_DEFAULT ? 400 : 100;
    this.epoch = sc === SC_STEADY ? 0 : SYNTHETIC_EPOCH;
    if (sc === SC_DEFAULT || sc === SC_ZIPF) zipfTable();
    // The WebAssembly generator (sim/traffic/wasm/assembly/gen.ts) when built. This class's loops
    // run instead for a steady client count whose addresses wrap past 2^32 differently in 32-bit
    // math (2^31 clients or more), and past 2^32 flows (the module numbers flows in 32 bits; a
    // classic scenario has at most one flow per packet).
    const wasmFits = this.clients < 2 ** 31 && Math.min(this.total, this.maxFlows) < 2 ** 32;
    this.wasm = !wasmFits ? null : openWasmGenerator({
      sc, seed: this.seed, total: this.total, maxFlows: this.maxFlows, index: this.index, count: this.count, gapUs: this.gapUs,
      epoch: this.epoch, server: this.server, durUs: this.durUs, spanUs: this.spanUs, tcpShare: this.tcpShare, clients: this.clients,
      oneSyn: sc === SC_SYNFLOOD || sc === SC_PORTSCAN, zipf: sc === SC_DEFAULT || sc === SC_ZIPF ? zipfCdf : null,
    });
    if (this.wasm) return;
    this.grow(1024);
    this.queueNextFlow();
  }

  /** The WebAssembly generator doing this input's work, or null (this class's loop does). */
  private readonly wasm: WasmGenerator | null;

  close(): void { /* nothing held */ }

  private grow(n: number): void {
    const old = this.cap;
    const cp = <T extends { set(a: ArrayLike<number>): void }>(ctor: new (n: number) => T, a: ArrayLike<number>): T => { const x = new ctor(n); x.set(a); return x; };
    this.fId = cp(Float64Array, this.fId); this.fNext = cp(Float64Array, this.fNext); this.fIdx = cp(Int32Array, this.fIdx);
    this.fSize = cp(Int32Array, this.fSize); this.fRng = cp(Int32Array, this.fRng); this.fKind = cp(Uint8Array, this.fKind);
    this.fProto = cp(Uint8Array, this.fProto); this.fClient = cp(Uint32Array, this.fClient); this.fServer = cp(Uint32Array, this.fServer);
    this.fCport = cp(Uint16Array, this.fCport); this.fSport = cp(Uint16Array, this.fSport); this.fCseq = cp(Uint32Array, this.fCseq);
    this.fSseq = cp(Uint32Array, this.fSseq); this.fLen = cp(Uint16Array, this.fLen); this.fGap = cp(Float64Array, this.fGap);
    this.hKey = cp(Float64Array, this.hKey); this.hSlot = cp(Int32Array, this.hSlot); this.wLink = cp(Int32Array, this.wLink);
    const free = new Int32Array(n);
    free.set(this.free.subarray(0, this.freeN));
    for (let s = n - 1; s >= old; s--) free[this.freeN++] = s;
    this.free = free;
    this.cap = n;
  }

  /**
   * Draws the next flow of this share into the p* fields (pF = -1 when there
   * is none). Every share walks every flow's size, so the packet limit cuts
   * the same flows in each; only this share's flows get started.
   */
  private queueNextFlow(): void {
    this.pF = -1;
    while (!this.exhausted) {
      if (this.assigned >= this.total || this.nextFlow >= this.maxFlows) { this.exhausted = true; return; }
      const f = this.nextFlow++;
      const size0 = this.sc === SC_STEADY || this.sc === SC_MIX ? this.drawOneway(f) : this.drawClassic(f);
      if (size0 === 0) continue; // a steady flow that ended before time 0
      const size = Math.min(size0, this.total - this.assigned);
      this.assigned += size;
      if (this.count > 1 && this.shareOfPending() !== this.index) continue;
      this.pF = f;
      this.pSize = size;
      return;
    }
  }

  /**
   * The capture-like scenarios' flow f: kind, size, start, endpoints (the
   * draws in this order are the scenario's definition; changing it changes
   * every built-in number). Returns the flow's size in packets.
   */
  private drawClassic(f: number): number {
    let r = seedMix(this.seed, f);
    r = (r + MULBERRY_INCREMENT) | 0; const u1 = mulberryValue(r) * UNIT;
    r = (r + MULBERRY_INCREMENT) | 0; const u2 = mulberryValue(r) * UNIT;
    let kind = K_TCP, size: number;
    switch (this.sc) {
      case SC_PORTSCAN: case SC_SYNFLOOD: kind = K_SYN; size = 1; break;
      case SC_DEFAULT:
        if (u1 < 0.72) { kind = K_TCP; size = heavySize(u2, 6, 20000); }
        else if (u1 < 0.88) { kind = K_DNS; size = 2; }
        else if (u1 < 0.95) { kind = K_UDPSTREAM; size = heavySize(u2, 4, 5000); }
        else { kind = K_PING; size = 2 * (1 + Math.floor(u2 * 5)); }
        break;
      default:
        size = heavySize(u2, 6, 400);
    }
    // start jitter
    r = (r + MULBERRY_INCREMENT) | 0;
    const start = f * this.gapUs + rem(mulberryValue(r), this.gapUs);
    this.pStart = start;
    this.pFirst = start;
    this.pK0 = 0;
    this.pKind = kind;
    this.pProto = kind === K_PING ? 1 : kind === K_DNS || kind === K_UDPSTREAM ? 17 : 6;
    this.pServer = CLUSTER_IP;
    // endpoints: client address, then the two ports
    r = (r + MULBERRY_INCREMENT) | 0; const a = mulberryValue(r);
    r = (r + MULBERRY_INCREMENT) | 0; const b = mulberryValue(r);
    switch (this.sc) {
      case SC_UNIFORM: case SC_SYNFLOOD: this.pClient = (((a % 223) + 1) << 24 | (b & 0xffffff)) >>> 0; break;
      case SC_NAT: this.pClient = NAT[a & 3]!; break;
      case SC_PORTSCAN: this.pClient = 0xc6336407; break;
      case SC_ZIPF: this.pClient = zipfClient(a); break;
      case SC_DEFAULT: this.pClient = (a & 7) < 3 ? zipfClient(a >>> 3) : poolClient(a >>> 3, b); break;
      default: this.pClient = poolClient(a, b);
    }
    r = (r + MULBERRY_INCREMENT) | 0;
    const c = mulberryValue(r);
    this.pCport = this.sc === SC_PORTSCAN ? 40000 + (f % 7) : 1024 + (c % 64512);
    this.pSport = this.sc === SC_PORTSCAN ? (f % 65535) + 1 : this.sc === SC_SYNFLOOD ? 80
      : kind === K_DNS ? 53 : kind === K_UDPSTREAM ? 443 : kind === K_PING ? f & 0xffff : (c >>> 16) & 1 ? 443 : 80;
    this.pR = r;
    return size;
  }

  /**
   * steady's and mix's flow f: one-way flows (client to server), each with
   * its protocol, a constant packet gap and (mix) a constant packet length.
   * Returns the number of its packets inside the scenario's time (0: none).
   */
  private drawOneway(f: number): number {
    let r = seedMix(this.seed, f);
    r = (r + MULBERRY_INCREMENT) | 0; const u1 = mulberryValue(r) * UNIT;
    r = (r + MULBERRY_INCREMENT) | 0; const u2 = mulberryValue(r) * UNIT;
    r = (r + MULBERRY_INCREMENT) | 0; const u3 = mulberryValue(r) * UNIT;
    r = (r + MULBERRY_INCREMENT) | 0; const u4 = mulberryValue(r) * UNIT;
    r = (r + MULBERRY_INCREMENT) | 0; const u5 = mulberryValue(r) * UNIT;
    r = (r + MULBERRY_INCREMENT) | 0; const u6 = mulberryValue(r) * UNIT;
    r = (r + MULBERRY_INCREMENT) | 0; const u7 = mulberryValue(r) * UNIT;
    this.pKind = K_ONEWAY;
    let size: number;
    if (this.sc === SC_STEADY) {
      // Clients spread over 10/8; starts spread evenly (one per span/flows, jittered) over
      // [-warm-up, duration): flows already running at 0 show up mid-stream, as in a capture.
      const c = Math.floor(u1 * this.clients);
      this.pClient = (0x0a000001 + c * 7 + (c >>> 8) * 3) >>> 0;
      const tcp = u2 < this.tcpShare;
      this.pProto = tcp ? 6 : 17;
      this.pCport = 1024 + Math.floor(u3 * 64000);
      this.pSport = tcp ? (u4 < 0.7 ? 443 : 80) : u4 < 0.5 ? 53 : 4500;
      this.pServer = this.server;
      const start = Math.floor(((f + u5) * this.spanUs) / this.maxFlows) - STEADY_WARMUP_US;
      const npk = 3 + Math.floor(u6 * u7 * 80);
      r = (r + MULBERRY_INCREMENT) | 0;
      const gap = Math.floor((0.05 + mulberryValue(r) * UNIT * 0.9) * 1e6);
      const k0 = start < 0 ? Math.ceil(-start / gap) : 0;
      const kEnd = Math.min(npk, Math.ceil((this.durUs - start) / gap));
      this.pStart = start;
      this.pK0 = k0;
      this.pFirst = start + k0 * gap;
      this.pGap = gap;
      this.pLen = 0;
      size = Math.max(0, kEnd - k0);
    } else {
      // mix: clients in six blocks (a /16 of the private ones, up to a /8 of the public), three VIPs
      const block = MIX_BLOCKS[Math.floor(u1 * 6)]!;
      const host = block >= 0x2d000000 && block < 0x60000000 ? Math.floor(u2 * 0x1000000) : Math.floor(u2 * 0x10000);
      this.pClient = (block + host) >>> 0;
      this.pServer = MIX_VIPS[Math.floor(u3 * 3)]!;
      r = (r + MULBERRY_INCREMENT) | 0; const u8 = mulberryValue(r) * UNIT;
      if (u4 < 0.8) {
        this.pProto = 6;
        this.pCport = 32768 + Math.floor(u5 * 28232);
        this.pSport = u6 < 0.6 ? 443 : u6 < 0.85 ? 80 : u6 < 0.95 ? 22 : 1024 + Math.floor(u7 * 64000);
      } else if (u4 < 0.97) {
        this.pProto = 17;
        this.pCport = 1024 + Math.floor(u5 * 64000);
        this.pSport = u6 < 0.6 ? 53 : u6 < 0.8 ? 443 : 123;
      } else if (u4 < 0.99) {
        this.pProto = 1;
        this.pCport = Math.floor(u5 * 65536); // echo id
        this.pSport = Math.floor(u6 * 100); // sequence (constant: one flow, one tuple)
      } else {
        this.pProto = 50;
        this.pCport = Math.floor(u5 * 65536); // SPI halves
        this.pSport = Math.floor(u6 * 65536);
      }
      // Pareto(alpha 1.2, min 1), capped at 5000: most flows are short, a few carry most packets.
      size = Math.min(5000, Math.floor(1 / Math.pow(1 - u7, 1 / 1.2)));
      r = (r + MULBERRY_INCREMENT) | 0; const u9 = mulberryValue(r) * UNIT;
      this.pLen = u8 < 0.4 ? 66 + Math.floor(u9 * 60) : 1514 - Math.floor(u9 * 200);
      r = (r + MULBERRY_INCREMENT) | 0;
      const v = mulberryValue(r);
      this.pStart = f * 10 + (v % 10);
      this.pFirst = this.pStart;
      this.pK0 = 0;
      this.pGap = 200 + ((v >>> 8) % 5000);
    }
    this.pR = r;
    return size;
  }

  /**
   * The share of the pending flow. Shares are dealt by connection key, not by
   * flow number: two flows that reuse a 5-tuple (a NAT gateway's port, a
   * client's) are one conntrack entry when close in time, so they must meet
   * in the same share's connection table. Everything a flow's packets put in
   * that key is here: protocol, client, client port and server port (ICMP:
   * the echo id, which sits in the server-port slot), and for the one-way
   * scenarios the server, since mix has three.
   */
  private shareOfPending(): number {
    if (this.pKind === K_ONEWAY) {
      let h = seedMix(this.pProto, this.pClient);
      h = seedMix(h, this.pCport);
      h = seedMix(h, this.pSport);
      h = seedMix(h, this.pServer);
      return rem(h >>> 0, this.count);
    }
    const icmp = this.pKind === K_PING;
    let h = seedMix(icmp ? 1 : 6, this.pClient);
    h = seedMix(h, icmp ? 0 : this.pCport);
    h = seedMix(h, this.pSport);
    return rem(h >>> 0, this.count);
  }

  /** Moves the pending flow into a slot (not yet into the heap: fill decides), draws the next one, returns the slot. */
  private startFlow(): number {
    if (this.freeN === 0) this.grow(this.cap * 2);
    const s = this.free[--this.freeN]!;
    let r = this.pR;
    this.fId[s] = this.pF;
    this.fNext[s] = this.pFirst;
    this.fIdx[s] = this.pK0;
    this.fSize[s] = this.pK0 + this.pSize;
    this.fKind[s] = this.pKind;
    this.fProto[s] = this.pProto;
    this.fClient[s] = this.pClient;
    this.fServer[s] = this.pServer;
    this.fCport[s] = this.pCport;
    this.fSport[s] = this.pSport;
    this.fLen[s] = this.pLen;
    this.fGap[s] = this.pGap;
    r = (r + MULBERRY_INCREMENT) | 0; this.fCseq[s] = mulberryValue(r);
    r = (r + MULBERRY_INCREMENT) | 0; this.fSseq[s] = mulberryValue(r);
    this.fRng[s] = r;
    this.queueNextFlow();
    return s;
  }

  private heapPush(s: number, key: number): void {
    const hk = this.hKey, hs = this.hSlot, id = this.fId[s]!;
    let i = this.heapN++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pk = hk[p]!;
      if (pk < key || (pk === key && this.fId[hs[p]!]! < id)) break;
      hk[i] = pk;
      hs[i] = hs[p]!;
      i = p;
    }
    hk[i] = key;
    hs[i] = s;
  }

  /** Moves the top (slot s, whose key became `key`) down to its place. */
  private heapSiftTop(s: number, key: number): void {
    const hk = this.hKey, hs = this.hSlot, fId = this.fId, n = this.heapN;
    const id = fId[s]!;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      let ck = hk[c]!;
      if (c + 1 < n) {
        const dk = hk[c + 1]!;
        if (dk < ck || (dk === ck && fId[hs[c + 1]!]! < fId[hs[c]!]!)) { c++; ck = dk; }
      }
      if (key < ck || (key === ck && id < fId[hs[c]!]!)) break;
      hk[i] = ck;
      hs[i] = hs[c]!;
      i = c;
    }
    hk[i] = key;
    hs[i] = s;
  }

  private heapPop(): void {
    const n = --this.heapN;
    if (n > 0) this.heapSiftTop(this.hSlot[n]!, this.hKey[n]!);
  }

  /** Queues slot s for time `key`: in the heap when due within the current bucket, else in the wheel. */
  private schedule(s: number, key: number): void {
    if (key < this.curEnd) { this.heapPush(s, key); return; }
    if (this.heapN === 0 && this.wN === 0) {
      // nothing queued: the wheel starts again at this time
      this.curIdx = Math.floor(key / 64);
      this.curEnd = (this.curIdx + 1) * 64;
      this.heapPush(s, key);
      return;
    }
    const d = Math.floor(key / 64) - this.curIdx;
    if (d >= WHEEL) throw new Error(`synthetic: a packet ${key - this.curEnd} µs ahead is past the timing wheel (a bug: no gap is that long)`);
    const pos = (this.curPos + d) & WHEEL_MASK;
    this.wLink[s] = this.wHead[pos]!;
    this.wHead[pos] = s;
    this.wBits[pos >>> 5] = this.wBits[pos >>> 5]! | (1 << (pos & 31));
    this.wN++;
  }

  /** With the heap empty: moves to the next non-empty bucket and its flows into the heap (false: nothing queued). */
  private advance(): boolean {
    if (this.wN === 0) return false;
    const bits = this.wBits;
    let p = (this.curPos + 1) & WHEEL_MASK, d = 1;
    for (;;) {
      const word = bits[p >>> 5]! >>> (p & 31);
      if (word !== 0) { d += 31 - Math.clz32(word & -word); break; }
      const step = 32 - (p & 31);
      d += step;
      p = (p + step) & WHEEL_MASK;
    }
    const pos = (this.curPos + d) & WHEEL_MASK;
    this.curIdx += d;
    this.curPos = pos;
    this.curEnd = (this.curIdx + 1) * 64;
    let s = this.wHead[pos]!;
    this.wHead[pos] = -1;
    this.wBits[pos >>> 5] = this.wBits[pos >>> 5]! & ~(1 << (pos & 31));
    const fNext = this.fNext;
    while (s >= 0) {
      const next = this.wLink[s]!;
      this.heapPush(s, fNext[s]!);
      this.wN--;
      s = next;
    }
    return true;
  }

  fill(b: TupleBatch): number {
    if (this.wasm) {
      const n = this.wasm.fill(b);
      wasmTotals[0] = this.wasm.bytes;
      accountSums(this.stats, b, 0, n, wasmTotals);
      return n;
    }
    if (this.sc === SC_SYNFLOOD || this.sc === SC_PORTSCAN) return this.fillSyns(b);
    let n = 0;
    const capacity = b.capacity;
    while (n < capacity) {
      const any = this.heapN > 0 || this.advance();
      if (this.pF >= 0 && (!any || this.pStart <= this.hKey[0]!)) {
        const first = this.pFirst;
        const s = this.startFlow();
        // When its first packet comes before every active flow's next one (active flows have
        // smaller numbers, so they win ties) and before the next pending flow's start, emit it now
        // and skip a push and a pop (a SYN flood's flows are one packet each).
        if ((any && first >= this.hKey[0]!) || (this.pF >= 0 && first > this.pStart)) { this.schedule(s, first); continue; }
        this.emit(s, b, n++);
        if (this.fIdx[s]! >= this.fSize[s]!) this.free[this.freeN++] = s;
        else this.schedule(s, this.fNext[s]!);
        continue;
      }
      if (!any) break;
      const s = this.hSlot[0]!;
      this.emit(s, b, n++);
      const key = this.fNext[s]!;
      if (this.fIdx[s]! >= this.fSize[s]!) { this.heapPop(); this.free[this.freeN++] = s; }
      else if (key < this.curEnd) this.heapSiftTop(s, key);
      else { this.heapPop(); this.schedule(s, key); }
    }
    b.count = n;
    accountBatch(this.stats, b, 0, n);
    return n;
  }

  /**
   * fill for the scenarios whose flows are one SYN each (synflood, portscan):
   * flow f starts in [f * gap, (f + 1) * gap), so each flow's packet comes
   * before the next flow's and no flow is ever queued. The general loop would
   * emit the same packets in the same order (the heap stays empty and every
   * flow takes its "emit now" branch); here a packet is written straight from
   * the pending flow, with no slot, heap or per-packet draws (a SYN's packet
   * uses none): synflood 6.9 -> 13.6 M packets/s (bundled, alternating runs, load ~13).
   * gen.ts's fillSyns is this loop in WebAssembly (synflood 9.5-10 -> 18-28 M/s, load ~7).
   */
  private fillSyns(b: TupleBatch): number {
    const capacity = b.capacity, epoch = this.epoch;
    const ts = b.ts, wirelen = b.wirelen, saddr = b.saddr, daddr = b.daddr, family = b.family;
    const l4a = b.l4a, l4b = b.l4b, sport = b.sport, dport = b.dport, proto = b.proto, flags = b.flags, l4flags = b.l4flags;
    let n = 0;
    while (n < capacity && this.pF >= 0) {
      const us = this.pStart, cport = this.pCport, sp = this.pSport;
      // whole microseconds to seconds as emit does
      const sec = Math.floor(us / 1e6);
      ts[n] = sec + epoch + (us - sec * 1e6) * 1e-6;
      wirelen[n] = 54;
      saddr[n] = this.pClient;
      daddr[n] = CLUSTER_IP;
      if (family[n] !== FAMILY_IPV4) clearIpv6(b, n);
      l4a[n] = ((cport << 16) | sp) >>> 0;
      l4b[n] = 0;
      sport[n] = cport;
      dport[n] = sp;
      proto[n] = 6;
      flags[n] = F.SYN | F.PORTS;
      l4flags[n] = L4.HAS4 | L4.HAS8;
      n++;
      this.queueNextFlow();
    }
    b.count = n;
    accountBatch(this.stats, b, 0, n);
    return n;
  }

  /** Writes packet fIdx[s] of flow s into slot i and advances the flow. */
  private emit(s: number, b: TupleBatch, i: number): void {
    const k = this.fIdx[s]!, size = this.fSize[s]!, kind = this.fKind[s]!;
    let r = this.fRng[s]!;
    r = (r + MULBERRY_INCREMENT) | 0; const u = mulberryValue(r) * UNIT;
    r = (r + MULBERRY_INCREMENT) | 0; const u2 = mulberryValue(r) * UNIT;
    const us = this.fNext[s]!;
    let up = true, proto = 6, flags = 0, len = 54, l4a = 0, l4b = 0, sport = 0, dport = 0;
    const client = this.fClient[s]!, cport = this.fCport[s]!, sp = this.fSport[s]!;
    let server = CLUSTER_IP;
    let gap = 0;
    switch (kind) {
      case K_SYN:
        flags = F.SYN; len = 54; break;
      case K_TCP: {
        // handshake, data, teardown
        const teardown = size >= 6 ? size - 3 : 99;
        let payload = 0;
        if (k === 0) { flags = F.SYN; }
        else if (k === 1) { flags = F.SYN | F.ACK; up = false; }
        else if (k === 2) { flags = F.ACK; }
        if (k >= 3 && k < teardown) {
          flags = F.ACK;
          up = u < 0.35;
          payload = u2 < 0.45 ? 1460 : u2 < 0.75 ? Math.floor(u2 * 200) : Math.floor(200 + u2 * 1260);
          if (payload === 0) payload = 1;
        } else if (k >= 3) {
          const t = size >= 6 ? k - teardown : k - 3;
          flags = t === 2 ? F.ACK : F.FIN | F.ACK;
          up = t !== 1;
        }
        len = 54 + payload;
        const seqc = this.fCseq[s]!, seqs = this.fSseq[s]!;
        l4b = up ? seqc : seqs;
        const adv = payload + ((flags & (F.SYN | F.FIN)) ? 1 : 0);
        if (up) this.fCseq[s] = (seqc + adv) >>> 0; else this.fSseq[s] = (seqs + adv) >>> 0;
        gap = k < 3 ? 200 + u * 30000 : 50 + u2 * 20000;
        break;
      }
      case K_DNS:
        proto = 17; up = k === 0; len = up ? 42 + 30 + Math.floor(u * 40) : 42 + 60 + Math.floor(u * 400); gap = 500 + u * 40000; break;
      case K_UDPSTREAM:
        proto = 17; up = k === 0 || u < 0.2; len = up ? 42 + 40 + Math.floor(u2 * 100) : 42 + 1200 + Math.floor(u2 * 150); gap = 100 + u * 5000; break;
      case K_PING:
        proto = 1; up = (k & 1) === 0; len = 98; gap = up ? 300 + u * 20000 : 1000000; break;
      case K_ONEWAY: {
        // Client to server only; TCP opens with a SYN (unless it was open before the capture began)
        // and closes with FIN|ACK on its last packet.
        proto = this.fProto[s]!;
        server = this.fServer[s]!;
        const fixed = this.fLen[s]!;
        if (proto === 6) flags = k === 0 ? F.SYN : k === size - 1 ? F.FIN | F.ACK : F.ACK;
        len = fixed !== 0 ? fixed : proto === 6 && k === 0 ? 60 : 60 + Math.floor(u * 1400);
        gap = this.fGap[s]!;
        break;
      }
    }
    const saddr = up ? client : server, daddr = up ? server : client;
    if (proto === 1) {
      if (kind === K_ONEWAY) {
        // mix's pings: echo requests with a constant id and sequence (one flow, one tuple)
        sport = cport; dport = sp;
        l4a = ((8 << 24) | checksumOf((8 << 8) + cport + sp)) >>> 0;
        l4b = ((cport << 16) | sp) >>> 0;
      } else {
        const type = up ? 8 : 0, id = sp, seq = k >> 1;
        l4a = ((type << 24) | checksumOf((type << 8) + id + seq)) >>> 0;
        l4b = ((id << 16) | seq) >>> 0;
        sport = id; dport = seq;
      }
    } else if (proto === 50) {
      // ESP: the SPI, then sequence number 1 (tuple.ts writes the same)
      sport = cport; dport = sp;
      l4a = ((cport << 16) | sp) >>> 0;
      l4b = 1;
    } else {
      sport = up ? cport : sp; dport = up ? sp : cport;
      l4a = ((sport << 16) | dport) >>> 0;
      if (proto === 17) { const ul = len - 34; l4b = ((ul << 16) | udpChecksum(saddr, daddr, sport, dport, ul)) >>> 0; }
      flags |= F.PORTS;
    }
    // Whole microseconds to seconds: the integer part and the remainder separately, so a pcap's
    // (seconds, microseconds) record reads back to the same double. us is a whole number >= 0,
    // so us - sec * 1e6 is exact (and cheaper than a floating-point %).
    const sec = Math.floor(us / 1e6);
    b.ts[i] = sec + this.epoch + (us - sec * 1e6) * 1e-6;
    b.wirelen[i] = len;
    b.saddr[i] = saddr;
    b.daddr[i] = daddr;
    if (b.family[i] !== FAMILY_IPV4) clearIpv6(b, i);
    b.l4a[i] = l4a;
    b.l4b[i] = l4b;
    b.sport[i] = sport;
    b.dport[i] = dport;
    b.proto[i] = proto;
    b.flags[i] = flags;
    b.l4flags[i] = L4.HAS4 | L4.HAS8;
    this.fRng[s] = r;
    this.fIdx[s] = k + 1;
    this.fNext[s] = us + Math.max(1, Math.floor(gap));
  }
}

/** accountSums' totals for a WebAssembly fill: wire bytes; no synthetic packet is truncated or a fragment. */
const wasmTotals = new Float64Array(3);

/** Makes slot i an IPv4 slot. The batch contract: IPv4 slots have zero IPv6 lanes (batch.ts); a slot that already holds IPv4 has them. */
function clearIpv6(b: TupleBatch, i: number): void {
  const j = i << 2;
  b.saddr6[j] = b.saddr6[j + 1] = b.saddr6[j + 2] = b.saddr6[j + 3] = 0;
  b.daddr6[j] = b.daddr6[j + 1] = b.daddr6[j + 2] = b.daddr6[j + 3] = 0;
  b.family[i] = FAMILY_IPV4;
}

/**
 * v % n for a 32-bit unsigned v and a whole n >= 1 kept in a field: the same
 * value as `%`, but V8 computes `%` of two numbers it cannot prove 32-bit
 * integers as a float remainder, a library call (13 % of synflood's time,
 * --cpu-prof). The floor of the float quotient is exact: for v < 2^32 its
 * rounding error is below 2^-21 / n, while v / n, when not whole, is at least
 * 1 / n from the next whole number.
 */
function rem(v: number, n: number): number {
  return v - Math.floor(v / n) * n;
}

function poolClient(a: number, b: number): number {
  const p = a % 5;
  return (POOLS_BASE[p]! | (b & POOLS_MASK[p]!)) >>> 0;
}

/** A Zipf rank from a 32-bit draw, spread over 100.64.0.0/10 with a fixed scramble so heavy hitters are not neighbours. */
function zipfClient(a: number): number {
  const cdf = zipfCdf!;
  const u = a * UNIT;
  let lo = 0, hi = ZIPF_N - 1;
  while (lo < hi) { const m = (lo + hi) >> 1; if (cdf[m]! < u) lo = m + 1; else hi = m; }
  return (0x64400000 | (Math.imul(lo + 1, 0x9e3779b1) >>> 10)) >>> 0;
}

/** A synthetic scenario as a PacketInput; `share` picks the flows whose connection key hashes to `index` of `count`. */
export function openSynthetic(name: string, opts: SyntheticOptions = {}): PacketInput {
  return new SyntheticInput(name, opts);
}

/**
 * A scenario as fresh batches of `capacity` packets (each yielded batch is
 * new, so a caller may keep them): for consumers that take an iterable of
 * batches (compare-schemes, the hash bench).
 */
export function* syntheticBatches(name: string, opts: SyntheticOptions = {}, capacity = DEFAULT_BATCH_CAPACITY): Generator<TupleBatch> {
  const src = openSynthetic(name, opts);
  for (;;) {
    const b = createBatch(capacity);
    if (src.fill(b) === 0) return;
    yield b;
  }
}
