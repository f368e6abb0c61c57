/**
 * Connections as conntrack keeps them: one entry for both directions of a
 * 5-tuple, created by the first packet, refreshed by every packet, and gone
 * after `timeout` seconds without one. A packet that finds its entry idle for
 * longer starts a new connection, as a packet after nf_conntrack's timeout
 * does. Ended entries leave the table (to a FlowSink, which folds them into
 * per-node counters), so the table holds the connections of the last
 * `timeout` seconds, not of the whole capture: memory stays flat however long
 * the capture runs.
 *
 * Differences from the kernel, on purpose: one idle timeout for every protocol
 * and state (the kernel keeps an established TCP connection 5 days,
 * nf_conntrack_tcp_timeout_established, and a UDP one 30 or 120 s); a FIN or
 * RST does not shorten it. Both keep the rule a pure function of the gap
 * between two packets, which is what lets a capture be split into byte ranges
 * and merged back to exactly the answer of one pass (see `headUntil` and
 * merge.ts).
 *
 * Layout: open addressing with linear probing over three typed arrays (keys,
 * an 8-float record, per-configuration buckets of each direction's first
 * packet). No per-packet allocation; expired entries are removed by rebuilding
 * the table every quarter timeout of capture time.
 */
import { F, FAMILY_IPV6, type TupleBatch } from '../traffic/batch.ts';
import { fmix32, mix32 } from '../hash/mix.ts';

/** Default idle timeout, seconds (nf_conntrack's udp_timeout_stream and tcp_timeout_time_wait are 120). */
export const DEFAULT_FLOW_TIMEOUT = 120;

/**
 * Record lanes (Float64, stride REC). Direction 0 is the packet direction
 * whose source endpoint sorts first (the canonical key's endpoint A), 1 the
 * other; which one is the conntrack original is decided when the entry ends.
 */
export const REC = 8;
export const PK0 = 0, BY0 = 1, T0 = 2, PK1 = 3, BY1 = 4, T1 = 5, LAST = 6, META = 7;
/** META bits. */
export const SEEN0 = 1, SEEN1 = 2, SYN0 = 4, SYN1 = 8, HEAD = 16;

/**
 * A column store of ended (or exported) entries: what a table hands to the
 * FlowSink, and what a worker posts back for the entries that may continue
 * in a neighbouring share. Keys: [family<<8|proto, A address, B address,
 * portA<<16|portB] with 1-word (IPv4) or 4-word (IPv6) addresses.
 */
export interface FlowRecords {
  /** Key words per entry: 4 (IPv4) or 10 (IPv6). */
  kw: number;
  /** Configurations (selectors): each entry has 4 * c bucket words. */
  c: number;
  count: number;
  keys: Uint32Array;
  rec: Float64Array;
  /** [config][direction 0/1][as original / as reply] bucket of that direction's first packet. */
  bk: Int32Array;
}

export function newRecords(kw: number, c: number, capacity: number): FlowRecords {
  return { kw, c, count: 0, keys: new Uint32Array(capacity * kw), rec: new Float64Array(capacity * REC), bk: new Int32Array(capacity * 4 * c) };
}

/** Appends entry `s` of (keys, rec, bk) to `out`, growing it. */
export function pushRecord(out: FlowRecords, keys: Uint32Array, rec: Float64Array, bk: Int32Array, s: number): void {
  const kw = out.kw, b4 = 4 * out.c;
  if ((out.count + 1) * REC > out.rec.length) {
    const cap = Math.max(64, out.count * 2);
    const k = new Uint32Array(cap * kw); k.set(out.keys); out.keys = k;
    const r = new Float64Array(cap * REC); r.set(out.rec); out.rec = r;
    const b = new Int32Array(cap * b4); b.set(out.bk); out.bk = b;
  }
  const n = out.count++;
  copyEntry(keys, rec, bk, s, out.keys, out.rec, out.bk, n, kw, b4);
}

