/**
 * Test helpers: build raw frames (IPv4/IPv6 with options, extension headers,
 * fragments, VLAN tags, cooked and loopback link headers) and write them as
 * pcap in any byte order and precision, or pcapng. The files are then read by
 * both our reader and tshark, which is the judge.
 */
import { writeFileSync } from 'node:fs';
import { internetChecksum } from '../sim/traffic/checksum.ts';

/** The Internet checksum of b[from, to) (the model's one implementation, sim/traffic/checksum.ts). */
export function csum(b: Uint8Array, from = 0, to = b.length, init = 0): number {
  return internetChecksum(b, from, to, init);
}

export function ip4(s: string): number[] { return s.split('.').map(Number); }
export function ip6(s: string): number[] {
  const [h, t] = s.split('::');
  const hs = h ? h.split(':') : [], ts = t !== undefined && t !== '' ? t.split(':') : [];
  const g = [...hs, ...new Array(8 - hs.length - ts.length).fill('0'), ...ts].map((x) => parseInt(x, 16));
  return g.flatMap((x) => [x >> 8, x & 255]);
}

/** A transport header + payload. */
export function udp(sport: number, dport: number, payload: number): Uint8Array {
  const b = new Uint8Array(8 + payload);
  b[0] = sport >> 8; b[1] = sport & 255; b[2] = dport >> 8; b[3] = dport & 255;
  b[4] = (8 + payload) >> 8; b[5] = (8 + payload) & 255;
  for (let i = 0; i < payload; i++) b[8 + i] = (i * 7) & 255;
  return b;
}
export function tcp(sport: number, dport: number, flags: number, payload = 0): Uint8Array {
  const b = new Uint8Array(20 + payload);
  b[0] = sport >> 8; b[1] = sport & 255; b[2] = dport >> 8; b[3] = dport & 255;
  b[7] = 1; b[12] = 0x50; b[13] = flags; b[14] = 0xff; b[15] = 0xff;
  return b;
}
export function icmpEcho(type: number, id: number, seq: number, payload = 8): Uint8Array {
  const b = new Uint8Array(8 + payload);
  b[0] = type; b[4] = id >> 8; b[5] = id & 255; b[6] = seq >> 8; b[7] = seq & 255;
  const c = csum(b);
  b[2] = c >> 8; b[3] = c & 255;
  return b;
}

export interface Ip4Opts { id?: number; mf?: boolean; fragOff?: number; options?: number[]; proto: number; src: string; dst: string; totOverride?: number }
export function ipv4(o: Ip4Opts, l4: Uint8Array): Uint8Array {
  const opt = o.options ?? [];
  const hl = 20 + opt.length;
  const b = new Uint8Array(hl + l4.length);
  b[0] = 0x40 | (hl >> 2);
  const tot = o.totOverride ?? b.length;
  b[2] = tot >> 8; b[3] = tot & 255;
  const id = o.id ?? 1;
  b[4] = id >> 8; b[5] = id & 255;
  const fo = ((o.fragOff ?? 0) >> 3) | (o.mf ? 0x2000 : 0);
  b[6] = fo >> 8; b[7] = fo & 255;
  b[8] = 64; b[9] = o.proto;
  b.set(ip4(o.src), 12); b.set(ip4(o.dst), 16);
  b.set(opt, 20);
  const c = csum(b, 0, hl);
  b[10] = c >> 8; b[11] = c & 255;
  b.set(l4, hl);
  return b;
}

/** IPv6 with a chain of extension headers given as [type, bytes] (bytes include next-header/len fields, filled in). */
export function ipv6(src: string, dst: string, chain: [number, Uint8Array][], proto: number, l4: Uint8Array): Uint8Array {
  const extLen = chain.reduce((s, [, b]) => s + b.length, 0);
  const b = new Uint8Array(40 + extLen + l4.length);
  b[0] = 0x60;
  const plen = extLen + l4.length;
  b[4] = plen >> 8; b[5] = plen & 255;
  b[6] = chain.length ? chain[0]![0] : proto;
  b[7] = 64;
  b.set(ip6(src), 8); b.set(ip6(dst), 24);
  let o = 40;
  for (let k = 0; k < chain.length; k++) {
    const h = chain[k]![1];
    b.set(h, o);
    b[o] = k + 1 < chain.length ? chain[k + 1]![0] : proto;
    if (chain[k]![0] !== 44) b[o + 1] = h.length / 8 - 1;
    o += h.length;
  }
  b.set(l4, o);
  return b;
}
export function frag6(offset: number, more: boolean, id: number): Uint8Array {
  const h = new Uint8Array(8);
  const v = offset | (more ? 1 : 0);
  h[2] = v >> 8; h[3] = v & 255;
  h[4] = id >>> 24; h[5] = (id >> 16) & 255; h[6] = (id >> 8) & 255; h[7] = id & 255;
  return h;
}

