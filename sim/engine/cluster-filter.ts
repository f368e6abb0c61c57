/**
 * The one input path's first step, shared by simulate, failover and recommend:
 * only packets addressed to the cluster IP meet the cluster rule (a node's
 * rule matches `-d CLUSTER_IP` / `ip daddr CLUSTER_IP` / `ip6 daddr ...`); the
 * server's replies and unrelated traffic in the same capture never reach it.
 */
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from '../core/addr.ts';
import { copySlot, FAMILY_IPV4, FAMILY_IPV6, type TupleBatch } from '../traffic/batch.ts';

/**
 * A cluster address as jobs carry it (plain data: it crosses to workers and is
 * written into partial files' JSON headers, which merge compares): an IPv4
 * address is its number (10.0.0.1 = 0x0a000001, the form partials always had),
 * an IPv6 address its four big-endian 32-bit lanes, as TupleBatch.daddr6 holds them.
 */
export type ClusterIp = number | readonly [number, number, number, number];

/** Parses an IPv4 or IPv6 address text into a ClusterIp; null when it is neither. */
export function parseClusterIp(text: string): ClusterIp | null {
  const v4 = parseIPv4(text);
  if (v4 !== null) return v4;
  const v6 = parseIPv6(text);
  return v6 ? [v6[0]!, v6[1]!, v6[2]!, v6[3]!] : null;
}

/** The address's text form (RFC 5952 for IPv6). */
export function formatClusterIp(c: ClusterIp): string {
  return typeof c === 'number' ? formatIPv4(c) : formatIPv6(c);
}

/**
 * Whether packet `i` of `b` is addressed to `c`: same family and same
 * destination. An IPv4-mapped IPv6 destination (::ffff:a.b.c.d) is not the
 * IPv4 address: `ip daddr` never matches an IPv6 packet, nor `ip6 daddr` an IPv4 one.
 */
export function isToClusterIp(b: TupleBatch, i: number, c: ClusterIp): boolean {
  if (typeof c === 'number') return b.family[i] === FAMILY_IPV4 && b.daddr[i] === c >>> 0;
  const o = 4 * i, d = b.daddr6;
  return b.family[i] === FAMILY_IPV6 && d[o] === c[0] >>> 0 && d[o + 1] === c[1] >>> 0 && d[o + 2] === c[2] >>> 0 && d[o + 3] === c[3] >>> 0;
}

/** Keeps, in place and in order, the packets of `b` addressed to `clusterIp`; returns how many were dropped. */
export function keepToClusterIp(b: TupleBatch, clusterIp: ClusterIp): number {
  const n = b.count;
  let w = 0;
  for (let i = 0; i < n; i++) {
    if (isToClusterIp(b, i, clusterIp)) {
      if (w !== i) copySlot(b, i, b, w);
      w++;
    }
  }
  b.count = w;
  return n - w;
}
