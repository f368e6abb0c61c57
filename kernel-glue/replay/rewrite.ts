/**
 * Rewrites a capture for replay into a cluster: every IPv4 packet (for an
 * IPv6 cluster address: every IPv6 packet without extension headers) becomes
 * an Ethernet frame to the cluster MAC carrying the cluster IP as destination,
 * with a valid IP header checksum and a valid L4 checksum (conntrack marks a
 * bad one INVALID and then no node accepts the packet, kernel-semantics §4.3,
 * §11.3). Source addresses and ports are kept: they decide the bucket.
 *
 * Alongside the frames it produces what the kernel will see after
 * defragmentation (conntrack reassembles before CLUSTERIP / xt_cluster / nft
 * look at a packet, §4.2 "Fragments"): one IPv4 datagram per unfragmented
 * packet and per complete fragment train, decoded into a TupleBatch, and per
 * datagram the class of conntrack verdict a fresh packet gets (see `CT`).
 *
 * The whole rewritten capture is held in memory (like tcpreplay's
 * --preload-pcap), so rate control never waits on the disk.
 */
import { DataError } from '../../sim/core/errors.ts';
import { createBatch, L4, type TupleBatch } from '../../sim/traffic/batch.ts';
import { Defrag, FRAG_DROPPED, FRAG_RESOLVED } from '../../sim/traffic/defrag.ts';
import { newRawRecord, openCapture, type CaptureOptions } from '../../sim/traffic/capture.ts';
import { DEC, decodeFrame, link, LINK_SHORT, linkEndOf, linktypeSupported, locateLink } from '../../sim/traffic/decode.ts';
import { checksumOf, onesSum, pseudoSum6 } from '../../sim/traffic/checksum.ts';
import { PcapWriter } from '../../sim/traffic/pcap-writer.ts';

/** Conntrack verdict for a packet that meets no existing conntrack (nf_conntrack_proto_*.c, §4.2-§4.3). */
export const CT = {
  /** Creates a NEW conntrack: TCP SYN, UDP, ICMP echo/timestamp/info/mask requests, other protocols (generic tracker). */
  NEW: 0,
  /** TCP ACK-class packet without SYN/FIN/RST: picked up mid-stream only when nf_conntrack_tcp_loose=1. */
  LOOSE: 1,
  /** INVALID: no conntrack, so CLUSTERIP drops it on every node and xt_cluster / `ct` keys match nothing. */
  INVALID: 2,
} as const;

export interface RewriteOptions {
  /** The IPv4 cluster address (ignored when clusterIp6 is given). */
  clusterIp: number;
  /** An IPv6 cluster address as four big-endian words: IPv6 packets are rewritten to it, IPv4 ones skipped. */
  clusterIp6?: ArrayLike<number>;
  /** Six bytes. */
  clusterMac: Uint8Array;
  /** Stop after this many records. */
  limit?: number;
  /**
   * Largest IP datagram the sending interface carries (its MTU). Bigger ones
   * (GRO/TSO super-packets in captures taken on a host) are skipped and
   * counted as 'larger-than-mtu': AF_PACKET refuses them.
   */
  mtu?: number;
  capture?: CaptureOptions;
}

export interface RewriteStats {
  records: number;
  /** Frames that will be sent. */
  frames: number;
  /** Datagrams the kernel will see (unfragmented packets + complete fragment trains). */
  datagrams: number;
  vlanStripped: number;
  fragments: number;
  /** Complete fragment trains (their L4 checksum fixed over the reassembled datagram). */
  fragmentTrains: number;
  /** Fragment trains that never completed (sent anyway; the kernel's reassembly times them out). */
  incompleteTrains: number;
  /** Not sent, by reason. */
  skipped: Record<string, number>;
}

export interface Rewritten {
  /** Frame i is bytes[start[i], start[i] + len[i]). Source MAC is zero: the sender fills in its interface's address. */
  bytes: Uint8Array;
  start: Uint32Array;
  len: Uint32Array;
  /** Capture timestamp of frame i, seconds relative to the first frame. */
  ts: Float64Array;
  count: number;
  /** What the kernel sees, one slot per datagram (daddr = cluster IP). */
  visible: TupleBatch;
  /** CT class per visible datagram. */
  ct: Uint8Array;
  stats: RewriteStats;
}

