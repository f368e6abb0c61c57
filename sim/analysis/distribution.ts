/**
 * From merged counters and flows to what users read: per-node packets, bytes,
 * flows, connections, heaviest sources, imbalance statistics, and the share
 * of traffic that moves between two configurations.
 */
import { FAMILY_IPV6 } from '../traffic/batch.ts';
import { formatIPv4, formatIPv6 } from '../traffic/addr.ts';
import { KEY_WORDS } from '../engine/flow-table.ts';
import { compareKeys, type MergedRun } from '../engine/merge.ts';
import type { Selector } from '../select/selector.ts';
import { distributionStats } from './stats.ts';
import { seedBand } from './seed-band.ts';
import type { ConfigResult, Migration, NodeStats, TopSource } from './result.ts';

const SYN_ONLY = 1;
const TOP_SOURCES = 5;

/**
 * Which flows are the reply direction of a connection: the opposite flow exists
 * and opened the connection (a SYN without ACK) or, failing that, was seen first.
 */
export function replyFlags(m: MergedRun): Uint8Array {
  const f = m.flows;
  const reply = new Uint8Array(f.count);
  for (let g = 0; g < f.count; g++) {
    const r = f.lookupReverseKey(f.keys, g);
    if (r < 0 || r === g) continue;
    const gs = (f.flags[g]! & SYN_ONLY) !== 0, rs = (f.flags[r]! & SYN_ONLY) !== 0;
    let iAmReply: boolean;
    if (gs !== rs) iAmReply = rs;
    else if (f.firstTs[g] !== f.firstTs[r]) iAmReply = f.firstTs[r]! < f.firstTs[g]!;
    else iAmReply = compareKeys(f.keys, r, g) < 0;
    reply[g] = iAmReply ? 1 : 0;
  }
  return reply;
}

/** Bucket of flow g under selector c, with the conntrack direction resolved. */
export function flowBucket(m: MergedRun, reply: Uint8Array, g: number, c: number): number {
  return reply[g] ? m.bucketReply[g * m.C + c]! : m.bucketOrig[g * m.C + c]!;
}

function sourceText(keys: Uint32Array, g: number): string {
  const o = g * KEY_WORDS;
  if (keys[o]! >>> 8 === FAMILY_IPV6) return formatIPv6(keys, o + 1);
  return formatIPv4(keys[o + 1]!);
}

export interface AnalysisOptions {
  ids: string[];
  /** Owner names per selector: names[c][bucket] (from a cluster config). */
  names?: (string[] | undefined)[];
  dirDep: boolean[];
}

export function analyse(m: MergedRun, selectors: Selector[], opts: AnalysisOptions): { configs: ConfigResult[]; reply: Uint8Array; durationS: number } {
  const f = m.flows;
  const reply = replyFlags(m);
  let t0 = Infinity, t1 = -Infinity;
  for (let g = 0; g < f.count; g++) {
    if (f.firstTs[g]! < t0) t0 = f.firstTs[g]!;
    if (f.lastTs[g]! > t1) t1 = f.lastTs[g]!;
  }
  const durationS = f.count && t1 > t0 ? t1 - t0 : 0;
  // Weights behind each metric's randomness band.
  let sumP = 0, sumP2 = 0, sumB = 0, sumB2 = 0, conns = 0;
  for (let g = 0; g < f.count; g++) {
    sumP += f.packets[g]!; sumP2 += f.packets[g]! * f.packets[g]!;
    sumB += f.bytes[g]!; sumB2 += f.bytes[g]! * f.bytes[g]!;
    if (!reply[g]) conns++;
  }
  const configs = selectors.map((sel, c): ConfigResult => {
    const N = sel.buckets;
    const packets = opts.dirDep[c] ? new Float64Array(N) : m.perPacket[c]!.packets;
    const bytes = opts.dirDep[c] ? new Float64Array(N) : m.perPacket[c]!.bytes;
    const flows = new Float64Array(N), conn = new Float64Array(N);
    const top: Map<string, TopSource>[] = [];
    for (let b = 0; b < N; b++) top.push(new Map());
    for (let g = 0; g < f.count; g++) {
      const b = flowBucket(m, reply, g, c);
      if (b < 0) continue;
      flows[b] = flows[b]! + 1;
      if (!reply[g]) conn[b] = conn[b]! + 1;
      if (opts.dirDep[c]) {
        packets[b] = packets[b]! + f.packets[g]!;
        bytes[b] = bytes[b]! + f.bytes[g]!;
      }
      const key = sourceText(f.keys, g);
      const t = top[b]!.get(key);
      if (t) { t.packets += f.packets[g]!; t.bytes += f.bytes[g]!; }
      else top[b]!.set(key, { addr: key, packets: f.packets[g]!, bytes: f.bytes[g]! });
    }
    const nodes: NodeStats[] = [];
    for (let b = 0; b < N; b++) {
      const srcs = [...top[b]!.values()].sort((x, y) => y.packets - x.packets || y.bytes - x.bytes || (x.addr < y.addr ? -1 : 1)).slice(0, TOP_SOURCES);
      const name = opts.names?.[c]?.[b];
      nodes.push({
        node: b + sel.offset,
        ...(name ? { name } : {}),
        packets: packets[b]!, bytes: bytes[b]!, flows: flows[b]!, connections: conn[b]!,
        new_connections_per_s: durationS > 0 ? conn[b]! / durationS : 0,
        top_sources: srcs,
      });
    }
    const band = seedBand(m, reply, sel, opts.dirDep[c]!);
    return {
      id: opts.ids[c]!,
      selector: { spec: sel.spec, description: sel.description, facts: [...sel.facts], predictable: sel.predictable, offset: sel.offset, buckets: N },
      nodes,
      stats: [
        distributionStats('packets', packets, sumP, sumP2, band?.packets),
        distributionStats('bytes', bytes, sumB, sumB2, band?.bytes),
        distributionStats('flows', flows, f.count, f.count, band?.flows),
        distributionStats('connections', conn, conns, conns, band?.connections),
      ],
      unassigned: { no_node: m.perPacket[c]!.noNode, unknown: m.perPacket[c]!.unknown },
    };
  });
  return { configs, reply, durationS };
}

