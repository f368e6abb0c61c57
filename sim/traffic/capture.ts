/**
 * Streaming pcap and pcapng readers: records -> decodeFrame -> TupleBatch.
 *
 * pcap: the four magics (µs/ns, either byte order). pcapng: sections in either
 * byte order, several sections, interfaces with their own link type,
 * if_tsresol and if_tsoffset, enhanced/simple/obsolete packet blocks; other
 * blocks skipped. gzip is recognised by its magic; '-' reads stdin.
 *
 * The formats' constants and headers are in capture-format.ts; where a
 * capture may be split between workers, in share-plan.ts. Each worker jumps to
 * its byte range and reads it alone (DESIGN.md, Habits: relaying bytes from a
 * main thread was slower than one thread on two cores).
 *
 * Damaged input never crashes or hangs: by default the first bad record is a
 * DataError naming the file and byte offset; with `lenient` the reader skips
 * to the next plausible record and counts it.
 */
import { DataError } from '../core/errors.ts';
import { copySlot, createBatch, F, L4, type TupleBatch } from './batch.ts';
import { ByteInput, openByteInput } from './byte-input.ts';
import { DEC, DEC_REASON, decodeFrame, fragInfo, linktypeSupported, writeL4 } from './decode.ts';
import * as format from './capture-format.ts';
import { checkPcapngVersion, type Iface, parsePcapHeader, unknownLinktype } from './capture-format.ts';
import { Defrag, FRAG_DROPPED, FRAG_RESOLVED, type DefragLimits } from './defrag.ts';
import { CARRY_DATA, FragmentCarry, noteFragment, type CarriedFragments } from './frag-carry.ts';
import { fastLoopFor, fastPcapSwitch, fastState, fastSums } from './pcap-fast.ts';
import { wasmPcapFor } from './pcap-wasm.ts';
import { accountSums, countSkip, newStats, sumLanes, type IngestStats, type PacketInput } from './input.ts';

export interface CaptureOptions {
  /** Byte range of this share (from planShares); records starting at or after `end` belong to the next share. */
  start?: number;
  end?: number;
  /** Skip and count damaged records instead of failing. */
  lenient?: boolean;
  /** Stop after this many delivered packets. */
  limit?: number;
  /** Time window, seconds (inclusive): earlier packets are skipped, the first later one ends the input. */
  from?: number;
  to?: number;
  /** Reassembly limits (entries, timeouts). */
  defrag?: DefragLimits;
  /** Name used in messages (default: the path). */
  label?: string;
  /**
   * No conntrack in the namespace, so nothing defragments (`simulate
   * --no-conntrack`): every fragment is delivered as it came, a packet of its
   * own, its L4 lanes read from its own first payload bytes (see `ownL4`).
   */
  noDefrag?: boolean;
  /**
   * With `noDefrag`: receives, at a fragment's batch slot, its IP
   * identification (IPv4 16 bits, IPv6 32), so that a caller can tell which
   * fragments were one datagram (written only at slots flagged F.FRAGMENT;
   * at least the batch's capacity long).
   */
  fragIds?: Uint32Array;
  /**
   * This range is one share of a longer stream: fragments whose datagram does
   * not complete here are carried to the merge (frag-carry.ts, `carried()`)
   * instead of being counted as `unresolved-fragment`, and so are the
   * fragments that killed such a datagram.
   */
  carry?: boolean;
}

const STOP_FULL = 0, STOP_END = 1, STOP_FRAG = 2;
/** exDig value of a slot without a timestamp (pcapng simple packet block): formatTs prints ''. */
const UNTIMED = 255;
/**
 * Ring slot states besides a pending datagram's defrag slot (>= 0): -1 ready
 * to deliver; the others are skipped and counted by reason.
 */
const RING_UNRESOLVED = -2, RING_DUPLICATE = -3, RING_BAD = -4;
/** Fewest packets a run must have room for to move the read window into its batch (runPcap). */
const MOVE_MIN_PACKETS = 64;
// Module-local aliases: imported bindings are getter calls under tsx, too slow per packet.
const decode = decodeFrame;
const DEC_FRAGMENT = DEC.FRAGMENT;
const REASON: readonly string[] = DEC_REASON;
const u32 = format.u32, u16 = format.u16;
const PCAP_MAX_CAPLEN = format.PCAP_MAX_CAPLEN, PCAPNG_MAX_BLOCK = format.PCAPNG_MAX_BLOCK, SHB = format.SHB, BOM = format.BOM;

const Fmt = { PCAP: 0, PCAPNG: 1 } as const;
type Fmt = 0 | 1;

