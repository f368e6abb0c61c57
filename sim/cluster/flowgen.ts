/**
 * A tiny deterministic flow generator for failover scenarios and tests:
 * clients opening TCP connections (SYN, data ACKs, FIN|ACK) and UDP flows to
 * the cluster IP, over a time span, at a steady rate (connections already open
 * at t = 0 appear mid-stream, without their SYN). Same seed, same packets. Packets come out
 * in time order (ties broken by flow and packet number), as a capture would.
 *
 * The traffic helper's `openSynthetic` / `openCapture` give richer sources; the
 * failover engine only needs something with `fill(batch)`.
 */
import { F, FAMILY_IPV4, L4, PROTO, type TupleBatch } from '../traffic/batch.ts';

/** What the failover evaluation reads packets from (the traffic helper's PacketSource has this shape). */
export interface PacketSource {
  /** Fills `batch` from its start; returns the number of packets written (0 at the end). */
  fill(batch: TupleBatch): number;
}

export interface FlowGenParams {
  flows: number;
  duration_s: number;
  seed: number;
  /** Share of TCP flows (the rest are UDP). */
  tcp_share: number;
  /** Distinct client addresses (default: flows / 2, at least 1). */
  clients?: number;
  /** Destination (the cluster IP) as a number. */
  server: number;
}

/** Flows start up to this long before t = 0 (about a long flow's life), so traffic is steady from the start. */
const WARMUP_S = 20;

/** mulberry32: small, fast, deterministic. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface GeneratedTraffic {
  count: number;
  ts: Float64Array;
  saddr: Uint32Array;
  daddr: Uint32Array;
  sport: Uint16Array;
  dport: Uint16Array;
  proto: Uint8Array;
  flags: Uint8Array;
  wirelen: Uint32Array;
  /** Which generated flow each packet belongs to. */
  flow: Uint32Array;
}

/** Generates every packet (sorted by time) into flat arrays. */
export function generateTraffic(p: FlowGenParams): GeneratedTraffic {
  const r = rng(p.seed);
  const clients = Math.max(1, p.clients ?? Math.floor(p.flows / 2));
  type Pkt = { t: number; f: number; k: number; flags: number; len: number };
  const pk: Pkt[] = [];
  const meta: { s: number; sp: number; dp: number; pr: number }[] = [];
  for (let f = 0; f < p.flows; f++) {
    const c = Math.floor(r() * clients);
    const saddr = (0x0a000000 + 1 + c * 7 + (c >>> 8) * 3) >>> 0; // 10.x.y.z, spread over the /8
    const tcp = r() < p.tcp_share;
    const sport = 1024 + Math.floor(r() * 64000);
    const dport = tcp ? (r() < 0.7 ? 443 : 80) : r() < 0.5 ? 53 : 4500;
    meta.push({ s: saddr, sp: sport, dp: dport, pr: tcp ? PROTO.TCP : PROTO.UDP });
    // Starts spread over [-WARMUP, duration): the load is steady from t = 0 on (flows already
    // running at 0 show up mid-stream, as in a capture), so phases can be compared by rate.
    const start = -WARMUP_S + r() * (p.duration_s + WARMUP_S);
    const npk = 3 + Math.floor(r() * r() * 80);
    const gap = 0.05 + r() * 0.9;
    for (let k = 0; k < npk; k++) {
      const t = start + k * gap;
      if (t >= p.duration_s) break;
      if (t < 0) continue;
      let flags = F.PORTS;
      let len = 60 + Math.floor(r() * 1400);
      if (tcp) {
        if (k === 0) { flags |= F.SYN; len = 60; }
        else if (k === npk - 1 || start + (k + 1) * gap >= p.duration_s) flags |= F.FIN | F.ACK;
        else flags |= F.ACK;
      }
      pk.push({ t, f, k, flags, len });
    }
  }
  pk.sort((a, b) => a.t - b.t || a.f - b.f || a.k - b.k);
  const n = pk.length;
  const g: GeneratedTraffic = {
    count: n, ts: new Float64Array(n), saddr: new Uint32Array(n), daddr: new Uint32Array(n), sport: new Uint16Array(n), dport: new Uint16Array(n),
    proto: new Uint8Array(n), flags: new Uint8Array(n), wirelen: new Uint32Array(n), flow: new Uint32Array(n),
  };
  pk.forEach((x, i) => {
    const m = meta[x.f]!;
    g.ts[i] = x.t; g.saddr[i] = m.s; g.daddr[i] = p.server; g.sport[i] = m.sp; g.dport[i] = m.dp;
    g.proto[i] = m.pr; g.flags[i] = x.flags; g.wirelen[i] = x.len; g.flow[i] = x.f;
  });
  return g;
}

/** Writes generated packet `j` into batch slot `i` (all lanes a decoder would fill). */
export function writeGenerated(g: GeneratedTraffic, j: number, b: TupleBatch, i: number): void {
  b.ts[i] = g.ts[j]!;
  b.wirelen[i] = g.wirelen[j]!;
  b.saddr[i] = g.saddr[j]!;
  b.daddr[i] = g.daddr[j]!;
  const q = i << 2;
  b.saddr6[q] = b.saddr6[q + 1] = b.saddr6[q + 2] = b.saddr6[q + 3] = 0;
  b.daddr6[q] = b.daddr6[q + 1] = b.daddr6[q + 2] = b.daddr6[q + 3] = 0;
  b.sport[i] = g.sport[j]!;
  b.dport[i] = g.dport[j]!;
  b.l4a[i] = ((g.sport[j]! << 16) | g.dport[j]!) >>> 0;
  b.l4b[i] = 0;
  b.proto[i] = g.proto[j]!;
  b.family[i] = FAMILY_IPV4;
  b.flags[i] = g.flags[j]!;
  b.l4flags[i] = L4.HAS4 | L4.HAS8;
}

/** A PacketSource over generated traffic (optionally only the packets `keep` selects). */
export function generatedSource(g: GeneratedTraffic, keep?: (j: number) => boolean): PacketSource {
  let j = 0;
  return {
    fill(b: TupleBatch): number {
      let i = 0;
      while (i < b.capacity && j < g.count) {
        if (!keep || keep(j)) writeGenerated(g, j, b, i++);
        j++;
      }
      b.count = i;
      return i;
    },
  };
}
