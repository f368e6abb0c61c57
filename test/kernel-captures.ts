/**
 * Captures for the independent kernel check of the packet path (issue 17):
 * Ethernet frames to the cluster's multicast MAC, every checksum valid (the
 * kernel's conntrack marks a packet with a bad checksum INVALID, kernel-semantics
 * §11.3), written as pcap for tcpreplay. Source addresses come from a range
 * (10.77.0.0/16) that no namespace routes, so nothing a node answers ever
 * comes back into the cluster and the counters see only the capture.
 *
 * Classes: every TCP flag class, UDP, UDP datagrams fragmented in order, in
 * reverse and shuffled, a fragmented ICMP echo, ICMP echo/reply/timestamp/
 * destination-unreachable, GRE, ESP, SCTP INIT (CRC32c), IPv4 options.
 */
import { csum, ip4, ipv4, pcap, type Rec } from './frames.ts';

export const CLUSTER_MAC = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x20];
const CLIENT_MAC = [0x02, 0x77, 0, 0, 0, 2];

function etherTo(mac: number[], ip: Uint8Array): Uint8Array {
  const b = new Uint8Array(14 + ip.length);
  b.set(mac, 0); b.set(CLIENT_MAC, 6); b[12] = 0x08; b[13] = 0x00;
  b.set(ip, 14);
  return b;
}

/** TCP/UDP checksum over the IPv4 pseudo-header (RFC 793/768). */
function l4csum(src: string, dst: string, proto: number, l4: Uint8Array, at: number): void {
  const ph = new Uint8Array(12);
  ph.set(ip4(src), 0); ph.set(ip4(dst), 4); ph[9] = proto; ph[10] = l4.length >> 8; ph[11] = l4.length & 255;
  l4[at] = 0; l4[at + 1] = 0;
  const c = csum(l4, 0, l4.length, 0xffff & ~csum(ph));
  const v = c === 0 && proto === 17 ? 0xffff : c;
  l4[at] = v >> 8; l4[at + 1] = v & 255;
}

export const TCP = { FIN: 1, SYN: 2, RST: 4, PSH: 8, ACK: 16, URG: 32 } as const;

export function tcpSeg(src: string, dst: string, sport: number, dport: number, flags: number, payload = 0): Uint8Array {
  const b = new Uint8Array(20 + payload);
  b[0] = sport >> 8; b[1] = sport & 255; b[2] = dport >> 8; b[3] = dport & 255;
  b.set([0x12, 0x34, 0x56, 0x78], 4);
  if (flags & TCP.ACK) b.set([0, 0, 0, 1], 8);
  b[12] = 0x50; b[13] = flags; b[14] = 0xff; b[15] = 0xff;
  for (let i = 0; i < payload; i++) b[20 + i] = (i * 13) & 255;
  l4csum(src, dst, 6, b, 16);
  return b;
}

export function udpDgram(src: string, dst: string, sport: number, dport: number, payload: number): Uint8Array {
  const b = new Uint8Array(8 + payload);
  b[0] = sport >> 8; b[1] = sport & 255; b[2] = dport >> 8; b[3] = dport & 255;
  b[4] = (8 + payload) >> 8; b[5] = (8 + payload) & 255;
  for (let i = 0; i < payload; i++) b[8 + i] = (i * 7 + sport) & 255;
  l4csum(src, dst, 17, b, 6);
  return b;
}

function icmp(type: number, code: number, rest: number[], body: Uint8Array): Uint8Array {
  const b = new Uint8Array(8 + body.length);
  b[0] = type; b[1] = code; b.set(rest.slice(0, 4), 4); b.set(body, 8);
  const c = csum(b);
  b[2] = c >> 8; b[3] = c & 255;
  return b;
}

const CRC32C = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** SCTP INIT with its CRC32c (RFC 4960 appendix B; written little-endian into the checksum field). */
export function sctpInit(sport: number, dport: number, tag: number): Uint8Array {
  const b = new Uint8Array(12 + 20);
  b[0] = sport >> 8; b[1] = sport & 255; b[2] = dport >> 8; b[3] = dport & 255;
  // verification tag 0 for INIT; chunk INIT (type 1), length 20
  b[12] = 1; b[15] = 20;
  b[16] = tag >>> 24; b[17] = (tag >> 16) & 255; b[18] = (tag >> 8) & 255; b[19] = tag & 255 || 1; // initiate tag, never 0
  b[20] = 0; b[21] = 1; b[22] = 0; b[23] = 0; // a_rwnd 65536
  b[25] = 10; b[27] = 10; // streams out / in
  b[28] = 0x11; b[29] = 0x22; b[30] = 0x33; b[31] = 0x44; // initial TSN
  let c = 0xffffffff;
  for (const x of b) c = CRC32C[(c ^ x) & 255]! ^ (c >>> 8);
  c = ~c >>> 0;
  b[8] = c & 255; b[9] = (c >> 8) & 255; b[10] = (c >> 16) & 255; b[11] = c >>> 24;
  return b;
}

