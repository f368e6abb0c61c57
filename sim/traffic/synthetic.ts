/**
 * Seeded synthetic traffic toward the cluster IP 192.0.2.10, straight into
 * TupleBatches (no file needed), deterministic for a seed.
 *
 * Flows are numbered 0, 1, 2, … and everything about flow f (client, ports,
 * size, timing, sequence numbers) comes from a PRNG seeded by (seed, f), so a
 * share can produce its flows (those whose connection key it owns) without the
 * others and the shares add up exactly to the whole scenario. Within a share, packets
 * come out in time order (a heap of active flows); within a flow, timestamps
 * increase. Timestamps are whole microseconds, so a pcap written by `gen`
 * decodes back to the same batches.
 */
import { F, L4, FAMILY_IPV4, type TupleBatch } from './batch.ts';
import { newStats, accountBatch, type IngestStats, type PacketInput } from './input.ts';
import { UsageError } from '../core/errors.ts';

export const CLUSTER_IP = 0xc000020a; // 192.0.2.10

export const SCENARIOS: Record<string, { description: string }> = {
  default: { description: 'realistic mix: TCP connections (handshake, data both ways, FIN) of heavy-tailed size, DNS-like UDP, QUIC-like UDP streams, pings; clients from CIDR pools and heavy hitters' },
  uniform: { description: 'uniformly random IPv4 clients and source ports, short TCP connections to :80' },
  cidr: { description: 'clients drawn from a few CIDR pools (10/8, 172.16/12, 192.168/16, 100.64/10, 198.18/15), short TCP connections' },
  zipf: { description: 'Zipf-skewed heavy hitters: 50,000 clients, the top few send most flows' },
  nat: { description: 'four NAT gateways (203.0.113.1-4), many source ports each' },
  portscan: { description: 'one scanner (198.51.100.7) sending a SYN to every port of the cluster IP' },
  synflood: { description: 'SYN flood to :80 from random spoofed sources, one packet per flow' },
};

/** One PRNG step (mulberry32): state in, state out; the value is `rv`. */
let rv = 0;
function step(s: number): number {
  s = (s + 0x6d2b79f5) | 0;
  let t = Math.imul(s ^ (s >>> 15), 1 | s);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  rv = (t ^ (t >>> 14)) >>> 0;
  return s;
}
function mix(a: number, b: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ b;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) | 0;
}

const K_TCP = 0, K_DNS = 1, K_UDPSTREAM = 2, K_PING = 3, K_SYN = 4;

const POOLS: [number, number][] = [[0x0a000000, 8], [0xac100000, 12], [0xc0a80000, 16], [0x64400000, 10], [0xc6120000, 15]];
const NAT = [0xcb007101, 0xcb007102, 0xcb007103, 0xcb007104];
const ZIPF_N = 50000;

/** Pareto-ish flow size: many small flows, a few large ones. */
function heavySize(u: number, min: number, max: number): number {
  const x = min / Math.pow(1 - u * 0.999999, 1 / 1.2);
  return Math.min(max, Math.max(min, Math.floor(x)));
}

