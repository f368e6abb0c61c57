/**
 * IP reassembly as the kernel decides it: the one reassembler of the project
 * (the capture reader and replay's rewrite both use it). The kernel
 * defragments before conntrack (defrag hook priority -400, conntrack -200;
 * kernel-semantics §4.2 "Fragments"), so CLUSTERIP and xt_cluster hash whole
 * datagrams: every fragment must carry its datagram's L4 fields. Payloads are
 * not rebuilt here; per datagram we keep the first 64 bytes of the
 * fragmentable part (enough for any L4 header we read), the byte ranges
 * received, and its age. A caller that needs the payload (replay) keeps its
 * fragments and joins them once `add` says the datagram is complete.
 *
 * Which fragments complete a datagram, written from a reading of
 * net/ipv4/ip_fragment.c (ip_frag_queue) and net/ipv4/inet_fragment.c
 * (inet_frag_queue_insert), Linux 4.19 and later, source-read (not measured):
 * - A last fragment (MF clear) ending before data already received, or a
 *   second last fragment with another end, kills the whole datagram; so does
 *   a fragment reaching past a known end, and an empty fragment.
 * - A non-last fragment's length is cut down to a multiple of 8.
 * - A fragment lying wholly inside one run of fragments already queued is a
 *   duplicate: it alone is dropped. Any other overlap kills the datagram
 *   (RFC 5722 for IPv6, applied to IPv4 too since 4.19).
 * - Runs: a fragment starting exactly where the highest run ends extends it;
 *   any other new fragment starts a run of its own (adjacent or not), which is
 *   what decides "wholly inside one run".
 * - Complete when the first and the last fragment are in and the bytes
 *   received equal the datagram's length. The queue is then gone: a later
 *   fragment with the same key starts a new datagram.
 * IPv6 (nf_conntrack_reasm.c) follows the same insert rule; there a non-last
 * fragment whose length is not a multiple of 8 is dropped alone.
 *
 * Kernel limits mirrored: a datagram that does not complete within
 * ipfrag_time (30 s, IPv6 60 s) is dropped and never hashed. A table that is
 * full evicts its oldest entry, as the kernel's frag memory limit does. Not
 * mirrored: ipfrag_max_dist (an IPv4 queue restarted when more than 64
 * fragments of other datagrams from the same source arrived in between).
 */
import { F, FAMILY_IPV6, type TupleBatch } from './batch.ts';
import { fragInfo, writeL4 } from './decode.ts';

/** add()'s verdict, in the low two bits of its result (the slot is the rest: result >>> 2). */
export const FRAG_PENDING = 0;
export const FRAG_RESOLVED = 1;
/** The kernel drops this fragment (a duplicate, or one that killed its datagram: see `dropReason`). */
export const FRAG_DROPPED = 2;

