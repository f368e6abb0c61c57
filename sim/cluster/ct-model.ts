/**
 * The one conntrack validity model: which packets conntrack marks INVALID
 * (no conntrack attached: CLUSTERIP drops them on every node, xt_cluster and
 * nft `ct` keys match nothing, kernel-semantics §4.2, §5.3, §10 item 11).
 * Used by `simulate` (engine/share.ts, production: each connection followed
 * through the capture in order) and by `replay --verify`
 * (kernel-glue/replay/rewrite.ts, a sink: every packet judged alone, as
 * before conntrack confirms anything).
 *
 * What it mirrors (all **source reading** of net/netfilter/nf_conntrack_proto_*.c
 * unless a kernel test is named; the measured facts are the kernel tests'
 * counters, sim/engine/kernel-*.kernel.test.ts):
 * - TCP (nf_conntrack_proto_tcp.c): `tcp_error` refuses flag combinations
 *   outside `tcp_valid_flags` (PSH, ECE, CWR ignored) before any lookup;
 *   `tcp_new` opens an entry only where `tcp_conntracks[ORIGINAL][index][sNO]`
 *   is not sIV: a SYN (SYN_SENT), and an ACK-class packet (ESTABLISHED,
 *   "mid-stream pickup") only with nf_conntrack_tcp_loose=1, the kernel's
 *   default; a lone FIN, FIN|ACK, RST, SYN|ACK or a packet with no flags is
 *   INVALID. On an entry, `tcp_packet` looks the state up in
 *   `tcp_conntracks[direction][index][state]`: sIV is INVALID (the state stays),
 *   sIG is accepted without a state change, anything else is the new state.
 *   A SYN in the original direction on TIME_WAIT or CLOSE reopens the
 *   connection (the kernel kills the old entry and repeats: a new one).
 *   Not modelled: window tracking (`tcp_in_window`, out-of-window segments are
 *   INVALID with nf_conntrack_tcp_be_liberal=0), the per-state timeouts (one
 *   idle timeout for every state, conn-table.ts's), RST sequence checks, and
 *   the URG bit (the batch does not carry it: SYN|ACK|URG, RST|URG and
 *   RST|ACK|URG are judged as without URG; rewrite.ts passes the real byte).
 * - One direction only: a capture taken where only the client's packets pass
 *   shows an ACK or FIN right after the SYN. The kernel would have seen the
 *   server's SYN|ACK in between (SYN_SENT -> SYN_RECV); the model assumes it
 *   and counts the assumption (`Judge.assumed`), so callers can say so.
 * - UDP (nf_conntrack_proto_udp.c) and the generic tracker (GRE, ESP, SCTP,
 *   DCCP, ...): every packet with a valid header opens or refreshes an entry.
 * - ICMP (nf_conntrack_proto_icmp.c, icmpv6): a request (echo, timestamp,
 *   info, address mask; ICMPv6 echo and node information query) opens an entry keyed by its identifier;
 *   a reply is valid only against an entry the other side opened; any other
 *   type (errors included) is INVALID. The kernel accepts an error as
 *   RELATED when its inner header matches a connection; the batch does not
 *   carry the inner header, so production runs count those as INVALID and
 *   say how many (`Judge.icmpErrors`).
 */
import { F, FAMILY_IPV6, L4, type TupleBatch } from '../traffic/batch.ts';
import { connKey, connKeyWords } from './conn-key.ts';
import { hash4, keyHash } from '../hash/mix.ts';

/** The kernel's TCP states (enum tcp_conntrack), sNO = no entry. */
const sNO = 0, sSS = 1, sSR = 2, sES = 3, sFW = 4, sCW = 5, sLA = 6, sTW = 7, sCL = 8, sS2 = 9, sIV = 10, sIG = 11;
/** get_conntrack_index(): the packet's row in the table. */
const iSYN = 0, iSYNACK = 1, iFIN = 2, iACK = 3, iRST = 4, iNONE = 5;

/**
 * tcp_conntracks[dir][index][state] of nf_conntrack_proto_tcp.c (6.x), in our
 * own layout: [ORIGINAL, REPLY] x [syn, synack, fin, ack, rst, none] x
 * [sNO, sSS, sSR, sES, sFW, sCW, sLA, sTW, sCL, sS2].
 */
const TABLE: readonly (readonly (readonly number[])[])[] = [
  [
    [sSS, sSS, sIG, sIG, sIG, sIG, sIG, sSS, sSS, sS2],
    [sIV, sIV, sSR, sIV, sIV, sIV, sIV, sIV, sIV, sSR],
    [sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV],
    [sES, sIV, sES, sES, sCW, sCW, sTW, sTW, sCL, sIV],
    [sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL],
    [sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV],
  ],
  [
    [sIV, sS2, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sS2],
    [sIV, sSR, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR],
    [sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV],
    [sIV, sIG, sSR, sES, sCW, sCW, sTW, sTW, sCL, sIG],
    [sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL],
    [sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV],
  ],
];

/** TCP header flag bits as on the wire. */
export const TH = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20 } as const;

