/**
 * `npm run bench -- recommend`: how long the search of `recommend` takes for
 * 10k, 100k and 1M direction flows (the pass over the input is the engine's
 * and measured by the simulate suite). The table is filled directly with
 * seeded flows (random client addresses and ports to one service, heavy-tailed
 * packet counts); the search is the command's: CLUSTERIP on 6.1 with 4 nodes,
 * every mode, up to 16 buckets, xt_cluster up to 32 (nft is its twin), the
 * spread takeover weighted in. No native reference: nothing else does this job.
 */
import { writeTupleV4 } from '../../sim/traffic/tuple.ts';
import { BYTES_PER_PACKET } from '../../sim/traffic/batch.ts';
import { parseConfig } from '../../sim/core/cluster-config.ts';
import { emptyTable, type FlowTable } from '../../sim/recommend/flows.ts';
import { recommend } from '../../sim/recommend/search.ts';
import { plan, ratioCase, type BenchContext, type Suite } from '../harness/harness.ts';

const CURRENT = parseConfig(`cluster: { ip: 192.0.2.10, backend: clusterip, hashmode: sourceip, total_nodes: 4, kernel: "6.1" }
nodes:
  - { name: node1, owns: [1] }
  - { name: node2, owns: [2] }
  - { name: node3, owns: [3] }
  - { name: node4, owns: [4] }
`, 'bench').config;

/** n seeded flows toward 192.0.2.10:443 over 60 s. */
export function benchTable(n: number, seed = 7): FlowTable {
  const t = emptyTable(n);
  let s = seed >>> 0;
  const r = (): number => (s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x297a2d39) >>> 0);
  for (let i = 0; i < n; i++) {
    const client = 0x0a000000 | (r() & 0xffffff);
    writeTupleV4(t.tuples, i, 6, client, 1024 + (r() % 60000), 0xc000020a, 443);
    const pk = 1 + Math.floor(4 / Math.pow(1 - (r() / 2 ** 32) * 0.999, 0.8));
    t.packets[i] = pk;
    t.bytes[i] = pk * (64 + (r() % 1400));
    t.orig[i] = 1;
    t.start[i] = (60 * i) / n;
    t.late[i] = i >= n / 2 ? 1 : 0;
    t.flowW[i] = 1;
    t.srcHash[i] = r();
  }
  t.count = n;
  t.cut = 30;
  return t;
}

export const recommendSuite: Suite = {
  name: 'recommend',
  description: 'search time of recommend for 10k, 100k and 1M flows (every structure the kernels allow, owner sets, held-out checks, bands)',
  async run(ctx: BenchContext): Promise<void> {
    const { repeats, warmup } = plan(ctx);
    for (const n of ctx.quick ? [10_000] : [10_000, 100_000, 1_000_000]) {
      const table = benchTable(n);
      const reps = n >= 1_000_000 ? Math.min(repeats, 2) : repeats;
      const samples: number[] = [];
      let last: ReturnType<typeof recommend> | null = null;
      let seconds: number[] = [];
      for (let k = 0; k < warmup + reps; k++) {
        const t0 = process.hrtime.bigint();
        // --quick (the harness test) searches up to 8 buckets only: the case must run, not take long.
        last = recommend({ table, current: CURRENT, metric: 'packets', policy: { policy: 'spread', failback: 'immediate', stable_s: 10 }, backends: ['clusterip', 'xt_cluster', 'nft'], kernel: '6.1', hashmodeMayChange: true, ...(ctx.quick ? { maxBuckets: 8 } : {}), seeds: 0, failureWeight: 0.25, minGain: 0.02, top: 5 });
        const dt = Number(process.hrtime.bigint() - t0) / 1e9;
        if (k >= warmup) { samples.push(n / dt); seconds.push(dt); }
      }
      seconds = seconds.sort((a, b) => a - b);
      const tableBytes = n * (BYTES_PER_PACKET + 8 + 8 + 1 + 8 + 4 + 1 + 1);
      ctx.log(`recommend: ${n} flows, ${last!.structures} structures: search ${seconds.map((x) => x.toFixed(2)).join(' / ')} s; table ${(tableBytes / 2 ** 20).toFixed(0)} MiB`);
      ctx.emit(ratioCase('recommend', `search ${n} flows`, samples, null, { flows: n, structures: last!.structures, search_s: seconds[seconds.length >> 1], table_bytes: tableBytes, rss_bytes: process.memoryUsage().rss }));
    }
  },
};