const PREFIX = 64;
const EMPTY = -1;
/** Runs of fragments kept per datagram (a 64 KiB datagram in 1480-byte fragments, any order, needs 45). */
const MAX_RUNS = 48;
const FIRST_IN = 1, LAST_IN = 2;
/** queue()'s verdicts besides FRAG_PENDING. */
const DUP_FRAG = 3, BAD_FRAG = 4, KILL = 5;

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
  /** The kernel's q.len: the datagram's length as far as known. */
  private readonly qlen: Int32Array;
  /** The kernel's q.meat: bytes queued (duplicates not counted). */
  private readonly meat: Int32Array;
  private readonly qflags: Uint8Array;
  /** Runs of fragments, sorted by offset: [start, end) at slot * MAX_RUNS + r. */
  private readonly runStart: Int32Array;
  private readonly runEnd: Int32Array;
  private readonly nruns: Uint8Array;
  private readonly l4rel: Int32Array;
  private readonly l4proto: Uint8Array;
  private readonly prefix: Uint8Array;
  private readonly known: Uint8Array;
  private readonly next: Int32Array;
  private readonly heads: Int32Array;
  private readonly hashOf: Int32Array;
  private freeHead: number;
  live = 0;
  /** Why the last FRAG_DROPPED fragment was dropped: 'duplicate-fragment' or 'bad-fragment' (it killed its datagram). */
  dropReason = '';
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
    this.qlen = new Int32Array(cap);
    this.meat = new Int32Array(cap);
    this.qflags = new Uint8Array(cap);
    this.runStart = new Int32Array(cap * MAX_RUNS);
    this.runEnd = new Int32Array(cap * MAX_RUNS);
    this.nruns = new Uint8Array(cap);
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
   * Returns verdict | slot << 2: FRAG_RESOLVED (the datagram is complete: call
   * apply(slot, ...) now, before the next add), FRAG_PENDING, or FRAG_DROPPED.
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
    else if (ts - this.first[s]! > (v6 ? this.timeout6 : this.timeout4)) {
      // Too late: the kernel's timer has already given this datagram up; this fragment starts a new one.
      this.drop(s);
      s = this.insert(h, ts);
    }
    const off = fragInfo.offset;
    const verdict = this.queue(s, off, off + fragInfo.dataWire, fragInfo.more, v6);
    if (verdict !== FRAG_PENDING) {
      if (verdict === KILL) { this.dropReason = 'bad-fragment'; this.drop(s); }
      else this.dropReason = verdict === DUP_FRAG ? 'duplicate-fragment' : 'bad-fragment';
      return FRAG_DROPPED | (s << 2);
    }
    if (fragInfo.l4rel >= 0) { this.l4rel[s] = fragInfo.l4rel; this.l4proto[s] = fragInfo.l4proto; }
    if (off < PREFIX) {
      const n = Math.min(PREFIX - off, fragInfo.dataCap);
      const base = s * PREFIX + off;
      for (let q = 0; q < n; q++) { this.prefix[base + q] = src[fragInfo.data + q]!; this.known[base + q] = 1; }
    }
    if (this.qflags[s] === (FIRST_IN | LAST_IN) && this.meat[s] === this.qlen[s] && this.l4rel[s]! >= 0) {
      // Reassembled: the kernel frees the queue. The slot's data stays readable for apply() until the next add.
      this.resolved[s] = 1;
      this.onResolve(s);
      this.drop(s);
      return FRAG_RESOLVED | (s << 2);
    }
    return FRAG_PENDING | (s << 2);
  }

  /**
   * ip_frag_queue's checks and inet_frag_queue_insert's run rule for the
   * fragment [off, end) of datagram s (see the module comment). Returns
   * FRAG_PENDING when the fragment was queued, DUP_FRAG when it alone is
   * dropped, KILL when the datagram is discarded.
   */
  private queue(s: number, off: number, end: number, more: boolean, v6: boolean): number {
    const fl = this.qflags[s]!;
    if (!more) {
      if (end < this.qlen[s]! || ((fl & LAST_IN) !== 0 && end !== this.qlen[s])) return KILL;
      this.qflags[s] = fl | LAST_IN;
      this.qlen[s] = end;
    } else {
      if (end & 7) {
        // IPv4 trims the fragment to a multiple of 8; IPv6 (nf_ct_frag6_queue) refuses it alone.
        if (v6) return BAD_FRAG;
        end &= ~7;
      }
      if (end > this.qlen[s]!) {
        if (fl & LAST_IN) return KILL;
        this.qlen[s] = end;
      }
    }
    if (end === off) return KILL;
    const R = s * MAX_RUNS, n = this.nruns[s]!, rs = this.runStart, re = this.runEnd;
    let at: number;
    if (n === 0) at = 0;
    else if (re[R + n - 1]! < end) {
      // Past the highest run (the kernel's common case): overlap, extend that run, or a new run after it.
      const tail = re[R + n - 1]!;
      if (off < tail) return KILL;
      if (off === tail) { re[R + n - 1] = end; this.queued(s, off, end); return FRAG_PENDING; }
      at = n;
    } else {
      at = 0;
      while (at < n && re[R + at]! <= off) at++;
      // Run `at` is the first ending after off; the fragment fits before it, lies inside it, or overlaps.
      if (at < n && end > rs[R + at]!) return off >= rs[R + at]! && end <= re[R + at]! ? DUP_FRAG : KILL;
    }
    if (n === MAX_RUNS) return KILL;
    for (let r = n; r > at; r--) { rs[R + r] = rs[R + r - 1]!; re[R + r] = re[R + r - 1]!; }
    rs[R + at] = off;
    re[R + at] = end;
    this.nruns[s] = n + 1;
    this.queued(s, off, end);
    return FRAG_PENDING;
  }

  private queued(s: number, off: number, end: number): void {
    this.meat[s] = this.meat[s]! + (end - off);
    if (off === 0) this.qflags[s] = this.qflags[s]! | FIRST_IN;
  }

  /** Writes the datagram's protocol and L4 lanes into slot i, with F.FRAGMENT. */
  apply(s: number, b: TupleBatch, i: number): void {
    const rel = this.l4rel[s]!;
    const proto = this.l4proto[s]!;
    b.proto[i] = proto;
    const base = s * PREFIX;
    let cap = 0;
    while (rel + cap < PREFIX && this.known[base + rel + cap] === 1) cap++;
    const wire = this.qlen[s]! - rel;
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
      // Memory cap: evict the oldest datagram.
      let victim = -1, vt = Infinity;
      for (let s = 0; s < this.cap; s++) if (this.first[s]! < vt) { victim = s; vt = this.first[s]!; }
      this.drop(victim);
    }
    const s = this.freeHead;
    this.freeHead = this.next[s]!;
    for (let w = 0; w < 11; w++) this.key[s * 11 + w] = this.scratchKey[w]!;
    this.used[s] = 1;
    this.resolved[s] = 0;
    this.first[s] = ts;
    this.qlen[s] = 0;
    this.meat[s] = 0;
    this.qflags[s] = 0;
    this.nruns[s] = 0;
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
