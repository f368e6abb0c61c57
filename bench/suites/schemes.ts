/**
 * `npm run bench -- schemes`: selections per second of every load-sharing
 * scheme of `compare-schemes` (one selection = one flow mapped to a node),
 * over the same synthetic flows, alternating the schemes round by round.
 * No native reference: the point is how the schemes compare with each other.
 */
import { collectFlows } from '../../sim/schemes/flows.ts';
import { syntheticBatches } from '../../sim/traffic/synthetic.ts';
import { allSchemes } from '../../sim/schemes/compare.ts';
import { membership } from '../../sim/schemes/scheme.ts';
import { measureRounds, plan, ratioCase, timeOps, type BenchContext, type Contender, type Suite } from '../harness/harness.ts';

export const schemesSuite: Suite = {
  name: 'schemes',
  description: 'selections/s of each load-sharing scheme (kernel buckets, Maglev, rendezvous, jump) over the same flows',
  async run(ctx: BenchContext): Promise<void> {
    const { repeats, warmup } = plan(ctx);
    const fs = await collectFlows(syntheticBatches('mix', { flows: ctx.quick ? 20_000 : 200_000, seed: 11 }));
    const n = fs.flows.count;
    const passes = ctx.quick ? 2 : 20;
    for (const nodes of ctx.quick ? [4] : [4, 16]) {
      const m = membership(nodes);
      const schemes = allSchemes().filter((s) => nodes <= s.maxNodes);
      const out = new Int32Array(n);
      const contenders: Contender[] = schemes.map((s) => ({
        name: s.name,
        run: () => timeOps(n * passes, () => { for (let p = 0; p < passes; p++) s.assign(fs.flows, m, out); }),
      }));
      const samples = measureRounds(contenders, repeats, warmup);
      schemes.forEach((s, k) => ctx.emit(ratioCase('schemes', `${s.name} ${nodes} nodes`, samples[k]!, null, { flows: n, nodes })));
    }
  },
};