/** Splits an IPv4 datagram's payload into fragments of `chunk` bytes (a multiple of 8). */
function fragments(o: { src: string; dst: string; proto: number; id: number }, l4: Uint8Array, chunk: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let off = 0; off < l4.length; off += chunk) {
    const part = l4.subarray(off, Math.min(l4.length, off + chunk));
    out.push(ipv4({ ...o, fragOff: off, mf: off + chunk < l4.length }, part));
  }
  return out;
}

export interface BuiltCapture {
  recs: Rec[];
  /** Frames in the capture (each fragment one). */
  frames: number;
  /** Datagrams after reassembly. */
  datagrams: number;
  /** Fragments (frames that are part of a fragmented datagram). */
  fragmentFrames: number;
}

/** A small deterministic PRNG (xorshift32) so every run builds the same capture. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s;
  };
}

/**
 * The mixed capture: `sources` source addresses 10.77.a.b, each sending one
 * packet of every class to `dst`. Fragmented datagrams are emitted in order
 * (even sources), reversed (odd) or shuffled (every third), and interleaved
 * with other traffic.
 */
export function mixedCapture(dst: string, sources: number, seed = 1): BuiltCapture {
  const r = rng(seed);
  const ips: Uint8Array[] = [];
  let datagrams = 0, fragmentFrames = 0, id = 1;
  const push = (p: Uint8Array): void => { ips.push(p); datagrams++; };
  for (let s = 0; s < sources; s++) {
    const src = `10.77.${1 + (s >> 8)}.${1 + (s & 255) % 254}`;
    const sport = 1024 + (r() % 60000), dport = [80, 443, 53, 8080][s % 4]!;
    const ip = (proto: number, l4: Uint8Array, options?: number[]): Uint8Array => ipv4({ src, dst, proto, id: id++ & 0xffff, options }, l4);
    // Every TCP flag class.
    for (const f of [TCP.SYN, TCP.SYN | TCP.ACK, TCP.ACK, TCP.PSH | TCP.ACK, TCP.FIN, TCP.FIN | TCP.ACK, TCP.RST, TCP.RST | TCP.ACK, TCP.URG | TCP.ACK, 0, TCP.FIN | TCP.PSH | TCP.URG]) {
      push(ip(6, tcpSeg(src, dst, sport + f, dport, f, f & TCP.PSH ? 100 : 0)));
    }
    push(ip(17, udpDgram(src, dst, sport, 53, 40)));
    // ICMP: echo request, echo reply, timestamp, destination unreachable carrying a UDP header.
    push(ip(1, icmp(8, 0, [sport >> 8, sport & 255, 0, 1], new Uint8Array(16))));
    push(ip(1, icmp(0, 0, [sport >> 8, sport & 255, 0, 2], new Uint8Array(16))));
    push(ip(1, icmp(13, 0, [0, 7, 0, 1], new Uint8Array(12))));
    const inner = ipv4({ src: dst, dst: src, proto: 17, id: 9 }, udpDgram(dst, src, 53, sport, 0));
    push(ip(1, icmp(3, 3, [0, 0, 0, 0], inner)));
    // GRE (key bit, key), ESP (SPI, sequence), SCTP INIT.
    push(ip(47, new Uint8Array([0x20, 0, 0x08, 0x00, sport >> 8, sport & 255, 0, s & 255, 0x45, 0, 0, 20])));
    push(ip(50, new Uint8Array([0, 0, sport >> 8, sport & 255, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8])));
    push(ip(132, sctpInit(sport, 9, 0x1000 + s)));
    // IPv4 options: Record Route (7), NOP, end; on TCP and UDP.
    const rr = [7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    push(ip(6, tcpSeg(src, dst, sport + 100, dport, TCP.SYN), rr));
    push(ip(17, udpDgram(src, dst, sport + 100, 5353, 20), [1, 1, 1, 0]));
    // Fragments: a UDP datagram of 3000 bytes (3 fragments) and a fragmented ICMP echo (ping -s 3000's shape).
    for (const [proto, l4] of [[17, udpDgram(src, dst, sport + 200, 9999, 3000)], [1, icmp(8, 0, [sport >> 8, sport & 255, 0, 3], new Uint8Array(3000))]] as const) {
      const fr = fragments({ src, dst, proto, id: id++ & 0xffff }, l4, 1480);
      // in order, reversed (last fragment first), or shuffled (middle, first, last)
      const order = s % 3 === 0 ? [1, 0, 2] : s % 2 ? [...fr.keys()].reverse() : [...fr.keys()];
      for (const k of order) ips.push(fr[k]!);
      fragmentFrames += fr.length;
      datagrams++;
    }
  }
  const recs: Rec[] = ips.map((p, i) => ({ ts: [1_700_000_000 + Math.floor(i / 1000), (i % 1000) * 1000], data: etherTo(CLUSTER_MAC, p) }));
  return { recs, frames: recs.length, datagrams, fragmentFrames };
}

export function capturePcap(c: BuiltCapture): Uint8Array {
  return pcap(c.recs);
}

/**
 * Packets that conntrack accepts as a connection's first, one connection each:
 * TCP SYN (also with IPv4 options), UDP, ICMP echo, GRE, ESP, SCTP INIT, and a
 * UDP datagram in 3 fragments (reversed on odd sources). For a sink that drops
 * before confirmation, each is judged alone and still opens its connection.
 */
export function firstPacketsCapture(dst: string, sources: number, seed = 7): BuiltCapture {
  const r = rng(seed);
  const ips: Uint8Array[] = [];
  let datagrams = 0, fragmentFrames = 0, id = 1;
  for (let s = 0; s < sources; s++) {
    const src = `10.77.${1 + (s >> 8)}.${1 + (s & 255) % 254}`;
    const sport = 1024 + (r() % 60000);
    const ip = (proto: number, l4: Uint8Array, options?: number[]): Uint8Array => ipv4({ src, dst, proto, id: id++ & 0xffff, options }, l4);
    const one = [
      ip(6, tcpSeg(src, dst, sport, 80, TCP.SYN)),
      ip(6, tcpSeg(src, dst, sport + 1, 443, TCP.SYN), [7, 7, 4, 0, 0, 0, 0, 0]),
      ip(17, udpDgram(src, dst, sport, 53, 30)),
      ip(1, icmp(8, 0, [sport >> 8, sport & 255, 0, 1], new Uint8Array(16))),
      ip(47, new Uint8Array([0x20, 0, 0x08, 0x00, sport >> 8, sport & 255, 0, s & 255])),
      ip(50, new Uint8Array([0, 1, sport >> 8, sport & 255, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8])),
      ip(132, sctpInit(sport, 9, 0x2000 + s)),
    ];
    ips.push(...one);
    datagrams += one.length;
    const fr = fragments({ src, dst, proto: 17, id: id++ & 0xffff }, udpDgram(src, dst, sport + 2, 9999, 3000), 1480);
    ips.push(...(s % 2 ? fr.reverse() : fr));
    fragmentFrames += fr.length;
    datagrams++;
  }
  const recs: Rec[] = ips.map((p, i) => ({ ts: [1_700_000_000 + Math.floor(i / 1000), (i % 1000) * 1000], data: etherTo(CLUSTER_MAC, p) }));
  return { recs, frames: recs.length, datagrams, fragmentFrames };
}

/**
 * Packets conntrack marks INVALID (kernel-semantics §4.3, §5.3): per source a
 * lone FIN, a lone RST and a stray SYN-ACK, none belonging to a connection,
 * from 10.77.0.0/16 to `dst`:8080.
 */
export function strayCapture(dst: string, sources: number, seed = 11): BuiltCapture {
  const r = rng(seed);
  const ips: Uint8Array[] = [];
  let id = 1;
  for (let s = 0; s < sources; s++) {
    const src = `10.77.9.${1 + s}`;
    const sport = 1024 + (r() % 60000);
    for (const f of [TCP.FIN | TCP.ACK, TCP.RST, TCP.SYN | TCP.ACK]) ips.push(ipv4({ src, dst, proto: 6, id: id++ }, tcpSeg(src, dst, sport + f, 8080, f)));
  }
  const recs: Rec[] = ips.map((p, i) => ({ ts: [1_700_000_000, i * 1000], data: etherTo(CLUSTER_MAC, p) }));
  return { recs, frames: recs.length, datagrams: recs.length, fragmentFrames: 0 };
}