/** tcp_valid_flags[] (indexed by FIN|SYN|RST|ACK|URG; PSH, ECE and CWR are masked off first). */
const VALID_FLAGS = new Uint8Array(0x40);
for (const f of [TH.SYN, TH.SYN | TH.URG, TH.SYN | TH.ACK, TH.RST, TH.RST | TH.ACK, TH.FIN | TH.ACK, TH.FIN | TH.ACK | TH.URG, TH.ACK, TH.ACK | TH.URG]) VALID_FLAGS[f] = 1;

/** Whether tcp_error accepts these header flags (the wire byte 13). */
export function tcpFlagsValid(th: number): boolean {
  return VALID_FLAGS[th & 0x37] === 1;
}

function tcpIndex(th: number): number {
  if (th & TH.RST) return iRST;
  if (th & TH.SYN) return th & TH.ACK ? iSYNACK : iSYN;
  if (th & TH.FIN) return iFIN;
  return th & TH.ACK ? iACK : iNONE;
}

/** The wire flag byte (FIN, SYN, RST, ACK) of a batch slot's F bits. */
export function wireFlags(f: number): number {
  return ((f & F.SYN) ? TH.SYN : 0) | ((f & F.ACK) ? TH.ACK : 0) | ((f & F.RST) ? TH.RST : 0) | ((f & F.FIN) ? TH.FIN : 0);
}

/** What a packet is to the model. */
export const K = {
  /** UDP and the generic tracker: always creates or refreshes. */
  OTHER: 0,
  TCP: 1,
  ICMP_REQUEST: 2,
  ICMP_REPLY: 3,
  /** ICMP errors and types conntrack does not open an entry for. */
  ICMP_NONE: 4,
} as const;

/** ICMP request type -> its reply type (nf_conntrack_proto_icmp.c invmap), and ICMPv6 echo. */
const ICMP_REPLY_OF: Record<number, number> = { 8: 0, 13: 14, 15: 16, 17: 18 };
const ICMP_REQUEST_OF: Record<number, number> = { 0: 8, 14: 13, 16: 15, 18: 17 };

/** The model's class of packet i, and (for ICMP queries) the request type that keys it in `pair`. */
export function packetKind(b: TupleBatch, i: number): number {
  const p = b.proto[i]!;
  if (p === 6) return K.TCP;
  if (p === 1 || p === 58) {
    if ((b.l4flags[i]! & L4.HAS4) === 0) return K.ICMP_NONE;
    return icmpKind(p, b.l4a[i]! >>> 24);
  }
  return K.OTHER;
}

/** The model's class of an ICMP (proto 1) or ICMPv6 (58) message of type `t`. */
export function icmpKind(proto: number, t: number): number {
  if (proto === 1) return t in ICMP_REPLY_OF ? K.ICMP_REQUEST : t in ICMP_REQUEST_OF ? K.ICMP_REPLY : K.ICMP_NONE;
  // nf_conntrack_proto_icmpv6.c valid_new[]: echo request (128) and node information query (139).
  return t === 128 || t === 139 ? K.ICMP_REQUEST : t === 129 || t === 140 ? K.ICMP_REPLY : K.ICMP_NONE;
}

/** Verdicts. */
export const V = {
  INVALID: 0,
  /** Valid, in the direction of the packet that opened the entry. */
  ORIGINAL: 1,
  /** Valid, in the reply direction. */
  REPLY: 2,
} as const;

/**
 * Model state of one connection in one small integer: 0 = no entry; TCP
 * 1 + (state - 1) + 9 * orig; ICMP and others 1 + orig, where `orig` is the
 * key direction (0/1, conn-key.ts) of the packet that opened the entry.
 */
export type Code = number;

/** One step's outputs besides the new state (reused; no allocation per packet). */
export interface StepOut {
  code: Code;
  verdict: number;
  /** The model assumed an answer the capture does not hold (SYN_SENT -> SYN_RECV). */
  assumed: boolean;
}

/**
 * One packet through the model: `code` the connection's state before it,
 * `kind` from packetKind, `th` the TCP wire flags, `d` its key direction
 * (0/1), `loose` nf_conntrack_tcp_loose. Pure.
 */
export function step(code: Code, kind: number, th: number, d: number, loose: boolean, out: StepOut): StepOut {
  out.assumed = false;
  out.code = code;
  if (kind === K.OTHER) {
    if (code === 0) { out.code = 1 + d; out.verdict = V.ORIGINAL; }
    else out.verdict = ((code - 1) & 1) === d ? V.ORIGINAL : V.REPLY;
    return out;
  }
  if (kind === K.ICMP_NONE) { out.verdict = V.INVALID; return out; }
  if (kind === K.ICMP_REQUEST) {
    if (code === 0) { out.code = 1 + d; out.verdict = V.ORIGINAL; }
    else out.verdict = code - 1 === d ? V.ORIGINAL : V.REPLY;
    return out;
  }
  if (kind === K.ICMP_REPLY) {
    // Valid only as the answer to a request the other side sent (the entry's reply tuple).
    out.verdict = code !== 0 && code - 1 !== d ? V.REPLY : V.INVALID;
    return out;
  }
  // TCP
  if (!tcpFlagsValid(th)) { out.verdict = V.INVALID; return out; }
  const idx = tcpIndex(th);
  if (code === 0) {
    const ns = TABLE[0]![idx]![sNO]!;
    // tcp_new: sIV refuses; ESTABLISHED (an ACK without a SYN) only with tcp_loose.
    if (ns === sIV || (ns === sES && !loose)) { out.verdict = V.INVALID; return out; }
    out.code = 1 + (ns - 1) + 9 * d;
    out.verdict = V.ORIGINAL;
    return out;
  }
  let state = 1 + ((code - 1) % 9);
  const orig = code > 9 ? 1 : 0;
  const dir = d === orig ? 0 : 1;
  let ns = TABLE[dir]![idx]![state]!;
  if (ns === sIV && dir === 0 && state === sSS && (idx === iACK || idx === iFIN)) {
    // The client moved on after its SYN: the server's SYN|ACK happened where the capture did not see it.
    state = TABLE[1]![iSYNACK]![sSS]!;
    ns = TABLE[0]![idx]![state]!;
    out.assumed = true;
  }
  if (ns === sIV) { out.verdict = V.INVALID; return out; }
  out.verdict = dir === 0 ? V.ORIGINAL : V.REPLY;
  if (ns === sIG) { if (out.assumed) out.code = 1 + (state - 1) + 9 * orig; return out; }
  out.code = 1 + (ns - 1) + 9 * orig;
  return out;
}

