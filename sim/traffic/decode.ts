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
  0: 'NULL (BSD loopback)', 1: 'Ethernet', 9: 'PPP', 12: 'raw IP (BSD)', 14: 'raw IP (BSD)', 50: 'PPP in HDLC framing',
  51: 'PPPoE', 101: 'raw IP', 108: 'LOOP (OpenBSD loopback)', 113: 'Linux cooked (SLL)', 204: 'PPP with direction',
  228: 'raw IPv4', 229: 'raw IPv6', 239: 'NFLOG (tcpdump -i nflog:N)', 276: 'Linux cooked v2 (SLL2)',
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

/** locateLink results besides an offset: the frame ends inside its link header(s); the payload is not IPv4/IPv6. */
export const LINK_SHORT = -1, LINK_OTHER = -2;

/**
 * What locateLink found besides the offset: `et` the network protocol as an
 * ethertype (0x0800 IPv4, 0x86dd IPv6; for raw-IP link types read from the
 * version nibble, 0 when it is neither), `vlan` whether 802.1Q/QinQ tags were
 * skipped, `cut` whether the link layer may have cut the packet short without
 * the record saying so (NFLOG's copy range), so the IP header's length is to
 * be believed over the captured bytes.
 */
export const link = { et: 0, vlan: false, cut: false };

/** PPP protocol numbers of IPv4 and IPv6 (RFC 1332, RFC 5072), as ethertypes. */
function pppToEthertype(proto: number): number {
  return proto === 0x0021 ? 0x0800 : proto === 0x0057 ? 0x86dd : 0;
}

/**
 * A PPP header at buf[p] (RFC 1661/1662 as pcap-linktype(7) describes DLT_PPP):
 * the HDLC address/control bytes ff 03 when present, then the protocol field,
 * one byte when compressed (PFC: its low bit set), else two; or a Cisco HDLC
 * header. Sets link.et; returns the payload offset or LINK_SHORT.
 */
function pppHeader(buf: Uint8Array, p: number, end: number): number {
  // Cisco HDLC framing (address 0x0f unicast / 0x8f multicast, control 0, an ethertype) shares these link
  // types: Wireshark writes LINKTYPE_PPP_HDLC as 9 and decodes it in either (text2pcap -l 50, 4.0.17).
  if (end - p >= 4 && (buf[p] === 0x0f || buf[p] === 0x8f) && buf[p + 1] === 0) return afterEthertype((buf[p + 2]! << 8) | buf[p + 3]!, buf, p + 4, end);
  if (end - p >= 2 && buf[p] === 0xff && buf[p + 1] === 0x03) p += 2;
  if (p >= end) return LINK_SHORT;
  let proto = buf[p]!;
  if ((proto & 1) !== 0) p += 1;
  else {
    if (end - p < 2) return LINK_SHORT;
    proto = (proto << 8) | buf[p + 1]!;
    p += 2;
  }
  link.et = pppToEthertype(proto);
  return p;
}

/**
 * Skips VLAN tags (802.1Q, 802.1ad, the old 0x9100) and a PPPoE session
 * header (ethertype 0x8864: 6 bytes, then the PPP protocol) after an
 * ethertype; sets link.et to the protocol they carry.
 */
function afterEthertype(et: number, buf: Uint8Array, p: number, end: number): number {
  while (et === 0x8100 || et === 0x88a8 || et === 0x9100) {
    if (end - p < 4) return LINK_SHORT;
    et = (buf[p + 2]! << 8) | buf[p + 3]!;
    p += 4;
    link.vlan = true;
  }
  if (et === 0x8864) {
    if (end - p < 8) return LINK_SHORT;
    link.et = pppToEthertype((buf[p + 6]! << 8) | buf[p + 7]!);
    return p + 8;
  }
  link.et = et;
  return p;
}

/**
 * NFLOG (`tcpdump -i nflog:N`, LINKTYPE_NFLOG 239): a 4-byte header (address
 * family, version, resource id) and TLVs of {length, type} in the capturing
 * host's byte order, length including the 4-byte TLV header, each padded to 4
 * bytes; the packet, from its network header on, is the NFULA_PAYLOAD TLV
 * (type 9). pcap-linktype(7) and libpcap's pcap/nflog.h. The byte order is
 * told by the type field: every NFULA type is below 256, so exactly one of its
 * two bytes is zero. The payload is what the rule's copy range let through
 * (link.cut): its IP header tells the packet's length on the wire.
 */
function nflog(buf: Uint8Array, off: number, end: number): number {
  if (end - off < 4) return LINK_SHORT;
  const family = buf[off]!;
  let p = off + 4;
  while (end - p >= 4) {
    const le = buf[p + 3] === 0 && buf[p + 2] !== 0;
    const len = le ? buf[p]! | (buf[p + 1]! << 8) : (buf[p]! << 8) | buf[p + 1]!;
    const type = le ? buf[p + 2]! : buf[p + 3]!;
    if (len < 4) return LINK_SHORT;
    if (type === 9) {
      // The snap length may cut the TLV itself: the packet then ends with the record.
      link.cut = true;
      link.et = family === 2 ? 0x0800 : family === 10 ? 0x86dd : 0;
      if (len < end - p) linkEnd = p + len;
      return p + 4;
    }
    if (len > end - p) return LINK_SHORT;
    p += (len + 3) & ~3;
  }
  // No payload TLV (a rule that logs no packet bytes): nothing to decode.
  return LINK_OTHER;
}

