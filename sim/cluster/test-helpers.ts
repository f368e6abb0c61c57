/** Small builders shared by the sim/cluster tests. */
import { createBatch, type TupleBatch } from '../traffic/batch.ts';
import { newStats, type PacketInput } from '../traffic/input.ts';
import { openSynthetic } from '../traffic/synthetic.ts';

const nodes = (n: number): string => Array.from({ length: n }, (_, i) => `    - { name: node${i + 1}, owns: [${i + 1}] }`).join('\n');

/** A scenario YAML: an n-node CLUSTERIP cluster (node k owns node number k), a heartbeat line and a body (policy, events, ...). */
export const scenarioYaml = (n: number, body: string, hb = '{ interval_s: 1, dead_after: 3, takeover_delay_s: 0.5, jitter_s: 0 }'): string => `name: test
cluster:
  cluster: { ip: 192.0.2.10, backend: clusterip, hashmode: sourceip-sourceport, total_nodes: ${n} }
  nodes:
${nodes(n)}
heartbeat: ${hb}
${body}
`;

/** Every packet of a traffic source, in flat arrays (time order), with a flow number per packet. */
export interface CollectedTraffic {
  count: number;
  ts: Float64Array;
  proto: Uint8Array;
  flags: Uint8Array;
  /** The packet's flow: one number per distinct (protocol, source, source port, destination, destination port). */
  flow: Uint32Array;
  /** Every packet, in one batch. */
  batch: TupleBatch;
}

/** What the tests ask of failover's built-in flows. */
export interface SteadyParams { flows: number; duration_s: number; seed: number; tcp_share: number; server: number }

/** Failover's built-in flows (sim/traffic/synthetic.ts 'steady') toward `server`, collected whole. */
export function steadyTraffic(p: SteadyParams): CollectedTraffic {
  const { seed, ...params } = p;
  const src = openSynthetic('steady', { ...params, seed });
  const parts: TupleBatch[] = [];
  let count = 0;
  for (;;) {
    const b = createBatch(65536);
    if (src.fill(b) === 0) break;
    parts.push(b);
    count += b.count;
  }
  const batch = createBatch(Math.max(1, count));
  const key = new Map<string, number>();
  const flow = new Uint32Array(count);
  let j = 0;
  for (const b of parts) {
    for (let i = 0; i < b.count; i++, j++) {
      copySlot(b, i, batch, j);
      const k = `${b.proto[i]},${b.saddr[i]},${b.sport[i]},${b.daddr[i]},${b.dport[i]}`;
      let f = key.get(k);
      if (f === undefined) key.set(k, (f = key.size));
      flow[j] = f;
    }
  }
  batch.count = count;
  return { count, ts: batch.ts.slice(0, count), proto: batch.proto.slice(0, count), flags: batch.flags.slice(0, count), flow, batch };
}

const LANES = ['ts', 'wirelen', 'saddr', 'daddr', 'l4a', 'l4b', 'sport', 'dport', 'proto', 'family', 'flags', 'l4flags'] as const;
function copySlot(from: TupleBatch, i: number, to: TupleBatch, j: number): void {
  for (const l of LANES) (to[l] as Float64Array)[j] = (from[l] as Float64Array)[i]!;
  for (let q = 0; q < 4; q++) { to.saddr6[4 * j + q] = from.saddr6[4 * i + q]!; to.daddr6[4 * j + q] = from.daddr6[4 * i + q]!; }
}

/** A PacketInput over collected traffic: the packets `keep` selects (all by default), in order. */
export function replayInput(g: CollectedTraffic, keep?: (j: number) => boolean): PacketInput {
  let j = 0;
  return {
    stats: newStats(),
    close() {},
    fill(b: TupleBatch): number {
      let i = 0;
      while (i < b.capacity && j < g.count) {
        if (!keep || keep(j)) copySlot(g.batch, j, b, i++);
        j++;
      }
      b.count = i;
      return i;
    },
  };
}