/** Copies entry s of one set of arrays to entry t of another (plain loops: no subarray objects per entry). */
function copyEntry(keys: Uint32Array, rec: Float64Array, bk: Int32Array, s: number, nk: Uint32Array, nr: Float64Array, nb: Int32Array, t: number, kw: number, b4: number): void {
  for (let w = 0; w < kw; w++) nk[t * kw + w] = keys[s * kw + w]!;
  for (let w = 0; w < REC; w++) nr[t * REC + w] = rec[s * REC + w]!;
  for (let w = 0; w < b4; w++) nb[t * b4 + w] = bk[s * b4 + w]!;
}

/** Trimmed copy, for posting to another thread. */
export function trimRecords(r: FlowRecords): FlowRecords {
  return { kw: r.kw, c: r.c, count: r.count, keys: r.keys.slice(0, r.count * r.kw), rec: r.rec.slice(0, r.count * REC), bk: r.bk.slice(0, r.count * 4 * r.c) };
}

/** Earliest packet of entry `o` (a record offset). */
export function firstTs(rec: Float64Array, o: number): number {
  const m = rec[o + META]!;
  if (!(m & SEEN0)) return rec[o + T1]!;
  if (!(m & SEEN1)) return rec[o + T0]!;
  return Math.min(rec[o + T0]!, rec[o + T1]!);
}

export interface ConnTableOptions {
  /** 4 for IPv4 keys, 10 for IPv6. */
  kw: number;
  /** Number of configurations (selectors) whose buckets each entry keeps. */
  c: number;
  /** Idle timeout, seconds. */
  timeout: number;
  /** Receives ended entries in chunks (the chunk is reused after the call). */
  onEnd: (r: FlowRecords) => void;
  /**
   * Load factor at which `lookup` grows the table (default 1/2). merge.ts,
   * which looks up each exported entry once, runs at 3/4 to halve its table.
   */
  maxLoad?: number;
}

/**
 * How much out-of-order time a sweep tolerates before it ends an idle entry:
 * a packet older than the newest seen by more than this could find its entry
 * already gone. Captures merged from several interfaces are reordered by far
 * less than this.
 */
export const REORDER_SLACK = 5;

const END_CHUNK = 4096;
const MIN_SLOTS = 1 << 10;

export class ConnTable {
  readonly kw: number;
  readonly c: number;
  readonly timeout: number;
  private readonly maxLoad: number;
  count = 0;
  /**
   * Entries created by a packet at or before this time may continue a
   * connection of the previous share of the capture: they are exported as
   * well as counted (merge.ts joins them). -Infinity for a first share.
   */
  headUntil = -Infinity;
  /** Copies of head entries, and of entries open at the end: what merge.ts joins across shares. */
  readonly exports: FlowRecords;
  keys: Uint32Array;
  rec: Float64Array;
  bk: Int32Array;
  private mask: number;
  private readonly ended: FlowRecords;
  private readonly onEnd: (r: FlowRecords) => void;
  private newest = -Infinity;
  private lastSweep = -Infinity;
  private readonly k = new Uint32Array(10);

  constructor(o: ConnTableOptions, slots = 1 << 12) {
    this.kw = o.kw;
    this.c = o.c;
    this.timeout = o.timeout;
    this.onEnd = o.onEnd;
    this.maxLoad = o.maxLoad ?? 0.5;
    this.ended = newRecords(o.kw, o.c, END_CHUNK);
    this.exports = newRecords(o.kw, o.c, 64);
    let cap = 16;
    while (cap < slots) cap <<= 1;
    this.mask = cap - 1;
    this.keys = new Uint32Array(cap * o.kw);
    this.rec = new Float64Array(cap * REC);
    this.bk = new Int32Array(cap * 4 * o.c);
  }

  get slots(): number {
    return this.mask + 1;
  }

  /** Bytes the table's arrays hold. */
  byteSize(): number {
    return this.keys.byteLength + this.rec.byteLength + this.bk.byteLength;
  }

