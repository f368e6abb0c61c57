/**
 * The judge for decoder tests: what `tshark -T fields` reports for a capture,
 * next to what our reader produces, compared field by field.
 */
import { execFileSync } from 'node:child_process';
import { createBatch, F, FAMILY_IPV6 } from '../sim/traffic/batch.ts';
import { formatIPv4, formatIPv6 } from '../sim/core/addr.ts';
import { openCapture, type CaptureOptions } from '../sim/traffic/capture.ts';
import { hasPorts, l4Id } from '../cli/tuples.ts';

export interface Row {
  ts: string;
  len: number;
  src: string;
  dst: string;
  /** L4 protocol, or -1 when tshark did not decode one. */
  proto: number;
  sport: number | null;
  dport: number | null;
  /** ICMP echo `id=N/seq=N` (tshark's icmp.ident/seq), ESP/AH `spi=0x...` (esp.spi, ah.spi), GRE `key=0x...` (gre.key). */
  l4id: string | null;
  frag: boolean;
  fragKey: string;
}

const FIELDS = [
  'frame.time_epoch', 'frame.len', 'ip.src', 'ip.dst', 'ip.proto', 'ipv6.src', 'ipv6.dst',
  'tcp.srcport', 'tcp.dstport', 'udp.srcport', 'udp.dstport', 'icmp.type', 'icmp.ident', 'icmp.seq',
  'icmpv6.type', 'icmpv6.echo.identifier', 'icmpv6.echo.sequence_number', 'ip.flags.mf', 'ip.frag_offset', 'ip.id',
  'ipv6.fraghdr.offset', 'ipv6.fraghdr.more', 'ipv6.fraghdr.ident', 'sctp.srcport', 'sctp.dstport', 'frame.protocols',
  'gre.key', 'esp.spi', 'ah.spi',
] as const;

/** Outer protocols without ports whose identifying field tuples shows in l4_id (GRE key, ESP/AH SPI). */
const NO_PORTS: Record<string, number> = { gre: 47, esp: 50, ah: 51 };

/** tshark's view of every IP frame (first occurrence of each field: the outer header). */
export function tsharkRows(file: string): Row[] {
  const out = execFileSync('tshark', ['-n', '-r', file, '-T', 'fields', '-E', 'separator=\t', '-E', 'occurrence=f', ...FIELDS.flatMap((f) => ['-e', f])], {
    encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'ignore'],
  });
  const rows: Row[] = [];
  for (const line of out.split('\n')) {
    if (line === '') continue;
    const c = Object.fromEntries(line.split('\t').map((v, i) => [FIELDS[i]!, v])) as Record<(typeof FIELDS)[number], string>;
    const v6 = c['ipv6.src'] !== '' && c['ip.src'] === '';
    if (!v6 && c['ip.src'] === '') continue;
    const n = (s: string): number | null => (s === '' ? null : Number(s));
    let proto = -1, sport: number | null = null, dport: number | null = null, l4id: string | null = null;
    const ipProto = n(c['ip.proto']);
    const isIcmp = v6 ? c['icmpv6.type'] !== '' : ipProto === 1;
    // The protocol right after the outer IP header (and its IPv6 extension headers): a tunnel's inner
    // packet fills tcp.* / udp.* too, and those are not the outer packet's ports.
    const layers = c['frame.protocols'].split(':');
    const ipAt = layers.findIndex((x) => x === 'ip' || x === 'ipv6');
    const outer = ipAt < 0 ? '' : layers.slice(ipAt + 1).find((x) => !x.startsWith('ipv6.')) ?? '';
    if (NO_PORTS[outer] !== undefined) {
      proto = NO_PORTS[outer]!;
      const id = outer === 'gre' ? c['gre.key'] : outer === 'esp' ? c['esp.spi'] : c['ah.spi'];
      if (id !== '') l4id = `${outer === 'gre' ? 'key' : 'spi'}=0x${Number(id).toString(16).padStart(8, '0')}`;
    } else if (isIcmp) {
      proto = v6 ? 58 : 1;
      const t = Number(v6 ? c['icmpv6.type'] : c['icmp.type']);
      const echo = v6 ? t === 128 || t === 129 : t === 0 || t === 8;
      // tshark prints the identifier in hex on some versions (0x0063): read as a number.
      const ident = v6 ? c['icmpv6.echo.identifier'] : c['icmp.ident'];
      // A fragment's echo fields show only on the frame that completes it (given to every fragment below).
      if (echo && ident !== '') l4id = `id=${n(v6 ? c['icmpv6.echo.identifier'] : c['icmp.ident'])}/seq=${n(v6 ? c['icmpv6.echo.sequence_number'] : c['icmp.seq'])}`;
    } else if (c['tcp.srcport'] !== '') { proto = 6; sport = n(c['tcp.srcport']); dport = n(c['tcp.dstport']); }
    // tshark's UDP-Lite dissector fills the udp.* fields too; only the protocol list tells them apart.
    else if (c['udp.srcport'] !== '') { proto = /:udplite(:|$)/.test(c['frame.protocols']) ? 136 : 17; sport = n(c['udp.srcport']); dport = n(c['udp.dstport']); }
    else if (c['sctp.srcport'] !== '') { proto = 132; sport = n(c['sctp.srcport']); dport = n(c['sctp.dstport']); }
    else if (!v6 && ipProto !== null) proto = ipProto;
    const frag = v6 ? c['ipv6.fraghdr.ident'] !== '' && !(c['ipv6.fraghdr.offset'] === '0' && c['ipv6.fraghdr.more'] !== 'True' && c['ipv6.fraghdr.more'] !== '1')
      : c['ip.flags.mf'] === '1' || c['ip.flags.mf'] === 'True' || (c['ip.frag_offset'] !== '' && c['ip.frag_offset'] !== '0');
    const src = v6 ? c['ipv6.src'] : c['ip.src'], dst = v6 ? c['ipv6.dst'] : c['ip.dst'];
    rows.push({
      ts: c['frame.time_epoch'], len: Number(c['frame.len']), src, dst, proto, sport, dport, l4id, frag,
      fragKey: frag ? `${src}|${dst}|${v6 ? c['ipv6.fraghdr.ident'] : c['ip.id']}` : '',
    });
  }
  // tshark shows a fragmented datagram's ports only on the frame that completes it: give them to every fragment.
  const byKey = new Map<string, Row>();
  for (const r of rows) if (r.frag && r.sport !== null) byKey.set(r.fragKey, r);
  for (const r of rows) {
    if (!r.frag) continue;
    const done = byKey.get(r.fragKey);
    if (done) { r.sport = done.sport; r.dport = done.dport; r.l4id = done.l4id; r.proto = done.proto; }
  }
  return rows;
}