/** Sink classes of replay --verify: what a packet meeting no entry gets (see `firstClass`). */
export const CT = {
  /** Opens a NEW conntrack: TCP SYN, UDP, ICMP requests, other protocols (generic tracker). */
  NEW: 0,
  /** TCP ACK-class packet without SYN/FIN/RST: picked up mid-stream only when nf_conntrack_tcp_loose=1. */
  LOOSE: 1,
  /** INVALID: no conntrack, so CLUSTERIP drops it on every node and xt_cluster / `ct` keys match nothing. */
  INVALID: 2,
} as const;

const scratchOut: StepOut = { code: 0, verdict: 0, assumed: false };

/** The sink verdict of a packet judged alone (no entry before it): `step` from state 0 with and without tcp_loose. */
export function firstClass(kind: number, th: number): number {
  if (step(0, kind, th, 0, false, scratchOut).verdict !== V.INVALID) return CT.NEW;
  return step(0, kind, th, 0, true, scratchOut).verdict !== V.INVALID ? CT.LOOSE : CT.INVALID;
}

/** What a Judge counted. */
export interface JudgeStats {
  /** Packets marked INVALID by the model (beside those the decoder marked, e.g. truncated headers). */
  invalid: number;
  /** Connections where the model assumed an answer the capture does not hold. */
  assumed: number;
  /** ICMP errors judged INVALID because their relation to a connection is not checked. */
  icmpErrors: number;
}

/** Key words of a model entry as CtState and CtTransfer carry it (IPv6 size; an IPv4 key leaves words 4..9 zero). */
export const CT_KW = 10;
const KW = CT_KW;
/** Model state codes (TCP: 1 + 9 states x 2 original directions; the others use 0..2). */
const NCODES = 19;
const ALL_TCP = (1 << NCODES) - 1, ALL_OTHER = 0b111;
/** How far back in capture time a later packet may go (conn-table.ts REORDER_SLACK). */
const SLACK = 5;

/**
 * `step` as a table, so the per-packet path is one load: STEPS[loose][i] with
 * i = ((kind * NCODES + code) << 5) | (fb << 1) | d, where fb is the batch's
 * TCP flag bits F.SYN..F.FIN shifted down ((f >>> 2) & 15). Each entry packs
 * step's outputs: code | verdict << 5 | assumed << 7. Filled by calling
 * `step` itself, so the table is the function (ct-model-ref.test.ts holds them equal).
 */
const FB_SHIFT = 2;
if ((F.SYN | F.ACK | F.RST | F.FIN) !== 15 << FB_SHIFT) throw new Error('ct-model: the batch\'s TCP flag bits are no longer F.SYN..F.FIN at bits 2..5');
/** Wire flag byte of each fb, and back (CtTransfer's log words carry the wire byte). */
const WIRE = Uint8Array.from({ length: 16 }, (_, fb) => wireFlags(fb << FB_SHIFT));
const FB_OF_TH = new Uint8Array(64);
for (let fb = 0; fb < 16; fb++) FB_OF_TH[WIRE[fb]!] = fb;
const NKINDS = 5;

function stepTable(loose: boolean): Uint8Array {
  const t = new Uint8Array((NKINDS * NCODES) << 5), o: StepOut = { code: 0, verdict: 0, assumed: false };
  for (let kind = 0; kind < NKINDS; kind++) {
    for (let code = 0; code < NCODES; code++) {
      for (let fb = 0; fb < 16; fb++) {
        for (let d = 0; d < 2; d++) {
          step(code, kind, WIRE[fb]!, d, loose, o);
          t[((kind * NCODES + code) << 5) | (fb << 1) | d] = o.code | (o.verdict << 5) | (o.assumed ? 128 : 0);
        }
      }
    }
  }
  return t;
}
const STEPS = [stepTable(false), stepTable(true)] as const;

export const SET_INVALID = 1 << 30;

/**
 * A scan's step over a set of states (Judge.follow), 7 codes at a time: for
 * one packet (kind, fb, d; the `combo`, its STEPS index without the code),
 * SETS[combo * 384 + chunk * 128 + v] is, over the codes of chunk `chunk`
 * whose bits are set in v, the OR of the states they lead to (a code the
 * packet is INVALID in stays itself), with bit 30 set when the packet is
 * INVALID in any of them. Filled per combo on first use from STEPS.
 */
