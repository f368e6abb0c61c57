/**
 * The probe datagrams `glue probe` sends (IPv4 with our own header, so the
 * source address can be any address the replies route back from) and the
 * reading of the answers from a capture (pcap, Ethernet): which MAC answered
 * which probe. Pure byte work; the I/O is in prober.ts.
 */

/** Internet checksum (RFC 1071) over `b[start, end)`, folded, with an initial partial sum. */
export function inetChecksum(b: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial;
  let i = start;
  for (; i + 1 < end; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  if (i < end) sum += b[i]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** One probe: what goes out. `saddr`/`daddr` are numeric IPv4 (host order), as sim/core/addr.ts parses them. */
export interface ProbePacket {
  proto: 'tcp' | 'icmp';
  saddr: number;
  daddr: number;
  /** TCP source port, or the ICMP echo identifier. */
  sport: number;
  /** TCP destination port, or the ICMP echo sequence number. */
  dport: number;
  /**
   * TCP: the SYN's sequence number, new per run. Its answers (SYN-ACK, RST)
   * acknowledge seq+1, so a node still retransmitting its SYN-ACK to an
   * earlier run's probe of the same tuple is not taken for an answer.
   */
  seq?: number;
}

const IP_HDR = 20;

function ipHeader(b: Buffer, p: ProbePacket, total: number, protoNum: number, ipId: number): void {
  b[0] = 0x45;
  b.writeUInt16BE(total, 2);
  b.writeUInt16BE(ipId & 0xffff, 4);
  b.writeUInt16BE(0x4000, 6); // DF: a probe is never fragmented
  b[8] = 64;
  b[9] = protoNum;
  b.writeUInt32BE(p.saddr >>> 0, 12);
  b.writeUInt32BE(p.daddr >>> 0, 16);
  b.writeUInt16BE(inetChecksum(b, 0, IP_HDR), 10);
}

/**
 * The whole IPv4 datagram (for a raw socket with IP_HDRINCL): a TCP SYN with
 * a fixed initial sequence number and an MSS option, or an ICMP echo request.
 */
export function probeDatagram(p: ProbePacket, ipId = 0): Buffer {
  if (p.proto === 'tcp') {
    const tcpLen = 24; // 20-byte header + MSS option
    const b = Buffer.alloc(IP_HDR + tcpLen);
    ipHeader(b, p, b.length, 6, ipId);
    const t = IP_HDR;
    b.writeUInt16BE(p.sport, t);
    b.writeUInt16BE(p.dport, t + 2);
    b.writeUInt32BE((p.seq ?? 0x63697073) >>> 0, t + 4);
    b[t + 12] = (tcpLen / 4) << 4;
    b[t + 13] = 0x02; // SYN
    b.writeUInt16BE(64240, t + 14);
    b[t + 20] = 2; b[t + 21] = 4; b.writeUInt16BE(1460, t + 22);
    // Pseudo-header: source, destination, zero, protocol, TCP length.
    const pseudo = ((p.saddr >>> 16) + (p.saddr & 0xffff) + (p.daddr >>> 16) + (p.daddr & 0xffff) + 6 + tcpLen) >>> 0;
    b.writeUInt16BE(inetChecksum(b, t, b.length, pseudo), t + 16);
    return b;
  }
  const b = Buffer.alloc(IP_HDR + 16);
  ipHeader(b, p, b.length, 1, ipId);
  const t = IP_HDR;
  b[t] = 8;
  b.writeUInt16BE(p.sport, t + 4);
  b.writeUInt16BE(p.dport, t + 6);
  b.write('cipsim-p', t + 8, 'latin1');
  b.writeUInt16BE(inetChecksum(b, t, b.length), t + 2);
  return b;
}

/** One answer seen in the capture: who sent it (source MAC) and which probe it answers. */
export interface Answer {
  /** Source MAC, lowercase 'aa:bb:cc:dd:ee:ff'. */
  mac: string;
  proto: 'tcp' | 'icmp';
  /** The probe's source address (the answer's destination). */
  saddr: number;
  /** The probe's TCP source port or ICMP identifier. */
  sport: number;
  /** The probe's TCP destination port or ICMP sequence number. */
  dport: number;
  /** TCP flags of the answer (SYN-ACK 0x12, RST 0x04/0x14); 0 for ICMP. */
  tcpFlags: number;
  /** TCP acknowledgement number of the answer; 0 for ICMP. */
  ack: number;
}

const macOf = (b: Uint8Array, off: number): string => Array.from(b.subarray(off, off + 6), (x) => x.toString(16).padStart(2, '0')).join(':');

/**
 * The answers from `from` (the cluster IP) in a classic pcap file with
 * Ethernet link type: TCP segments with SYN or RST set, ICMP echo replies.
 * Anything else (other addresses, other link types' frames) is passed over;
 * a file that is not pcap is refused with its byte offset.
 */
export function answersInPcap(file: Buffer, from: number, where: string): Answer[] {
  if (file.length < 24) throw new Error(`${where}: ${file.length} bytes, shorter than a pcap header`);
  const magic = file.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && file.readUInt32BE(0) !== 0xa1b2c3d4 && file.readUInt32BE(0) !== 0xa1b23c4d) throw new Error(`${where} at byte 0: not a pcap file (magic 0x${magic.toString(16)})`);
  const u32 = (o: number): number => (le ? file.readUInt32LE(o) : file.readUInt32BE(o));
  const linktype = u32(20);
  if (linktype !== 1) throw new Error(`${where} at byte 20: link type ${linktype}, expected Ethernet (1)`);
  const out: Answer[] = [];
  for (let off = 24; off + 16 <= file.length;) {
    const caplen = u32(off + 8);
    const f = off + 16;
    if (f + caplen > file.length) break; // a record cut short when the capture stopped
    off = f + caplen;
    let e = 12;
    let type = file.readUInt16BE(f + e);
    while ((type === 0x8100 || type === 0x88a8) && e + 6 <= caplen) { e += 4; type = file.readUInt16BE(f + e); }
    const ip = f + e + 2;
    if (type !== 0x0800 || ip + 20 > off || file[ip]! >> 4 !== 4) continue;
    const ihl = (file[ip]! & 0x0f) * 4;
    if (file.readUInt32BE(ip + 12) !== from >>> 0 || ip + ihl + 8 > off) continue;
    const l4 = ip + ihl;
    const saddr = file.readUInt32BE(ip + 16);
    if (file[ip + 9] === 6 && l4 + 16 <= off) {
      const flags = file[l4 + 13]!;
      if (!(flags & 0x06)) continue; // neither SYN nor RST: not an answer to a SYN
      out.push({ mac: macOf(file, f + 6), proto: 'tcp', saddr, sport: file.readUInt16BE(l4 + 2), dport: file.readUInt16BE(l4), tcpFlags: flags, ack: file.readUInt32BE(l4 + 8) });
    } else if (file[ip + 9] === 1 && file[l4] === 0) {
      out.push({ mac: macOf(file, f + 6), proto: 'icmp', saddr, sport: file.readUInt16BE(l4 + 4), dport: file.readUInt16BE(l4 + 6), tcpFlags: 0, ack: 0 });
    }
  }
  return out;
}
