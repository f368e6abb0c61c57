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
import { F, L4, type TupleBatch } from '../traffic/batch.ts';
import { connKey, connKeyWords } from './conn-key.ts';
import { fmix32, mix32 } from '../hash/mix.ts';

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

/** Key words of a model entry (IPv6 size; IPv4 keys leave words 3..8 zero). */
export const CT_KW = 10;
const KW = CT_KW;
/** Model state codes (TCP: 1 + 9 states x 2 original directions; the others use 0..2). */
const NCODES = 19;
const ALL_TCP = (1 << NCODES) - 1, ALL_OTHER = 0b111;
/** How far back in capture time a later packet may go (conn-table.ts REORDER_SLACK). */
const SLACK = 5;

/** The probe hash of a model key: over the words its family uses (IPv4 keys leave words 4.. zero, conn-key.ts). */
function keyHash(k: Uint32Array): number {
  const n = k[0]! >>> 8 === 6 ? KW : 4;
  let h = 0x9747b28c;
  for (let w = 0; w < n; w++) h = mix32(h, k[w]!);
  return fmix32(h);
}

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
 * Follows every connection of a packet stream through `step`, in capture
 * order, and sets L4.CT_INVALID on the packets the model refuses. Entries
 * idle for longer than `timeout` seconds are gone (one idle timeout for every
 * protocol and state, as engine/conn-table.ts). Open addressing over typed
 * arrays; no per-packet allocation; a sweep every quarter timeout drops old
 * entries so memory follows the live connections.
 *
 * Shares of one capture (engine/run.ts): the state at a share's start depends
 * on the shares before it. A first pass over each share in `scan` mode
 * (scanFrom = the share's first packet + timeout + slack) yields its
 * CtTransfer: keys first seen before scanFrom may continue a connection of
 * the share before, so their packets are logged until every state they could
 * have started from (plus a fresh start, in case the earlier entry expired)
 * has led to one state through a packet valid in all of them; from there on
 * their state is the same whatever came before. `compose` chains the
 * transfers in order into each share's start state, and the counting pass
 * starts each share's Judge from it (`seed`): every verdict equals one pass
 * over the whole capture.
 */
export class Judge {
  readonly stats: JudgeStats = { invalid: 0, assumed: 0, icmpErrors: 0 };
  private cap = 1 << 12;
  private keys = new Uint32Array(this.cap * KW);
  private used = new Uint8Array(this.cap);
  private hashes = new Int32Array(this.cap);
  private code = new Uint8Array(this.cap);
  private last = new Float64Array(this.cap);
  private assumedBit = new Uint8Array(this.cap);
  /** Scan mode: per slot, the pending id + 1 of a key whose state still depends on the share before (0: none). */
  private pend = new Int32Array(this.cap);
  private size = 0;
  private newest = -Infinity;
  private lastSweep = -Infinity;
  private readonly k = new Uint32Array(KW);
  private readonly out: StepOut = { code: 0, verdict: 0, assumed: false };
  /** Scan mode: keys first seen at or before this time may continue a connection of the share before. */
  private scanFrom = -Infinity;
  private scanning = false;
  /** Scan mode, per pending id: the set of states the key may be in (bit per code), its slot, converged. */
  private possible: number[] = [];
  private pendSlot: number[] = [];
  private logTs: number[] = [];
  private logWord: number[] = [];
  private logId: number[] = [];

  constructor(readonly loose: boolean, readonly timeout: number) {}

  /** Scan mode (a share after the first): keys first seen up to `firstTs` + timeout + slack are followed under every start state. */
  scan(firstTs: number): void {
    this.scanning = true;
    this.scanFrom = firstTs === -Infinity ? -Infinity : firstTs + this.timeout + SLACK;
  }

  /** Judges slots [0, b.count) of a batch in order. */
  judge(b: TupleBatch): void {
    const n = b.count;
    if (n > 0 && this.scanning && this.scanFrom === -Infinity) this.scanFrom = b.ts[0]! + this.timeout + SLACK;
    for (let i = 0; i < n; i++) this.one(b, i);
    if (this.newest - this.lastSweep >= this.timeout / 4) { this.lastSweep = this.newest; this.sweep(this.newest - this.timeout - SLACK); }
  }

  private one(b: TupleBatch, i: number): void {
    const fl = b.flags[i]!;
    // Cut before the TCP flags, or already INVALID (the decoder's header checks): nothing to follow.
    if (fl & F.TRUNCATED || b.l4flags[i]! & L4.CT_INVALID) return;
    const kind = packetKind(b, i);
    if (kind === K.ICMP_NONE) {
      b.l4flags[i] = b.l4flags[i]! | L4.CT_INVALID;
      this.stats.invalid++;
      const t = b.l4a[i]! >>> 24;
      if (b.proto[i] === 1 ? t === 3 || t === 4 || t === 5 || t === 11 || t === 12 : t >= 1 && t <= 4) this.stats.icmpErrors++;
      return;
    }
    // A fragment before its datagram completes: judged as its datagram would be now, without moving the state.
    const counts = (fl & F.FRAGMENT) === 0 || (b.l4flags[i]! & L4.COMPLETES) !== 0;
    if (kind === K.OTHER) {
      // UDP and the generic tracker: every packet opens or refreshes its entry, so its verdict never
      // depends on the table, and the key (protocol included, conn-key.ts) is no other kind's: no
      // packet's verdict reads such an entry. Skipping the table changes no answer; the newest
      // time still moves, so the sweeps (and a scan's CtTransfer.newest) fall as before.
      if (counts && b.ts[i]! > this.newest) this.newest = b.ts[i]!;
      return;
    }
    const d = this.key(b, i, kind);
    if (this.apply(this.slot(), b.ts[i]!, kind, wireFlags(fl), d, counts) === V.INVALID) {
      b.l4flags[i] = b.l4flags[i]! | L4.CT_INVALID;
      if (counts) this.stats.invalid++;
    }
  }

  /** One packet of the key in this.k (slot s) through the model; returns the verdict. */
  private apply(s: number, ts: number, kind: number, th: number, d: number, counts: boolean): number {
    const live = this.used[s] === 1 && ts - this.last[s]! <= this.timeout;
    const o = step(live ? this.code[s]! : 0, kind, th, d, this.loose, this.out);
    if (this.scanning && counts) this.follow(s, live, ts, kind, th, d);
    if (o.verdict === V.INVALID || !counts) return o.verdict;
    if (!this.used[s]) this.insert(s);
    if (o.assumed && !(live && this.assumedBit[s])) this.stats.assumed++;
    this.assumedBit[s] = o.assumed || (live && this.assumedBit[s] === 1) ? 1 : 0;
    this.code[s] = o.code;
    this.last[s] = ts;
    if (ts > this.newest) this.newest = ts;
    return o.verdict;
  }

  /** Scan mode: logs a packet of a key whose state may still depend on the share before, until it no longer does. */
  private follow(s: number, live: boolean, ts: number, kind: number, th: number, d: number): void {
    let id = this.pend[s]! - 1;
    if (id < 0) {
      // Only a key first seen (in this share) within reach of the share before can depend on it.
      if (live || this.used[s] || ts > this.scanFrom) return;
      id = this.possible.length;
      this.possible.push(kind === K.TCP ? ALL_TCP : ALL_OTHER);
      this.pendSlot.push(s);
      if (!this.used[s]) this.insert(s);
      this.pend[s] = id + 1;
    }
    this.logTs.push(ts);
    this.logWord.push(kind | (th << 3) | (d << 9) | (1 << 10));
    this.logId.push(id);
    // Every state the key may be in, and a fresh start (the earlier entry may have expired meanwhile).
    const o = this.out, was = this.possible[id]! | 1;
    let next = 0, allValid = true;
    for (let c = 0; c < NCODES; c++) {
      if (!(was & (1 << c))) continue;
      step(c, kind, th, d, this.loose, o);
      if (o.verdict === V.INVALID) { allValid = false; next |= 1 << c; } else next |= 1 << o.code;
    }
    this.possible[id] = next;
    // One state, reached by a packet valid in every case (so it refreshed the entry in every case): settled.
    if (allValid && (next & (next - 1)) === 0) { this.possible[id] = -1; this.pend[s] = 0; }
  }

  /** This share's CtTransfer (scan mode). */
  transfer(): CtTransfer {
    const pendIds: number[] = [];
    for (let id = 0; id < this.possible.length; id++) if (this.possible[id] !== -1) pendIds.push(id);
    const order = new Map<number, number>(pendIds.map((id, j) => [id, j]));
    const counts = new Uint32Array(pendIds.length + 1);
    for (const id of this.logId) { const j = order.get(id); if (j !== undefined) counts[j + 1]!++; }
    for (let j = 0; j < pendIds.length; j++) counts[j + 1] = counts[j + 1]! + counts[j]!;
    const n = counts[pendIds.length]!;
    const ts = new Float64Array(n), word = new Uint32Array(n), at = counts.slice();
    this.logId.forEach((id, r) => {
      const j = order.get(id);
      if (j === undefined) return;
      const p = at[j]!++;
      ts[p] = this.logTs[r]!; word[p] = this.logWord[r]!;
    });
    const keys = new Uint32Array(pendIds.length * KW);
    pendIds.forEach((id, j) => keys.set(this.keys.subarray(this.pendSlot[id]! * KW, this.pendSlot[id]! * KW + KW), j * KW));
    return { ends: this.state(true), pending: { count: pendIds.length, keys, start: counts, ts, word }, newest: this.newest };
  }

  /** The live entries as columns (without the keys still pending in scan mode when `settledOnly`). */
  state(settledOnly = false): CtState {
    let n = 0;
    for (let s = 0; s < this.cap; s++) if (this.used[s] && !(settledOnly && this.pend[s])) n++;
    const st: CtState = { count: 0, keys: new Uint32Array(n * KW), code: new Uint8Array(n), last: new Float64Array(n), assumed: new Uint8Array(n) };
    for (let s = 0; s < this.cap; s++) {
      if (!this.used[s] || (settledOnly && this.pend[s])) continue;
      // Code 0 is no entry (a scan inserts a pending key before its first valid packet).
      if (this.code[s] === 0) continue;
      const j = st.count++;
      st.keys.set(this.keys.subarray(s * KW, s * KW + KW), j * KW);
      st.code[j] = this.code[s]!; st.last[j] = this.last[s]!; st.assumed[j] = this.assumedBit[s]!;
    }
    return st;
  }

  /** Puts `st`'s entries into the table (over any of the same key). */
  seed(st: CtState): void {
    for (let j = 0; j < st.count; j++) {
      this.setKey(st.keys, j);
      const s = this.slot();
      if (!this.used[s]) this.insert(s);
      this.code[s] = st.code[j]!; this.last[s] = st.last[j]!; this.assumedBit[s] = st.assumed[j]!;
      if (st.last[j]! > this.newest) this.newest = st.last[j]!;
    }
  }

  /** Applies a share's transfer to this table (which holds the state at that share's start). */
  compose(t: CtTransfer): void {
    const p = t.pending;
    for (let j = 0; j < p.count; j++) {
      this.setKey(p.keys, j);
      const s = this.slot();
      for (let r = p.start[j]!; r < p.start[j + 1]!; r++) {
        const w = p.word[r]!;
        this.apply(s, p.ts[r]!, w & 7, (w >>> 3) & 0x3f, (w >>> 9) & 1, true);
      }
    }
    this.seed(t.ends);
    if (t.newest > this.newest) this.newest = t.newest;
    this.sweep(this.newest - this.timeout - SLACK);
  }

  private probeHash = 0;

  private setKey(keys: Uint32Array, j: number): void {
    const k = this.k;
    for (let w = 0; w < KW; w++) k[w] = keys[j * KW + w]!;
    this.probeHash = keyHash(k);
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
    // connKey writes every word of its family's key; an IPv4 key leaves words 4.. zero. (A loop:
    // TypedArray.fill was the model's hottest line, a runtime call per packet.)
    if (k[0]! >>> 8 !== 6) for (let w = 4; w < KW; w++) k[w] = 0;
    if (kind === K.ICMP_REQUEST || kind === K.ICMP_REPLY) {
      const t = b.l4a[i]! >>> 24, p = b.proto[i]!;
      const req = kind === K.ICMP_REQUEST ? t : p === 1 ? ICMP_REQUEST_OF[t]! : t - 1;
      k[connKeyWords(b, i) - 1] = ((b.l4b[i]! >>> 16) << 8 | req) >>> 0;
    }
    this.probeHash = keyHash(k);
    return d;
  }

  /** The slot of this.k (used or the free one to insert into). */
  private slot(): number {
    if ((this.size + 1) * 2 > this.cap) this.grow();
    const h = this.probeHash, mask = this.cap - 1, K_ = this.keys, k = this.k;
    // Word 0 holds the family: once it matches, an IPv4 key's words 4.. are zero on both sides.
    const n = k[0]! >>> 8 === 6 ? KW : 4;
    for (let p = h & mask; ; p = (p + 1) & mask) {
      if (!this.used[p]) return p;
      if (this.hashes[p] !== h) continue;
      const o = p * KW;
      let same = true;
      for (let w = 0; w < n; w++) if (K_[o + w] !== k[w]) { same = false; break; }
      if (same) return p;
    }
  }

  private insert(s: number): void {
    this.used[s] = 1;
    this.hashes[s] = this.probeHash;
    this.keys.set(this.k, s * KW);
    this.code[s] = 0; this.last[s] = 0; this.assumedBit[s] = 0; this.pend[s] = 0;
    this.size++;
  }

  private grow(): void { this.rebuild(this.cap * 2, -Infinity); }

  private sweep(cutoff: number): void {
    let live = 0;
    for (let s = 0; s < this.cap; s++) if (this.used[s] && (this.last[s]! >= cutoff || this.pend[s])) live++;
    // An expired entry is never read as live (apply checks its age), so it may stay until a quarter of
    // the table is dead: re-placing every entry each quarter timeout cost 4 % of a run's CPU.
    if ((this.size - live) * 4 < this.size) return;
    let cap = 1 << 12;
    while (cap < live * 4) cap <<= 1;
    this.rebuild(cap, cutoff);
  }

  /** Re-places the live entries (last packet at or after `cutoff`, or pending) into `cap` slots. */
  private rebuild(cap: number, cutoff: number): void {
    const old = { cap: this.cap, keys: this.keys, used: this.used, hashes: this.hashes, code: this.code, last: this.last, a: this.assumedBit, pend: this.pend };
    this.cap = cap;
    this.keys = new Uint32Array(cap * KW);
    this.used = new Uint8Array(cap);
    this.hashes = new Int32Array(cap);
    this.code = new Uint8Array(cap);
    this.last = new Float64Array(cap);
    this.assumedBit = new Uint8Array(cap);
    this.pend = new Int32Array(cap);
    this.size = 0;
    const mask = cap - 1;
    for (let q = 0; q < old.cap; q++) {
      if (!old.used[q] || (old.last[q]! < cutoff && !old.pend[q])) continue;
      const h = old.hashes[q]!;
      let p = h & mask;
      while (this.used[p]) p = (p + 1) & mask;
      this.used[p] = 1;
      this.hashes[p] = h;
      this.keys.set(old.keys.subarray(q * KW, q * KW + KW), p * KW);
      this.code[p] = old.code[q]!;
      this.last[p] = old.last[q]!;
      this.assumedBit[p] = old.a[q]!;
      this.pend[p] = old.pend[q]!;
      if (old.pend[q]) this.pendSlot[old.pend[q]! - 1] = p;
      this.size++;
    }
  }
}