const SET_CHUNK = 7;
const NCOMBOS = (NKINDS << 5);
const SETS = [new Int32Array(NCOMBOS * 384), new Int32Array(NCOMBOS * 384)] as const;
const SETS_FILLED = [new Uint8Array(NCOMBOS), new Uint8Array(NCOMBOS)] as const;

function fillSets(loose: 0 | 1, combo: number): void {
  const steps = STEPS[loose], sets = SETS[loose], kind = combo >>> 5, rest = combo & 31;
  for (let chunk = 0; chunk < 3; chunk++) {
    for (let v = 1; v < 128; v++) {
      let out = 0;
      for (let b = 0; b < SET_CHUNK; b++) {
        const c = chunk * SET_CHUNK + b;
        if (!(v & (1 << b)) || c >= NCODES) continue;
        const q = steps[((kind * NCODES + c) << 5) | rest]!;
        out |= ((q >>> 5) & 3) === V.INVALID ? (1 << c) | SET_INVALID : 1 << (q & 31);
      }
      sets[combo * 384 + chunk * 128 + v] = out;
    }
  }
  SETS_FILLED[loose][combo] = 1;
}

/** stepSet's answer: the states reached (bit per code, SET_NEXT), and SET_INVALID when the packet is INVALID in any. */
export const SET_NEXT = (1 << NCODES) - 1;

/**
 * `step` from every state of the set `was` (bit per code) for one packet
 * (`fb`: the batch's TCP flag bits, (F flags >>> 2) & 15): the OR of the
 * states reached, a state the packet is INVALID in staying itself, and
 * SET_INVALID if it is INVALID in any. What a scan follows a key by
 * (Judge.follow); three table loads instead of nineteen steps.
 */
export function stepSet(loose: boolean, was: number, kind: number, fb: number, d: number): number {
  const l: 0 | 1 = loose ? 1 : 0, combo = (kind << 5) | (fb << 1) | d, sets = SETS[l], o = combo * 384;
  if (!SETS_FILLED[l][combo]) fillSets(l, combo);
  return sets[o + (was & 127)]! | sets[o + 128 + ((was >>> 7) & 127)]! | sets[o + 256 + ((was >>> 14) & 31)]!;
}

/** ICMP (proto 1) type -> icmpKind, as a table for the per-packet path. */
const ICMP4_KIND = Uint8Array.from({ length: 256 }, (_, t) => icmpKind(1, t));

/** A table's entries as columns (posted between threads): key words, state code, last packet, assumed bit. */
export interface CtState {
  count: number;
  keys: Uint32Array;
  code: Uint8Array;
  last: Float64Array;
  assumed: Uint8Array;
}

/**
 * What one share of a capture does to the table whatever it started from
 * (Judge.transfer): the entries whose state no earlier packet can change
 * (`ends`), and, per key whose state still depends on the share before, its
 * packets, to replay once that state is known (`pending`: key i's packets are
 * ts/word[start[i] .. start[i+1]), word = kind | th << 3 | d << 9 | counts << 10).
 */
export interface CtTransfer {
  ends: CtState;
  pending: { count: number; keys: Uint32Array; start: Uint32Array; ts: Float64Array; word: Uint32Array };
  /** Newest packet of the share (entries idle since long before it are gone). */
  newest: number;
}

/**
 * One address family's model entries (the Judge keeps an IPv4 and an IPv6
 * one): open addressing with linear probing over records that hold
 * everything the model keeps of a key, so a probe reads one cache line (two
 * IPv4 records share one; a table a sweep keeps at most half full rarely
 * probes past it). Record of slot s, R words at s * R of `rec`: key words
 * [0, kw) (word 0 = family << 8 | proto, never 0: 0 marks a free slot), META =
 * code | assumed << 5 at kw, PEND = pending id + 1 (scan mode; 0: none) at
 * kw + 1, and the last packet's time as the Float64 in words
 * (`recF`, the same buffer). Growing and sweeping re-place the records they
 * keep, reading the old ones in order.
 */
class CtTable {
  /** Words per record (a power of two: 32 bytes for IPv4, 64 for IPv6). */
  readonly R: number;
  /** Float64s per record; the last packet's time is the record's last one. */
  readonly fr: number;
  /** Used slots. */
  size = 0;
  rec: Uint32Array;
  recF: Float64Array;
  mask: number;
  private readonly scratch: Uint32Array;

  constructor(readonly kw: number, readonly minSlots: number) {
    this.R = kw === 4 ? 8 : 16;
    this.fr = this.R >> 1;
    this.scratch = new Uint32Array(kw);
    this.mask = minSlots - 1;
    this.rec = new Uint32Array(minSlots * this.R);
    this.recF = new Float64Array(this.rec.buffer);
  }

  /** Before a probe that may insert: at most half the slots used, so linear probing stays short. */
  room(): void {
    if ((this.size + 1) * 2 > this.mask + 1) this.rebuild((this.mask + 1) * 2, -Infinity);
  }