/** The pseudo-header checksummed protocols we can fix; anything else listed here is refused (see below). */
const P_ICMP = 1, P_TCP = 6, P_UDP = 17, P_ICMPV6 = 58;
/**
 * Protocols whose conntrack verdict we do not model exactly (DCCP and SCTP
 * trackers check chunk/packet types, UDP-Lite's checksum quirk of §4.3):
 * skipped and counted, so a verification never rests on a guess.
 */
const UNMODELLED = new Set([33, 132, 136]);
/** IPv6 extension headers (RFC 8200 §4, plus AH, Mobility, HIP, Shim6) before the upper layer: skipped, not modelled. */
const V6_EXTENSION = new Set([0, 43, 51, 60, 135, 139, 140]);

/** Internet checksum of an IPv4 header at `ip` (its checksum field zeroed first). */
export function fixIpChecksum(b: Uint8Array, ip: number): void {
  const ihl = (b[ip]! & 15) * 4;
  b[ip + 10] = 0; b[ip + 11] = 0;
  const c = checksumOf(onesSum(b, ip, ip + ihl));
  b[ip + 10] = c >>> 8; b[ip + 11] = c & 255;
}

/**
 * Writes the L4 checksum of the datagram whose IPv4 header is at `ip` (whole,
 * unfragmented; `l4len` bytes after the header). Returns false when the
 * segment is too short to hold the checksum field.
 */
export function fixL4Checksum(b: Uint8Array, ip: number): boolean {
  const ihl = (b[ip]! & 15) * 4;
  const tot = (b[ip + 2]! << 8) | b[ip + 3]!;
  const l4 = ip + ihl, len = tot - ihl, proto = b[ip + 9]!;
  // Checksum 0 means "none" for UDP over IPv4 and conntrack accepts it (RFC 768).
  if (proto === P_UDP && len >= 8 && b[l4 + 6] === 0 && b[l4 + 7] === 0) return true;
  return fixL4At(b, l4, len, proto, proto === P_ICMP ? 0 : onesSum(b, ip + 12, ip + 20) + proto + len);
}

/**
 * The same for an IPv6 datagram without extension headers at `ip`: TCP, UDP
 * and ICMPv6 all start from the IPv6 pseudo-header. A UDP checksum of 0 is
 * not "none" over IPv6 (RFC 8200 §8.1: receivers discard it), so it is
 * computed like any other.
 */
export function fixL4Checksum6(b: Uint8Array, ip: number): boolean {
  const len = (b[ip + 4]! << 8) | b[ip + 5]!, proto = b[ip + 6]!;
  return fixL4At(b, ip + 40, len, proto === P_ICMPV6 ? P_ICMP : proto, pseudoSum6(b, ip, len, proto));
}

/** Writes the checksum of the L4 segment at b[l4, l4 + len) of protocol `proto` (ICMPv6 passed as ICMP: same field), starting from `pseudo`. */
function fixL4At(b: Uint8Array, l4: number, len: number, proto: number, pseudo: number): boolean {
  const at = proto === P_TCP ? 16 : proto === P_UDP ? 6 : proto === P_ICMP ? 2 : -1;
  if (at < 0) return true;
  if (len < (proto === P_TCP ? 20 : proto === P_UDP ? 8 : 4)) return false;
  b[l4 + at] = 0; b[l4 + at + 1] = 0;
  let c = checksumOf(onesSum(b, l4, l4 + len, pseudo));
  if (proto === P_UDP && c === 0) c = 0xffff;
  b[l4 + at] = c >>> 8; b[l4 + at + 1] = c & 255;
  return true;
}

/** tcp_valid_flags[] of nf_conntrack_proto_tcp.c (flags without ECE, CWR, PSH). */
const TCP_VALID = new Set([0x02, 0x22, 0x12, 0x04, 0x14, 0x11, 0x31, 0x10, 0x30]);

/**
 * The conntrack class of a whole IPv4 (or extension-free IPv6) datagram at `ip` that meets no
 * conntrack: tcp_error + tcp_new (the "new" column of tcp_conntracks),
 * udp_error, icmp_error + the valid_new table of nf_conntrack_proto_icmp.c;
 * everything else goes to the generic tracker, which always creates one.
 */
