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
 * Layout: the entries are dense (entries 0 .. count-1 of three typed arrays:
 * key words, an 8-float record, per-configuration buckets of each
 * direction's first packet), found through a separate open-addressing slot
 * array of [key hash, entry + 1] with linear probing. The probe compares
 * hashes in the small slot array and reads one entry's key; growing rebuilds
 * only the slots, from the stored hashes; a sweep reads only live entries.
 * No per-packet allocation; expired entries are ended every quarter timeout
 * of capture time.
 */
import { countsAsPacket, F, type TupleBatch } from '../traffic/batch.ts';
import { hash4, keyHash } from '../hash/mix.ts';
import { connKey } from '../cluster/conn-key.ts';

/** Default idle timeout, seconds (nf_conntrack's udp_timeout_stream and tcp_timeout_time_wait are 120). */
export const DEFAULT_FLOW_TIMEOUT = 120;

/**
 * Record lanes (Float64, stride REC). Direction 0 is the packet direction
 * whose source endpoint sorts first (the canonical key's endpoint A), 1 the
 * other; which one is the conntrack original is decided when the entry ends.
 */
export const REC = 10;
/**
 * PKd: packets as a node's counter shows them (datagrams after defragmentation);
 * FRd: the capture frames behind them (each fragment); BYd: their wire bytes.
 */
export const PK0 = 0, BY0 = 1, T0 = 2, PK1 = 3, BY1 = 4, T1 = 5, LAST = 6, META = 7, FR0 = 8, FR1 = 9;
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
   * Load factor of the slots at which an insert grows them (default 1/2).
   * merge.ts, which looks up each exported entry once, runs at 3/4.
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
const MIN_ENTRIES = 1 << 9;

export class ConnTable {
  readonly kw: number;
  readonly c: number;
  readonly timeout: number;
  private readonly maxLoad: number;
  /** Live entries: they are entries 0 .. count-1 of the entry arrays. */
  count = 0;
  /**
   * Entries created by a packet at or before this time may continue a
   * connection of the previous share of the capture: they are exported as
   * well as counted (merge.ts joins them). -Infinity for a first share.
   */
  headUntil = -Infinity;
  /** Copies of head entries, and of entries open at the end: what merge.ts joins across shares. */
  readonly exports: FlowRecords;
  /** Entry arrays, dense: entry e's key words, record and buckets (FlowRecords' layout). */
  keys: Uint32Array;
  rec: Float64Array;
  bk: Int32Array;
  /** Key hash of each entry (finds its slot again when it moves or the slots are rebuilt). */
  private hashes: Int32Array;
  /** Open addressing, linear probing: [key hash, entry + 1] per slot; entry + 1 = 0 is empty. */
  private slotw: Int32Array;
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
    this.slotw = new Int32Array(cap * 2);
    const entries = Math.max(16, Math.ceil(cap * this.maxLoad));
    this.keys = new Uint32Array(entries * o.kw);
    this.rec = new Float64Array(entries * REC);
    this.bk = new Int32Array(entries * 4 * o.c);
    this.hashes = new Int32Array(entries);
  }

  get slots(): number {
    return this.mask + 1;
  }

  /** Bytes the table's arrays hold. */
  byteSize(): number {
    return this.keys.byteLength + this.rec.byteLength + this.bk.byteLength + this.hashes.byteLength + this.slotw.byteLength;
  }

  /**
   * Between batches: every quarter timeout of capture time, ends the entries
   * no later packet can reach. "Later" is measured from the newest packet
   * counted so far, never from one not yet counted (an older packet of the
   * same batch may still join an entry).
   */
  sweep(): void {
    if (this.newest - this.lastSweep >= this.timeout / 4) {
      this.lastSweep = this.newest;
      this.sweepBefore(this.newest - this.timeout - REORDER_SLACK);
    }
  }

  /**
   * Ends every entry idle before `cutoff`. The entries are dense, so this
   * reads only the live ones, in order; an ended entry's place is taken by
   * the last entry. When a quarter or more of them end, the slots are
   * rebuilt once afterwards instead of being kept up entry by entry: each
   * removal reads two slots at random (its own and the moved entry's), a
   * chain of cache misses, where a rebuild writes each live entry's slot
   * once, independently (measured on the 5M-packet capture: the removal's
   * slot search was 7 % of the table's time). Either way the entries end up
   * in the same order, and the order in which they end is the same.
   */
  private sweepBefore(cutoff: number): void {
    const rec = this.rec;
    let ending = 0;
    for (let e = 0; e < this.count; e++) if (rec[e * REC + LAST]! < cutoff) ending++;
    const rebuild = ending * 4 >= this.count && ending > 0;
    let e = 0;
    while (e < this.count) {
      if (rec[e * REC + LAST]! < cutoff) {
        this.end(e);
        if (rebuild) this.moveLast(e);
        else this.remove(e);
      } else e++;
    }
    this.shrink(rebuild);
  }

  /** Slot whose entry is e (e is live). */
  private slotOf(e: number): number {
    const sw = this.slotw, mask = this.mask;
    let s = this.hashes[e]! & mask;
    while (sw[2 * s + 1] !== e + 1) s = (s + 1) & mask;
    return s;
  }

  /**
   * Removes live entry e: its slot is emptied by linear probing's
   * backward-shift deletion (every later slot of the run stays reachable
   * from its home), and the last entry moves into e.
   */
  private remove(e: number): void {
    const sw = this.slotw, mask = this.mask;
    let i = this.slotOf(e), j = i;
    for (;;) {
      j = (j + 1) & mask;
      if (sw[2 * j + 1] === 0) break;
      const h = sw[2 * j]! & mask;
      // The slot at j may move to i unless its home lies cyclically in (i, j].
      const stays = i <= j ? h > i && h <= j : h > i || h <= j;
      if (stays) continue;
      sw[2 * i] = sw[2 * j]!;
      sw[2 * i + 1] = sw[2 * j + 1]!;
      i = j;
    }
    sw[2 * i] = 0;
    sw[2 * i + 1] = 0;
    const last = this.count - 1;
    if (e !== last) sw[2 * this.slotOf(last) + 1] = e + 1;
    this.moveLast(e);
  }

  /** The last entry moves into e (e's data is gone); the slots are left as they were. */
  private moveLast(e: number): void {
    const last = --this.count;
    if (e === last) return;
    copyEntry(this.keys, this.rec, this.bk, last, this.keys, this.rec, this.bk, e, this.kw, 4 * this.c);
    this.hashes[e] = this.hashes[last]!;
  }

  /** Before an insert: room for one more entry, and slots at most `maxLoad` full (linear probing stays short). */
  private room(): void {
    if (this.count + 1 > (this.mask + 1) * this.maxLoad) this.resizeSlots((this.mask + 1) * 2);
    if (this.count + 1 > this.hashes.length) this.resizeEntries(Math.max(MIN_ENTRIES, this.count * 2));
  }

  /**
   * After a sweep: halves slots and entry arrays while under a quarter used,
   * so memory follows the live connections down too. `rebuild`: the slots no
   * longer match the entries and are filled anew whatever their size.
   */
  private shrink(rebuild: boolean): void {
    let slots = this.mask + 1;
    while (slots > MIN_SLOTS && this.count * 4 < slots * this.maxLoad) slots >>= 1;
    if (rebuild || slots !== this.mask + 1) this.resizeSlots(slots);
    if (this.hashes.length > MIN_ENTRIES && this.count * 4 < this.hashes.length) this.resizeEntries(Math.max(MIN_ENTRIES, this.count * 2));
  }

  /** A slot array of `n` slots (the same one cleared when its size stays), filled from the entries' hashes: no entry is read. */
  private resizeSlots(n: number): void {
    const sw = n === this.mask + 1 ? this.slotw.fill(0) : new Int32Array(n * 2), mask = n - 1, hs = this.hashes;
    for (let e = 0; e < this.count; e++) {
      const h = hs[e]!;
      let s = h & mask;
      while (sw[2 * s + 1] !== 0) s = (s + 1) & mask;
      sw[2 * s] = h;
      sw[2 * s + 1] = e + 1;
    }
    this.slotw = sw;
    this.mask = mask;
  }

  /** Entry arrays for `n` entries, the live ones copied in order. */
  private resizeEntries(n: number): void {
    const kw = this.kw, b4 = 4 * this.c, live = this.count;
    const k = new Uint32Array(n * kw); k.set(this.keys.subarray(0, live * kw)); this.keys = k;
    const r = new Float64Array(n * REC); r.set(this.rec.subarray(0, live * REC)); this.rec = r;
    const b = new Int32Array(n * b4); b.set(this.bk.subarray(0, live * b4)); this.bk = b;
    const h = new Int32Array(n); h.set(this.hashes.subarray(0, live)); this.hashes = h;
  }

  /**
   * Entry e ended: to the sink. An entry that may continue a connection of the
   * previous share is also exported: merge.ts replaces the two halves'
   * counts by the whole connection's if they join.
   */
  private end(e: number): void {
    if (this.rec[e * REC + META]! & HEAD) pushRecord(this.exports, this.keys, this.rec, this.bk, e);
    pushRecord(this.ended, this.keys, this.rec, this.bk, e);
    if (this.ended.count >= END_CHUNK) this.flushEnded();
  }

  private flushEnded(): void {
    if (this.ended.count === 0) return;
    this.onEnd(this.ended);
    this.ended.count = 0;
  }

  /** A new entry for key hash h in free slot s (room() was called before the probe); returns it. */
  private insertAt(s: number, h: number): number {
    const e = this.count++;
    this.slotw[2 * s] = h;
    this.slotw[2 * s + 1] = e + 1;
    this.hashes[e] = h;
    return e;
  }

  /**
   * Counts packet i (IPv4) in its connection. `outO[c][i]` / `outR[c][i]` are
   * selector c's bucket for the packet read as original / as reply direction.
   */
  trackV4(b: TupleBatch, i: number, outO: Int32Array[], outR: (Int32Array | null)[]): void {
    const sa = b.saddr[i]!, da = b.daddr[i]!, sp = b.sport[i]!, dp = b.dport[i]!;
    const k0 = (4 << 8) | b.proto[i]!;
    this.room();
    // connKey (cluster/conn-key.ts) written out for IPv4: the hot path keeps the key in registers.
    // conn-table.test.ts holds the two equal.
    let d: number, A: number, B: number, P: number;
    if (sa < da || (sa === da && sp <= dp)) { d = 0; A = sa; B = da; P = ((sp << 16) | dp) >>> 0; }
    else { d = 1; A = da; B = sa; P = ((dp << 16) | sp) >>> 0; }
    // probe() written out for the 4-word key: compared in registers, no copy into this.k per packet.
    const h = hash4(k0, A, B, P), keys = this.keys, sw = this.slotw, mask = this.mask;
    let s = h & mask, e = -1;
    for (;;) {
      const x = sw[2 * s + 1]!;
      if (x === 0) break;
      if (sw[2 * s] === h) {
        const o = (x - 1) << 2;
        if (keys[o] === k0 && keys[o + 1] === A && keys[o + 2] === B && keys[o + 3] === P) { e = x - 1; break; }
      }
      s = (s + 1) & mask;
    }
    const found = e >= 0;
    if (!found) {
      e = this.insertAt(s, h);
      const o = e << 2;
      keys[o] = k0; keys[o + 1] = A; keys[o + 2] = B; keys[o + 3] = P;
    } else {
      // Most packets: a live entry, a direction already seen, a packet no earlier than that
      // direction's first and no later than the timeout. Counted here; update() has every other case.
      const rec = this.rec, r = e * REC, ts = b.ts[i]!, last = rec[r + LAST]!, o = r + d * 3;
      if (ts - last <= this.timeout && ts > rec[o + 2]! && rec[r + META]! & (d === 0 ? SEEN0 : SEEN1)) {
        rec[o] = rec[o]! + countsAsPacket(b, i);
        rec[r + FR0 + d] = rec[r + FR0 + d]! + 1;
        rec[o + 1] = rec[o + 1]! + b.wirelen[i]!;
        if (ts > last) {
          rec[r + LAST] = ts;
          if (ts > this.newest) this.newest = ts;
        }
        return;
      }
    }
    this.update(e, found, d, b, i, outO, outR);
  }

  /** Same for an IPv6 packet (10-word key). */
  trackV6(b: TupleBatch, i: number, outO: Int32Array[], outR: (Int32Array | null)[]): void {
    this.room();
    const k = this.k;
    const d = connKey(b, i, k);
    const h = keyHash(k, 0, this.kw);
    const at = this.probe(k, h);
    const found = at >= 0;
    const e = found ? at : this.insertAt(-at - 1, h);
    if (!found) this.keys.set(k, e * 10);
    this.update(e, found, d, b, i, outO, outR);
  }

  /** The entry with key `k` (hash h): >= 0 when present, else -(free slot + 1). */
  private probe(k: Uint32Array, h: number): number {
    const kw = this.kw, keys = this.keys, sw = this.slotw, mask = this.mask;
    let s = h & mask;
    for (;;) {
      const x = sw[2 * s + 1]!;
      if (x === 0) return -(s + 1);
      if (sw[2 * s] === h) {
        const o = (x - 1) * kw;
        let eq = true;
        for (let w = 0; w < kw; w++) if (keys[o + w] !== k[w]) { eq = false; break; }
        if (eq) return x - 1;
      }
      s = (s + 1) & mask;
    }
  }

  private update(e: number, found: boolean, d: number, b: TupleBatch, i: number, outO: Int32Array[], outR: (Int32Array | null)[]): void {
    const rec = this.rec, r = e * REC, ts = b.ts[i]!;
    if (found && ts - rec[r + LAST]! > this.timeout) {
      // Idle past the timeout: that connection ended; this packet opens a new one under the same key.
      this.end(e);
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
    const pk = countsAsPacket(b, i);
    rec[r + FR0 + d] = rec[r + FR0 + d]! + 1;
    if (!(meta & seen)) {
      rec[o] = pk; rec[o + 1] = len; rec[o + 2] = ts;
      meta |= seen | syn;
      this.setBuckets(e, d, i, outO, outR, false);
    } else {
      rec[o] = rec[o]! + pk;
      rec[o + 1] = rec[o + 1]! + len;
      const t = rec[o + 2]!;
      // The direction's first packet is its earliest (ties: OR / min), so the answer does not depend on file order.
      if (ts < t) { rec[o + 2] = ts; meta = (meta & ~synBit) | syn; this.setBuckets(e, d, i, outO, outR, false); }
      else if (ts === t) { meta |= syn; this.setBuckets(e, d, i, outO, outR, true); }
    }
    if (ts > rec[r + LAST]!) rec[r + LAST] = ts;
    rec[r + META] = meta;
    if (ts > this.newest) this.newest = ts;
  }

  private setBuckets(e: number, d: number, i: number, outO: Int32Array[], outR: (Int32Array | null)[], min: boolean): void {
    const C = this.c, bk = this.bk, base = e * 4 * C + d * 2;
    for (let c = 0; c < C; c++) {
      const x = outO[c]![i]!, rr = outR[c], y = rr ? rr[i]! : x, o = base + c * 4;
      if (min) { if (x < bk[o]!) bk[o] = x; if (y < bk[o + 1]!) bk[o + 1] = y; }
      else { bk[o] = x; bk[o + 1] = y; }
    }
  }

  /**
   * The entry with record n of `src`'s key: >= 0 when present, else
   * -(free slot + 1), to hand to `put`. For merge.ts, which joins entries
   * exported by shares.
   */
  lookup(src: FlowRecords, n: number): number {
    const kw = this.kw, k = this.k;
    for (let w = 0; w < kw; w++) k[w] = src.keys[n * kw + w]!;
    this.room();
    return this.probe(k, keyHash(k, 0, this.kw));
  }

  /** Whether record n of `src` continues entry e (it started within the timeout of the entry's last packet). */
  continues(e: number, src: FlowRecords, n: number): boolean {
    return firstTs(src.rec, n * REC) - this.rec[e * REC + LAST]! <= this.timeout;
  }

  /** Puts record n of `src` where `lookup` said: over entry `at` (>= 0), or as a new entry in free slot -at-1. */
  put(at: number, src: FlowRecords, n: number): void {
    const kw = this.kw, C4 = 4 * this.c;
    const e = at >= 0 ? at : this.insertAt(-at - 1, keyHash(src.keys, n, this.kw));
    for (let w = 0; w < kw; w++) this.keys[e * kw + w] = src.keys[n * kw + w]!;
    for (let w = 0; w < REC; w++) this.rec[e * REC + w] = src.rec[n * REC + w]!;
    this.rec[e * REC + META] = src.rec[n * REC + META]! & ~HEAD;
    for (let w = 0; w < C4; w++) this.bk[e * C4 + w] = src.bk[n * C4 + w]!;
  }

  /**
   * Joins record n of `src` into entry s, by `update`'s rules, so
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
        rec[r + FR0 + d] = sr[q + FR0 + d]!;
        meta |= seen | (sm & synBit);
        for (let c = 0; c < this.c; c++) { bk[bo + c * 4] = src.bk[bs + c * 4]!; bk[bo + c * 4 + 1] = src.bk[bs + c * 4 + 1]!; }
        continue;
      }
      rec[r + o] = rec[r + o]! + sr[q + o]!;
      rec[r + o + 1] = rec[r + o + 1]! + sr[q + o + 1]!;
      rec[r + FR0 + d] = rec[r + FR0 + d]! + sr[q + FR0 + d]!;
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
    for (let e = 0; e < this.count; e++) {
      if (!last && !(this.rec[e * REC + META]! & HEAD)) pushRecord(this.exports, this.keys, this.rec, this.bk, e);
      this.end(e);
    }
    // Drop the arrays (a finished table may be held until its share's result is posted).
    this.count = 0;
    this.slotw = new Int32Array(MIN_SLOTS * 2);
    this.mask = MIN_SLOTS - 1;
    this.keys = new Uint32Array(MIN_ENTRIES * this.kw);
    this.rec = new Float64Array(MIN_ENTRIES * REC);
    this.bk = new Int32Array(MIN_ENTRIES * 4 * this.c);
    this.hashes = new Int32Array(MIN_ENTRIES);
    this.flushEnded();
  }
}