  /** The slot of key k (hash h): its record's, or the free one to insert into. */
  probe(k: Uint32Array, h: number): number {
    const mask = this.mask, rec = this.rec, kw = this.kw, R = this.R;
    for (let s = h & mask; ; s = (s + 1) & mask) {
      const o = s * R;
      if (rec[o] === 0) return s;
      let w = 0;
      while (w < kw && rec[o + w] === k[w]) w++;
      if (w === kw) return s;
    }
  }

  /** A record for key k in free slot s: state 0, no pending id, last packet 0. */
  insert(s: number, k: Uint32Array): void {
    const R = this.R, kw = this.kw, rec = this.rec, o = s * R;
    this.size++;
    for (let w = 0; w < kw; w++) rec[o + w] = k[w]!;
    rec[o + kw] = 0;
    rec[o + kw + 1] = 0;
    this.recF[s * this.fr + this.fr - 1] = 0;
  }

  /** The probe hash of the key in slot s (keyHash, as the lookups compute it). */
  private hashAt(s: number): number {
    const o = s * this.R, rec = this.rec;
    if (this.kw === 4) return hash4(rec[o]!, rec[o + 1]!, rec[o + 2]!, rec[o + 3]!);
    for (let w = 0; w < this.kw; w++) this.scratch[w] = rec[o + w]!;
    return keyHash(this.scratch, 0, this.kw);
  }

  /** Whether slot s holds a record a sweep at `cutoff` keeps: its last packet at or after the cutoff, or pending. */
  private keeps(s: number, cutoff: number): boolean {
    return this.recF[s * this.fr + this.fr - 1]! >= cutoff || this.rec[s * this.R + this.kw + 1] !== 0;
  }

  /** Records a sweep at `cutoff` keeps. */
  kept(cutoff: number): number {
    let n = 0;
    const rec = this.rec, R = this.R;
    for (let s = 0; s <= this.mask; s++) if (rec[s * R] !== 0 && this.keeps(s, cutoff)) n++;
    return n;
  }

  /** Drops the records a sweep does not keep; the table shrinks with them (slots for four times the rest). */
  compact(cutoff: number): void {
    const n = this.kept(cutoff);
    let slots = this.minSlots;
    while (slots < n * 4) slots <<= 1;
    this.rebuild(slots, cutoff);
  }

  /** Re-places the records kept at `cutoff` (-Infinity: all) into `slots` slots. */
  private rebuild(slots: number, cutoff: number): void {
    const old = this.rec, R = this.R, oldSlots = this.mask + 1;
    const rec = new Uint32Array(slots * R), mask = slots - 1;
    let size = 0;
    for (let q = 0; q < oldSlots; q++) {
      if (old[q * R] === 0 || !this.keeps(q, cutoff)) continue;
      let s = this.hashAt(q) & mask;
      while (rec[s * R] !== 0) s = (s + 1) & mask;
      for (let w = 0; w < R; w++) rec[s * R + w] = old[q * R + w]!;
      size++;
    }
    this.rec = rec;
    this.recF = new Float64Array(rec.buffer);
    this.mask = mask;
    this.size = size;
  }
}

/**
 * Follows every connection of a packet stream through `step`, in capture
 * order, and sets L4.CT_INVALID on the packets the model refuses. Entries
 * idle for longer than `timeout` seconds are gone (one idle timeout for every
 * protocol and state, as engine/conn-table.ts). One open-addressing table of
 * 32-byte records for IPv4 keys and one of 64-byte records for IPv6 (CtTable);
 * no per-packet allocation; a sweep every quarter timeout drops old entries
 * once a quarter of them are, so memory follows the live connections.
 * The IPv4 TCP packet, nearly every packet a model follows, takes a path of
 * its own: its key compared in registers, `step` one table load (STEPS).
 *
 * Shares of one capture (engine/run.ts): the state at a share's start depends
 * on the shares before it. A first pass over each share in `scan` mode
 * (scanFrom = the share's first packet + timeout + slack) yields its
 * CtTransfer: keys first seen before scanFrom may continue a connection of
 * the share before, so their packets are logged until every state they could
 * have started from (plus a fresh start, in case the earlier entry expired)
 * has led to one state through a packet valid in all of them; from there on
 * their state is the same whatever came before. (With the kernel's table as
 * modelled that never happens: the fresh start refuses all but a SYN or a
 * loose ACK, and sIG leaves the other states as they were, so every packet
 * of such a key is logged; ct-model-ref.test.ts checks every reachable set.)
 * `compose` chains the
 * transfers in order into each share's start state, and the counting pass
 * starts each share's Judge from it (`seed`): every verdict equals one pass
 * over the whole capture.
 */
export class Judge {
  readonly stats: JudgeStats = { invalid: 0, assumed: 0, icmpErrors: 0 };
  private readonly t4 = new CtTable(4, 1 << 12);
  private readonly t6 = new CtTable(KW, 1 << 6);
  private readonly steps: Uint8Array;
  private newest = -Infinity;
  private lastSweep = -Infinity;
  /** The key being looked up (probe, insert), and its hash. */
  private readonly k = new Uint32Array(KW);
  private probeHash = 0;
  /** Scan mode: keys first seen at or before this time may continue a connection of the share before. */
  private scanFrom = -Infinity;
  private scanning = false;
  /** Scan mode, per pending id: the set of states the key may be in (bit per code; -1 once settled), and its key (KW words). */
  private possible: number[] = [];
  private pendKeys = new Uint32Array(0);
  /** Scan mode: the log of pending keys' packets (logN rows). */
  private logTs = new Float64Array(0);
  private logWord = new Uint32Array(0);
  private logId = new Int32Array(0);
  private logN = 0;

