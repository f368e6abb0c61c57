/**
 * TupleBatch: the one data structure that flows from decoders to selectors.
 *
 * Struct of arrays in a single SharedArrayBuffer, so a batch can be handed to a
 * worker thread without copying and walked by hot loops without touching any
 * per-packet object. The batch is neutral: it stores what was on the wire
 * (numeric addresses and ports, raw L4 words); every kernel quirk (byte-swapped
 * port loads, which protocols "have ports", conntrack direction) is applied by
 * the selectors in `sim/select`.
 */

/** Per-packet flag bits (the `flags` lane). */
export const F = {
  /** The protocol has 16-bit source/destination ports in `sport`/`dport` (TCP, UDP, UDP-Lite, SCTP, DCCP). */
  PORTS: 0x01,
  /** The packet was (part of) a fragmented datagram; L4 fields come from its first fragment. */
  FRAGMENT: 0x02,
  /** TCP flag bits, for the conntrack model. */
  SYN: 0x04,
  ACK: 0x08,
  RST: 0x10,
  FIN: 0x20,
  /**
   * The capture cut the packet (snaplen) before L4 fields the kernel would have
   * read: the kernel saw bytes we did not, so selectors must answer UNKNOWN
   * rather than guess ports 0.
   */
  TRUNCATED: 0x40,
  /**
   * The packet travels in the reply direction of its conntrack entry (set by
   * the flow model). Keys that read the conntrack's original source
   * (xt_cluster, nft `ct original ip saddr`) then use `daddr`.
   */
  REPLY: 0x80,
} as const;

/** Per-packet bits of the `l4flags` lane: how much of the L4 header was present, and conntrack validity. */
export const L4 = {
  /** L4 bytes 0..3 were present; `l4a` holds them. */
  HAS4: 0x01,
  /** L4 bytes 4..7 were present; `l4b` holds them. */
  HAS8: 0x02,
  /**
   * Conntrack would mark this packet INVALID (e.g. a UDP-Lite RFC 3828 checksum,
   * kernel-semantics §4.3): CLUSTERIP drops it on every node, xt_cluster and
   * `ct` keys match nothing.
   */
  CT_INVALID: 0x04,
  /**
   * This fragment completed its datagram: netfilter counts the datagram here,
   * once (conntrack defragments before any cluster rule, kernel-semantics §4.2).
   * A packet is what a node's counter shows: a frame that is no fragment, or a
   * fragment with this bit (see `countsAsPacket`).
   */
  COMPLETES: 0x08,
} as const;

/** Whether slot i is one packet on a node's netfilter counter (a whole datagram after defragmentation). */
export function countsAsPacket(b: TupleBatch, i: number): number {
  return (b.flags[i]! & F.FRAGMENT) === 0 || (b.l4flags[i]! & L4.COMPLETES) !== 0 ? 1 : 0;
}

export const FAMILY_IPV4 = 4;
export const FAMILY_IPV6 = 6;

/** Default batch size: large enough to amortise a worker hand-off, small enough to stay in L2/L3. */
export const DEFAULT_BATCH_CAPACITY = 65536;

export interface TupleBatch {
  readonly capacity: number;
  /** Number of valid packets, 0..capacity. */
  count: number;
  readonly buffer: SharedArrayBuffer;
  /** Capture timestamp, seconds. */
  readonly ts: Float64Array;
  /** Length on the wire in bytes (not the captured length). */
  readonly wirelen: Uint32Array;
  /** IPv4 addresses as numbers (10.0.0.1 = 0x0a000001); 0 for IPv6 packets. */
  readonly saddr: Uint32Array;
  readonly daddr: Uint32Array;
  /**
   * IPv6 addresses: four lanes per packet, lane i = address bytes 4i..4i+3 read big-endian. Zero
   * for IPv4: a writer that sets `family` to 4 leaves these zero, so the pcap loops skip zeroing a
   * slot that already holds an IPv4 packet (pcap-fast.ts, wasm/assembly/pcap.ts).
   */
  readonly saddr6: Uint32Array;
  readonly daddr6: Uint32Array;
  /**
   * L4 bytes 0..3 and 4..7 read big-endian (valid when `l4flags` has HAS4/HAS8).
   * For TCP/UDP `l4a` = sport<<16 | dport; for ESP it is the SPI; for AH the
   * SPI is `l4b`; for ICMP `l4a` = type<<24 | code<<16 | checksum and `l4b` =
   * echo id<<16 | sequence.
   */
  readonly l4a: Uint32Array;
  readonly l4b: Uint32Array;
  /**
   * The "ports" as people and tshark name them: TCP/UDP/SCTP/DCCP/UDP-Lite
   * ports, ICMP echo id/sequence, the two halves of an ESP/AH SPI or a GRE key.
   * Numeric (as read big-endian from the wire).
   */
  readonly sport: Uint16Array;
  readonly dport: Uint16Array;
  readonly proto: Uint8Array;
  /** 4 or 6. */
  readonly family: Uint8Array;
  /** Bits of `F`. */
  readonly flags: Uint8Array;
  /** Bits of `L4`. */
  readonly l4flags: Uint8Array;
}