export function ctClass(b: Uint8Array, ip: number): number {
  if (b[ip]! >>> 4 === 6) return ctClassL4(b, ip + 40, (b[ip + 4]! << 8) | b[ip + 5]!, b[ip + 6]!);
  const ihl = (b[ip]! & 15) * 4;
  const tot = (b[ip + 2]! << 8) | b[ip + 3]!;
  return ctClassL4(b, ip + ihl, tot - ihl, b[ip + 9]!);
}

function ctClassL4(b: Uint8Array, l4: number, len: number, proto: number): number {
  if (proto === P_TCP) {
    if (len < 20) return CT.INVALID;
    const doff = (b[l4 + 12]! >>> 4) * 4;
    if (doff < 20 || doff > len) return CT.INVALID;
    const fl = b[l4 + 13]! & 0x37;
    if (!TCP_VALID.has(fl)) return CT.INVALID;
    if (fl & 0x04) return CT.INVALID; // RST
    if (fl & 0x02) return fl & 0x10 ? CT.INVALID : CT.NEW; // SYN|ACK cannot open; SYN can
    if (fl & 0x01) return CT.INVALID; // FIN
    return fl & 0x10 ? CT.LOOSE : CT.INVALID;
  }
  if (proto === P_UDP) {
    if (len < 8) return CT.INVALID;
    const ulen = (b[l4 + 4]! << 8) | b[l4 + 5]!;
    return ulen < 8 || ulen > len ? CT.INVALID : CT.NEW;
  }
  if (proto === P_ICMP) {
    if (len < 8) return CT.INVALID;
    const t = b[l4]!;
    // Errors need a related conntrack (none exists); only requests open one.
    return t === 8 || t === 13 || t === 15 || t === 17 ? CT.NEW : CT.INVALID;
  }
  if (proto === P_ICMPV6) {
    if (len < 8) return CT.INVALID;
    // nf_conntrack_proto_icmpv6.c valid_new[]: only echo request (128) and node information query (139)
    // open a conntrack; errors need a related one (read from source).
    const t = b[l4]!;
    return t === 128 || t === 139 ? CT.NEW : CT.INVALID;
  }
  return CT.NEW;
}

/**
 * Where the IP header starts, where the packet ends (an NFLOG payload ends
 * before its record), whether VLAN tags were stripped, whether the link
 * layer may have cut the packet (NFLOG's copy range) and whether it is IPv6,
 * or a skip reason. The link layer is read by the decoder's own locateLink
 * (sim/traffic/decode.ts).
 */
function locateIp(buf: Uint8Array, off: number, cap: number, lt: number): { ip: number; end: number; vlan: boolean; cut: boolean; v6: boolean } | string {
  if (!linktypeSupported(lt)) return `linktype-${lt}`;
  const p = locateLink(buf, off, cap, lt);
  if (p === LINK_SHORT) return 'short-frame';
  if (p < 0 || (link.et !== 0x0800 && link.et !== 0x86dd)) return 'non-ip';
  return { ip: p, end: linkEndOf(), vlan: link.vlan, cut: link.cut, v6: link.et === 0x86dd };
}

interface Train {
  /** Frame indexes of the fragments the kernel queues (duplicates left out), in arrival order. */
  frames: number[];
  /** Original destination of the first fragment seen (collisions after the rewrite are refused). */
  daddr: number;
  collided: boolean;
}

/** Linktype of a bare IPv4 or IPv6 datagram (LINKTYPE_RAW: the version nibble decides), to decode a rewritten datagram. */
const LINKTYPE_RAW = 101;

