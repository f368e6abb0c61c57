/**
 * The one pcap writer: a classic microsecond pcap of Ethernet frames that
 * tcpdump, tshark, tcpreplay and the qemu harness's `qtool pcap` read.
 * `writeFrame` writes frames the caller built (replay's rewritten capture);
 * `write` builds frames from a TupleBatch (IPv4/IPv6 headers and TCP/UDP/ICMP
 * headers with valid checksums, zero payload up to the wire length). Each
 * frame is cut at `snaplen`.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { F, FAMILY_IPV6, type TupleBatch } from './batch.ts';
import { checksumOf, onesSum, pseudoSum6 } from './checksum.ts';

export class PcapWriter {
  private readonly fd: number;
  private readonly buf: Uint8Array;
  private readonly frame = new Uint8Array(65536 + 128);
  private pos = 0;
  private ipId = 0;
  packets = 0;

  constructor(path: string, readonly snaplen = 262144) {
    this.fd = openSync(path, 'w');
    this.buf = new Uint8Array(1 << 20);
    const h = new DataView(this.buf.buffer);
    h.setUint32(0, 0xa1b2c3d4, true);
    h.setUint16(4, 2, true);
    h.setUint16(6, 4, true);
    h.setUint32(16, snaplen, true);
    h.setUint32(20, 1, true);
    this.pos = 24;
  }

  /** Builds the frame of slot i into this.frame; returns its length (the wire length). */
  private build(b: TupleBatch, i: number): number {
    const f = this.frame;
    const v6 = b.family[i] === FAMILY_IPV6;
    const proto = b.proto[i]!;
    const ipl = v6 ? 40 : 20;
    const l4h = proto === 6 ? 20 : 8;
    const wire = Math.max(b.wirelen[i]!, 14 + ipl + l4h);
    f.fill(0, 0, Math.min(wire, 14 + ipl + l4h + 16));
    // MACs: 02:00:00:00:00:01 -> 02:00:00:00:00:02
    f[0] = 2; f[5] = 2; f[6] = 2; f[11] = 1;
    f[12] = v6 ? 0x86 : 0x08; f[13] = v6 ? 0xdd : 0x00;
    const ip = 14, l4 = 14 + ipl;
    const l4len = wire - l4;
    let pseudo: number;
    if (v6) {
      f[ip] = 0x60;
      f[ip + 4] = l4len >>> 8; f[ip + 5] = l4len & 255;
      f[ip + 6] = proto; f[ip + 7] = 64;
      const j = i << 2;
      for (let k = 0; k < 4; k++) {
        const s = b.saddr6[j + k]!, d = b.daddr6[j + k]!;
        for (let q = 0; q < 4; q++) { f[ip + 8 + 4 * k + q] = (s >>> (24 - 8 * q)) & 255; f[ip + 24 + 4 * k + q] = (d >>> (24 - 8 * q)) & 255; }
      }
      pseudo = pseudoSum6(f, ip, l4len, proto);
    } else {
      const tot = wire - 14;
      f[ip] = 0x45;
      f[ip + 2] = tot >>> 8; f[ip + 3] = tot & 255;
      const id = this.ipId = (this.ipId + 1) & 0xffff;
      f[ip + 4] = id >>> 8; f[ip + 5] = id & 255;
      f[ip + 6] = 0x40;
      f[ip + 8] = 64; f[ip + 9] = proto;
      const s = b.saddr[i]!, d = b.daddr[i]!;
      for (let q = 0; q < 4; q++) { f[ip + 12 + q] = (s >>> (24 - 8 * q)) & 255; f[ip + 16 + q] = (d >>> (24 - 8 * q)) & 255; }
      const c = checksumOf(onesSum(f, ip, ip + 20));
      f[ip + 10] = c >>> 8; f[ip + 11] = c & 255;
      pseudo = onesSum(f, ip + 12, ip + 20) + l4len + proto;
    }
    const a = b.l4a[i]!, lb = b.l4b[i]!;
    const put32 = (o: number, v: number): void => { f[o] = v >>> 24; f[o + 1] = (v >>> 16) & 255; f[o + 2] = (v >>> 8) & 255; f[o + 3] = v & 255; };
    let csumAt = -1;
    if (proto === 6) {
      put32(l4, a); put32(l4 + 4, lb);
      const fl = b.flags[i]!;
      if (fl & F.ACK) put32(l4 + 8, 1);
      f[l4 + 12] = 0x50;
      f[l4 + 13] = (fl & F.FIN ? 0x01 : 0) | (fl & F.SYN ? 0x02 : 0) | (fl & F.RST ? 0x04 : 0) | (fl & F.ACK ? 0x10 : 0);
      f[l4 + 14] = 0xff; f[l4 + 15] = 0xff;
      csumAt = l4 + 16;
    } else if (proto === 17 || proto === 136) {
      put32(l4, a);
      f[l4 + 4] = l4len >>> 8; f[l4 + 5] = l4len & 255;
      csumAt = l4 + 6;
    } else if (proto === 1 || proto === 58) {
      put32(l4, a & 0xffff0000); put32(l4 + 4, lb);
      csumAt = l4 + 2;
      if (proto === 1) pseudo = 0;
    } else {
      put32(l4, a); put32(l4 + 4, lb);
    }
    if (csumAt >= 0) {
      // The payload is zeros: only the headers contribute to the sum.
      let c = checksumOf(pseudo + onesSum(f, l4, l4 + l4h));
      if (c === 0 && proto === 17) c = 0xffff;
      f[csumAt] = c >>> 8; f[csumAt + 1] = c & 255;
    }
    return wire;
  }

  /** Writes the frames built from every packet of `b` (see the module comment). */
  write(b: TupleBatch): void {
    for (let i = 0; i < b.count; i++) {
      const wire = this.build(b, i);
      // The built headers are at most this long; the rest of the frame is zero payload.
      const hdr = Math.min(wire, 14 + 40 + 20 + 16);
      this.writeFrame(this.frame, 0, hdr, b.ts[i]!, wire);
    }
  }

  /**
   * Writes one record: `len` bytes of `bytes` from `from`, padded with zeros up
   * to `wirelen` (default `len`) and cut at the snap length, stamped `ts` seconds.
   */
  writeFrame(bytes: Uint8Array, from: number, len: number, ts: number, wirelen = len): void {
    const cap = Math.min(wirelen, this.snaplen);
    if (this.pos + 16 + cap > this.buf.length) this.flush();
    let sec = Math.floor(ts);
    let us = Math.round((ts - sec) * 1e6);
    if (us >= 1000000) { sec++; us -= 1000000; }
    const o = this.pos, B = this.buf;
    B[o] = sec & 255; B[o + 1] = (sec >>> 8) & 255; B[o + 2] = (sec >>> 16) & 255; B[o + 3] = (sec >>> 24) & 255;
    B[o + 4] = us & 255; B[o + 5] = (us >>> 8) & 255; B[o + 6] = (us >>> 16) & 255; B[o + 7] = 0;
    B[o + 8] = cap & 255; B[o + 9] = (cap >>> 8) & 255; B[o + 10] = (cap >>> 16) & 255; B[o + 11] = 0;
    B[o + 12] = wirelen & 255; B[o + 13] = (wirelen >>> 8) & 255; B[o + 14] = (wirelen >>> 16) & 255; B[o + 15] = 0;
    const have = Math.min(cap, len);
    // The buffer (1 MiB) holds any record: snaplen and IP lengths stay under 256 KiB.
    B.set(bytes.subarray(from, from + have), o + 16);
    if (cap > have) B.fill(0, o + 16 + have, o + 16 + cap);
    this.pos = o + 16 + cap;
    this.packets++;
  }

  private flush(): void {
    let off = 0;
    while (off < this.pos) off += writeSync(this.fd, this.buf, off, this.pos - off);
    this.pos = 0;
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}
