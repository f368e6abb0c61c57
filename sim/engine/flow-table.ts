/**
 * An open-addressing hash table of flows in typed arrays: one 10-word key per
 * flow (family/proto, source address lanes, destination address lanes,
 * ports), and parallel value lanes. Lookups allocate nothing; growth doubles
 * and rehashes. Used per worker for the flows of its share, and in the main
 * thread to union the workers' tables.
 */
import { FAMILY_IPV6, type TupleBatch } from '../traffic/batch.ts';
import { fmix32, mix32 } from '../hash/mix.ts';

export const KEY_WORDS = 10;

export interface FlowColumns {
  count: number;
  /** KEY_WORDS words per flow: [family<<8|proto, s0, s1, s2, s3, d0, d1, d2, d3, sport<<16|dport]. */
  keys: Uint32Array;
  packets: Float64Array;
  bytes: Float64Array;
  firstTs: Float64Array;
  lastTs: Float64Array;
  /** Bit 0: the flow's first packet was a TCP SYN without ACK (it opened the connection). */
  flags: Uint8Array;
}

const EMPTY = -1;

function hash4(a: number, b: number, c: number, d: number): number {
  return fmix32(mix32(mix32(mix32(mix32(0x9747b28c, a), b), c), d));
}

export class FlowTable implements FlowColumns {
  count = 0;
  keys: Uint32Array;
  packets: Float64Array;
  bytes: Float64Array;
  firstTs: Float64Array;
  lastTs: Float64Array;
  flags: Uint8Array;
  private slots: Int32Array;
  private mask: number;
  private readonly k = new Uint32Array(KEY_WORDS);

  constructor(initialCapacity = 1 << 14) {
    let cap = 16;
    while (cap < initialCapacity) cap <<= 1;
    this.slots = new Int32Array(cap * 2).fill(EMPTY);
    this.mask = cap * 2 - 1;
    this.keys = new Uint32Array(cap * KEY_WORDS);
    this.packets = new Float64Array(cap);
    this.bytes = new Float64Array(cap);
    this.firstTs = new Float64Array(cap);
    this.lastTs = new Float64Array(cap);
    this.flags = new Uint8Array(cap);
  }

  get capacity(): number {
    return this.packets.length;
  }

  /** Loads packet i's flow key (or, with `reverse`, the key of the opposite direction) into the scratch key. */
  private loadKey(b: TupleBatch, i: number, reverse: boolean): void {
    const k = this.k;
    k[0] = (b.family[i]! << 8) | b.proto[i]!;
    if (b.family[i] === FAMILY_IPV6) {
      const j = i << 2;
      const s = reverse ? b.daddr6 : b.saddr6, d = reverse ? b.saddr6 : b.daddr6;
      k[1] = s[j]!; k[2] = s[j + 1]!; k[3] = s[j + 2]!; k[4] = s[j + 3]!;
      k[5] = d[j]!; k[6] = d[j + 1]!; k[7] = d[j + 2]!; k[8] = d[j + 3]!;
    } else {
      k[1] = reverse ? b.daddr[i]! : b.saddr[i]!; k[2] = 0; k[3] = 0; k[4] = 0;
      k[5] = reverse ? b.saddr[i]! : b.daddr[i]!; k[6] = 0; k[7] = 0; k[8] = 0;
    }
    k[9] = reverse ? ((b.dport[i]! << 16) | b.sport[i]!) >>> 0 : ((b.sport[i]! << 16) | b.dport[i]!) >>> 0;
  }

  /**
   * IPv4 keys hash (and compare) only the four words that can differ: the
   * other six are zero for every IPv4 key, and the family in word 0 keeps
   * IPv4 and IPv6 keys apart.
   */
  private hashKey(k: Uint32Array): number {
    if (k[0]! >>> 8 !== FAMILY_IPV6) return hash4(k[0]!, k[1]!, k[5]!, k[9]!);
    let h = 0x9747b28c;
    for (let w = 0; w < KEY_WORDS; w++) h = mix32(h, k[w]!);
    return fmix32(h);
  }

  private find(k: Uint32Array, insert: boolean): number {
    let s = this.hashKey(k) & this.mask;
    const keys = this.keys;
    for (;;) {
      const idx = this.slots[s]!;
      if (idx === EMPTY) {
        if (!insert) return -1;
        if (this.count + 1 > this.capacity) this.grow();
        return this.insertAt(k);
      }
      const o = idx * KEY_WORDS;
      let eq = true;
      for (let w = 0; w < KEY_WORDS; w++) if (keys[o + w] !== k[w]) { eq = false; break; }
      if (eq) return idx;
      s = (s + 1) & this.mask;
    }
  }

