/**
 * Link, IP and transport decoding of one captured frame straight into a
 * TupleBatch slot: no per-packet objects, 32-bit reads from the capture
 * buffer. The batch lanes are documented in ./batch.ts.
 *
 * What the kernel would hash is the reassembled datagram (conntrack's defrag
 * runs first, kernel-semantics §4.2 "Fragments"), so fragments are only
 * decoded up to their IP header here and finished by ./defrag.ts.
 */
import type { TupleBatch } from './batch.ts';

// Local copies of the lane constants: hot loops must not go through module
// bindings (under tsx they compile to getter calls, measured 4x slower).
const F_PORTS = 0x01, F_SYN = 0x04, F_ACK = 0x08, F_RST = 0x10, F_FIN = 0x20, F_TRUNCATED = 0x40;
const HAS4 = 0x01, HAS48 = 0x03, CT_INVALID = 0x04, V4 = 4, V6 = 6;
const OK = 0, NON_IP = 1, TRUNC_IP = 2, MALFORMED = 3, FRAGMENT = 4;

/** decodeFrame results. */
export const DEC = { OK: 0, NON_IP: 1, TRUNC_IP: 2, MALFORMED: 3, FRAGMENT: 4 } as const;
/** Skip reason per DEC code (index = code). */
export const DEC_REASON = ['', 'non-ip', 'truncated-ip', 'malformed', ''] as const;

/** Link types we decode (LINKTYPE_* values from pcap-linktype(7)). */
export const LINKTYPES: Record<number, string> = {
  0: 'NULL (BSD loopback)', 1: 'Ethernet', 12: 'raw IP (BSD)', 14: 'raw IP (BSD)', 101: 'raw IP', 108: 'LOOP (OpenBSD loopback)',
  113: 'Linux cooked (SLL)', 228: 'raw IPv4', 229: 'raw IPv6', 276: 'Linux cooked v2 (SLL2)',
};

export function linktypeSupported(lt: number): boolean {
  return LINKTYPES[lt] !== undefined;
}

/**
 * Set by decodeFrame when it returns FRAGMENT (lanes family, addresses,
 * proto are written; L4 lanes are not). Offsets index the frame buffer.
 */
export const fragInfo = {
  v6: false,
  /** IPv4 id (16 bits) or IPv6 fragment identification (32 bits). */
  id: 0,
  /** Byte offset of this fragment's data within the datagram's fragmentable part. */
  offset: 0,
  more: false,
  /** Start of the fragment data in the buffer, captured bytes of it, and its length on the wire. */
  data: 0,
  dataCap: 0,
  dataWire: 0,
  /** First fragment only: where L4 starts within the fragmentable part (IPv6 may have ext headers first), else -1. */
  l4rel: -1,
  /** First fragment only: the L4 protocol after walking ext headers. */
  l4proto: 0,
};

/** Bytes of L4 header the kernel's consumers read, per protocol (conntrack needs TCP's whole header). */
function l4Need(proto: number): number {
  switch (proto) {
    case 6: return 20;
    case 17: case 136: case 1: case 58: case 50: return 8;
    case 132: case 33: case 51: return 12;
    case 47: return 4;
    default: return 8;
  }
}

/**
 * Writes the L4 lanes (l4a, l4b, l4flags, sport, dport, flags) of slot i from
 * `cap` captured L4 bytes at src[q] of an L4 header `wire` bytes long on the
 * wire. `extra` is OR-ed into flags (F.FRAGMENT).
 */