/** A raw IP packet at buf[p]: link.et from its version nibble (0 when neither 4 nor 6). */
function afterRaw(buf: Uint8Array, p: number, end: number): number {
  if (p >= end) return LINK_SHORT;
  const v = buf[p]! >> 4;
  link.et = v === 4 ? 0x0800 : v === 6 ? 0x86dd : 0;
  return p;
}

/** Last byte of the frame locateLink walked (NFLOG's payload may end before the record). */
let linkEnd = 0;

/**
 * Where the network header of a frame of link type `lt` (LINKTYPE_* values of
 * pcap-linktype(7)) starts, for the decoder here and for replay's rewriter
 * (kernel-glue/replay/rewrite.ts): one reading of every link layer. Returns
 * the offset, with `link` and the frame's end (linkEndOf) set, or LINK_SHORT /
 * LINK_OTHER.
 */
export function locateLink(buf: Uint8Array, off: number, caplen: number, lt: number): number {
  const end = off + caplen;
  link.et = 0; link.vlan = false; link.cut = false;
  linkEnd = end;
  switch (lt) {
    case 1:
      if (caplen < 14) return LINK_SHORT;
      return afterEthertype((buf[off + 12]! << 8) | buf[off + 13]!, buf, off + 14, end);
    case 113:
      if (caplen < 16) return LINK_SHORT;
      return afterEthertype((buf[off + 14]! << 8) | buf[off + 15]!, buf, off + 16, end);
    case 276:
      if (caplen < 20) return LINK_SHORT;
      return afterEthertype((buf[off]! << 8) | buf[off + 1]!, buf, off + 20, end);
    case 101: case 12: case 14:
      return afterRaw(buf, off, end);
    case 228:
      link.et = 0x0800;
      return off;
    case 229:
      link.et = 0x86dd;
      return off;
    case 0: case 108: {
      if (caplen < 4) return LINK_SHORT;
      // NULL: address family in the capturing host's byte order; LOOP: network order.
      const be = ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
      const le = ((buf[off + 3]! << 24) | (buf[off + 2]! << 16) | (buf[off + 1]! << 8) | buf[off]!) >>> 0;
      const fam = lt === 108 ? be : be < 256 ? be : le;
      link.et = fam === 2 ? 0x0800 : fam === 10 || fam === 24 || fam === 28 || fam === 30 ? 0x86dd : 0;
      return off + 4;
    }
    case 9:
      return pppHeader(buf, off, end);
    case 204:
      // PPP_WITH_DIR: one byte of direction (0 received, else sent), then PPP.
      return caplen < 1 ? LINK_SHORT : pppHeader(buf, off + 1, end);
    case 50:
      // PPP_HDLC: PPP in HDLC-like framing, or Cisco HDLC.
      return pppHeader(buf, off, end);
    case 51:
      // PPP_ETHER: a PPPoE session header (6 bytes), then the PPP protocol.
      if (caplen < 8) return LINK_SHORT;
      link.et = pppToEthertype((buf[off + 6]! << 8) | buf[off + 7]!);
      return off + 8;
    case 239:
      return nflog(buf, off, end);
    default:
      return LINK_OTHER;
  }
}

/** The end of the network packet locateLink last found (before the record's end for NFLOG). */
export function linkEndOf(): number {
  return linkEnd;
}

/**
 * Decodes one frame of `caplen` captured bytes at buf[off] into slot i
 * (all lanes but ts and wirelen). `missing` = wire length - caplen: bytes
 * the capture cut, which the kernel did see. Returns a DEC code.
 */
export function decodeFrame(buf: Uint8Array, off: number, caplen: number, linktype: number, b: TupleBatch, i: number, missing: number): number {
  if (missing < 0) missing = 0;
  // The common case inline: Ethernet + IPv4.
  if (linktype === 1 && caplen >= 14 && buf[off + 12] === 0x08 && buf[off + 13] === 0) return decodeIPv4(buf, off + 14, off + caplen, b, i, missing);
  const p = locateLink(buf, off, caplen, linktype);
  if (p === LINK_SHORT) return TRUNC_IP;
  if (p < 0) return NON_IP;
  // NFLOG's copy range cuts packets without the record knowing: the IP header's length is the wire's.
  if (link.cut) missing = 0xffff;
  const et = link.et, end = linkEnd;
  if (et === 0x0800) return decodeIPv4(buf, p, end, b, i, missing);
  if (et === 0x86dd) return decodeIPv6(buf, p, end, b, i, missing);
  // Raw-IP link types whose first nibble is neither 4 nor 6: a broken packet, not another protocol.
  return linktype === 101 || linktype === 12 || linktype === 14 ? MALFORMED : NON_IP;
}