  constructor(readonly loose: boolean, readonly timeout: number) {
    this.steps = STEPS[loose ? 1 : 0];
  }

  /** Scan mode (a share after the first): keys first seen up to `firstTs` + timeout + slack are followed under every start state. */
  scan(firstTs: number): void {
    this.scanning = true;
    this.scanFrom = firstTs === -Infinity ? -Infinity : firstTs + this.timeout + SLACK;
  }

  /** Judges slots [0, b.count) of a batch in order. */
  judge(b: TupleBatch): void {
    const n = b.count;
    if (n > 0 && this.scanning && this.scanFrom === -Infinity) this.scanFrom = b.ts[0]! + this.timeout + SLACK;
    const flags = b.flags, l4 = b.l4flags, proto = b.proto, family = b.family, tsL = b.ts, st = this.stats;
    const saddr = b.saddr, daddr = b.daddr, sport = b.sport, dport = b.dport;
    const steps = this.steps, timeout = this.timeout, scanning = this.scanning, t = this.t4;
    for (let i = 0; i < n; i++) {
      const fl = flags[i]!, lf = l4[i]!;
      // Cut before the TCP flags, or already INVALID (the decoder's header checks): nothing to follow.
      if (fl & F.TRUNCATED || lf & L4.CT_INVALID) continue;
      // A fragment before its datagram completes: judged as its datagram would be now, without moving the state.
      const counts = (fl & F.FRAGMENT) === 0 || (lf & L4.COMPLETES) !== 0;
      const p = proto[i]!;
      let v: number;
      if (p === 6 && family[i] !== FAMILY_IPV6) {
        // IPv4 TCP, nearly every packet the model follows: connKey (conn-key.ts) and CtTable.probe written
        // out for the 4-word key, which stays in registers, and apply's usual case (a live entry not
        // pending in a scan, a valid packet that counts) inline. ct-model-ref.test.ts holds this path equal to a plain
        // reference over random streams.
        const sa = saddr[i]!, da = daddr[i]!, sp = sport[i]!, dp = dport[i]!;
        const k0 = (4 << 8) | 6;
        let d: number, A: number, B: number, P: number;
        if (sa < da || (sa === da && sp <= dp)) { d = 0; A = sa; B = da; P = ((sp << 16) | dp) >>> 0; }
        else { d = 1; A = da; B = sa; P = ((dp << 16) | sp) >>> 0; }
        t.room();
        const rec = t.rec, mask = t.mask;
        let s = hash4(k0, A, B, P) & mask, o = s << 3;
        while (rec[o] !== 0 && !(rec[o + 1] === A && rec[o + 3] === P && rec[o + 2] === B && rec[o] === k0)) { s = (s + 1) & mask; o = s << 3; }
        const ts = tsL[i]!, fb = (fl >>> FB_SHIFT) & 15;
        if (rec[o] !== 0) {
          const meta = rec[o + 4]!;
          // A scan follows only pending keys (follow() returns at once for any other entry).
          if ((!scanning || rec[o + 5] === 0) && counts && ts - t.recF[(s << 2) + 3]! <= timeout) {
            const q = steps[((K.TCP * NCODES + (meta & 31)) << 5) | (fb << 1) | d]!;
            if (q & 0x60) {
              const assumed = q >>> 7, was = (meta >>> 5) & 1;
              if (assumed & ~was) st.assumed++;
              rec[o + 4] = (q & 31) | ((assumed | was) << 5);
              t.recF[(s << 2) + 3] = ts;
              if (ts > this.newest) this.newest = ts;
              continue;
            }
          }
        } else {
          const k = this.k;
          k[0] = k0; k[1] = A; k[2] = B; k[3] = P;
        }
        v = this.apply(t, s, ts, K.TCP, fb, d, counts);
      } else if (p === 1 || p === 58) {
        const ty = b.l4a[i]! >>> 24;
        const kind = (lf & L4.HAS4) === 0 ? K.ICMP_NONE : p === 1 ? ICMP4_KIND[ty]! : icmpKind(p, ty);
        if (kind === K.ICMP_NONE) {
          l4[i] = lf | L4.CT_INVALID;
          st.invalid++;
          if (p === 1 ? ty === 3 || ty === 4 || ty === 5 || ty === 11 || ty === 12 : ty >= 1 && ty <= 4) st.icmpErrors++;
          continue;
        }
        v = this.general(b, i, kind, fl, counts);
      } else if (p === 6) {
        v = this.general(b, i, K.TCP, fl, counts);
      } else {
        // UDP and the generic tracker: every packet opens or refreshes its entry, so its verdict never
        // depends on the table, and the key (protocol included, conn-key.ts) is no other kind's: no
        // packet's verdict reads such an entry. Skipping the table changes no answer; the newest
        // time still moves, so the sweeps (and a scan's CtTransfer.newest) fall as before.
        if (counts && tsL[i]! > this.newest) this.newest = tsL[i]!;
        continue;
      }
      if (v === V.INVALID) {
        l4[i] = lf | L4.CT_INVALID;
        if (counts) st.invalid++;
      }
    }
    if (this.newest - this.lastSweep >= this.timeout / 4) { this.lastSweep = this.newest; this.sweep(this.newest - this.timeout - SLACK); }
  }

