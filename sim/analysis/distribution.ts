/**
 * From merged counters and flows to what users read: per-node packets, bytes,
 * flows, connections, heaviest sources, imbalance statistics, and the share
 * of traffic that moves between two configurations.
 */
import { specJson } from '../core/spec.ts';
import type { MergedRun } from '../engine/merge.ts';
import { topSources } from '../engine/top-sources.ts';
import type { Selector } from '../select/selector.ts';
import { distributionStats } from './stats.ts';
import { bandP95 } from './seed-band.ts';
import type { ConfigResult, Migration, NodeStats } from '../core/result.ts';

export interface AnalysisOptions {
  ids: string[];
  /** Owner names per selector: names[c][bucket] (from a cluster config). */
  names?: (string[] | undefined)[];
  dirDep: boolean[];
}

export function analyse(m: MergedRun, selectors: Selector[], opts: AnalysisOptions): { configs: ConfigResult[]; durationS: number } {
  const f = m.flows;
  const durationS = f.flows && f.lastTs > f.firstTs ? f.lastTs - f.firstTs : 0;
  const configs = selectors.map((sel, c): ConfigResult => {
    const N = sel.buckets, cf = f.configs[c]!;
    // Direction-dependent selectors count packets per connection (the direction is known when it ends).
    const packets = opts.dirDep[c] ? cf.packets : m.perPacket[c]!.packets;
    const bytes = opts.dirDep[c] ? cf.bytes : m.perPacket[c]!.bytes;
    const frames = opts.dirDep[c] ? cf.frames : m.perPacket[c]!.frames;
    const top = topSources(f.sources, c, N);
    const nodes: NodeStats[] = [];
    for (let b = 0; b < N; b++) {
      const name = opts.names?.[c]?.[b];
      nodes.push({
        node: b + sel.offset,
        ...(name ? { name } : {}),
        packets: packets[b]!, frames: frames[b]!, bytes: bytes[b]!, flows: cf.flows[b]!, connections: cf.connections[b]!,
        new_connections_per_s: durationS > 0 ? cf.connections[b]! / durationS : 0,
        top_sources: top[b]!,
      });
    }
    const band = cf.band ? bandP95(cf.band, N) : null;
    return {
      id: opts.ids[c]!,
      selector: { spec: specJson(sel.spec), description: sel.description, facts: [...sel.facts], predictable: sel.predictable, offset: sel.offset, buckets: N },
      nodes,
      stats: [
        distributionStats('packets', packets, f.sumP, f.sumP2, band?.packets),
        distributionStats('bytes', bytes, f.sumB, f.sumB2, band?.bytes),
        distributionStats('flows', cf.flows, f.flows, f.flows, band?.flows),
        distributionStats('connections', cf.connections, f.connections, f.connections, band?.connections),
      ],
      unassigned: { no_node: m.perPacket[c]!.noNode, unknown: m.perPacket[c]!.unknown },
    };
  });
  return { configs, durationS };
}

/**
 * Share of flows, connections, packets and bytes whose node changes from
 * configuration 0 to b (the summaries keep 0 -> every other one). Nodes are
 * compared by owner name when both sides have names (a cluster config), else
 * by kernel node number.
 */
export function migration(m: MergedRun, selectors: Selector[], b: number, opts: AnalysisOptions): Migration {
  const a = 0;
  const sa = selectors[a]!, sb = selectors[b]!;
  const mm = m.flows.migrations[b - 1]!;
  const label = (c: number, bucket: number): string => opts.names?.[c]?.[bucket] ?? String(bucket + selectors[c]!.offset);
  const byName = !!(opts.names?.[a] && opts.names?.[b]);
  const matrix: number[][] = Array.from({ length: sa.buckets }, () => new Array<number>(sb.buckets).fill(0));
  let flows = 0, moved = 0, conns = 0, connMoved = 0, pk = 0, pkMoved = 0, by = 0, byMoved = 0;
  for (let x = 0; x < sa.buckets; x++) {
    for (let y = 0; y < sb.buckets; y++) {
      const cell = x * sb.buckets + y;
      matrix[x]![y] = mm.flows[cell]!;
      const changed = byName ? label(a, x) !== label(b, y) : x + sa.offset !== y + sb.offset;
      flows += mm.flows[cell]!; conns += mm.connections[cell]!; pk += mm.packets[cell]!; by += mm.bytes[cell]!;
      if (changed) { moved += mm.flows[cell]!; connMoved += mm.connections[cell]!; pkMoved += mm.packets[cell]!; byMoved += mm.bytes[cell]!; }
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