export class CaptureInput implements PacketInput {
  readonly stats: IngestStats = newStats();
  readonly name: string;
  private inp: ByteInput;
  private fmt: Fmt = Fmt.PCAP;
  private readonly end: number;
  private readonly lenient: boolean;
  private readonly limit: number;
  private readonly from: number;
  private readonly to: number;
  private done = false;
  private stop = STOP_FULL;
  private closed = false;
  // pcap
  private le = true;
  private scale = 1e-6;
  private fracLimit = 1e6;
  private digits = 6;
  private linktype = 1;
  private snaplen = 0;
  private refSec = -1;
  // pcapng
  private ifaces: Iface[] = [];
  private spbTs = 0;
  // raw-record mode (nextRaw): set while nextRaw reads a pcapng block
  private raw: RawRecord | null = null;
  private rawDummy: TupleBatch | null = null;
  // exact time of the slots last filled (ns within the second, and decimal digits to print)
  private exNs: Float64Array = new Float64Array(0);
  private exDig: Uint8Array = new Uint8Array(0);
  private stNs: Float64Array;
  private stDig: Uint8Array;
  // fragment hold-back: a ring of packets waiting for their datagram to complete
  private readonly defrag: Defrag;
  private readonly noDefrag: boolean;
  private readonly fragIds: Uint32Array | null;
  private staging: TupleBatch | null = null;
  private stSlot: Int32Array;
  private stHead = 0;
  private stCount = 0;
  private readonly stCap: number;
  private lastTs = 0;
  private fragCount = 0;
  // carried fragments (opts.carry): each ring slot's fragment description, and what was handed over
  private readonly carry: FragmentCarry | null;
  private stInfo: Uint32Array = new Uint32Array(0);
  private stData: Uint8Array = new Uint8Array(0);
  // fill()'s accounting: slots [0, acctTo) of acctOut are summed in acct (bytes, truncated, fragments)
  private acctOut: TupleBatch | null = null;
  private acctTo = 0;
  private readonly acct = new Float64Array(3);

  constructor(path: string | Uint8Array, opts: CaptureOptions = {}) {
    this.name = opts.label ?? (typeof path === 'string' ? (path === '-' ? '<stdin>' : path) : '<memory>');
    this.lenient = opts.lenient ?? false;
    this.limit = opts.limit ?? Infinity;
    this.from = opts.from ?? -Infinity;
    this.to = opts.to ?? Infinity;
    const start = opts.start ?? 0;
    this.inp = openByteInput(path, 0, undefined, this.name);
    const size = this.inp.size;
    this.end = opts.end === undefined || (size >= 0 && opts.end >= size) || this.inp.gzip ? Infinity : opts.end;
    if (start > 0 && (this.inp.gzip || size < 0)) {
      this.inp.close();
      throw new DataError(this.name, 'a compressed capture or stdin cannot be read from a byte offset; read it whole');
    }
    this.defrag = new Defrag(opts.defrag);
    this.noDefrag = opts.noDefrag ?? false;
    this.fragIds = opts.fragIds ?? null;
    this.carry = opts.carry && !this.noDefrag ? new FragmentCarry() : null;
    this.stCap = 16384;
    this.stSlot = new Int32Array(this.stCap);
    this.stNs = new Float64Array(this.stCap);
    this.stDig = new Uint8Array(this.stCap);
    this.defrag.onDrop = (s) => this.onDrop(s);
    this.defrag.onResolve = (s) => this.onResolve(s);
    this.fmt = Fmt.PCAP;
    try {
      this.readFileHeader(start);
    } catch (e) {
      this.inp.close();
      throw e;
    }
  }

  private where(off: number): string {
    return `${this.name}: byte ${off}`;
  }

  private readFileHeader(start: number): void {
    const inp = this.inp;
    const have = inp.ensure(28);
    if (have === 0) throw new DataError(this.name, 'empty file, not a pcap or pcapng capture');
    const head = inp.buf.subarray(inp.pos, inp.pos + Math.min(have, 28));
    const ph = parsePcapHeader(head.subarray(0, Math.min(have, 24)), this.name);
    if (ph) {
      this.fmt = Fmt.PCAP;
      this.le = ph.le;
      this.scale = ph.nano ? 1e-9 : 1e-6;
      this.fracLimit = ph.nano ? 1e9 : 1e6;
      this.digits = ph.nano ? 9 : 6;
      this.linktype = ph.linktype;
      this.snaplen = ph.snaplen;
      if (!linktypeSupported(ph.linktype)) throw unknownLinktype(this.name, 20, ph.linktype);
      if (have >= 28) this.refSec = u32(inp.buf, inp.pos + 24, ph.le);
      inp.pos += 24;
      if (start > 24) inp.seek(start);
      return;
    }
    if (have >= 4 && u32(head, 0, true) === SHB) {
      this.fmt = Fmt.PCAPNG;
      if (start > 0) {
        // Read the first section's header and interfaces, then jump to the share.
        this.readNgPreamble(start);
        inp.seek(start);
      }
      return;
    }
    const hex = Array.from(head.subarray(0, 4), (x) => x.toString(16).padStart(2, '0')).join(' ');
    throw new DataError(`${this.name}: byte 0`, `not a pcap or pcapng capture (magic ${hex}; pcap starts a1 b2 c3 d4 / d4 c3 b2 a1 / a1 b2 3c 4d / 4d 3c b2 a1, pcapng 0a 0d 0d 0a)`);
  }