function csum16(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** UDP checksum of a header with zero payload (the payload `gen` writes is zeros). */
export function udpChecksum(saddr: number, daddr: number, sport: number, dport: number, len: number): number {
  const s = (saddr >>> 16) + (saddr & 0xffff) + (daddr >>> 16) + (daddr & 0xffff) + 17 + len + sport + dport + len;
  const c = csum16(s);
  return c === 0 ? 0xffff : c;
}

class SyntheticInput implements PacketInput {
  readonly stats: IngestStats = newStats();
  private readonly scenario: string;
  private readonly seed: number;
  private readonly total: number;
  private readonly index: number;
  private readonly count: number;
  private readonly gapUs: number;
  private zipfCdf: Float64Array | null = null;
  // flows not yet started
  private nextFlow = 0;
  private assigned = 0;
  private exhausted = false;
  private pendingStart = -1;
  private pendingF = -1;
  private pendingSize = 0;
  // active flows, in slots; heap of slots by next packet time
  private cap = 0;
  private fId = new Float64Array(0);
  private fNext = new Float64Array(0);
  private fIdx = new Int32Array(0);
  private fSize = new Int32Array(0);
  private fRng = new Int32Array(0);
  private fKind = new Uint8Array(0);
  private fClient = new Uint32Array(0);
  private fCport = new Uint16Array(0);
  private fSport = new Uint16Array(0);
  private fCseq = new Uint32Array(0);
  private fSseq = new Uint32Array(0);
  private heap = new Int32Array(0);
  private heapN = 0;
  private free: number[] = [];

  constructor(name: string, opts: { seed?: number; packets?: number; share?: { index: number; count: number } }) {
    if (!SCENARIOS[name]) throw new UsageError(`unknown scenario '${name}' (one of: ${Object.keys(SCENARIOS).join(', ')})`);
    this.scenario = name;
    this.seed = (opts.seed ?? 1) | 0;
    this.total = opts.packets ?? 100000;
    this.index = opts.share?.index ?? 0;
    this.count = opts.share?.count ?? 1;
    if (!Number.isInteger(this.total) || this.total < 0) throw new UsageError(`packets: '${opts.packets}' is not a whole number`);
    if (!(this.count >= 1 && this.index >= 0 && this.index < this.count)) throw new UsageError(`share ${this.index} of ${this.count} does not exist`);
    this.gapUs = name === 'synflood' || name === 'portscan' ? 10 : name === 'default' ? 400 : 100;
    this.grow(1024);
    this.queueNextFlow();
  }

  close(): void { /* nothing held */ }

  private grow(n: number): void {
    const old = this.cap;
    const cp = <T extends { set(a: ArrayLike<number>): void }>(ctor: new (n: number) => T, a: ArrayLike<number>): T => { const x = new ctor(n); x.set(a); return x; };
    this.fId = cp(Float64Array, this.fId); this.fNext = cp(Float64Array, this.fNext); this.fIdx = cp(Int32Array, this.fIdx);
    this.fSize = cp(Int32Array, this.fSize); this.fRng = cp(Int32Array, this.fRng); this.fKind = cp(Uint8Array, this.fKind);
    this.fClient = cp(Uint32Array, this.fClient); this.fCport = cp(Uint16Array, this.fCport); this.fSport = cp(Uint16Array, this.fSport);
    this.fCseq = cp(Uint32Array, this.fCseq); this.fSseq = cp(Uint32Array, this.fSseq); this.heap = cp(Int32Array, this.heap);
    for (let s = n - 1; s >= old; s--) this.free.push(s);
    this.cap = n;
  }

  /** Kind and size of flow f (pure function of seed and f). */
  private flowShape(f: number): { kind: number; size: number; r: number } {
    let r = mix(this.seed, f);
    r = step(r); const u1 = rv / 4294967296;
    r = step(r); const u2 = rv / 4294967296;
    let kind = K_TCP, size: number;
    switch (this.scenario) {
      case 'portscan': case 'synflood': kind = K_SYN; size = 1; break;
      case 'default':
        if (u1 < 0.72) { kind = K_TCP; size = heavySize(u2, 6, 20000); }
        else if (u1 < 0.88) { kind = K_DNS; size = 2; }
        else if (u1 < 0.95) { kind = K_UDPSTREAM; size = heavySize(u2, 4, 5000); }
        else { kind = K_PING; size = 2 * (1 + Math.floor(u2 * 5)); }
        break;
      default:
        size = heavySize(u2, 6, 400);
    }
    return { kind, size, r };
  }

  /** Finds the next flow of this share (all shares walk the same sizes so the totals agree). */
  private queueNextFlow(): void {
    this.pendingF = -1;
    while (!this.exhausted) {
      const f = this.nextFlow++;
      if (this.assigned >= this.total) { this.exhausted = true; return; }
      const sh = this.flowShape(f);
      const size = Math.min(sh.size, this.total - this.assigned);
      this.assigned += size;
      if (this.count > 1 && this.shareOf(f, sh) !== this.index) continue;
      let r = sh.r;
      r = step(r);
      this.pendingF = f;
      this.pendingSize = size;
      this.pendingStart = f * this.gapUs + (rv % this.gapUs);
      return;
    }
  }

  private startFlow(): void {
    const f = this.pendingF;
    const sh = this.flowShape(f);
    let r = step(sh.r); // same draw as queueNextFlow's jitter
    if (this.free.length === 0) this.grow(this.cap * 2);
    const s = this.free.pop()!;
    this.fId[s] = f;
    this.fNext[s] = this.pendingStart;
    this.fIdx[s] = 0;
    this.fSize[s] = this.pendingSize;
    this.fKind[s] = sh.kind;
    r = this.endpoints(f, sh.kind, r);
    this.fClient[s] = this.epClient;
    this.fCport[s] = this.epCport;
    this.fSport[s] = this.epSport;
    r = step(r); this.fCseq[s] = rv;
    r = step(r); this.fSseq[s] = rv;
    this.fRng[s] = r;
    this.heapPush(s);
    this.queueNextFlow();
  }

  private epClient = 0;
  private epCport = 0;
  private epSport = 0;

  /** Client address and the two ports of flow f (into ep*), from PRNG state r (after the start jitter); returns the state after. */
  private endpoints(f: number, kind: number, r: number): number {
    r = step(r); const a = rv;
    r = step(r); const b = rv;
    switch (this.scenario) {
      case 'uniform': case 'synflood': this.epClient = (((a % 223) + 1) << 24 | (b & 0xffffff)) >>> 0; break;
      case 'nat': this.epClient = NAT[a & 3]!; break;
      case 'portscan': this.epClient = 0xc6336407; break;
      case 'zipf': this.epClient = this.zipfClient(a, b); break;
      case 'default': this.epClient = (a & 7) < 3 ? this.zipfClient(a >>> 3, b) : this.poolClient(a >>> 3, b); break;
      default: this.epClient = this.poolClient(a, b);
    }
    r = step(r);
    this.epCport = this.scenario === 'portscan' ? 40000 + (f % 7) : 1024 + (rv % 64512);
    this.epSport = this.scenario === 'portscan' ? (f % 65535) + 1 : this.scenario === 'synflood' ? 80
      : kind === K_DNS ? 53 : kind === K_UDPSTREAM ? 443 : kind === K_PING ? f & 0xffff : (rv >>> 16) & 1 ? 443 : 80;
    return r;
  }

  /**
   * The share flow f belongs to. Shares are dealt by connection key, not by
   * flow number: two flows that reuse a 5-tuple (a NAT gateway's port, a
   * client's) are one conntrack entry when close in time, so they must meet
   * in the same share's connection table. Everything a flow's packets put in
   * that key is here: protocol, client, client port and server port (ICMP:
   * the echo id, which sits in the server-port slot).
   */
  private shareOf(f: number, sh: { kind: number; r: number }): number {
    this.endpoints(f, sh.kind, step(sh.r));
    const icmp = sh.kind === K_PING;
    let h = mix(icmp ? 1 : 6, this.epClient);
    h = mix(h, icmp ? 0 : this.epCport);
    h = mix(h, this.epSport);
    return (h >>> 0) % this.count;
  }

  private poolClient(a: number, b: number): number {
    const [base, len] = POOLS[a % POOLS.length]!;
    const host = len === 0 ? b : b & (2 ** (32 - len) - 1);
    return (base | host) >>> 0;
  }

  private zipfClient(a: number, b: number): number {
    if (!this.zipfCdf) {
      const cdf = new Float64Array(ZIPF_N);
      let sum = 0;
      for (let k = 0; k < ZIPF_N; k++) { sum += 1 / Math.pow(k + 1, 1.1); cdf[k] = sum; }
      for (let k = 0; k < ZIPF_N; k++) cdf[k] = cdf[k]! / sum;
      this.zipfCdf = cdf;
    }
    const u = a / 4294967296;
    let lo = 0, hi = ZIPF_N - 1;
    while (lo < hi) { const m = (lo + hi) >> 1; if (this.zipfCdf[m]! < u) lo = m + 1; else hi = m; }
    // Spread ranks over 100.64.0.0/10 with a fixed scramble so heavy hitters are not neighbours.
    void b;
    return (0x64400000 | (Math.imul(lo + 1, 0x9e3779b1) >>> 10)) >>> 0;
  }

  private less(x: number, y: number): boolean {
    const a = this.fNext[x]!, b = this.fNext[y]!;
    return a < b || (a === b && this.fId[x]! < this.fId[y]!);
  }
  private heapPush(s: number): void {
    let i = this.heapN++;
    const h = this.heap;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(s, h[p]!)) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = s;
  }
  private heapFix(): void {
    const h = this.heap, n = this.heapN, s = h[0]!;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && this.less(h[c + 1]!, h[c]!)) c++;
      if (!this.less(h[c]!, s)) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = s;
  }
  private heapPop(): void {
    const last = this.heap[--this.heapN]!;
    if (this.heapN > 0) { this.heap[0] = last; this.heapFix(); }
  }

  fill(b: TupleBatch): number {
    let n = 0;
    while (n < b.capacity) {
      const top = this.heapN > 0 ? this.heap[0]! : -1;
      if (this.pendingF >= 0 && (top < 0 || this.pendingStart <= this.fNext[top]!)) { this.startFlow(); continue; }
      if (top < 0) break;
      this.emit(top, b, n++);
      if (this.fIdx[top]! >= this.fSize[top]!) { this.heapPop(); this.free.push(top); }
      else this.heapFix();
    }
    b.count = n;
    accountBatch(this.stats, b, 0, n);
    return n;
  }

  /** Writes packet fIdx[s] of flow s into slot i and advances the flow. */
  private emit(s: number, b: TupleBatch, i: number): void {
    const k = this.fIdx[s]!, size = this.fSize[s]!, kind = this.fKind[s]!;
    let r = this.fRng[s]!;
    r = step(r); const u = rv / 4294967296;
    r = step(r); const u2 = rv / 4294967296;
    const us = this.fNext[s]!;
    let up = true, proto = 6, flags = 0, len = 54, l4a = 0, l4b = 0, sport = 0, dport = 0;
    const client = this.fClient[s]!, cport = this.fCport[s]!, sp = this.fSport[s]!;
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
    }
    const saddr = up ? client : CLUSTER_IP, daddr = up ? CLUSTER_IP : client;
    if (proto === 1) {
      const type = up ? 8 : 0, id = sp, seq = k >> 1;
      l4a = ((type << 24) | csum16((type << 8) + id + seq)) >>> 0;
      l4b = ((id << 16) | seq) >>> 0;
      sport = id; dport = seq;
    } else {
      sport = up ? cport : sp; dport = up ? sp : cport;
      l4a = ((sport << 16) | dport) >>> 0;
      if (proto === 17) { const ul = len - 34; l4b = ((ul << 16) | udpChecksum(saddr, daddr, sport, dport, ul)) >>> 0; }
      flags |= F.PORTS;
    }
    b.ts[i] = Math.floor(us / 1e6) + 1700000000 + (us % 1e6) * 1e-6;
    b.wirelen[i] = len;
    b.saddr[i] = saddr;
    b.daddr[i] = daddr;
    const j = i << 2;
    b.saddr6[j] = b.saddr6[j + 1] = b.saddr6[j + 2] = b.saddr6[j + 3] = 0;
    b.daddr6[j] = b.daddr6[j + 1] = b.daddr6[j + 2] = b.daddr6[j + 3] = 0;
    b.l4a[i] = l4a;
    b.l4b[i] = l4b;
    b.sport[i] = sport;
    b.dport[i] = dport;
    b.proto[i] = proto;
    b.family[i] = FAMILY_IPV4;
    b.flags[i] = flags;
    b.l4flags[i] = L4.HAS4 | L4.HAS8;
    this.fRng[s] = r;
    this.fIdx[s] = k + 1;
    this.fNext[s] = us + Math.max(1, Math.floor(gap));
  }
}

/** A synthetic scenario as a PacketInput; `share` picks the flows whose connection key hashes to `index` of `count`. */
export function openSynthetic(name: string, opts: { seed?: number; packets?: number; share?: { index: number; count: number } } = {}): PacketInput {
  return new SyntheticInput(name, opts);
}