export function writeL4(b: TupleBatch, i: number, proto: number, src: Uint8Array, q: number, cap: number, wire: number, extra: number): void {
  let a = 0, c = 0, lf = 0, sp = 0, dp = 0, fl = extra;
  if (cap > wire) cap = wire;
  if (cap >= 4) {
    a = ((src[q]! << 24) | (src[q + 1]! << 16) | (src[q + 2]! << 8) | src[q + 3]!) >>> 0;
    lf = HAS4;
    if (cap >= 8) {
      c = ((src[q + 4]! << 24) | (src[q + 5]! << 16) | (src[q + 6]! << 8) | src[q + 7]!) >>> 0;
      lf = HAS48;
    }
  }
  let need = l4Need(proto);
  switch (proto) {
    case 6: case 17: case 136: case 132: case 33:
      if (cap >= 4) { sp = a >>> 16; dp = a & 0xffff; fl |= F_PORTS; }
      // conntrack rejects a header shorter than the protocol's minimum as INVALID (kernel-semantics §4.3).
      if (wire < need) lf |= CT_INVALID;
      if (proto === 6 && cap >= 14) {
        const t = src[q + 13]!;
        if (t & 0x02) fl |= F_SYN;
        if (t & 0x10) fl |= F_ACK;
        if (t & 0x04) fl |= F_RST;
        if (t & 0x01) fl |= F_FIN;
      }
      break;
    case 1: case 58:
      if (cap >= 8) {
        const t = a >>> 24;
        if (proto === 1 ? t === 8 || t === 0 : t === 128 || t === 129) { sp = c >>> 16; dp = c & 0xffff; }
      }
      break;
    case 50:
      if (cap >= 4) { sp = a >>> 16; dp = a & 0xffff; }
      break;
    case 51:
      if (cap >= 8) { sp = c >>> 16; dp = c & 0xffff; }
      break;
    case 47:
      if (cap >= 4 && (a & 0x20000000) !== 0) {
        const ko = (a & 0x80000000) !== 0 ? 8 : 4;
        need = ko + 4;
        if (cap >= ko + 4) { sp = (src[q + ko]! << 8) | src[q + ko + 1]!; dp = (src[q + ko + 2]! << 8) | src[q + ko + 3]!; }
      }
      break;
  }
  if (cap < (wire < need ? wire : need)) fl |= F_TRUNCATED;
  b.l4a[i] = a;
  b.l4b[i] = c;
  b.l4flags[i] = lf;
  b.sport[i] = sp;
  b.dport[i] = dp;
  b.flags[i] = fl;
}

/** Marks slot i as having no usable L4 bytes because the capture cut them. */
function truncL4(b: TupleBatch, i: number, proto: number): void {
  b.proto[i] = proto;
  b.l4a[i] = 0; b.l4b[i] = 0; b.l4flags[i] = 0; b.sport[i] = 0; b.dport[i] = 0;
  b.flags[i] = F_TRUNCATED;
}

function decodeIPv4(buf: Uint8Array, p: number, end: number, b: TupleBatch, i: number, missing: number): number {
  if (end - p < 20) return end > p && buf[p]! >> 4 !== 4 ? MALFORMED : TRUNC_IP;
  const v0 = buf[p]!;
  if (v0 >> 4 !== 4) return MALFORMED;
  const hl = (v0 & 15) << 2;
  if (hl < 20) return MALFORMED;
  const tot = (buf[p + 2]! << 8) | buf[p + 3]!;
  // tot = 0 happens with TSO/GSO captures: the length is whatever was captured.
  if (tot !== 0 && tot < hl) return MALFORMED;
  // A datagram longer than the frame on the wire: ip_rcv drops it (bytes the capture cut still count).
  if (tot > end - p + missing) return MALFORMED;
  const proto = buf[p + 9]!;
  b.family[i] = V4;
  b.saddr[i] = ((buf[p + 12]! << 24) | (buf[p + 13]! << 16) | (buf[p + 14]! << 8) | buf[p + 15]!) >>> 0;
  b.daddr[i] = ((buf[p + 16]! << 24) | (buf[p + 17]! << 16) | (buf[p + 18]! << 8) | buf[p + 19]!) >>> 0;
  const j = i << 2;
  const s6 = b.saddr6, d6 = b.daddr6;
  s6[j] = 0; s6[j + 1] = 0; s6[j + 2] = 0; s6[j + 3] = 0;
  d6[j] = 0; d6[j + 1] = 0; d6[j + 2] = 0; d6[j + 3] = 0;
  b.proto[i] = proto;
  const q = p + hl;
  const wire = (tot !== 0 ? tot : end - p) - hl;
  let cap = end - q;
  if (cap > wire) cap = wire;
  const fo = (buf[p + 6]! << 8) | buf[p + 7]!;
  if ((fo & 0x3fff) !== 0) {
    if (cap < 0) { truncL4(b, i, proto); b.flags[i] = F_TRUNCATED | 0x02; return OK; }
    fragInfo.v6 = false;
    fragInfo.id = (buf[p + 4]! << 8) | buf[p + 5]!;
    fragInfo.offset = (fo & 0x1fff) << 3;
    fragInfo.more = (fo & 0x2000) !== 0;
    fragInfo.data = q;
    fragInfo.dataCap = cap;
    fragInfo.dataWire = wire;
    fragInfo.l4rel = fragInfo.offset === 0 ? 0 : -1;
    fragInfo.l4proto = proto;
    return FRAGMENT;
  }
  if (cap < 0) { truncL4(b, i, proto); return OK; }
  writeL4(b, i, proto, buf, q, cap, wire, 0);
  return OK;
}

