/**
 * failover: packets per second of a failover run (the built-in scenario: 4
 * nodes, a crash and a rejoin; the scenario's policy alone, and every policy
 * compared in one pass) as a ratio to simulate's on the same input, with the
 * same worker count, rounds alternating. Two inputs: failover's own steady
 * flows (the synthetic scenario 'steady', which simulate reads as well) and
 * a capture of the default mix to the same cluster IP. Wall time of the
 * engine call (the pool start included), in this process.
 * Goal (issue 22): failover >= 0.5x simulate's throughput.
 */
import { plan, summarize, type Suite } from '../harness/harness.ts';
import { builtinScenario } from '../../sim/cluster/scenario.ts';
import { parseIPv4 } from '../../sim/core/addr.ts';
import { firstTimestamp, runFailoverParallel } from '../../sim/engine/failover-run.ts';
import { runSimulation } from '../../sim/engine/run.ts';
import { buildSelector } from '../../sim/select/build.ts';
import { selectorSpecOf } from '../../sim/select/from-config.ts';
import type { InputSpec } from '../../sim/engine/task.ts';
import { ensureCapture } from './ingest.ts';

export const failoverSuite: Suite = {
  name: 'failover',
  description: 'failover end to end as a ratio to simulate on the same input (steady flows and a capture), 0 and 2 workers',
  async run(ctx) {
    const { repeats, warmup } = plan(ctx);
    const sc = builtinScenario();
    const server = parseIPv4(sc.config.cluster.ip)!;
    const spec = selectorSpecOf(sc.config);
    const sel = buildSelector(spec);
    const flows = ctx.quick ? 2_000 : 200_000;
    const capPackets = ctx.quick ? 100_000 : 1_000_000;
    const inputs: [string, InputSpec][] = [
      [`steady ${flows} flows`, { kind: 'synthetic', name: 'steady', seed: 1, params: { flows, duration_s: 60, tcp_share: 0.8, server } }],
      [`capture ${capPackets} packets`, { kind: 'pcap', path: ensureCapture(ctx, capPackets, 262144) }],
    ];
    const summary = { kind: 'synthetic' as const, files: [], skipped: {} };
    for (const [label, input] of inputs) {
      const t0 = input.kind === 'pcap' ? firstTimestamp(input) : 0;
      for (const workers of [0, 2]) {
        const fo: number[] = [], all: number[] = [], sim: number[] = [];
        let packets = 0;
        for (let r = -warmup; r < repeats; r++) {
          let t = performance.now();
          const res = await runFailoverParallel(sc, { input, summary, workers, t0 });
          const f = (performance.now() - t) / 1000;
          t = performance.now();
          await runFailoverParallel(sc, { input, summary, workers, t0, comparePolicies: true });
          const a = (performance.now() - t) / 1000;
          t = performance.now();
          const s = await runSimulation({ inputs: [input], selectors: [spec], buckets: [sel.buckets], clusterIp: server, mixed: null, workers });
          const m = (performance.now() - t) / 1000;
          packets = res.input.packets;
          // Both read the input the same way: only packets to the cluster IP (engine/cluster-filter.ts).
          const simPackets = s.merged.ingest.packets - s.merged.notToCluster;
          if (simPackets !== packets) throw new Error(`${label}: failover saw ${packets} packets to the cluster IP, simulate ${simPackets}`);
          if (r < 0) continue;
          fo.push(packets / f); all.push(packets / a); sim.push(packets / m);
          ctx.log(`${label}, ${workers} workers: failover ${f.toFixed(2)} s, all policies ${a.toFixed(2)} s, simulate ${m.toFixed(2)} s`);
        }
        const sf = summarize(fo), sa = summarize(all), ss = summarize(sim);
        const w = workers === 0 ? 'in-process' : `${workers} workers`;
        ctx.emit({ suite: 'failover', case: `${label}, ${w}: failover vs simulate`, ops_per_s: sf.median, spread: sf.spread, native_ops_per_s: ss.median, native_spread: ss.spread, ratio: sf.median / ss.median, packets });
        ctx.emit({ suite: 'failover', case: `${label}, ${w}: failover, 4 policies compared, vs simulate`, ops_per_s: sa.median, spread: sa.spread, native_ops_per_s: ss.median, ratio: sa.median / ss.median, packets });
      }
    }
  },
};
