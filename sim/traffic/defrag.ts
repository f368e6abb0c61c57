/**
 * Bounded IP reassembly bookkeeping. The kernel defragments before conntrack
 * (defrag hook priority -400, conntrack -200; kernel-semantics §4.2
 * "Fragments"), so CLUSTERIP and xt_cluster hash whole datagrams: every
 * fragment must carry its datagram's L4 fields. We do not rebuild payloads;
 * per datagram we keep the first 64 bytes of the fragmentable part (enough for
 * any L4 header we read), a byte count to know when it is complete, and its age.
 *
 * Kernel limits mirrored: a datagram that does not complete within
 * ipfrag_time (30 s, IPv6 60 s) is dropped and never hashed. A table that is
 * full evicts its oldest entry, as the kernel's frag memory limit does.
 */
import { F, FAMILY_IPV6, type TupleBatch } from './batch.ts';
import { fragInfo, writeL4 } from './decode.ts';

export const FRAG_PENDING = 0;
export const FRAG_RESOLVED = 1;

const PREFIX = 64;
const EMPTY = -1;

export interface DefragLimits {
  /** Datagrams tracked at once (memory cap). */
  entries?: number;
  /** Seconds before an incomplete IPv4 / IPv6 datagram is given up. */
  timeout4?: number;
  timeout6?: number;
}

export class Defrag {
  readonly cap: number;
  private readonly timeout4: number;
  private readonly timeout6: number;
  /** Key: family, 8 address words, id, proto. */
  private readonly key: Uint32Array;
  private readonly used: Uint8Array;
  private readonly resolved: Uint8Array;
  private readonly first: Float64Array;
  private readonly total: Int32Array;
  private readonly received: Int32Array;
  private readonly l4rel: Int32Array;
  private readonly l4proto: Uint8Array;
  private readonly prefix: Uint8Array;
  private readonly known: Uint8Array;
  private readonly next: Int32Array;
  private readonly heads: Int32Array;
  private readonly hashOf: Int32Array;
  private freeHead: number;
  live = 0;
  /** Called when a pending datagram is given up (timeout, eviction, end of input). */
  onDrop: (slot: number) => void = () => {};
  /** Called when a datagram becomes complete, so held fragments can be finished. */
  onResolve: (slot: number) => void = () => {};

  constructor(limits: DefragLimits = {}) {
    const cap = limits.entries ?? 4096;
    this.cap = cap;
    this.timeout4 = limits.timeout4 ?? 30;
    this.timeout6 = limits.timeout6 ?? 60;
    this.key = new Uint32Array(cap * 11);
    this.used = new Uint8Array(cap);
    this.resolved = new Uint8Array(cap);
    this.first = new Float64Array(cap);
    this.total = new Int32Array(cap);
    this.received = new Int32Array(cap);
    this.l4rel = new Int32Array(cap);
    this.l4proto = new Uint8Array(cap);
    this.prefix = new Uint8Array(cap * PREFIX);
    this.known = new Uint8Array(cap * PREFIX);
    this.next = new Int32Array(cap);
    let nb = 1;
    while (nb < cap * 2) nb <<= 1;
    this.heads = new Int32Array(nb).fill(EMPTY);
    this.hashOf = new Int32Array(cap);
    for (let s = 0; s < cap; s++) this.next[s] = s + 1 < cap ? s + 1 : EMPTY;
    this.freeHead = 0;
  }