/** Ethernet frame; `tags` are the VLAN tag protocol ids (0x8100, 0x88a8, 0x9100) outermost first. */
export function ether(payload: Uint8Array, ethertype: number, tags: number[] = []): Uint8Array {
  const b = new Uint8Array(14 + 4 * tags.length + payload.length);
  b.set([0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1], 0);
  let o = 12;
  for (const [k, tpid] of tags.entries()) { b[o] = tpid >> 8; b[o + 1] = tpid & 255; b[o + 2] = 0; b[o + 3] = 10 + k; o += 4; }
  b[o] = ethertype >> 8; b[o + 1] = ethertype & 255;
  b.set(payload, o + 2);
  return b;
}
export function sll(payload: Uint8Array, proto: number): Uint8Array {
  const b = new Uint8Array(16 + payload.length);
  b[1] = 0; b[3] = 1; b[5] = 6; b.set([2, 0, 0, 0, 0, 1], 6); b[14] = proto >> 8; b[15] = proto & 255;
  b.set(payload, 16);
  return b;
}
export function sll2(payload: Uint8Array, proto: number): Uint8Array {
  const b = new Uint8Array(20 + payload.length);
  b[0] = proto >> 8; b[1] = proto & 255; b[7] = 2; b[9] = 1; b[11] = 6; b.set([2, 0, 0, 0, 0, 1], 12);
  b.set(payload, 20);
  return b;
}
export function nullHdr(payload: Uint8Array, family: number, le: boolean): Uint8Array {
  const b = new Uint8Array(4 + payload.length);
  new DataView(b.buffer).setUint32(0, family, le);
  b.set(payload, 4);
  return b;
}

export interface Rec { ts: [number, number]; data: Uint8Array; wire?: number; caplen?: number }

/** Classic pcap in either byte order and precision. */
export function pcap(recs: Rec[], o: { linktype?: number; le?: boolean; nano?: boolean; snaplen?: number } = {}): Uint8Array {
  const le = o.le ?? true;
  const size = 24 + recs.reduce((s, r) => s + 16 + (r.caplen ?? r.data.length), 0);
  const b = new Uint8Array(size);
  const v = new DataView(b.buffer);
  v.setUint32(0, o.nano ? 0xa1b23c4d : 0xa1b2c3d4, le);
  v.setUint16(4, 2, le); v.setUint16(6, 4, le);
  v.setUint32(16, o.snaplen ?? 262144, le);
  v.setUint32(20, o.linktype ?? 1, le);
  let p = 24;
  for (const r of recs) {
    const cap = r.caplen ?? r.data.length;
    v.setUint32(p, r.ts[0], le); v.setUint32(p + 4, r.ts[1], le);
    v.setUint32(p + 8, cap, le); v.setUint32(p + 12, r.wire ?? r.data.length, le);
    b.set(r.data.subarray(0, cap), p + 16);
    p += 16 + cap;
  }
  return b;
}

export function writePcap(path: string, recs: Rec[], o: Parameters<typeof pcap>[1] = {}): string {
  writeFileSync(path, pcap(recs, o));
  return path;
}

/** One pcapng packet: an enhanced packet block with a timestamp (µs since 1970), or a simple packet block (`ts` omitted). */
export interface NgRec { ts?: number; data: Uint8Array }

/**
 * A little-endian pcapng with one section (version `major.minor`, default 1.0)
 * and one interface of `linktype` (default microsecond resolution).
 */
