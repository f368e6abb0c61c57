/**
 * The Internet checksum (RFC 1071), the one implementation every writer and
 * rewriter of packets shares: the IPv4 header checksum, and the TCP, UDP,
 * ICMP and ICMPv6 checksums (IPv4 and IPv6 pseudo-headers) the kernel verifies before conntrack accepts a packet
 * (nf_conntrack_proto_*.c call nf_checksum; a bad one is INVALID,
 * kernel-semantics §4.3).
 */

/**
 * Adds the big-endian 16-bit words of buf[from, to) to `init` (an odd last
 * byte is padded with a zero byte, RFC 1071 §4.1). The sum is not folded, so
 * partial sums (a pseudo-header, then the segment) can be chained.
 */
export function onesSum(buf: Uint8Array, from: number, to: number, init = 0): number {
  let s = init;
  let o = from;
  for (; o + 1 < to; o += 2) s += (buf[o]! << 8) | buf[o + 1]!;
  if (o < to) s += buf[o]! << 8;
  return s;
}

/** The checksum field's value for a running sum: folded to 16 bits with end-around carry, complemented. */
export function checksumOf(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 65536);
  return ~s & 0xffff;
}

/** The Internet checksum of buf[from, to) (with `init` added first, e.g. a pseudo-header sum). */
export function internetChecksum(buf: Uint8Array, from: number, to: number, init = 0): number {
  return checksumOf(onesSum(buf, from, to, init));
}

/**
 * The IPv6 pseudo-header sum (RFC 8200 §8.1) of the datagram whose IPv6
 * header is at `ip`: source and destination addresses, upper-layer length and
 * next header. TCP, UDP and ICMPv6 over IPv6 all start their checksum from it
 * (ICMPv6 unlike ICMP over IPv4).
 */
export function pseudoSum6(buf: Uint8Array, ip: number, l4len: number, nextHeader: number): number {
  return onesSum(buf, ip + 8, ip + 40) + (l4len >>> 16) + (l4len & 0xffff) + nextHeader;
}