  /** Reads blocks from offset 0 until the first packet block or `limit`, keeping SHB/IDB state. */
  private readNgPreamble(limit: number): void {
    const inp = this.inp;
    while (inp.offset < limit) {
      if (inp.ensure(12) < 12) return;
      const type = u32(inp.buf, inp.pos, this.le);
      if (type === 6 || type === 3 || type === 2) return;
      if (!this.ngBlock(null, 0)) return;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.inp.close();
  }

  /**
   * The exact timestamp of slot i of the batch last filled, as text with the
   * capture's precision (Float64 seconds cannot hold nanoseconds since 1970);
   * '' for a packet the capture gave no timestamp (a pcapng simple packet block).
   */
  formatTs(b: TupleBatch, i: number): string {
    if (this.fmt === Fmt.PCAP) {
      const ts = b.ts[i]!;
      if (this.digits === 6) {
        let sec = Math.floor(ts), us = Math.round((ts - sec) * 1e6);
        if (us >= 1000000) { sec++; us -= 1000000; }
        return `${sec}.${String(us).padStart(6, '0')}`;
      }
      return `${Math.round(ts - this.exNs[i]! * 1e-9)}.${String(this.exNs[i]!).padStart(9, '0')}`;
    }
    const ns = this.exNs[i]!;
    const dig = this.exDig[i]!;
    if (dig === UNTIMED) return '';
    const sec = Math.round(b.ts[i]! - ns * 1e-9);
    if (dig === 0) return String(sec);
    const frac = String(Math.round(ns / 10 ** (9 - Math.min(dig, 9)))).padStart(Math.min(dig, 9), '0');
    return `${sec}.${frac}`;
  }

  fill(out: TupleBatch): number {
    if (this.exNs.length < out.capacity) { this.exNs = new Float64Array(out.capacity); this.exDig = new Uint8Array(out.capacity); }
    this.acctOut = out;
    this.acctTo = 0;
    this.acct.fill(0);
    let n = 0;
    let cap = out.capacity;
    const left = this.limit - this.stats.packets;
    if (left < cap) cap = Math.max(0, left);
    for (;;) {
      if (this.stCount > 0) n = this.drain(out, n, cap);
      if (n >= cap) break;
      if (this.stCount > 0) {
        // Blocked behind a fragment whose datagram is incomplete: read ahead into the ring.
        const h = this.stHead, hs = this.stSlot[h]!;
        if (hs >= 0 && this.defrag.expired(hs, this.lastTs)) { this.defrag.drop(hs); continue; }
        if (this.done || this.stCount === this.stCap) {
          if (hs >= 0) this.defrag.drop(hs);
          else if (this.done) this.defrag.dropAll();
          continue;
        }
        const idx = (h + this.stCount) % this.stCap;
        const st = this.staging!;
        const m = this.run(st, idx, idx + 1, this.stNs, this.stDig);
        if (m === idx + 1) { this.stSlot[idx] = -1; this.stCount++; }
        else if (this.stop === STOP_FRAG) {
          this.stSlot[idx] = -1;
          this.stCount++;
          this.addFragment(st, idx, true);
        }
        if (this.stop === STOP_END) this.done = true;
        continue;
      }
      if (this.done) break;
      n = this.run(out, n, cap, this.exNs, this.exDig);
      if (this.stop === STOP_END) { this.done = true; this.defrag.dropAll(); continue; }
      if (this.stop === STOP_FRAG) {
        if (this.addFragment(out, n, false)) n++;
      }
    }
    out.count = n;
    sumLanes(out, this.acctTo, n, this.acct);
    this.acctOut = null;
    accountSums(this.stats, out, 0, n, this.acct);
    return n;
  }

  /** Handles a fragment decoded into slot i; true if it can be delivered now (not in the ring). */
  private addFragment(b: TupleBatch, i: number, inRing: boolean): boolean {
    this.fragCount++;
    if (this.noDefrag) {
      if (this.fragIds) this.fragIds[i] = fragInfo.id >>> 0;
      ownL4(b, i, this.inp.buf);
      return true;
    }
    if ((this.fragCount & 1023) === 0) this.defrag.expire(this.lastTs);
    const r = this.defrag.add(b, i, b.ts[i]!, this.inp.buf);
    const slot = r >>> 2, verdict = r & 3;
    if (verdict === FRAG_RESOLVED) {
      this.defrag.apply(slot, b, i);
      // The datagram is counted where it completes (packets vs frames, batch.ts L4.COMPLETES).
      b.l4flags[i] = b.l4flags[i]! | L4.COMPLETES;
      return true;
    }
    if (verdict === FRAG_DROPPED) {
      // The kernel's defrag drops this fragment (a duplicate, or one that broke its datagram).
      if (inRing) { this.note(i); this.stSlot[i] = this.defrag.dropReason === 'duplicate-fragment' ? RING_DUPLICATE : RING_BAD; }
      else countSkip(this.stats, this.defrag.dropReason);
      return false;
    }
    if (inRing) { this.note(i); this.stSlot[i] = slot; return false; }
    // Move the packet into the ring; everything after it waits too (order is kept).
    if (!this.staging) this.staging = createStaging(this.stCap);
    const idx = (this.stHead + this.stCount) % this.stCap;
    this.note(idx);
    copySlot(b, i, this.staging, idx);
    this.stNs[idx] = this.exNs[i]!;
    this.stDig[idx] = this.exDig[i]!;
    this.stSlot[idx] = slot;
    this.stCount++;
    return false;
  }

  /** With `carry`: keeps the description of the fragment just decoded, for ring slot idx (handed over if it is carried). */
  private note(idx: number): void {
    if (!this.carry) return;
    if (this.stInfo.length === 0) { this.stInfo = new Uint32Array(this.stCap * 6); this.stData = new Uint8Array(this.stCap * CARRY_DATA); }
    noteFragment(this.stInfo, this.stData, idx, this.inp.buf);
  }

  /** The fragments carried to the merge (with `carry`), once the input is read to its end. */
  carried(): CarriedFragments | null {
    return this.carry ? this.carry.result() : null;
  }

  private onResolve(slot: number): void {
    const st = this.staging;
    if (!st) return;
    for (let k = 0, idx = this.stHead; k < this.stCount; k++, idx = idx + 1 === this.stCap ? 0 : idx + 1) {
      if (this.stSlot[idx] === slot) { this.defrag.apply(slot, st, idx); this.stSlot[idx] = -1; }
    }
  }

  private onDrop(slot: number): void {
    for (let k = 0, idx = this.stHead; k < this.stCount; k++, idx = idx + 1 === this.stCap ? 0 : idx + 1) {
      if (this.stSlot[idx] === slot) this.stSlot[idx] = RING_UNRESOLVED;
    }
  }

  /** Moves ready packets from the ring head to out[n..cap). */
  private drain(out: TupleBatch, n: number, cap: number): number {
    const st = this.staging!;
    while (this.stCount > 0 && n < cap) {
      const h = this.stHead;
      const s = this.stSlot[h]!;
      if (s >= 0) break;
      // A share of a longer stream carries what its reassembly could not finish: the merge replays it (frag-carry.ts).
      if (this.carry && (s === RING_UNRESOLVED || s === RING_BAD)) this.carry.push(st, h, this.stInfo, this.stData, h);
      else if (s === RING_UNRESOLVED) countSkip(this.stats, 'unresolved-fragment');
      else if (s === RING_DUPLICATE) countSkip(this.stats, 'duplicate-fragment');
      else if (s === RING_BAD) countSkip(this.stats, 'bad-fragment');
      else {
        copySlot(st, h, out, n);
        this.exNs[n] = this.stNs[h]!;
        this.exDig[n] = this.stDig[h]!;
        n++;
      }
      this.stHead = h + 1 === this.stCap ? 0 : h + 1;
      this.stCount--;
    }
    return n;
  }

  /** Decodes records into dst[n..max); stops at max, at the end, or after a fragment (left in dst[n]). */
  private run(dst: TupleBatch, n: number, max: number, exNs: Float64Array, exDig: Uint8Array): number {
    if (this.fmt === Fmt.PCAP) return this.runPcap(dst, n, max, exNs, exDig);
    return this.runNg(dst, n, max, exNs, exDig);
  }

  private runPcap(dst: TupleBatch, n: number, max: number, exNs: Float64Array, exDig: Uint8Array): number {
    const inp = this.inp;
    let buf = inp.buf, dv = inp.view, pos = inp.pos, lim = inp.lim;
    const le = this.le, scale = this.scale, lt = this.linktype, end = this.end, from = this.from, to = this.to;
    // Microsecond pcaps: the Float64 ts is exact enough to print; only nanoseconds need the side lane.
    const nano = this.digits === 9;
    const maxCap = this.maxCaplen();
    const tsl = dst.ts, wl = dst.wirelen;
    const useFast = lt === 1 && !nano && fastPcapSwitch.on;
    // The WebAssembly loop reads the window in the batch's own memory: move the window there
    // (a copy of the unread bytes, up to the whole window), but not for a few packets: the
    // fragment ring reads ahead into its own batch one packet at a time, between fills of `dst`.
    const wasm = useFast ? wasmPcapFor(dst) : null;
    if (wasm && buf !== wasm.window && dst !== this.staging && max - n >= MOVE_MIN_PACKETS && inp.useWindow(wasm.window)) {
      buf = inp.buf; dv = inp.view; pos = inp.pos; lim = inp.lim;
    }
    this.stop = STOP_FULL;
    while (n < max) {
      if (wasm && buf === wasm.window || useFast) {
        const n0 = n, stop = Math.min(end - inp.base - 1, lim - 16);
        let bytes: number, trunc: number;
        if (wasm && buf === wasm.window) {
          n = wasm.run(pos, stop, lim, n, max, maxCap, le, from, to);
          pos = wasm.stopped; bytes = wasm.bytes; trunc = wasm.truncated;
        } else {
          // A fast loop is compiled for one window, one batch and one capture shape (pcap-fast.ts);
          // the window is replaced only to hold a record larger than it, and passed on to the next
          // reader when this one closes (byte-input.ts), which then finds the loop here.
          const fast = fastLoopFor(buf, dv, dst, { le, scale, maxCap, window: from !== -Infinity || to !== Infinity });
          n = fast(pos, stop, lim, n, max, from, to);
          pos = fastState[0]!; bytes = fastSums[0]!; trunc = fastSums[1]!;
        }
        if (n > n0 && dst === this.acctOut) {
          // The loop summed its packets' bytes and truncated count (it delivers no fragments):
          // fill() reads the lanes back only for packets other paths delivered. Measured on the
          // snaplen-96 bench capture: reading all back took ~9 of ~165 ms a pass (perf); summing
          // in the loop instead made the reader 2-3% faster.
          sumLanes(dst, this.acctTo, n0, this.acct);
          this.acct[0] = this.acct[0]! + bytes;
          this.acct[1] = this.acct[1]! + trunc;
          this.acctTo = n;
        }
        if (n >= max) break;
      }
      if (lim - pos < 16) {
        inp.pos = pos;
        const have = inp.ensure(16);
        buf = inp.buf; dv = inp.view; pos = inp.pos; lim = inp.lim;
        if (have < 16) {
          if (have > 0 && inp.base + pos < end) {
            this.bad(inp.base + pos, `file ends inside a record header (${have} of 16 bytes)`);
            pos = lim;
          }
          this.stop = STOP_END;
          break;
        }
      }
      const roff = inp.base + pos;
      if (roff >= end) { this.stop = STOP_END; break; }
      // DataView loads compile to one load (+bswap); byte-wise assembly was measured ~2x slower.
      // A sub-second field of a second or more (frac >= 1e6 or 1e9, written by broken tools) carries into the
      // seconds: ts is their sum, and the nanosecond side lane keeps frac % 1e9 so that formatTs prints the same
      // instant. One rule for both precisions. tshark 4.0.17 prints such a field raw after the dot
      // (1700000000.1500000000 for 1.5e9 ns) and tcpdump 4.99 likewise; neither is a time, so we carry.
      const sec = dv.getUint32(pos, le), frac = dv.getUint32(pos + 4, le), caplen = dv.getUint32(pos + 8, le), wirelen = dv.getUint32(pos + 12, le);
      if (caplen > maxCap) {
        inp.pos = pos;
        this.bad(roff, `record caplen ${caplen} is larger than any capture allows (${maxCap})`);
        this.resyncPcap();
        buf = inp.buf; dv = inp.view; pos = inp.pos; lim = inp.lim;
        continue;
      }
      if (lim - pos < 16 + caplen) {
        inp.pos = pos;
        const have = inp.ensure(16 + caplen);
        buf = inp.buf; dv = inp.view; pos = inp.pos; lim = inp.lim;
        if (have < 16 + caplen) {
          this.bad(roff, `file ends inside a record (caplen ${caplen}, ${have - 16} bytes left)`);
          pos = lim;
          this.stop = STOP_END;
          break;
        }
      }
      const p = pos + 16;
      pos = p + caplen;
      const ts = sec + frac * scale;
      if (ts < from) { countSkip(this.stats, 'before-window'); continue; }
      if (ts > to) { this.stop = STOP_END; break; }
      const r = decode(buf, p, caplen, lt, dst, n, wirelen - caplen);
      if (r === 0) {
        tsl[n] = ts; wl[n] = wirelen;
        if (nano) exNs[n] = frac % 1e9;
        n++;
        continue;
      }
      if (r === DEC_FRAGMENT) {
        tsl[n] = ts; wl[n] = wirelen;
        if (nano) exNs[n] = frac % 1e9;
        this.lastTs = ts;
        this.stop = STOP_FRAG;
        inp.pos = pos;
        // Fragment data must stay readable for defrag.add: it is still in the window (pos is past it, nothing refills before).
        return n;
      }
      countSkip(this.stats, REASON[r]!);
    }
    inp.pos = pos;
    if (n > 0) this.lastTs = tsl[n - 1]!;
    return n;
  }

  /** Largest believable caplen: libpcap's 262144, or a larger snaplen up to 16 MiB. */
  private maxCaplen(): number {
    return Math.min(Math.max(this.snaplen, PCAP_MAX_CAPLEN), PCAPNG_MAX_BLOCK);
  }

  /** A damaged record: DataError, or (lenient) count it. */
  private bad(off: number, what: string): void {
    if (!this.lenient) throw new DataError(this.where(off), what);
    countSkip(this.stats, 'bad-record');
  }

  /** Whether a plausible pcap record header sits at window offset o (for resynchronising). */
  private pcapPlausible(buf: Uint8Array, o: number): boolean {
    const le = this.le;
    const frac = u32(buf, o + 4, le), caplen = u32(buf, o + 8, le), wirelen = u32(buf, o + 12, le);
    if (frac >= this.fracLimit || caplen > wirelen || wirelen > 0x100000) return false;
    if (caplen > this.maxCaplen()) return false;
    if (this.snaplen > 0 && caplen > this.snaplen && this.snaplen >= 64) return false;
    if (this.refSec >= 0) {
      const sec = u32(buf, o, le);
      if (Math.abs(sec - this.refSec) > 1e8) return false;
    }
    return true;
  }

  /** Checks a chain of `k` plausible records starting at inp.pos (a clean end of input also counts). */
  private pcapChain(k: number): boolean {
    const inp = this.inp;
    let off = 0;
    for (let r = 0; r < k; r++) {
      const have = inp.ensure(off + 16);
      if (have < off + 16) return r > 0 && have === off;
      if (!this.pcapPlausible(inp.buf, inp.pos + off)) return false;
      off += 16 + u32(inp.buf, inp.pos + off + 8, this.le);
    }
    return true;
  }

  /** Lenient recovery: advance byte by byte to the next chain of plausible records. */
  private resyncPcap(): boolean {
    const inp = this.inp;
    inp.pos++;
    for (let tries = 0; tries < 64 * 1024 * 1024; tries++) {
      if (inp.ensure(16) < 16) { inp.pos = inp.lim; return false; }
      if (inp.base + inp.pos >= this.end) return false;
      if (this.pcapChain(4)) return true;
      inp.pos++;
    }
    return false;
  }

  // ---- pcapng -------------------------------------------------------------

  private runNg(dst: TupleBatch, n: number, max: number, exNs: Float64Array, exDig: Uint8Array): number {
    this.stop = STOP_FULL;
    while (n < max) {
      const r = this.ngBlock(dst, n, exNs, exDig);
      if (r === 0) { this.stop = STOP_END; break; }
      if (r === 2) { n++; continue; }
      if (r === 3) { this.stop = STOP_FRAG; this.lastTs = dst.ts[n]!; return n; }
    }
    if (n > 0) this.lastTs = dst.ts[n - 1]!;
    return n;
  }

  /**
   * Reads one pcapng block. With dst null only section/interface state is
   * kept. Returns 0 at the end, 1 for a block that delivered nothing, 2 for a
   * packet in dst[n], 3 for a fragment left in dst[n].
   */
  private ngBlock(dst: TupleBatch | null, n: number, exNs?: Float64Array, exDig?: Uint8Array): number {
    const inp = this.inp;
    const have = inp.ensure(12);
    const off = inp.offset;
    if (have === 0 || off >= this.end) return 0;
    if (have < 12) { this.bad(off, `file ends inside a block header (${have} bytes)`); inp.pos = inp.lim; return 0; }
    let buf = inp.buf, pos = inp.pos;
    let le = this.le;
    const type = u32(buf, pos, le);
    if (type === SHB) {
      const bom = u32(buf, pos + 8, true);
      if (bom === BOM) le = true;
      else if (bom === 0x4d3c2b1a) le = false;
      else { this.bad(off + 8, `section header byte-order magic ${bom.toString(16)} is not 1a2b3c4d`); return this.resyncNg(); }
    }
    const blen = u32(buf, pos + 4, le);
    if (blen < 12 || (blen & 3) !== 0 || blen > PCAPNG_MAX_BLOCK) {
      this.bad(off + 4, `block length ${blen} is impossible (needs a multiple of 4, 12..${PCAPNG_MAX_BLOCK})`);
      return this.resyncNg();
    }
    const got = inp.ensure(blen);
    buf = inp.buf; pos = inp.pos;
    if (got < blen) { this.bad(off, `file ends inside a block (length ${blen}, ${got} bytes left)`); inp.pos = inp.lim; return 0; }
    const trailer = u32(buf, pos + blen - 4, le);
    if (trailer !== blen) {
      this.bad(off + blen - 4, `block length ${blen} at byte ${off + 4} disagrees with its trailing copy ${trailer}`);
      return this.resyncNg();
    }
    inp.pos = pos + blen;
    switch (type) {
      case SHB: {
        if (blen < 28) { this.bad(off, `section header block of ${blen} bytes is too short`); return 1; }
        // An unknown version is no damage to skip: the section's blocks cannot be read, so even lenient refuses.
        checkPcapngVersion(this.name, off + 12, u16(buf, pos + 12, le), u16(buf, pos + 14, le));
        this.le = le;
        this.ifaces = [];
        return 1;
      }
      case 1: {
        if (blen < 20) { this.bad(off, `interface description block of ${blen} bytes is too short`); return 1; }
        const lt = u16(buf, pos + 8, le);
        const iface: Iface = { linktype: lt, snaplen: u32(buf, pos + 12, le), div: 1e6, pow2: 0, digits: 6, offset: 0, ok: linktypeSupported(lt) };
        // options
        let o = pos + 16;
        const oend = pos + blen - 4;
        while (o + 4 <= oend) {
          const code = u16(buf, o, le), len = u16(buf, o + 2, le);
          if (code === 0 || o + 4 + len > oend) break;
          if (code === 9 && len >= 1) {
            const v = buf[o + 4]!;
            if (v & 0x80) { iface.pow2 = v & 0x7f; iface.div = 2 ** iface.pow2; iface.digits = Math.min(9, iface.pow2); }
            else { iface.pow2 = 0; iface.div = 10 ** v; iface.digits = v; }
          } else if (code === 14 && len >= 8) {
            const lo = u32(buf, o + 4 + (le ? 0 : 4), le), hi = u32(buf, o + 4 + (le ? 4 : 0), le) | 0;
            iface.offset = hi * 4294967296 + lo;
          }
          o += 4 + ((len + 3) & ~3);
        }
        if (!iface.ok && !this.lenient) throw unknownLinktype(this.name, off + 8, lt);
        this.ifaces.push(iface);
        return 1;
      }
      case 6: case 2: case 3: {
        if (!dst) return 1;
        let ifx: number, hi = 0, lo = 0, caplen: number, wirelen: number, data: number;
        if (type === 3) {
          ifx = 0;
          wirelen = u32(buf, pos + 8, le);
          caplen = Math.min(wirelen, blen - 16);
          data = pos + 12;
        } else {
          if (blen < 32) { this.bad(off, `packet block of ${blen} bytes is too short`); return 1; }
          ifx = type === 6 ? u32(buf, pos + 8, le) : u16(buf, pos + 8, le);
          hi = u32(buf, pos + 12, le); lo = u32(buf, pos + 16, le);
          caplen = u32(buf, pos + 20, le); wirelen = u32(buf, pos + 24, le);
          data = pos + 28;
          if (caplen > blen - 32) { this.bad(off + 20, `captured length ${caplen} does not fit in a block of ${blen} bytes`); return 1; }
        }
        const iface = this.ifaces[ifx];
        if (!iface) { this.bad(off + 8, `packet refers to interface ${ifx}, but the section describes ${this.ifaces.length}`); return 1; }
        if (!iface.ok) { countSkip(this.stats, `linktype-${iface.linktype}`); return 1; }
        if (type === 3 && iface.snaplen > 0 && caplen > iface.snaplen) caplen = iface.snaplen;
        let sec: number, frac: number;
        if (type === 3) {
          // A simple packet block has no timestamp (pcapng spec; tshark 4.0.17 prints frame.time_epoch empty,
          // libpcap gives 0). Its slot prints no time (formatTs gives ''), and time-based state (conntrack,
          // flow and fragment timeouts, --from/--to) takes it as arriving with no time passed since the
          // previous packet (before any timed packet: at 0). Counted in stats.untimed, which the commands report.
          sec = this.spbTs; frac = 0;
        } else if (iface.pow2 === 0) {
          // 64-bit units / 10^k without BigInt: long division in 16-bit steps (all values stay below 2^53).
          const d = iface.div;
          const qh = Math.floor(hi / d);
          let r = hi - qh * d;
          let t = r * 65536 + (lo >>> 16);
          const q2 = Math.floor(t / d);
          r = t - q2 * d;
          t = r * 65536 + (lo & 0xffff);
          const q3 = Math.floor(t / d);
          frac = t - q3 * d;
          sec = qh * 4294967296 + q2 * 65536 + q3;
        } else {
          const p2 = iface.pow2;
          if (p2 >= 32) { sec = Math.floor(hi / 2 ** (p2 - 32)); frac = (hi - sec * 2 ** (p2 - 32)) * 4294967296 + lo; }
          else { sec = hi * 2 ** (32 - p2) + Math.floor(lo / 2 ** p2); frac = lo % 2 ** p2; }
        }
        const ts = type === 3 ? sec : sec + iface.offset + frac / iface.div;
        if (ts < this.from) { countSkip(this.stats, 'before-window'); return 1; }
        if (ts > this.to) return 0;
        this.spbTs = ts;
        if (this.raw) { setRaw(this.raw, buf, data, caplen, wirelen, iface.linktype, ts, off); return 2; }
        const r = decodeFrame(buf, data, caplen, iface.linktype, dst, n, wirelen - caplen);
        if (r === DEC.OK || r === DEC.FRAGMENT) {
          dst.ts[n] = ts;
          dst.wirelen[n] = wirelen;
          exNs![n] = iface.pow2 === 0 ? (iface.digits <= 9 ? frac * 10 ** (9 - iface.digits) : Math.round(frac / 10 ** (iface.digits - 9))) : Math.round((frac / iface.div) * 1e9);
          exDig![n] = type === 3 ? UNTIMED : Math.min(9, iface.digits);
          if (type === 3) this.stats.untimed++;
          return r === DEC.OK ? 2 : 3;
        }
        countSkip(this.stats, DEC_REASON[r]!);
        return 1;
      }
      default:
        return 1;
    }
  }

  /** Checks a chain of plausible pcapng blocks at inp.pos. */
  private ngChain(k: number): boolean {
    const inp = this.inp;
    let off = 0;
    for (let r = 0; r < k; r++) {
      const have = inp.ensure(off + 12);
      if (have < off + 12) return r > 0 && have === off;
      const type = u32(inp.buf, inp.pos + off, this.le);
      let le = this.le;
      if (type === SHB) {
        const bom = u32(inp.buf, inp.pos + off + 8, true);
        if (bom === BOM) le = true; else if (bom === 0x4d3c2b1a) le = false; else return false;
      }
      const blen = u32(inp.buf, inp.pos + off + 4, le);
      if (blen < 12 || (blen & 3) !== 0 || blen > PCAPNG_MAX_BLOCK) return false;
      if (type !== SHB && type !== 1 && type !== 2 && type !== 3 && type !== 4 && type !== 5 && type !== 6 && type !== 10 && type !== 0xbad && type !== 0x40000bad) return false;
      const h2 = inp.ensure(off + blen);
      if (h2 < off + blen) return false;
      if (u32(inp.buf, inp.pos + off + blen - 4, le) !== blen) return false;
      off += blen;
    }
    return true;
  }

  /** Lenient recovery for pcapng: 4-byte steps to the next chain of plausible blocks. */
  private resyncNg(): number {
    const inp = this.inp;
    inp.pos += 4;
    for (let tries = 0; tries < 16 * 1024 * 1024; tries++) {
      if (inp.ensure(12) < 12) { inp.pos = inp.lim; return 0; }
      if (inp.offset >= this.end) return 0;
      if (this.ngChain(3)) return 1;
      inp.pos += 4;
    }
    return 0;
  }

  /** Plausibility chain at inp.pos, used by planShares. */
  chainAt(k: number): boolean {
    return this.fmt === Fmt.PCAP ? this.pcapChain(k) : this.ngChain(k);
  }
  get isPcapng(): boolean { return this.fmt === Fmt.PCAPNG; }

  /**
   * Raw-record iterator (replay needs the frames themselves, not tuples):
   * the next record's bytes, link type, lengths and timestamp, or null at the
   * end. `rec.data` is a view into the read window, valid until the next call.
   * Honours `from`/`to`, `end` and `lenient` like fill(); no decoding, no
   * defragmentation. Do not mix with fill() on the same source.
   */
  nextRaw(rec: RawRecord): RawRecord | null {
    if (this.fmt === Fmt.PCAPNG) {
      if (!this.rawDummy) this.rawDummy = createBatch(1);
      const ex = new Float64Array(1), dg = new Uint8Array(1);
      this.raw = rec;
      try {
        for (;;) {
          const r = this.ngBlock(this.rawDummy, 0, ex, dg);
          if (r === 0) return null;
          if (r === 2) return rec;
        }
      } finally { this.raw = null; }
    }
    const inp = this.inp;
    for (;;) {
      const have = inp.ensure(16);
      const roff = inp.offset;
      if (have < 16 || roff >= this.end) {
        if (have > 0 && have < 16 && roff < this.end) this.bad(roff, `file ends inside a record header (${have} of 16 bytes)`);
        return null;
      }
      const dv = inp.view, pos = inp.pos, le = this.le;
      const sec = dv.getUint32(pos, le), frac = dv.getUint32(pos + 4, le), caplen = dv.getUint32(pos + 8, le), wirelen = dv.getUint32(pos + 12, le);
      const maxCap = this.snaplen > PCAP_MAX_CAPLEN ? this.snaplen : PCAP_MAX_CAPLEN;
      if (caplen > maxCap) {
        this.bad(roff, `record caplen ${caplen} is larger than any capture allows (${maxCap})`);
        if (!this.resyncPcap()) return null;
        continue;
      }
      if (inp.ensure(16 + caplen) < 16 + caplen) {
        this.bad(roff, `file ends inside a record (caplen ${caplen})`);
        inp.pos = inp.lim;
        return null;
      }
      const p = inp.pos + 16;
      inp.pos = p + caplen;
      const ts = sec + frac * this.scale;
      if (ts < this.from) continue;
      if (ts > this.to) return null;
      setRaw(rec, inp.buf, p, caplen, wirelen, this.linktype, ts, roff);
      return rec;
    }
  }
  get input(): ByteInput { return this.inp; }
}

/** One capture record as read by CaptureInput.nextRaw. */
export interface RawRecord {
  /** The window the record sits in; the frame is buf[off, off + caplen). */
  buf: Uint8Array;
  off: number;
  caplen: number;
  wirelen: number;
  linktype: number;
  /** Seconds (Float64; sub-microsecond digits of nanosecond captures may round). */
  ts: number;
  /** Byte offset of the record in the file (for messages). */
  fileOffset: number;
}

export const newRawRecord = (): RawRecord => ({ buf: new Uint8Array(0), off: 0, caplen: 0, wirelen: 0, linktype: 1, ts: 0, fileOffset: 0 });

function setRaw(r: RawRecord, buf: Uint8Array, off: number, caplen: number, wirelen: number, linktype: number, ts: number, fileOffset: number): void {
  r.buf = buf; r.off = off; r.caplen = caplen; r.wirelen = wirelen; r.linktype = linktype; r.ts = ts; r.fileOffset = fileOffset;
}

function createStaging(cap: number): TupleBatch {
  return createBatch(cap);
}


/** Opens a capture file ('-' = stdin, .gz transparently) as a PacketInput. */
export function openCapture(path: string, opts: CaptureOptions = {}): CaptureInput {
  return new CaptureInput(path, opts);
}

/** Opens a capture held in memory (tests, fuzzing). */
export function openCaptureBuffer(data: Uint8Array, opts: CaptureOptions = {}): CaptureInput {
  return new CaptureInput(data, opts);
}

/**
 * A fragment as a namespace without conntrack sees it (nothing defragments:
 * nf_defrag_ipv4/ipv6 run only for conntrack's sake): the nft payload
 * expression for a transport-header field (`tcp sport`, `th dport`, ...) reads
 * at the transport offset of THIS fragment. The kernel sets the protocol and
 * transport offset from the IP header on every fragment
 * (include/net/netfilter/nf_tables_ipv4.h nft_set_pktinfo_ipv4: tprot =
 * ip->protocol, thoff = ip_hdrlen, whatever the fragment offset), so a
 * non-first fragment's "ports" are the first four bytes of its payload.
 * Measured on 6.18.44 (a prerouting chain, no conntrack in the namespace,
 * `ping -s 3000 -p abcd`): every non-first fragment matched `th sport 0xabcd`
 * and `th dport 0xabcd`, the pattern bytes at the start of its payload.
 * Source and measurement disagree here: the public tree we read
 * (net/netfilter/nft_payload.c at torvalds/linux 01581a21) breaks the rule on
 * `pkt->fragoff` for a transport-header read; the 6.18.44 kernel we measured
 * read the payload instead. We model what was measured.
 * A first fragment carries the real L4 header. Every fragment is a packet on
 * the node's counter (L4.COMPLETES). IPv6 follows the same model from source
 * reading only (ipv6_find_hdr gives the fragment's payload offset); not measured.
 */
function ownL4(b: TupleBatch, i: number, buf: Uint8Array): void {
  const rel = fragInfo.offset === 0 && fragInfo.l4rel > 0 ? fragInfo.l4rel : 0;
  const cap = Math.max(0, fragInfo.dataCap - rel), wire = fragInfo.dataWire - rel;
  writeL4(b, i, b.proto[i]!, buf, fragInfo.data + rel, cap, wire, F.FRAGMENT);
  b.l4flags[i] = b.l4flags[i]! | L4.COMPLETES;
}