function decodeIPv6(buf: Uint8Array, p: number, end: number, b: TupleBatch, i: number, missing: number): number {
  if (end - p < 40) return end > p && buf[p]! >> 4 !== 6 ? MALFORMED : TRUNC_IP;
  if (buf[p]! >> 4 !== 6) return MALFORMED;
  const plen = (buf[p + 4]! << 8) | buf[p + 5]!;
  if (40 + plen > end - p + missing) return MALFORMED;
  let nh = buf[p + 6]!;
  b.family[i] = V6;
  b.saddr[i] = 0;
  b.daddr[i] = 0;
  const j = i << 2;
  const s6 = b.saddr6, d6 = b.daddr6;
  for (let k = 0; k < 4; k++) {
    const o = p + 8 + (k << 2);
    s6[j + k] = ((buf[o]! << 24) | (buf[o + 1]! << 16) | (buf[o + 2]! << 8) | buf[o + 3]!) >>> 0;
    const d = o + 16;
    d6[j + k] = ((buf[d]! << 24) | (buf[d + 1]! << 16) | (buf[d + 2]! << 8) | buf[d + 3]!) >>> 0;
  }
  // plen = 0: a jumbogram or a GSO capture; take what was captured.
  const wireEnd = plen !== 0 ? p + 40 + plen : end;
  const capEnd = end < wireEnd ? end : wireEnd;
  let q = p + 40;
  let isFrag = false, fragData = 0;
  // Walk every extension header, as the kernel's ipv6_skip_exthdr/ipv6_find_hdr do (net/ipv6/exthdrs_core.c,
  // source reading): they have no count limit, only the packet's length. Each header moves q on by at least
  // 8 bytes and the walk stops where the captured bytes end, so the loop is bounded by the frame.
  for (;;) {
    if (nh === 0 || nh === 43 || nh === 60) {
      if (capEnd - q < 2) { if (wireEnd - q < 2) return MALFORMED; truncL4(b, i, nh); return OK; }
      const len = (buf[q + 1]! + 1) << 3;
      nh = buf[q]!;
      q += len;
      continue;
    }
    if (nh === 44) {
      if (capEnd - q < 8) { if (wireEnd - q < 8) return MALFORMED; truncL4(b, i, nh); return OK; }
      const off = (buf[q + 2]! << 8) | buf[q + 3]!;
      const nnh = buf[q]!;
      const id = ((buf[q + 4]! << 24) | (buf[q + 5]! << 16) | (buf[q + 6]! << 8) | buf[q + 7]!) >>> 0;
      q += 8;
      nh = nnh;
      if ((off & 0xfff9) === 0) continue; // atomic fragment (RFC 6946): an ordinary packet
      isFrag = true;
      fragData = q;
      fragInfo.v6 = true;
      fragInfo.id = id;
      fragInfo.offset = off & 0xfff8;
      fragInfo.more = (off & 1) !== 0;
      fragInfo.data = q;
      fragInfo.dataWire = wireEnd - q;
      fragInfo.dataCap = capEnd - q;
      fragInfo.l4rel = -1;
      fragInfo.l4proto = nh;
      if (fragInfo.offset !== 0) { b.proto[i] = nh; return fragInfo.dataWire < 0 ? MALFORMED : FRAGMENT; }
      continue;
    }
    break;
  }
  b.proto[i] = nh;
  if (isFrag) {
    if (fragInfo.dataWire < 0) return MALFORMED;
    if (fragInfo.dataCap < 0) fragInfo.dataCap = 0;
    fragInfo.l4rel = q - fragData;
    fragInfo.l4proto = nh;
    return FRAGMENT;
  }
  if (q > wireEnd) return MALFORMED;
  if (q > capEnd) { truncL4(b, i, nh); return OK; }
  writeL4(b, i, nh, buf, q, capEnd - q, wireEnd - q, 0);
  return OK;
}