  private insertAt(k: Uint32Array): number {
    const idx = this.count++;
    this.keys.set(k, idx * KEY_WORDS);
    this.packets[idx] = 0;
    this.bytes[idx] = 0;
    this.firstTs[idx] = Infinity;
    this.lastTs[idx] = -Infinity;
    this.flags[idx] = 0;
    let s = this.hashKey(k) & this.mask;
    while (this.slots[s] !== EMPTY) s = (s + 1) & this.mask;
    this.slots[s] = idx;
    return idx;
  }

  private grow(): void {
    const cap = this.capacity * 2;
    const grow64 = (a: Float64Array): Float64Array => { const n = new Float64Array(cap); n.set(a); return n; };
    const keys = new Uint32Array(cap * KEY_WORDS);
    keys.set(this.keys);
    this.keys = keys;
    this.packets = grow64(this.packets);
    this.bytes = grow64(this.bytes);
    this.firstTs = grow64(this.firstTs);
    this.lastTs = grow64(this.lastTs);
    const flags = new Uint8Array(cap);
    flags.set(this.flags);
    this.flags = flags;
    this.slots = new Int32Array(cap * 2).fill(EMPTY);
    this.mask = cap * 2 - 1;
    const k = new Uint32Array(KEY_WORDS);
    for (let idx = 0; idx < this.count; idx++) {
      for (let w = 0; w < KEY_WORDS; w++) k[w] = this.keys[idx * KEY_WORDS + w]!;
      let s = this.hashKey(k) & this.mask;
      while (this.slots[s] !== EMPTY) s = (s + 1) & this.mask;
      this.slots[s] = idx;
    }
  }

  /** Index of packet i's flow, created if new. The IPv4 path reads the batch lanes directly. */
  upsert(b: TupleBatch, i: number): number {
    if (b.family[i] === FAMILY_IPV6) {
      this.loadKey(b, i, false);
      return this.find(this.k, true);
    }
    const k0 = (b.family[i]! << 8) | b.proto[i]!, sa = b.saddr[i]!, da = b.daddr[i]!;
    const pp = ((b.sport[i]! << 16) | b.dport[i]!) >>> 0;
    let s = hash4(k0, sa, da, pp) & this.mask;
    const keys = this.keys, slots = this.slots;
    for (;;) {
      const idx = slots[s]!;
      if (idx === EMPTY) break;
      const o = idx * KEY_WORDS;
      if (keys[o + 9] === pp && keys[o + 1] === sa && keys[o + 5] === da && keys[o] === k0) return idx;
      s = (s + 1) & this.mask;
    }
    const k = this.k;
    k.fill(0);
    k[0] = k0; k[1] = sa; k[5] = da; k[9] = pp;
    if (this.count + 1 > this.capacity) this.grow();
    return this.insertAt(k);
  }

  /** Index of the flow in the opposite direction of packet i, or -1. */
  lookupReverse(b: TupleBatch, i: number): number {
    this.loadKey(b, i, true);
    return this.find(this.k, false);
  }

  /** Index of a flow given its key words (from another table), created if new. */
  upsertKey(keys: Uint32Array, at: number): number {
    for (let w = 0; w < KEY_WORDS; w++) this.k[w] = keys[at * KEY_WORDS + w]!;
    return this.find(this.k, true);
  }

  /** Index of the flow whose key is `keys[at]` reversed (swap endpoints and ports), or -1. */
  lookupReverseKey(keys: Uint32Array, at: number): number {
    const o = at * KEY_WORDS, k = this.k;
    k[0] = keys[o]!;
    for (let w = 0; w < 4; w++) { k[1 + w] = keys[o + 5 + w]!; k[5 + w] = keys[o + 1 + w]!; }
    const p = keys[o + 9]!;
    k[9] = ((p << 16) | (p >>> 16)) >>> 0;
    return this.find(k, false);
  }

  /** Bytes the table's typed arrays hold (keys, values, hash slots), capacity included. */
  byteSize(): number {
    return this.keys.byteLength + this.packets.byteLength + this.bytes.byteLength + this.firstTs.byteLength + this.lastTs.byteLength + this.flags.byteLength + this.slots.byteLength;
  }

  /** Trimmed copies of the columns, for posting back to the main thread. */
  columns(): FlowColumns {
    const n = this.count;
    return {
      count: n,
      keys: this.keys.slice(0, n * KEY_WORDS),
      packets: this.packets.slice(0, n),
      bytes: this.bytes.slice(0, n),
      firstTs: this.firstTs.slice(0, n),
      lastTs: this.lastTs.slice(0, n),
      flags: this.flags.slice(0, n),
    };
  }
}