  /** Any other packet the model follows (IPv6, ICMP queries): its key through this.k. */
  private general(b: TupleBatch, i: number, kind: number, fl: number, counts: boolean): number {
    const d = this.key(b, i, kind);
    const t = this.table();
    return this.apply(t, t.probe(this.k, this.probeHash), b.ts[i]!, kind, (fl >>> FB_SHIFT) & 15, d, counts);
  }

  /** The table of the key in this.k (word 0 holds its family), with room for an insert; sets probeHash. */
  private table(): CtTable {
    const t = this.k[0]! >>> 8 === 6 ? this.t6 : this.t4;
    t.room();
    this.probeHash = keyHash(this.k, 0, t.kw);
    return t;
  }

  /**
   * One packet of the key through the model: slot s of table t (its
   * record's, or the free one for it, the key then in this.k), `fb` its TCP
   * flag bits (STEPS). Returns the verdict.
   */
  private apply(t: CtTable, s: number, ts: number, kind: number, fb: number, d: number, counts: boolean): number {
    let used = t.rec[s * t.R] !== 0;
    const live = used && ts - t.recF[s * t.fr + t.fr - 1]! <= this.timeout;
    const meta = live ? t.rec[s * t.R + t.kw]! : 0;
    const q = this.steps[((kind * NCODES + (meta & 31)) << 5) | (fb << 1) | d]!;
    if (this.scanning && counts) used = this.follow(t, s, used, live, ts, kind, fb, d);
    const verdict = (q >>> 5) & 3;
    if (verdict === V.INVALID || !counts) return verdict;
    if (!used) t.insert(s, this.k);
    const assumed = q >>> 7, was = (meta >>> 5) & 1;
    if (assumed && !was) this.stats.assumed++;
    t.rec[s * t.R + t.kw] = (q & 31) | ((assumed | was) << 5);
    t.recF[s * t.fr + t.fr - 1] = ts;
    if (ts > this.newest) this.newest = ts;
    return verdict;
  }

  /**
   * Scan mode: logs a packet of a key whose state may still depend on the
   * share before, until it no longer does. Returns whether slot s is used
   * now (a key that becomes pending is inserted in state 0).
   */
  private follow(t: CtTable, s: number, used: boolean, live: boolean, ts: number, kind: number, fb: number, d: number): boolean {
    const pend = s * t.R + t.kw + 1;
    let id = used ? t.rec[pend]! - 1 : -1;
    if (id < 0) {
      // Only a key first seen (in this share) within reach of the share before can depend on it.
      if (live || used || ts > this.scanFrom) return used;
      id = this.possible.length;
      this.possible.push(kind === K.TCP ? ALL_TCP : ALL_OTHER);
      if ((id + 1) * KW > this.pendKeys.length) {
        const keys = new Uint32Array(Math.max(1024, this.pendKeys.length * 2));
        keys.set(this.pendKeys);
        this.pendKeys = keys;
      }
      for (let w = 0; w < KW; w++) this.pendKeys[id * KW + w] = w < t.kw ? this.k[w]! : 0;
      t.insert(s, this.k);
      t.rec[pend] = id + 1;
    }
    const r = this.logN++;
    if (r === this.logTs.length) this.growLog();
    this.logTs[r] = ts;
    this.logWord[r] = kind | (WIRE[fb]! << 3) | (d << 9) | (1 << 10);
    this.logId[r] = id;
    // Every state the key may be in, and a fresh start (the earlier entry may have expired meanwhile).
    const x = stepSet(this.loose, this.possible[id]! | 1, kind, fb, d), next = x & SET_NEXT;
    this.possible[id] = next;
    // One state, reached by a packet valid in every case (so it refreshed the entry in every case): settled.
    if (!(x & SET_INVALID) && (next & (next - 1)) === 0) { this.possible[id] = -1; t.rec[pend] = 0; }
    return true;
  }

  private growLog(): void {
    const n = Math.max(1024, this.logTs.length * 2);
    const ts = new Float64Array(n), word = new Uint32Array(n), id = new Int32Array(n);
    ts.set(this.logTs); word.set(this.logWord); id.set(this.logId);
    this.logTs = ts; this.logWord = word; this.logId = id;
  }

  /** This share's CtTransfer (scan mode). */
  transfer(): CtTransfer {
    const ids = this.possible.length, order = new Int32Array(ids).fill(-1);
    let m = 0;
    for (let id = 0; id < ids; id++) if (this.possible[id] !== -1) order[id] = m++;
    const counts = new Uint32Array(m + 1);
    for (let r = 0; r < this.logN; r++) { const j = order[this.logId[r]!]!; if (j >= 0) counts[j + 1]!++; }
    for (let j = 0; j < m; j++) counts[j + 1] = counts[j + 1]! + counts[j]!;
    const n = counts[m]!;
    const ts = new Float64Array(n), word = new Uint32Array(n), at = counts.slice();
    for (let r = 0; r < this.logN; r++) {
      const j = order[this.logId[r]!]!;
      if (j < 0) continue;
      const p = at[j]!++;
      ts[p] = this.logTs[r]!; word[p] = this.logWord[r]!;
    }
    const keys = new Uint32Array(m * KW);
    for (let id = 0; id < ids; id++) if (order[id]! >= 0) keys.set(this.pendKeys.subarray(id * KW, id * KW + KW), order[id]! * KW);
    return { ends: this.state(true), pending: { count: m, keys, start: counts, ts, word }, newest: this.newest };
  }