/** Bytes one packet occupies in a batch. */
export const BYTES_PER_PACKET = 8 + 4 * 4 + 4 * 4 * 2 + 4 * 2 + 2 * 2 + 1 * 4;

/** Allocates a batch in one SharedArrayBuffer (fields ordered by alignment, widest first). */
export function createBatch(capacity: number = DEFAULT_BATCH_CAPACITY): TupleBatch {
  if (!Number.isInteger(capacity) || capacity <= 0) throw new RangeError(`batch capacity must be a positive integer, got ${capacity}`);
  const buffer = wasmBatchBuffer(capacity) ?? new SharedArrayBuffer(BYTES_PER_PACKET * capacity);
  return viewBatch(buffer, capacity, 0);
}

/**
 * A batch of `capacity` for work that ends before the thread does anything
 * else (one share of a run): a spare left by `releaseBatch` when there is one,
 * else a new one. Its slots hold whatever the last filler left (a filler
 * overwrites each slot it fills; the IPv4/IPv6 lane contract above holds for
 * them as they are). A run over 1,000 rotated files is 1,000 shares: each
 * allocated a 5 MB batch memory and a WebAssembly instance over it, about
 * 0.5 ms of every share and much of the collector's time (issue 21's case).
 */
export function takeBatch(capacity: number = DEFAULT_BATCH_CAPACITY): TupleBatch {
  const spare = spares.get(capacity);
  if (spare) {
    spares.delete(capacity);
    spare.count = 0;
    return spare;
  }
  return createBatch(capacity);
}

/** Gives a batch from takeBatch back when its work is done (one spare per capacity is kept; a thread runs one share at a time). */
export function releaseBatch(b: TupleBatch): void {
  spares.set(b.capacity, b);
}

const spares = new Map<number, TupleBatch>();

/*
 * Batches live in shared WebAssembly memories when the engine has them, so
 * that the WebAssembly selectors (sim/select/wasm.ts) read the lanes in place
 * instead of copying them (measured: the copy was a third of the time of a
 * one-word hash). The buffer is still a SharedArrayBuffer with the same
 * layout from offset 0; past the lanes it has `capacity * 4 + 64` bytes of
 * scratch that selectors may write (their per-packet output, at
 * BYTES_PER_PACKET * capacity + 4 * packet index, whole groups of 16 packets
 * inside the range they were given).
 *
 * After that scratch, 64 bytes for a decoder's results and a read window of
 * READ_WINDOW_BYTES (readWindowOffset): a capture reader filling the batch
 * reads the file into it (byte-input.ts ByteInput.useWindow), so that the
 * WebAssembly pcap loop (sim/traffic/pcap-wasm.ts) finds the bytes and the
 * lanes in one memory. One thread fills a batch at a time.
 */
const WASM_PAGE = 65536;
const memories = new WeakMap<SharedArrayBuffer, object>();

/** Size of a batch's read window: byte-input.ts DEFAULT_WINDOW (an L2-sized window; see there). */
export const READ_WINDOW_BYTES = 1 << 18;

/** Where a batch's read window starts in its memory; the 64 bytes before it are a decoder's result area. */
export function readWindowOffset(capacity: number): number {
  return Math.ceil((BYTES_PER_PACKET * capacity + 4 * capacity + 64) / 64) * 64 + 64;
}

const readWindows = new WeakMap<SharedArrayBuffer, Uint8Array>();

/**
 * The read window of a batch that lives in a WebAssembly memory (always the
 * same view), or undefined for a batch on a bare SharedArrayBuffer.
 */
export function batchReadWindow(b: TupleBatch): Uint8Array | undefined {
  let w = readWindows.get(b.buffer);
  if (w) return w;
  const off = readWindowOffset(b.capacity);
  if (!memories.has(b.buffer) || b.buffer.byteLength < off + READ_WINDOW_BYTES) return undefined;
  readWindows.set(b.buffer, (w = new Uint8Array(b.buffer, off, READ_WINDOW_BYTES)));
  return w;
}

interface SharedMemoryCtor { new (d: { initial: number; maximum: number; shared: true }): { buffer: SharedArrayBuffer } }

function wasmBatchBuffer(capacity: number): SharedArrayBuffer | null {
  const Memory = (globalThis as unknown as { WebAssembly?: { Memory?: SharedMemoryCtor } }).WebAssembly?.Memory;
  if (!Memory) return null;
  const pages = Math.ceil((readWindowOffset(capacity) + READ_WINDOW_BYTES) / WASM_PAGE);
  if (pages > 65536) return null;
  try {
    const mem = new Memory({ initial: pages, maximum: pages, shared: true });
    memories.set(mem.buffer, mem);
    return mem.buffer;
  } catch {
    return null;
  }
}