  /**
   * Between batches: every quarter timeout of capture time, ends the entries
   * no later packet can reach and re-packs the rest into a table sized for
   * them. "Later" is measured from the newest packet counted so far, never
   * from one not yet counted (an older packet of the same batch may still
   * join an entry).
   */
  sweep(): void {
    if (this.newest - this.lastSweep >= this.timeout / 4) {
      this.lastSweep = this.newest;
      this.sweepInPlace(this.newest - this.timeout - REORDER_SLACK);
    }
  }

  /**
   * Ends every entry idle before `cutoff`, in place: linear probing's
   * backward-shift deletion, scanning once around the table from an empty
   * slot (so no probe run wraps past the start). Measured: re-packing into
   * fresh arrays instead cost a fifth of a 5M-packet run (page faults and a
   * cold read of ~100 MB per sweep).
   */
  private sweepInPlace(cutoff: number): void {
    const keys = this.keys, rec = this.rec, kw = this.kw, cap = this.slots, mask = this.mask;
    let e = 0;
    while (e < cap && keys[e * kw] !== 0) e++;
    if (e === cap) { this.rebuild(cutoff); return; }
    for (let step = 1; step <= cap; step++) {
      const i = (e + step) & mask;
      while (keys[i * kw] !== 0 && rec[i * REC + LAST]! < cutoff) {
        this.end(i);
        this.deleteAt(i);
      }
    }
  }