/** Our reader's view, in the same shape. */
export function ourRows(file: string, opts: CaptureOptions = {}): Row[] {
  const src = openCapture(file, opts);
  const b = createBatch(1000);
  const rows: Row[] = [];
  try {
    while (src.fill(b) > 0) {
      for (let i = 0; i < b.count; i++) {
        const v6 = b.family[i] === FAMILY_IPV6;
        const ports = hasPorts(b, i);
        rows.push({
          ts: src.formatTs(b, i),
          len: b.wirelen[i]!,
          src: v6 ? formatIPv6(b.saddr6, i << 2) : formatIPv4(b.saddr[i]!),
          dst: v6 ? formatIPv6(b.daddr6, i << 2) : formatIPv4(b.daddr[i]!),
          proto: b.proto[i]!,
          sport: ports ? b.sport[i]! : null,
          dport: ports ? b.dport[i]! : null,
          l4id: l4Id(b, i),
          frag: (b.flags[i]! & F.FRAGMENT) !== 0,
          fragKey: '',
        });
      }
    }
  } finally {
    src.close();
  }
  return rows;
}

/** Normalises a decimal timestamp to 9 fraction digits. */
function ts9(s: string): string {
  const [a, f = ''] = s.split('.');
  return `${a}.${(f + '000000000').slice(0, 9)}`;
}

/**
 * Field-by-field differences (empty when they agree). tshark's proto is only
 * compared where it decoded a transport (-1 otherwise); ports where it showed them.
 */
export function compareRows(ours: Row[], theirs: Row[], max = 20): string[] {
  const diffs: string[] = [];
  if (ours.length !== theirs.length) diffs.push(`packet count: ours ${ours.length}, tshark ${theirs.length}`);
  const n = Math.min(ours.length, theirs.length);
  for (let i = 0; i < n && diffs.length < max; i++) {
    const a = ours[i]!, t = theirs[i]!;
    const bad: string[] = [];
    if (ts9(a.ts) !== ts9(t.ts)) bad.push(`ts ${a.ts} vs ${t.ts}`);
    if (a.len !== t.len) bad.push(`wirelen ${a.len} vs ${t.len}`);
    if (a.src !== t.src) bad.push(`saddr ${a.src} vs ${t.src}`);
    if (a.dst !== t.dst) bad.push(`daddr ${a.dst} vs ${t.dst}`);
    if (t.proto >= 0 && a.proto !== t.proto) bad.push(`proto ${a.proto} vs ${t.proto}`);
    if (t.sport !== null && (a.sport !== t.sport || a.dport !== t.dport)) bad.push(`ports ${a.sport}/${a.dport} vs ${t.sport}/${t.dport}`);
    if (t.sport === null && [1, 6, 17, 47, 50, 51, 58, 132].includes(t.proto) && a.sport !== null && !t.frag) bad.push(`ports ${a.sport}/${a.dport} where tshark shows none`);
    // ICMP echo identifier/sequence, SPI, GRE key: their own column (tuples' l4_id), never ports; none where tshark has none.
    if (t.l4id !== null && a.l4id !== t.l4id) bad.push(`l4_id ${a.l4id} vs ${t.l4id}`);
    if (t.l4id === null && [1, 47, 50, 51, 58].includes(t.proto) && a.l4id !== null && !t.frag) bad.push(`l4_id ${a.l4id} where tshark shows none`);
    if (a.frag !== t.frag) bad.push(`fragment ${a.frag} vs ${t.frag}`);
    if (bad.length) diffs.push(`packet ${i + 1}: ${bad.join('; ')}`);
  }
  return diffs;
}