export function pcapng(recs: NgRec[], o: { linktype?: number; major?: number; minor?: number } = {}): Uint8Array {
  const blocks: Uint8Array[] = [];
  const block = (type: number, body: Uint8Array): void => {
    const len = 12 + ((body.length + 3) & ~3);
    const b = new Uint8Array(len);
    const v = new DataView(b.buffer);
    v.setUint32(0, type, true); v.setUint32(4, len, true);
    b.set(body, 8);
    v.setUint32(len - 4, len, true);
    blocks.push(b);
  };
  const shb = new Uint8Array(16);
  const sv = new DataView(shb.buffer);
  sv.setUint32(0, 0x1a2b3c4d, true); sv.setUint16(4, o.major ?? 1, true); sv.setUint16(6, o.minor ?? 0, true);
  sv.setInt32(8, -1, true); sv.setInt32(12, -1, true);
  block(0x0a0d0d0a, shb);
  const idb = new Uint8Array(8);
  new DataView(idb.buffer).setUint16(0, o.linktype ?? 1, true);
  block(1, idb);
  for (const r of recs) {
    if (r.ts === undefined) {
      const body = new Uint8Array(4 + r.data.length);
      new DataView(body.buffer).setUint32(0, r.data.length, true);
      body.set(r.data, 4);
      block(3, body);
    } else {
      const body = new Uint8Array(20 + r.data.length);
      const v = new DataView(body.buffer);
      v.setUint32(4, Math.floor(r.ts / 2 ** 32), true); v.setUint32(8, r.ts >>> 0, true);
      v.setUint32(12, r.data.length, true); v.setUint32(16, r.data.length, true);
      body.set(r.data, 20);
      block(6, body);
    }
  }
  const out = new Uint8Array(blocks.reduce((s, b) => s + b.length, 0));
  let p = 0;
  for (const b of blocks) { out.set(b, p); p += b.length; }
  return out;
}

/** GRE (RFC 2890) carrying `inner` as `proto` (an ethertype), with the key field when `key` is given. */
export function gre(inner: Uint8Array, proto: number, key?: number): Uint8Array {
  const h = key === undefined ? 4 : 8;
  const b = new Uint8Array(h + inner.length);
  b[0] = key === undefined ? 0 : 0x20; b[2] = proto >> 8; b[3] = proto & 255;
  if (key !== undefined) { b[4] = key >>> 24; b[5] = (key >> 16) & 255; b[6] = (key >> 8) & 255; b[7] = key & 255; }
  b.set(inner, h);
  return b;
}
/** ESP (RFC 4303): SPI, sequence number, then `payload` opaque bytes. */
export function esp(spi: number, seq: number, payload = 32): Uint8Array {
  const b = new Uint8Array(8 + payload);
  const v = new DataView(b.buffer);
  v.setUint32(0, spi); v.setUint32(4, seq);
  for (let i = 0; i < payload; i++) b[8 + i] = (i * 13 + 5) & 255;
  return b;
}
/** A PPP frame (DLT_PPP): ff 03 unless `acfc`, then the protocol (one byte with `pfc`). */
export function ppp(payload: Uint8Array, proto: number, o: { acfc?: boolean; pfc?: boolean } = {}): Uint8Array {
  const h = [...(o.acfc ? [] : [0xff, 0x03]), ...(o.pfc ? [proto & 255] : [proto >> 8, proto & 255])];
  const b = new Uint8Array(h.length + payload.length);
  b.set(h); b.set(payload, h.length);
  return b;
}
/** A PPPoE session header (RFC 2516) and the PPP protocol, before `payload`. */
export function pppoe(payload: Uint8Array, proto: number, session = 0x11): Uint8Array {
  const b = new Uint8Array(8 + payload.length);
  b[0] = 0x11; b[2] = session >> 8; b[3] = session & 255; b[4] = (payload.length + 2) >> 8; b[5] = (payload.length + 2) & 255;
  b[6] = proto >> 8; b[7] = proto & 255;
  b.set(payload, 8);
  return b;
}
/**
 * An NFLOG record (LINKTYPE_NFLOG): header (family, version 0, resource id
 * `group` big-endian), a prefix TLV, a hardware-protocol TLV and the payload
 * TLV (type 9), TLV headers in the byte order `le`.
 */
export function nflog(payload: Uint8Array, family: number, le: boolean, group = 5): Uint8Array {
  const tlvs: [number, Uint8Array][] = [[10, new TextEncoder().encode('test\0')], [1, Uint8Array.of(0x08, 0x00, 3, 0)], [9, payload]];
  const size = 4 + tlvs.reduce((s, [, d]) => s + ((4 + d.length + 3) & ~3), 0);
  const b = new Uint8Array(size);
  const v = new DataView(b.buffer);
  b[0] = family; b[1] = 0; v.setUint16(2, group);
  let o = 4;
  for (const [t, d] of tlvs) {
    v.setUint16(o, 4 + d.length, le); v.setUint16(o + 2, t, le);
    b.set(d, o + 4);
    o += (4 + d.length + 3) & ~3;
  }
  return b;
}
