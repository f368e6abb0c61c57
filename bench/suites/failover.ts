/**
 * failover: packets per second through the failover timeline evaluator (the
 * built-in scenario: 4 nodes, a crash and a rejoin, every policy compared in
 * one pass), in-process and on 2 workers, wall time. No native reference
 * exists for this model; the per-round numbers show its cost next to simulate.
 */
import { plan, summarize, type Suite } from '../harness/harness.ts';
import { builtinScenario } from '../../sim/cluster/scenario.ts';
import { parseIPv4 } from '../../sim/core/addr.ts';
import { runFailoverParallel } from '../../sim/engine/failover-run.ts';

export const failoverSuite: Suite = {
  name: 'failover',
  description: 'failover timeline: packets/s through every policy at once, 0 (in-process) and 2 workers',
  async run(ctx) {
    const { repeats, warmup } = plan(ctx);
    const sc = builtinScenario();
    const flows = ctx.quick ? 2_000 : 200_000;
    const params = { flows, duration_s: 60, tcp_share: 0.8, server: parseIPv4(sc.config.cluster.ip)! };
    const input = { kind: 'synthetic' as const, files: [], skipped: {} };
    for (const workers of [0, 2]) {
      const rates: number[] = [];
      let packets = 0;
      for (let r = -warmup; r < repeats; r++) {
        const t0 = performance.now();
        const res = await runFailoverParallel(sc, { input: { kind: 'synthetic', name: 'steady', seed: 1, params }, summary: input, workers, comparePolicies: true });
        const s = (performance.now() - t0) / 1000;
        packets = res.input.packets;
        if (r >= 0) rates.push(packets / s);
      }
      const m = summarize(rates);
      ctx.emit({ suite: 'failover', case: `timeline, 4 policies, ${flows} flows, ${workers === 0 ? 'in-process' : `${workers} workers`}`, ops_per_s: m.median, spread: m.spread, packets });
    }
  },
};