/** Reads `path` and rewrites every record; see the module comment. */
export function rewriteCapture(path: string, o: RewriteOptions): Rewritten {
  const src = openCapture(path, o.capture);
  const rec = newRawRecord();
  const stats: RewriteStats = { records: 0, frames: 0, datagrams: 0, vlanStripped: 0, fragments: 0, fragmentTrains: 0, incompleteTrains: 0, skipped: {} };
  const skip = (why: string): void => { stats.skipped[why] = (stats.skipped[why] ?? 0) + 1; };
  let bytes = new Uint8Array(1 << 20), used = 0;
  let start = new Uint32Array(1024), len = new Uint32Array(1024), ts = new Float64Array(1024), nf = 0;
  // visible datagrams as raw IPv4 bytes (decoded at the end); order = order of completion
  const vis: { d: Uint8Array; invalid: boolean }[] = [];
  // Fragment trains as the receiving kernel reassembles them: the one reassembler (sim/traffic/defrag.ts),
  // keyed as the kernel keys them after the rewrite (source, cluster IP, id, protocol).
  const defrag = new Defrag();
  const trains = new Map<number, Train>();
  const scratch = createBatch(1);
  let finished: Train | null = null;
  defrag.onDrop = (slot) => { if (trains.delete(slot)) stats.incompleteTrains++; };
  defrag.onResolve = (slot) => { finished = trains.get(slot) ?? null; trains.delete(slot); };
  const limit = o.limit ?? Infinity;
  const mtu = o.mtu ?? 65535;
  let t0 = NaN;
  const cip = o.clusterIp >>> 0;
  const cip6 = o.clusterIp6 ?? null;
  /** Copies the datagram into a new frame at the end of `bytes` (cluster MAC, zero source MAC, `et`); not kept until commit. */
  const place = (b: Uint8Array, ip: number, tot: number, et: number): number => {
    const flen = 14 + tot;
    if (used + flen > bytes.length) { const nb = new Uint8Array(Math.max(bytes.length * 2, used + flen)); nb.set(bytes.subarray(0, used)); bytes = nb; }
    if (nf === start.length) {
      const g = (a: Uint32Array<ArrayBuffer>): Uint32Array<ArrayBuffer> => { const x = new Uint32Array(a.length * 2); x.set(a); return x; };
      start = g(start); len = g(len);
      const t = new Float64Array(ts.length * 2); t.set(ts); ts = t;
    }
    const f = used;
    bytes.set(o.clusterMac, f);
    bytes.fill(0, f + 6, f + 12);
    bytes[f + 12] = et >>> 8; bytes[f + 13] = et & 255;
    bytes.set(b.subarray(ip, ip + tot), f + 14);
    return f;
  };
  /** Keeps the frame `place` wrote. */
  const commit = (f: number, flen: number, recTs: number, vlan: boolean): void => {
    if (vlan) stats.vlanStripped++;
    if (Number.isNaN(t0)) t0 = recTs;
    start[nf] = f; len[nf] = flen; ts[nf] = recTs - t0; nf++;
    used += flen;
  };
  try {
    while (stats.records < limit && src.nextRaw(rec)) {
      stats.records++;
      const r = locateIp(rec.buf, rec.off, rec.caplen, rec.linktype);
      if (typeof r === 'string') { skip(r); continue; }
      const ip = r.ip, b = rec.buf, capEnd = r.end;
      // The cluster address has one family; packets of the other never reach its rules.
      if (r.v6 !== (cip6 !== null)) { skip(r.v6 ? 'ipv6' : 'ipv4'); continue; }
      if (cip6) {
        if (ip + 40 > capEnd) { skip('truncated'); continue; }
        if (b[ip]! >>> 4 !== 6) { skip('non-ip'); continue; }
        const plen = (b[ip + 4]! << 8) | b[ip + 5]!, tot = 40 + plen, nh = b[ip + 6]!;
        if (plen === 0) { skip('malformed-ip'); continue; } // a jumbogram (or nothing at all)
        if (ip + tot > capEnd) { skip(rec.caplen < rec.wirelen || r.cut ? 'truncated' : 'malformed-ip'); continue; }
        if (tot > mtu) { skip('larger-than-mtu'); continue; }
        // Extension headers (fragments among them) are not modelled for IPv6: skipped and counted, never guessed.
        if (nh === 44) { skip('ipv6-fragment'); continue; }
        if (V6_EXTENSION.has(nh)) { skip('ipv6-extension-header'); continue; }
        if (UNMODELLED.has(nh)) { skip(`protocol-${nh}`); continue; }
        // Neighbour/router discovery would rewrite the nodes' neighbour caches; it is no cluster traffic either.
        if (nh === P_ICMPV6 && b[ip + 40]! >= 133 && b[ip + 40]! <= 137) { skip('icmpv6-neighbour-discovery'); continue; }
        const f = place(b, ip, tot, 0x86dd);
        const q = f + 14;
        for (let k = 0; k < 16; k++) bytes[q + 24 + k] = (cip6[k >>> 2]! >>> (24 - 8 * (k & 3))) & 255;
        if (!fixL4Checksum6(bytes, q)) { skip('malformed-l4'); continue; }
        vis.push({ d: bytes.slice(q, q + tot), invalid: false });
        commit(f, 14 + tot, rec.ts, r.vlan);
        continue;
      }
      if (ip + 20 > capEnd) { skip('truncated'); continue; }
      if (b[ip]! >>> 4 !== 4) { skip('non-ip'); continue; }
      const ihl = (b[ip]! & 15) * 4;
      const tot = (b[ip + 2]! << 8) | b[ip + 3]!;
      if (ihl < 20 || tot < ihl) { skip('malformed-ip'); continue; }
      // A frame cut by the snap length cannot be sent as the original: its checksum would cover bytes we never saw.
      if (ip + tot > capEnd) { skip(rec.caplen < rec.wirelen || r.cut ? 'truncated' : 'malformed-ip'); continue; }
      if (tot > mtu) { skip('larger-than-mtu'); continue; }
      const proto = b[ip + 9]!;
      if (UNMODELLED.has(proto)) { skip(`protocol-${proto}`); continue; }
      const fragw = (b[ip + 6]! << 8) | b[ip + 7]!;
      const isFrag = (fragw & 0x3fff) !== 0;
      // Build the frame: cluster MAC, zero source MAC (the sender's), IPv4, the datagram rewritten.
      const f = place(b, ip, tot, 0x0800);
      const q = f + 14;
      const origDaddr = ((bytes[q + 16]! << 24) | (bytes[q + 17]! << 16) | (bytes[q + 18]! << 8) | bytes[q + 19]!) >>> 0;
      bytes[q + 16] = cip >>> 24; bytes[q + 17] = (cip >>> 16) & 255; bytes[q + 18] = (cip >>> 8) & 255; bytes[q + 19] = cip & 255;
      fixIpChecksum(bytes, q);
      if (!isFrag) {
        if (!fixL4Checksum(bytes, q)) { skip('malformed-l4'); continue; }
        vis.push({ d: bytes.slice(q, q + tot), invalid: false });
      }
      commit(f, 14 + tot, rec.ts, r.vlan);
      if (isFrag) {
        stats.fragments++;
        if (decodeFrame(bytes, q, tot, LINKTYPE_RAW, scratch, 0, 0) !== DEC.FRAGMENT) continue; // sent; the kernel drops it as we would
        finished = null;
        const v = defrag.add(scratch, 0, rec.ts, bytes);
        const verdict = v & 3, slot = v >>> 2;
        if (verdict === FRAG_DROPPED) continue; // a duplicate, or one that killed its train (counted by onDrop)
        let t = verdict === FRAG_RESOLVED ? finished as Train | null : trains.get(slot);
        if (!t) { t = { frames: [], daddr: origDaddr, collided: false }; if (verdict !== FRAG_RESOLVED) trains.set(slot, t); }
        if (t.daddr !== origDaddr) t.collided = true;
        t.frames.push(nf - 1);
        if (verdict === FRAG_RESOLVED) {
          // Complete: fix the train's L4 checksum over the reassembled datagram and release it.
          stats.fragmentTrains++;
          if (t.collided) { skip('fragment-id-collision'); continue; }
          const whole = reassemble(bytes, start, t.frames);
          const ok = fixL4Checksum(whole, 0);
          if (ok) patchFirstFragment(bytes, start, t.frames, whole);
          vis.push({ d: whole, invalid: !ok });
        }
      }
    }
    defrag.dropAll();
  } finally {
    src.close();
  }
  stats.frames = nf;
  stats.datagrams = vis.length;
  const visible = createBatch(Math.max(1, vis.length));
  const ct = new Uint8Array(Math.max(1, vis.length));
  let n = 0;
  for (const { d, invalid } of vis) {
    const c = invalid ? CT.INVALID : ctClass(d, 0);
    const res = decodeFrame(d, 0, d.length, LINKTYPE_RAW, visible, n, 0);
    if (res !== 0) throw new DataError(path, `internal: a rewritten datagram did not decode (code ${res})`);
    ct[n] = c;
    if (c === CT.INVALID) visible.l4flags[n] = visible.l4flags[n]! | L4.CT_INVALID;
    n++;
  }
  visible.count = n;
  return { bytes: bytes.subarray(0, used), start: start.subarray(0, nf), len: len.subarray(0, nf), ts: ts.subarray(0, nf), count: nf, visible, ct, stats };
}