  /** Empties slot i, moving later entries of its probe run back so every entry stays reachable from its home slot. */
  private deleteAt(i: number): void {
    const keys = this.keys, rec = this.rec, bk = this.bk, kw = this.kw, mask = this.mask, b4 = 4 * this.c;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      if (keys[j * kw] === 0) break;
      const h = this.hashAt(keys, j) & mask;
      // The entry at j may move to i unless its home lies cyclically in (i, j].
      const stays = i <= j ? h > i && h <= j : h > i || h <= j;
      if (stays) continue;
      copyEntry(keys, rec, bk, j, keys, rec, bk, i, kw, b4);
      i = j;
    }
    keys[i * kw] = 0;
    this.count--;
  }

  /** Keeps the load factor at most 1/2 (linear probing stays short): called before every insert. */
  private room(): void {
    if ((this.count + 1) * 2 > this.slots) this.rebuild(this.newest - this.timeout - REORDER_SLACK);
  }

  /** Re-inserts every entry idle since `cutoff` or later into fresh arrays (load 1/6 to 1/3); ends the rest. */
  private rebuild(cutoff: number): void {
    const { keys, rec, bk, kw } = this;
    const b4 = 4 * this.c, old = this.slots;
    let live = 0;
    for (let s = 0; s < old; s++) if (keys[s * kw] !== 0 && rec[s * REC + LAST]! >= cutoff) live++;
    let cap = MIN_SLOTS;
    while (cap < (live + 1) * 3) cap <<= 1;
    const nk = new Uint32Array(cap * kw), nr = new Float64Array(cap * REC), nb = new Int32Array(cap * b4);
    const mask = cap - 1;
    for (let s = 0; s < old; s++) {
      if (keys[s * kw] === 0) continue;
      if (rec[s * REC + LAST]! < cutoff) { this.end(s); continue; }
      let t = this.hashAt(keys, s) & mask;
      while (nk[t * kw] !== 0) t = (t + 1) & mask;
      copyEntry(keys, rec, bk, s, nk, nr, nb, t, kw, b4);
    }
    this.keys = nk; this.rec = nr; this.bk = nb; this.mask = mask; this.count = live;
  }

  private hashAt(keys: Uint32Array, s: number): number {
    const kw = this.kw, o = s * kw;
    if (kw === 4) return hash4(keys[o]!, keys[o + 1]!, keys[o + 2]!, keys[o + 3]!);
    let h = 0x9747b28c;
    for (let w = 0; w < kw; w++) h = mix32(h, keys[o + w]!);
    return fmix32(h);
  }

  /**
   * Entry s ended: to the sink. An entry that may continue a connection of the
   * previous share is also exported: merge.ts replaces the two halves'
   * counts by the whole connection's if they join.
   */
  private end(s: number): void {
    if (this.rec[s * REC + META]! & HEAD) pushRecord(this.exports, this.keys, this.rec, this.bk, s);
    pushRecord(this.ended, this.keys, this.rec, this.bk, s);
    if (this.ended.count >= END_CHUNK) this.flushEnded();
  }

  private flushEnded(): void {
    if (this.ended.count === 0) return;
    this.onEnd(this.ended);
    this.ended.count = 0;
  }

  /**
   * Counts packet i (IPv4) in its connection. `outO[c][i]` / `outR[c][i]` are
   * selector c's bucket for the packet read as original / as reply direction.
   */
  trackV4(b: TupleBatch, i: number, outO: Int32Array[], outR: (Int32Array | null)[]): void {
    const sa = b.saddr[i]!, da = b.daddr[i]!, sp = b.sport[i]!, dp = b.dport[i]!;
    const k0 = (4 << 8) | b.proto[i]!;
    if ((this.count + 1) * 2 > this.slots) this.room();
    let d: number, A: number, B: number, P: number;
    if (sa < da || (sa === da && sp <= dp)) { d = 0; A = sa; B = da; P = ((sp << 16) | dp) >>> 0; }
    else { d = 1; A = da; B = sa; P = ((dp << 16) | sp) >>> 0; }
    const keys = this.keys, mask = this.mask;
    let s = hash4(k0, A, B, P) & mask;
    let found = false;
    for (;;) {
      const o = s << 2, w = keys[o]!;
      if (w === 0) break;
      if (w === k0 && keys[o + 1] === A && keys[o + 2] === B && keys[o + 3] === P) { found = true; break; }
      s = (s + 1) & mask;
    }
    if (!found) {
      const o = s << 2;
      keys[o] = k0; keys[o + 1] = A; keys[o + 2] = B; keys[o + 3] = P;
    }
    this.update(s, found, d, b, i, outO, outR);
  }

  /** Same for an IPv6 packet (10-word key). */
  trackV6(b: TupleBatch, i: number, outO: Int32Array[], outR: (Int32Array | null)[]): void {
    if ((this.count + 1) * 2 > this.slots) this.room();
    const k = this.k, j = i << 2, s6 = b.saddr6, d6 = b.daddr6, sp = b.sport[i]!, dp = b.dport[i]!;
    let cmp = 0;
    for (let w = 0; w < 4 && cmp === 0; w++) cmp = s6[j + w]! - d6[j + w]!;
    if (cmp === 0) cmp = sp - dp;
    const d = cmp <= 0 ? 0 : 1;
    const a = d === 0 ? s6 : d6, z = d === 0 ? d6 : s6;
    k[0] = (6 << 8) | b.proto[i]!;
    for (let w = 0; w < 4; w++) { k[1 + w] = a[j + w]!; k[5 + w] = z[j + w]!; }
    k[9] = d === 0 ? ((sp << 16) | dp) >>> 0 : ((dp << 16) | sp) >>> 0;
    let h = 0x9747b28c;
    for (let w = 0; w < 10; w++) h = mix32(h, k[w]!);
    const keys = this.keys, mask = this.mask;
    let s = fmix32(h) & mask;
    let found = false;
    for (;;) {
      const o = s * 10;
      if (keys[o] === 0) break;
      let eq = true;
      for (let w = 0; w < 10; w++) if (keys[o + w] !== k[w]) { eq = false; break; }
      if (eq) { found = true; break; }
      s = (s + 1) & mask;
    }
    if (!found) keys.set(k, s * 10);
    this.update(s, found, d, b, i, outO, outR);
  }

  private update(s: number, found: boolean, d: number, b: TupleBatch, i: number, outO: Int32Array[], outR: (Int32Array | null)[]): void {
    const rec = this.rec, r = s * REC, ts = b.ts[i]!;
    if (!found) this.count++;
    else if (ts - rec[r + LAST]! > this.timeout) {
      // Idle past the timeout: that connection ended; this packet opens a new one under the same key.
      this.end(s);
      found = false;
    }
    if (!found) {
      for (let w = 0; w < REC; w++) rec[r + w] = 0;
      rec[r + LAST] = ts;
      rec[r + META] = ts <= this.headUntil ? HEAD : 0;
    }
    const o = r + d * 3, seen = d === 0 ? SEEN0 : SEEN1, synBit = d === 0 ? SYN0 : SYN1;
    const syn = (b.flags[i]! & (F.SYN | F.ACK)) === F.SYN ? synBit : 0;
    let meta = rec[r + META]!;
    const len = b.wirelen[i]!;
    if (!(meta & seen)) {
      rec[o] = 1; rec[o + 1] = len; rec[o + 2] = ts;
      meta |= seen | syn;
      this.setBuckets(s, d, i, outO, outR, false);
    } else {
      rec[o] = rec[o]! + 1;
      rec[o + 1] = rec[o + 1]! + len;
      const t = rec[o + 2]!;
      // The direction's first packet is its earliest (ties: OR / min), so the answer does not depend on file order.
      if (ts < t) { rec[o + 2] = ts; meta = (meta & ~synBit) | syn; this.setBuckets(s, d, i, outO, outR, false); }
      else if (ts === t) { meta |= syn; this.setBuckets(s, d, i, outO, outR, true); }
    }
    if (ts > rec[r + LAST]!) rec[r + LAST] = ts;
    rec[r + META] = meta;
    if (ts > this.newest) this.newest = ts;
  }

  private setBuckets(s: number, d: number, i: number, outO: Int32Array[], outR: (Int32Array | null)[], min: boolean): void {
    const C = this.c, bk = this.bk, base = s * 4 * C + d * 2;
    for (let c = 0; c < C; c++) {
      const x = outO[c]![i]!, rr = outR[c], y = rr ? rr[i]! : x, o = base + c * 4;
      if (min) { if (x < bk[o]!) bk[o] = x; if (y < bk[o + 1]!) bk[o + 1] = y; }
      else { bk[o] = x; bk[o + 1] = y; }
    }
  }

  /**
   * Slot of the entry with record n of `src`'s key: >= 0 when present, else
   * -(free slot + 1). For merge.ts, which joins entries exported by shares.
   */
  lookup(src: FlowRecords, n: number): number {
    const kw = this.kw, k = this.k;
    for (let w = 0; w < kw; w++) k[w] = src.keys[n * kw + w]!;
    if (this.count + 1 > this.slots * this.maxLoad) this.rebuild(-Infinity);
    const keys = this.keys, mask = this.mask;
    let s = this.hashAt(k, 0) & mask;
    for (;;) {
      const o = s * kw;
      if (keys[o] === 0) return -(s + 1);
      let eq = true;
      for (let w = 0; w < kw; w++) if (keys[o + w] !== k[w]) { eq = false; break; }
      if (eq) return s;
      s = (s + 1) & mask;
    }
  }

  /** Whether record n of `src` continues the entry in slot s (it started within the timeout of the entry's last packet). */
  continues(s: number, src: FlowRecords, n: number): boolean {
    return firstTs(src.rec, n * REC) - this.rec[s * REC + LAST]! <= this.timeout;
  }

  /** Puts record n of `src` in slot s (a free slot from `lookup`, or an entry it replaces). */
  put(s: number, src: FlowRecords, n: number): void {
    const kw = this.kw, C4 = 4 * this.c;
    if (this.keys[s * kw] === 0) this.count++;
    for (let w = 0; w < kw; w++) this.keys[s * kw + w] = src.keys[n * kw + w]!;
    for (let w = 0; w < REC; w++) this.rec[s * REC + w] = src.rec[n * REC + w]!;
    this.rec[s * REC + META] = src.rec[n * REC + META]! & ~HEAD;
    for (let w = 0; w < C4; w++) this.bk[s * C4 + w] = src.bk[n * C4 + w]!;
  }

  /**
   * Joins record n of `src` into the entry in slot s, by `update`'s rules, so
   * joining two halves of a connection gives what one pass over both would.
   */
  combine(s: number, src: FlowRecords, n: number): void {
    const rec = this.rec, r = s * REC, q = n * REC, sr = src.rec, C4 = 4 * this.c, bk = this.bk;
    let meta = rec[r + META]!;
    const sm = sr[q + META]!;
    for (let d = 0; d < 2; d++) {
      const seen = d === 0 ? SEEN0 : SEEN1, synBit = d === 0 ? SYN0 : SYN1, o = d * 3;
      if (!(sm & seen)) continue;
      const bo = s * C4 + d * 2, bs = n * C4 + d * 2;
      if (!(meta & seen)) {
        rec[r + o] = sr[q + o]!; rec[r + o + 1] = sr[q + o + 1]!; rec[r + o + 2] = sr[q + o + 2]!;
        meta |= seen | (sm & synBit);
        for (let c = 0; c < this.c; c++) { bk[bo + c * 4] = src.bk[bs + c * 4]!; bk[bo + c * 4 + 1] = src.bk[bs + c * 4 + 1]!; }
        continue;
      }
      rec[r + o] = rec[r + o]! + sr[q + o]!;
      rec[r + o + 1] = rec[r + o + 1]! + sr[q + o + 1]!;
      const t = rec[r + o + 2]!, u = sr[q + o + 2]!;
      if (u < t) {
        rec[r + o + 2] = u;
        meta = (meta & ~synBit) | (sm & synBit);
        for (let c = 0; c < this.c; c++) { bk[bo + c * 4] = src.bk[bs + c * 4]!; bk[bo + c * 4 + 1] = src.bk[bs + c * 4 + 1]!; }
      } else if (u === t) {
        meta |= sm & synBit;
        for (let c = 0; c < this.c; c++) {
          bk[bo + c * 4] = Math.min(bk[bo + c * 4]!, src.bk[bs + c * 4]!);
          bk[bo + c * 4 + 1] = Math.min(bk[bo + c * 4 + 1]!, src.bk[bs + c * 4 + 1]!);
        }
      }
    }
    if (sr[q + LAST]! > rec[r + LAST]!) rec[r + LAST] = sr[q + LAST]!;
    rec[r + META] = meta;
  }

  /**
   * End of input: every entry ends. Unless `last` (nothing follows), open
   * entries are also exported: the next share may continue them.
   */
  finish(last: boolean): void {
    const { keys, kw } = this;
    for (let s = 0; s < this.slots; s++) {
      if (keys[s * kw] === 0) continue;
      if (!last && !(this.rec[s * REC + META]! & HEAD)) pushRecord(this.exports, this.keys, this.rec, this.bk, s);
      this.end(s);
    }
    // Drop the arrays (a finished table may be held until its share's result is posted).
    this.keys = new Uint32Array(MIN_SLOTS * kw);
    this.rec = new Float64Array(MIN_SLOTS * REC);
    this.bk = new Int32Array(MIN_SLOTS * 4 * this.c);
    this.mask = MIN_SLOTS - 1;
    this.count = 0;
    this.flushEnded();
  }
}

/**
 * Hash of a 4-word key for the table's probe start: one multiply per word
 * with a rotate between, then murmur3's finaliser (the table uses the low
 * bits). Each step is invertible in the word it takes in, so keys that differ
 * in one word never collide. Half the multiplies of four murmur3 rounds.
 */
function hash4(a: number, b: number, c: number, d: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(((h << 13) | (h >>> 19)) ^ b, 0xc2b2ae35);
  h = Math.imul(((h << 13) | (h >>> 19)) ^ c, 0x85ebca6b);
  h = Math.imul(((h << 13) | (h >>> 19)) ^ d, 0xc2b2ae35);
  return fmix32(h);
}