  /**
   * The entries as columns, IPv4 first (without the keys still pending in scan
   * mode when `settledOnly`). As in the table: entries idle past the timeout
   * stay until a sweep drops them, and a reader judges them by their age.
   */
  state(settledOnly = false): CtState {
    const tables = [this.t4, this.t6];
    let n = 0;
    for (const t of tables) for (let s = 0; s <= t.mask; s++) if (t.rec[s * t.R] !== 0 && !(settledOnly && t.rec[s * t.R + t.kw + 1])) n++;
    // Sized as the entries kept, code-0 ones included (a scan inserts a pending key before its first valid packet).
    const st: CtState = { count: 0, keys: new Uint32Array(n * KW), code: new Uint8Array(n), last: new Float64Array(n), assumed: new Uint8Array(n) };
    for (const t of tables) {
      for (let s = 0; s <= t.mask; s++) {
        const o = s * t.R, meta = t.rec[o + t.kw]!;
        if (t.rec[o] === 0 || (settledOnly && t.rec[o + t.kw + 1]) || (meta & 31) === 0) continue;
        const j = st.count++;
        st.keys.set(t.rec.subarray(o, o + t.kw), j * KW);
        st.code[j] = meta & 31; st.last[j] = t.recF[s * t.fr + t.fr - 1]!; st.assumed[j] = (meta >>> 5) & 1;
      }
    }
    return st;
  }

  /** Puts `st`'s entries into the table (over any of the same key). */
  seed(st: CtState): void {
    for (let j = 0; j < st.count; j++) {
      const t = this.setKey(st.keys, j);
      const s = t.probe(this.k, this.probeHash);
      if (t.rec[s * t.R] === 0) t.insert(s, this.k);
      t.rec[s * t.R + t.kw] = st.code[j]! | (st.assumed[j]! << 5);
      t.recF[s * t.fr + t.fr - 1] = st.last[j]!;
      if (st.last[j]! > this.newest) this.newest = st.last[j]!;
    }
  }

  /**
   * Applies a share's transfer to this table (which holds the state at that
   * share's start). The stats stay as they were: the replayed packets are
   * counted by the pass over the share that holds them.
   */
  compose(tr: CtTransfer): void {
    const assumed = this.stats.assumed;
    const p = tr.pending;
    for (let j = 0; j < p.count; j++) {
      const t = this.setKey(p.keys, j);
      const s = t.probe(this.k, this.probeHash);
      for (let r = p.start[j]!; r < p.start[j + 1]!; r++) {
        const w = p.word[r]!;
        this.apply(t, s, p.ts[r]!, w & 7, FB_OF_TH[(w >>> 3) & 0x3f]!, (w >>> 9) & 1, true);
      }
    }
    this.stats.assumed = assumed;
    this.seed(tr.ends);
    if (tr.newest > this.newest) this.newest = tr.newest;
    this.sweep(this.newest - this.timeout - SLACK);
  }

  /** Key j of `keys` (KW words a key) into this.k; returns its table (table()). */
  private setKey(keys: Uint32Array, j: number): CtTable {
    const k = this.k;
    for (let w = 0; w < KW; w++) k[w] = keys[j * KW + w]!;
    return this.table();
  }

  /**
   * Writes packet i's conntrack key into this.k and returns its key direction:
   * the connection key of cluster/conn-key.ts, except that an ICMP query is
   * keyed by its identifier and request type (the kernel's ICMP tuple; the
   * sequence number, which the batch's "ports" carry, is not part of it).
   */
  private key(b: TupleBatch, i: number, kind: number): number {
    const k = this.k;
    const d = connKey(b, i, k);
    if (kind === K.ICMP_REQUEST || kind === K.ICMP_REPLY) {
      const t = b.l4a[i]! >>> 24, p = b.proto[i]!;
      const req = kind === K.ICMP_REQUEST ? t : p === 1 ? ICMP_REQUEST_OF[t]! : t - 1;
      k[connKeyWords(b, i) - 1] = ((b.l4b[i]! >>> 16) << 8 | req) >>> 0;
    }
    return d;
  }

  /**
   * Drops the entries idle since before `cutoff` (and not pending), once a
   * quarter of all entries are: an expired entry is never read as live (apply
   * checks its age), and compacting every quarter timeout cost 4 % of a run's
   * CPU. The rule counts both tables together, as one table did before.
   */
  private sweep(cutoff: number): void {
    const size = this.t4.size + this.t6.size;
    const kept = this.t4.kept(cutoff) + this.t6.kept(cutoff);
    if (kept === size || (size - kept) * 4 < size) return;
    this.t4.compact(cutoff);
    this.t6.compact(cutoff);
  }
}
