/**
 * Writes a bare 5-tuple (from CSV, the command line or a synthetic generator)
 * into a batch, synthesising the L4 bytes a real packet of that protocol would
 * carry, exactly as the golden-vector harness put them on the wire
 * (../shared/vectors/README.md, "What sport/dport were on the wire"):
 * ports for TCP/UDP/UDP-Lite/SCTP/DCCP, the SPI for ESP (L4 offset 0) and AH
 * (offset 4), echo id/sequence for ICMP (an echo request without payload), the
 * key for GRE, and `sport, dport` as the first bytes of anything else.
 */
import { F, L4, FAMILY_IPV4, FAMILY_IPV6, type TupleBatch } from './batch.ts';

/** ICMP echo request header checksum (no payload): ~(0x0800 + id + seq) folded. */
export function icmpEchoChecksum(id: number, seq: number): number {
  let s = 0x0800 + id + seq;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** Writes an IPv4 tuple at index i. Addresses are numeric (10.0.0.1 = 0x0a000001). */
export function writeTupleV4(b: TupleBatch, i: number, proto: number, saddr: number, sport: number, daddr: number, dport: number, ts = 0, wirelen = 0): void {
  b.family[i] = FAMILY_IPV4;
  b.saddr[i] = saddr >>> 0;
  b.daddr[i] = daddr >>> 0;
  const j = i << 2;
  b.saddr6[j] = b.saddr6[j + 1] = b.saddr6[j + 2] = b.saddr6[j + 3] = 0;
  b.daddr6[j] = b.daddr6[j + 1] = b.daddr6[j + 2] = b.daddr6[j + 3] = 0;
  writeL4(b, i, proto, sport, dport, ts, wirelen);
}

/** Writes an IPv6 tuple at index i; addresses as four big-endian 32-bit lanes. */
export function writeTupleV6(b: TupleBatch, i: number, proto: number, saddr6: ArrayLike<number>, sport: number, daddr6: ArrayLike<number>, dport: number, ts = 0, wirelen = 0): void {
  b.family[i] = FAMILY_IPV6;
  b.saddr[i] = 0;
  b.daddr[i] = 0;
  const j = i << 2;
  for (let k = 0; k < 4; k++) {
    b.saddr6[j + k] = saddr6[k]! >>> 0;
    b.daddr6[j + k] = daddr6[k]! >>> 0;
  }
  writeL4(b, i, proto, sport, dport, ts, wirelen);
}

function writeL4(b: TupleBatch, i: number, proto: number, sport: number, dport: number, ts: number, wirelen: number): void {
  b.proto[i] = proto;
  b.sport[i] = sport;
  b.dport[i] = dport;
  b.ts[i] = ts;
  const pair = ((sport << 16) | dport) >>> 0;
  let l4a = pair;
  let l4b = 0;
  let flags = 0;
  switch (proto) {
    case 6: case 17: case 136: case 132: case 33:
      flags = F.PORTS;
      if (proto === 6) flags |= F.SYN;
      break;
    case 50: // ESP: SPI, then the sequence number
      l4b = 1;
      break;
    case 51: // AH: next header 59, payload length 4, reserved 0, then the SPI
      l4a = 0x3b040000;
      l4b = pair;
      break;
    case 1: case 58: // ICMP / ICMPv6 echo request: type, code, checksum, id, sequence
      l4a = (((proto === 1 ? 8 : 128) << 24) | icmpEchoChecksum(sport, dport)) >>> 0;
      l4b = pair;
      break;
    case 47: // GRE with the key bit, protocol 0x0800, then the key
      l4a = 0x20000800;
      l4b = pair;
      break;
    default:
      l4b = pair;
  }
  b.l4a[i] = l4a;
  b.l4b[i] = l4b;
  b.flags[i] = flags;
  b.l4flags[i] = L4.HAS4 | L4.HAS8;
  b.wirelen[i] = wirelen || defaultWireLen(proto, b.family[i] === FAMILY_IPV6);
}

function defaultWireLen(proto: number, v6: boolean): number {
  const ip = v6 ? 40 : 20;
  const l4 = proto === 6 ? 20 : proto === 17 || proto === 136 ? 16 : proto === 132 ? 32 : 12;
  return 14 + ip + l4;
}
