/**
 * merge: what joining the partials of a run split across machines costs, for
 * 10, 100 and 1,000 shards over the same traffic (our generator's default
 * mix, rotated by editcap into 1,000 files, shard k a block of them), and
 * how large a shard's partial is. The time is `clusterip-sim merge`'s work
 * without process start and printing: read and check every partial, then the
 * merge (sums, the join of connections open at shard edges, the exact
 * source counters). There is no native reference: the case reports seconds
 * and sizes, and partials/s as its rate.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { summarize, plan, type Suite } from '../harness/harness.ts';
import { createBatch } from '../../sim/traffic/batch.ts';
import { openSynthetic } from '../../sim/traffic/synthetic.ts';
import { PcapWriter } from '../../sim/traffic/pcap-writer.ts';
import { runShares } from '../../sim/engine/run.ts';
import { planRun } from '../../sim/engine/shard-plan.ts';
import { foldSourceRuns, mergePartialSet, readPartialSet, writePartial, type MergeJob } from '../../sim/engine/partial-file.ts';
import { buildSelector } from '../../sim/select/build.ts';
import type { SelectorSpec } from '../../sim/select/selector.ts';
import { parseIPv4 } from '../../sim/core/addr.ts';

const SPECS: SelectorSpec[] = [
  { backend: 'clusterip', hashmode: 'sourceip-sourceport', totalNodes: 4, hashInit: 0, kernel: '6.1', endian: 'little' },
  { backend: 'xt_cluster', totalNodes: 4, hashSeed: 1, kernel: '6.18', endian: 'little' },
];

export const mergeSuite: Suite = {
  name: 'merge',
  description: 'merge of 10, 100 and 1,000 shard partials (read, check, join) and the partial size per shard',
  async run(ctx) {
    const { repeats, warmup } = plan(ctx);
    const packets = ctx.quick ? 20_000 : 500_000;
    const files = ctx.quick ? 20 : 1000;
    const counts = ctx.quick ? [2, 10] : [10, 100, 1000];
    const dir = join(ctx.workDir, 'merge');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(join(dir, 'rot'), { recursive: true });
    const one = join(dir, 'one.pcap');
    ctx.log(`merge: ${packets} packets of the default mix into ${files} rotated files`);
    const src = openSynthetic('default', { seed: 1, packets });
    const w = new PcapWriter(one, 96);
    const b = createBatch(8192);
    try {
      while (src.fill(b) > 0) w.write(b);
    } finally {
      w.close();
    }
    execFileSync('editcap', ['-F', 'pcap', '-c', String(Math.ceil(packets / files)), one, join(dir, 'rot', 'edge.pcap')]);
    const inputs = readdirSync(join(dir, 'rot')).sort().map((f) => ({ kind: 'pcap' as const, path: join(dir, 'rot', f) }));
    const clusterIp = parseIPv4('192.0.2.10');
    const job: MergeJob = { configs: SPECS.map((spec) => ({ spec })), mixed: null, flowTimeout: 120, topSources: true, clusterIp };
    const runOpts = { inputs, selectors: SPECS, buckets: SPECS.map((s) => buildSelector(s).buckets), clusterIp, mixed: null, workers: 0, flowTimeout: job.flowTimeout, topSources: true };
    for (const N of counts) {
      const out = join(dir, `n${N}`);
      mkdirSync(out, { recursive: true });
      const paths: string[] = [];
      let edges = 0;
      for (let I = 0; I < N; I++) {
        const shard = { index: I, count: N };
        const work = planRun(inputs, 0, shard);
        const r = await runShares({ ...runOpts, plan: work }, async (_run, parts) => foldSourceRuns(parts));
        edges += r.out.reduce((n, p) => n + p.exports.v4.count + p.exports.v6.count, 0);
        const path = join(out, `shard-${I}.part`);
        writePartial(path, { shard, plan: { count: N, mode: work.mode, inputs: inputs.map((i) => i.path) }, job, files: [] }, r.out);
        paths.push(path);
      }
      const sizes = paths.map((p) => statSync(p).size);
      const times: number[] = [];
      let merged = 0;
      for (let r = -warmup; r < repeats; r++) {
        const t0 = performance.now();
        const m = mergePartialSet(readPartialSet(paths));
        const s = (performance.now() - t0) / 1000;
        merged = m.ingest.packets;
        if (r >= 0) times.push(s);
      }
      if (merged !== packets) throw new Error(`merge of ${N} partials counted ${merged} packets, not ${packets}`);
      const t = summarize(times);
      const total = sizes.reduce((a, b) => a + b, 0);
      ctx.emit({
        suite: 'merge', case: `${N} partials (${packets} packets in ${files} files, 2 configs)`,
        ops_per_s: N / t.median, spread: t.spread, repeats: times.length,
        merge_s: t.median, partial_bytes_mean: Math.round(total / N), partial_bytes_max: Math.max(...sizes), partials_bytes: total,
        edge_connections_per_shard: Math.round(edges / N),
      });
      ctx.log(`merge: ${N} partials in ${t.median.toFixed(3)} s; a partial ${Math.round(total / N / 1024)} KiB on average, ${Math.round(edges / N)} connections at its edges`);
    }
    rmSync(dir, { recursive: true, force: true });
  },
};