function decodeIP(buf: Uint8Array, p: number, end: number, b: TupleBatch, i: number, missing: number): number {
  if (p >= end) return TRUNC_IP;
  const v = buf[p]! >> 4;
  if (v === 4) return decodeIPv4(buf, p, end, b, i, missing);
  if (v === 6) return decodeIPv6(buf, p, end, b, i, missing);
  return MALFORMED;
}

function byEthertype(et: number, buf: Uint8Array, p: number, end: number, b: TupleBatch, i: number, missing: number): number {
  // 802.1Q, 802.1ad (QinQ) and the old 0x9100 QinQ tag: skip each 4-byte tag.
  while (et === 0x8100 || et === 0x88a8 || et === 0x9100) {
    if (end - p < 4) return TRUNC_IP;
    et = (buf[p + 2]! << 8) | buf[p + 3]!;
    p += 4;
  }
  if (et === 0x0800) return decodeIPv4(buf, p, end, b, i, missing);
  if (et === 0x86dd) return decodeIPv6(buf, p, end, b, i, missing);
  return NON_IP;
}

/**
 * Decodes one frame of `caplen` captured bytes at buf[off] into slot i
 * (all lanes but ts and wirelen). `missing` = wire length - caplen: bytes
 * the capture cut, which the kernel did see. Returns a DEC code.
 */
export function decodeFrame(buf: Uint8Array, off: number, caplen: number, linktype: number, b: TupleBatch, i: number, missing: number): number {
  const end = off + caplen;
  if (missing < 0) missing = 0;
  switch (linktype) {
    case 1: {
      if (caplen < 14) return TRUNC_IP;
      const et = (buf[off + 12]! << 8) | buf[off + 13]!;
      if (et === 0x0800) return decodeIPv4(buf, off + 14, end, b, i, missing);
      return byEthertype(et, buf, off + 14, end, b, i, missing);
    }
    case 101: case 12: case 14:
      return decodeIP(buf, off, end, b, i, missing);
    case 228:
      return decodeIPv4(buf, off, end, b, i, missing);
    case 229:
      return decodeIPv6(buf, off, end, b, i, missing);
    case 113:
      if (caplen < 16) return TRUNC_IP;
      return byEthertype((buf[off + 14]! << 8) | buf[off + 15]!, buf, off + 16, end, b, i, missing);
    case 276:
      if (caplen < 20) return TRUNC_IP;
      return byEthertype((buf[off]! << 8) | buf[off + 1]!, buf, off + 20, end, b, i, missing);
    case 0: case 108: {
      if (caplen < 4) return TRUNC_IP;
      // NULL: address family in the capturing host's byte order; LOOP: network order.
      const be = ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
      const le = ((buf[off + 3]! << 24) | (buf[off + 2]! << 16) | (buf[off + 1]! << 8) | buf[off]!) >>> 0;
      const fam = linktype === 108 ? be : be < 256 ? be : le;
      if (fam === 2) return decodeIPv4(buf, off + 4, end, b, i, missing);
      if (fam === 10 || fam === 24 || fam === 28 || fam === 30) return decodeIPv6(buf, off + 4, end, b, i, missing);
      return NON_IP;
    }
    default:
      return NON_IP;
  }
}
