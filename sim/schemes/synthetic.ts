/**
 * A small seeded traffic generator: flows with heavy-tailed sizes, emitted as
 * TupleBatches. A stand-in until sim/traffic's `openSynthetic` exists; any
 * `Iterable<TupleBatch>` (a capture, a live source) can replace it.
 *
 * Realistic enough for balance and speed work: clients spread over a few
 * address blocks, ephemeral source ports, a handful of service ports, mostly
 * TCP, some UDP, a little ICMP and ESP; packets per flow Pareto (alpha 1.2),
 * packet sizes bimodal (small ACK-sized, full-size data).
 */
import { createBatch, DEFAULT_BATCH_CAPACITY, PROTO, type TupleBatch } from '../traffic/batch.ts';
import { writeTupleV4 } from '../traffic/tuple.ts';

/** mulberry32: a tiny, fast, well-mixed 32-bit PRNG; deterministic for a seed. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SyntheticOptions {
  /** Number of flows. */
  flows: number;
  seed?: number;
  /** Cap on packets per flow (the Pareto tail). Default 5000. */
  maxPacketsPerFlow?: number;
  /** Packets per batch. Default DEFAULT_BATCH_CAPACITY. */
  batchSize?: number;
}

/** One flow of the synthetic mix: its tuple and its size. */
export interface SyntheticFlow {
  proto: number;
  saddr: number;
  sport: number;
  daddr: number;
  dport: number;
  packets: number;
  /** Wire length of each of its packets (full-size data or small). */
  wirelen: number;
}

/** The flows of the mix, deterministic for (flows, seed). */
export function syntheticFlows(o: SyntheticOptions): SyntheticFlow[] {
  const r = rng(o.seed ?? 1);
  const cap = o.maxPacketsPerFlow ?? 5000;
  const blocks = [0x0a000000, 0xc0a80000, 0x64400000, 0x2d000000, 0x59000000, 0xb9000000];
  const vips = [0xc6336401, 0xc6336402, 0xc6336403];
  const out: SyntheticFlow[] = [];
  for (let f = 0; f < o.flows; f++) {
    const block = blocks[Math.floor(r() * blocks.length)]!;
    // Clients: a /16 inside a block for the private ranges, up to a /8 for the public ones.
    const host = block >= 0x2d000000 && block < 0x60000000 ? Math.floor(r() * 0x1000000) : Math.floor(r() * 0x10000);
    const saddr = (block + host) >>> 0;
    const daddr = vips[Math.floor(r() * vips.length)]!;
    const u = r();
    let proto: number, sport: number, dport: number;
    if (u < 0.8) {
      proto = PROTO.TCP;
      sport = 32768 + Math.floor(r() * 28232);
      const d = r();
      dport = d < 0.6 ? 443 : d < 0.85 ? 80 : d < 0.95 ? 22 : 1024 + Math.floor(r() * 64000);
    } else if (u < 0.97) {
      proto = PROTO.UDP;
      sport = 1024 + Math.floor(r() * 64000);
      dport = r() < 0.6 ? 53 : r() < 0.5 ? 443 : 123;
    } else if (u < 0.99) {
      proto = PROTO.ICMP;
      sport = Math.floor(r() * 65536); // echo id
      dport = Math.floor(r() * 100); // sequence
    } else {
      proto = PROTO.ESP;
      sport = Math.floor(r() * 65536); // SPI halves
      dport = Math.floor(r() * 65536);
    }
    // Pareto(alpha 1.2, min 1): most flows are short, a few carry most packets.
    const packets = Math.min(cap, Math.floor(1 / Math.pow(1 - r(), 1 / 1.2)));
    const wirelen = r() < 0.4 ? 66 + Math.floor(r() * 60) : 1514 - Math.floor(r() * 200);
    out.push({ proto, saddr, sport, daddr, dport, packets, wirelen });
  }
  return out;
}

/**
 * The packets of the mix as TupleBatches, flows interleaved round-robin by
 * packet (a flow's packets spread over time as on a real link). Each yielded
 * batch is fresh (callers may keep them).
 */
export function* syntheticBatches(o: SyntheticOptions): Generator<TupleBatch> {
  const flows = syntheticFlows(o);
  const size = o.batchSize ?? DEFAULT_BATCH_CAPACITY;
  const left = Int32Array.from(flows, (f) => f.packets);
  let active = flows.map((_, i) => i);
  let b = createBatch(size);
  let t = 0;
  while (active.length) {
    const next: number[] = [];
    for (const i of active) {
      const f = flows[i]!;
      writeTupleV4(b, b.count, f.proto, f.saddr, f.sport, f.daddr, f.dport, t, f.wirelen);
      t += 1e-6;
      b.count++;
      if (b.count === size) { yield b; b = createBatch(size); }
      if (--left[i]! > 0) next.push(i);
    }
    active = next;
  }
  if (b.count) yield b;
}

/** Exactly `packets` packets of the mix (the first ones), in batches of `batchSize`: for speed runs. */
export function syntheticPacketBatches(packets: number, seed = 1, batchSize = DEFAULT_BATCH_CAPACITY): TupleBatch[] {
  const out: TupleBatch[] = [];
  let have = 0;
  // ~3.2 packets per flow on average with alpha 1.2 and the cap; ask for enough flows.
  for (const b of syntheticBatches({ flows: Math.ceil(packets / 2) + 16, seed, batchSize })) {
    if (have + b.count > packets) b.count = packets - have;
    out.push(b);
    have += b.count;
    if (have >= packets) break;
  }
  return out;
}