/**
 * Share of flows, connections, packets and bytes whose node changes from
 * configuration a to b. Nodes are compared by owner name when both sides have
 * names (a cluster config), else by kernel node number.
 */
export function migration(m: MergedRun, reply: Uint8Array, selectors: Selector[], a: number, b: number, opts: AnalysisOptions): Migration {
  const f = m.flows;
  const sa = selectors[a]!, sb = selectors[b]!;
  const label = (c: number, bucket: number): string => opts.names?.[c]?.[bucket] ?? String(bucket + selectors[c]!.offset);
  const byName = !!(opts.names?.[a] && opts.names?.[b]);
  const matrix: number[][] = Array.from({ length: sa.buckets }, () => new Array<number>(sb.buckets).fill(0));
  let flows = 0, moved = 0, conns = 0, connMoved = 0, pk = 0, pkMoved = 0, by = 0, byMoved = 0;
  for (let g = 0; g < f.count; g++) {
    const x = flowBucket(m, reply, g, a), y = flowBucket(m, reply, g, b);
    if (x < 0 || y < 0) continue;
    matrix[x]![y]! += 1;
    const changed = byName ? label(a, x) !== label(b, y) : x + sa.offset !== y + sb.offset;
    flows++; pk += f.packets[g]!; by += f.bytes[g]!;
    if (!reply[g]) conns++;
    if (changed) {
      moved++; pkMoved += f.packets[g]!; byMoved += f.bytes[g]!;
      if (!reply[g]) connMoved++;
    }
  }
  return {
    from: opts.ids[a]!, to: opts.ids[b]!,
    flows_moved_share: flows ? moved / flows : 0,
    connections_moved_share: conns ? connMoved / conns : 0,
    packets_moved_share: pk ? pkMoved / pk : 0,
    bytes_moved_share: by ? byMoved / by : 0,
    matrix,
    from_nodes: Array.from({ length: sa.buckets }, (_, i) => i + sa.offset),
    to_nodes: Array.from({ length: sb.buckets }, (_, i) => i + sb.offset),
  };
}

/**
 * Mixed cluster at flow level: node k runs selector mixed[k-1] and accepts a
 * flow when that selector puts it in bucket k-1. Flows no node accepts are
 * lost; flows several accept are duplicated.
 */
export function mixedFlows(m: MergedRun, reply: Uint8Array, mixed: number[]): { none: number; several: number } {
  let none = 0, several = 0;
  for (let g = 0; g < m.flows.count; g++) {
    let acc = 0;
    for (let k = 0; k < mixed.length; k++) if (flowBucket(m, reply, g, mixed[k]!) === k) acc++;
    if (acc === 0) none++;
    else if (acc > 1) several++;
  }
  return { none, several };
}
