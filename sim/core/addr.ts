/** IPv4/IPv6 text <-> numbers. Parsers return null instead of throwing so callers can name the field. */

export function parseIPv4(s: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return null;
  let v = 0;
  for (let k = 1; k <= 4; k++) {
    const o = Number(m[k]);
    if (o > 255 || (m[k]!.length > 1 && m[k]![0] === '0')) return null;
    v = v * 256 + o;
  }
  return v >>> 0;
}

export function formatIPv4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** Parses an IPv6 address (with :: and an optional dotted IPv4 tail) into four big-endian words. */
export function parseIPv6(s: string): Uint32Array | null {
  if (!/^[0-9a-fA-F:.]+$/.test(s) || s.length < 2) return null;
  let head = s, tail4: number | null = null;
  const lastColon = s.lastIndexOf(':');
  if (s.indexOf('.', lastColon) > 0) {
    tail4 = parseIPv4(s.slice(lastColon + 1));
    if (tail4 === null) return null;
    head = s.slice(0, lastColon + 1) + '0:0';
  }
  const dbl = head.split('::');
  if (dbl.length > 2) return null;
  const part = (x: string): number[] | null => {
    if (x === '') return [];
    const out: number[] = [];
    for (const g of x.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const left = part(dbl[0]!), right = dbl.length === 2 ? part(dbl[1]!) : [];
  if (!left || !right) return null;
  const fill = 8 - left.length - right.length;
  if ((dbl.length === 2 && fill < 1) || (dbl.length === 1 && fill !== 0)) return null;
  const g = [...left, ...new Array<number>(fill).fill(0), ...right];
  const w = new Uint32Array(4);
  for (let k = 0; k < 4; k++) w[k] = ((g[2 * k]! << 16) | g[2 * k + 1]!) >>> 0;
  if (tail4 !== null) w[3] = tail4;
  return w;
}

/** RFC 5952 text form (lower case, longest zero run compressed). */
export function formatIPv6(w: ArrayLike<number>, off = 0): string {
  const g: number[] = [];
  for (let k = 0; k < 4; k++) {
    const v = w[off + k]! >>> 0;
    g.push(v >>> 16, v & 0xffff);
  }
  let best = -1, bestLen = 1, cur = -1, curLen = 0;
  for (let k = 0; k < 8; k++) {
    if (g[k] === 0) {
      if (cur < 0) { cur = k; curLen = 0; }
      curLen++;
      if (curLen > bestLen) { best = cur; bestLen = curLen; }
    } else cur = -1;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

const PROTO_NAMES: Record<string, number> = {
  icmp: 1, igmp: 2, ipip: 4, ipencap: 4, tcp: 6, udp: 17, ipv6: 41, gre: 47, esp: 50, ah: 51,
  icmpv6: 58, 'ipv6-icmp': 58, sctp: 132, dccp: 33, udplite: 136, 'udp-lite': 136,
};

/** Protocol as a number 0..255 or a name (tcp, udp, icmp, sctp, …). */
export function parseProto(s: string): number | null {
  if (/^\d{1,3}$/.test(s)) {
    const v = Number(s);
    return v <= 255 ? v : null;
  }
  return PROTO_NAMES[s.toLowerCase()] ?? null;
}