/**
 * The datagram of a complete fragment train (defrag.ts decided it is one: its
 * fragments are disjoint and cover it) as one unfragmented IPv4 packet.
 * Fragments are laid down in offset order, so a non-last fragment's bytes past
 * its multiple of 8 (which the kernel trims) are overwritten by the next.
 */
function reassemble(bytes: Uint8Array, start: Uint32Array, frames: readonly number[]): Uint8Array {
  const parts: { off: number; q: number; len: number }[] = [];
  let end = 0, first = frames[0]!;
  for (const i of frames) {
    const q = start[i]! + 14;
    const ihl = (bytes[q]! & 15) * 4, tot = (bytes[q + 2]! << 8) | bytes[q + 3]!;
    const w = (bytes[q + 6]! << 8) | bytes[q + 7]!;
    const off = (w & 0x1fff) * 8;
    if ((w & 0x2000) === 0) end = off + tot - ihl;
    if (off === 0) first = i;
    parts.push({ off, q: q + ihl, len: tot - ihl });
  }
  parts.sort((a, b) => a.off - b.off);
  const q0 = start[first]! + 14, ihl0 = (bytes[q0]! & 15) * 4;
  const out = new Uint8Array(ihl0 + end);
  out.set(bytes.subarray(q0, q0 + ihl0), 0);
  for (const p of parts) out.set(bytes.subarray(p.q, p.q + Math.min(p.len, end - p.off)), ihl0 + p.off);
  out[2] = (ihl0 + end) >>> 8; out[3] = (ihl0 + end) & 255;
  out[6] = 0; out[7] = 0;
  fixIpChecksum(out, 0);
  return out;
}