/** The WebAssembly.Memory a batch's buffer belongs to (created by createBatch on this thread), or undefined. */
export function batchMemory(buffer: SharedArrayBuffer): object | undefined {
  return memories.get(buffer);
}

/**
 * Re-creates the typed-array views over a batch's buffer, e.g. in a worker
 * that received `{ buffer, capacity, count }` through postMessage.
 */
export function viewBatch(buffer: SharedArrayBuffer, capacity: number, count: number, memory?: object): TupleBatch {
  // A batch's WebAssembly memory travels with its handle (a shared memory can be posted to a worker).
  if (memory && !memories.has(buffer)) memories.set(buffer, memory);
  let off = 0;
  const take = <T>(ctor: new (b: SharedArrayBuffer, o: number, n: number) => T, bytes: number, lanes = 1): T => {
    const v = new ctor(buffer, off, capacity * lanes);
    off += bytes * capacity * lanes;
    return v;
  };
  const ts = take(Float64Array, 8);
  const wirelen = take(Uint32Array, 4);
  const saddr = take(Uint32Array, 4);
  const daddr = take(Uint32Array, 4);
  const saddr6 = take(Uint32Array, 4, 4);
  const daddr6 = take(Uint32Array, 4, 4);
  const l4a = take(Uint32Array, 4);
  const l4b = take(Uint32Array, 4);
  const sport = take(Uint16Array, 2);
  const dport = take(Uint16Array, 2);
  const proto = take(Uint8Array, 1);
  const family = take(Uint8Array, 1);
  const flags = take(Uint8Array, 1);
  const l4flags = take(Uint8Array, 1);
  return { capacity, count, buffer, ts, wirelen, saddr, daddr, saddr6, daddr6, l4a, l4b, sport, dport, proto, family, flags, l4flags };
}

/** What crosses a thread boundary: the buffer is shared, not copied. */
export interface BatchHandle {
  buffer: SharedArrayBuffer;
  capacity: number;
  count: number;
  /**
   * The shared WebAssembly.Memory the buffer belongs to, when it has one:
   * pass it to viewBatch so the receiving thread's wasm selectors read the
   * batch in place instead of copying it.
   */
  memory?: object;
}

export function batchHandle(b: TupleBatch): BatchHandle {
  const memory = memories.get(b.buffer);
  return memory ? { buffer: b.buffer, capacity: b.capacity, count: b.count, memory } : { buffer: b.buffer, capacity: b.capacity, count: b.count };
}

/** Clears packet i's lanes so a decoder can fill only what it finds. */
export function clearPacket(b: TupleBatch, i: number): void {
  b.ts[i] = 0;
  b.wirelen[i] = 0;
  b.saddr[i] = 0;
  b.daddr[i] = 0;
  const j = i << 2;
  b.saddr6[j] = b.saddr6[j + 1] = b.saddr6[j + 2] = b.saddr6[j + 3] = 0;
  b.daddr6[j] = b.daddr6[j + 1] = b.daddr6[j + 2] = b.daddr6[j + 3] = 0;
  b.l4a[i] = 0;
  b.l4b[i] = 0;
  b.sport[i] = 0;
  b.dport[i] = 0;
  b.proto[i] = 0;
  b.family[i] = 0;
  b.flags[i] = 0;
  b.l4flags[i] = 0;
}

/** Copies every lane of slot i of `a` into slot j of `b` (the same batch too: compaction, i >= j). */
export function copySlot(a: TupleBatch, i: number, b: TupleBatch, j: number): void {
  b.ts[j] = a.ts[i]!;
  b.wirelen[j] = a.wirelen[i]!;
  b.saddr[j] = a.saddr[i]!;
  b.daddr[j] = a.daddr[i]!;
  const x = i << 2, y = j << 2;
  for (let k = 0; k < 4; k++) { b.saddr6[y + k] = a.saddr6[x + k]!; b.daddr6[y + k] = a.daddr6[x + k]!; }
  b.l4a[j] = a.l4a[i]!;
  b.l4b[j] = a.l4b[i]!;
  b.sport[j] = a.sport[i]!;
  b.dport[j] = a.dport[i]!;
  b.proto[j] = a.proto[i]!;
  b.family[j] = a.family[i]!;
  b.flags[j] = a.flags[i]!;
  b.l4flags[j] = a.l4flags[i]!;
}

/** IPv4 protocol numbers this project names. */
export const PROTO = {
  ICMP: 1,
  IPIP: 4,
  TCP: 6,
  UDP: 17,
  IPV6: 41,
  GRE: 47,
  ESP: 50,
  AH: 51,
  ICMPV6: 58,
  DCCP: 33,
  SCTP: 132,
  UDPLITE: 136,
} as const;

/** Protocols whose first four L4 bytes are a source and a destination port. */
export function protoHasPorts(proto: number): boolean {
  return proto === 6 || proto === 17 || proto === 136 || proto === 132 || proto === 33;
}