  /**
   * Adds the fragment just decoded into slot i of b (fragInfo describes it).
   * Returns [state, slot] packed as state | slot << 1.
   */
  add(b: TupleBatch, i: number, ts: number, src: Uint8Array): number {
    const v6 = b.family[i] === FAMILY_IPV6;
    const k = this.scratchKey;
    const j = i << 2;
    k[0] = v6 ? 6 : 4;
    if (v6) for (let w = 0; w < 4; w++) { k[1 + w] = b.saddr6[j + w]!; k[5 + w] = b.daddr6[j + w]!; }
    else { k[1] = b.saddr[i]!; k[5] = b.daddr[i]!; k[2] = k[3] = k[4] = k[6] = k[7] = k[8] = 0; }
    k[9] = fragInfo.id >>> 0;
    // IPv4 keys include the protocol (ip_defrag's key); IPv6 fragments of one datagram may show ext headers instead.
    k[10] = v6 ? 0 : b.proto[i]!;
    let h = 0x811c9dc5;
    for (let w = 0; w < 11; w++) h = Math.imul(h ^ k[w]!, 0x01000193);
    h = (h ^ (h >>> 15)) & (this.heads.length - 1);
    let s = this.heads[h]!;
    while (s !== EMPTY) {
      let same = true;
      for (let w = 0; w < 11; w++) if (this.key[s * 11 + w] !== k[w]) { same = false; break; }
      if (same) break;
      s = this.next[s]!;
    }
    if (s === EMPTY) s = this.insert(h, ts);
    const timeout = v6 ? this.timeout6 : this.timeout4;
    if (this.resolved[s] === 0 && ts - this.first[s]! > timeout) {
      // Too late: the kernel has already given this datagram up; start again.
      this.drop(s);
      s = this.insert(h, ts);
    }
    if (this.resolved[s] === 0) {
      const off = fragInfo.offset;
      this.received[s] = this.received[s]! + fragInfo.dataWire;
      if (!fragInfo.more) this.total[s] = off + fragInfo.dataWire;
      if (fragInfo.l4rel >= 0) { this.l4rel[s] = fragInfo.l4rel; this.l4proto[s] = fragInfo.l4proto; }
      if (off < PREFIX) {
        const n = Math.min(PREFIX - off, fragInfo.dataCap);
        const base = s * PREFIX + off;
        for (let q = 0; q < n; q++) { this.prefix[base + q] = src[fragInfo.data + q]!; this.known[base + q] = 1; }
      }
      const tot = this.total[s]!;
      if (tot >= 0 && this.received[s]! >= tot && this.l4rel[s]! >= 0) {
        this.resolved[s] = 1;
        this.onResolve(s);
        return FRAG_RESOLVED | (s << 1);
      }
      return FRAG_PENDING | (s << 1);
    }
    return FRAG_RESOLVED | (s << 1);
  }

  /** Writes the datagram's protocol and L4 lanes into slot i, with F.FRAGMENT. */
  apply(s: number, b: TupleBatch, i: number): void {
    const rel = this.l4rel[s]!;
    const proto = this.l4proto[s]!;
    b.proto[i] = proto;
    const base = s * PREFIX;
    let cap = 0;
    while (rel + cap < PREFIX && this.known[base + rel + cap] === 1) cap++;
    const wire = this.total[s]! - rel;
    writeL4(b, i, proto, this.prefix, base + rel, cap, wire, F.FRAGMENT);
  }

  /** Drops pending datagrams older than the kernel timeout at capture time `now`. */
  expire(now: number): void {
    for (let s = 0; s < this.cap; s++) {
      if (this.used[s] === 0) continue;
      const timeout = this.key[s * 11] === 6 ? this.timeout6 : this.timeout4;
      if (now - this.first[s]! > timeout) this.drop(s);
    }
  }

  /** Whether slot s is still waiting and older than its timeout at `now`. */
  expired(s: number, now: number): boolean {
    if (this.used[s] === 0 || this.resolved[s] === 1) return false;
    return now - this.first[s]! > (this.key[s * 11] === 6 ? this.timeout6 : this.timeout4);
  }

  /** Removes a datagram (pending ones are reported through onDrop). */
  drop(s: number): void {
    if (this.used[s] === 0) return;
    const wasPending = this.resolved[s] === 0;
    const h = this.hashOf[s]!;
    let p = this.heads[h]!;
    if (p === s) this.heads[h] = this.next[s]!;
    else {
      while (p !== EMPTY && this.next[p] !== s) p = this.next[p]!;
      if (p !== EMPTY) this.next[p] = this.next[s]!;
    }
    this.used[s] = 0;
    this.next[s] = this.freeHead;
    this.freeHead = s;
    this.live--;
    if (wasPending) this.onDrop(s);
  }

  /** Drops everything still pending (end of input). */
  dropAll(): void {
    for (let s = 0; s < this.cap; s++) if (this.used[s] === 1) this.drop(s);
  }

  private readonly scratchKey = new Uint32Array(11);

  private insert(h: number, ts: number): number {
    if (this.freeHead === EMPTY) {
      // Memory cap: evict the oldest datagram, preferring completed ones.
      let victim = -1, vt = Infinity, vr = -1;
      for (let s = 0; s < this.cap; s++) {
        const r = this.resolved[s]!;
        if (r > vr || (r === vr && this.first[s]! < vt)) { victim = s; vt = this.first[s]!; vr = r; }
      }
      this.drop(victim);
    }
    const s = this.freeHead;
    this.freeHead = this.next[s]!;
    for (let w = 0; w < 11; w++) this.key[s * 11 + w] = this.scratchKey[w]!;
    this.used[s] = 1;
    this.resolved[s] = 0;
    this.first[s] = ts;
    this.total[s] = -1;
    this.received[s] = 0;
    this.l4rel[s] = -1;
    this.l4proto[s] = 0;
    this.known.fill(0, s * PREFIX, (s + 1) * PREFIX);
    this.hashOf[s] = h;
    this.next[s] = this.heads[h]!;
    this.heads[h] = s;
    this.live++;
    return s;
  }
}