/** Copies the fixed L4 checksum of the reassembled datagram into the fragment at offset 0. */
function patchFirstFragment(bytes: Uint8Array, start: Uint32Array, frames: readonly number[], whole: Uint8Array): void {
  const proto = whole[9]!;
  const at = proto === P_TCP ? 16 : proto === P_UDP ? 6 : proto === P_ICMP ? 2 : -1;
  if (at < 0) return;
  const ihlW = (whole[0]! & 15) * 4;
  for (const i of frames) {
    const q = start[i]! + 14;
    const w = (bytes[q + 6]! << 8) | bytes[q + 7]!;
    if ((w & 0x1fff) !== 0) continue;
    const l4 = q + (bytes[q]! & 15) * 4, tot = (bytes[q + 2]! << 8) | bytes[q + 3]!;
    if (l4 + at + 2 > q + tot) return;
    bytes[l4 + at] = whole[ihlW + at]!;
    bytes[l4 + at + 1] = whole[ihlW + at + 1]!;
    return;
  }
}

/** Writes the rewritten frames as a pcap (timestamps relative to the capture's first frame), for tcpreplay or `qtool pcap`. */
export function writeRewrittenPcap(path: string, rw: Rewritten): void {
  const w = new PcapWriter(path);
  try {
    for (let i = 0; i < rw.count; i++) w.writeFrame(rw.bytes, rw.start[i]!, rw.len[i]!, rw.ts[i]!);
  } finally {
    w.close();
  }
}

export function parseMac(s: string): Uint8Array {
  const m = /^([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2})$/i.exec(s);
  if (!m) throw new DataError('cluster.mac', `'${s}' is not a MAC address`);
  return Uint8Array.from(m.slice(1), (x) => parseInt(x, 16));
}
