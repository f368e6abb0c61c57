/**
 * `clusterip-sim merge PART...`: the shards' partials of a run split across
 * machines (`simulate --shard I/N --partial OUT`) joined into exactly the
 * result a single run over every input gives, with simulate's output
 * options and gates.
 */
import type { Command } from 'commander';
import { mergePartialSet, readPartialSet } from '../sim/engine/partial-file.ts';
import { addOutputOptions, emitSimulate, simulateResult, addSplitWarnings, type GateFlags, type SimulateJob } from './simulate.ts';
import { joinSplitPasses } from '../sim/engine/frag-split.ts';

interface MergeFlags extends GateFlags {
  json?: boolean;
  report?: string;
  png?: string;
}

export function registerMerge(program: Command): void {
  const cmd = program
    .command('merge')
    .description(
      'Reads the partials that `simulate --shard I/N --partial OUT` wrote (every shard 0..N-1 once, one configuration, one tool version) ' +
        'and gives exactly the result one simulate run over all the inputs gives: connections cut by shard edges joined, the heaviest ' +
        'sources summed exactly, the same JSON apart from timings.',
    )
    .argument('<partial...>', 'partial files, in any order');
  addOutputOptions(cmd)
    .addHelpText(
      'after',
      `
Examples:
  parallel --sshlogin cap1,cap2 clusterip-sim simulate --pcap {} ...   (README: Past one machine)
  clusterip-sim merge parts/*.part --json --max-imbalance 1.2`,
    )
    .action(async (paths: string[], o: MergeFlags) => {
      const t0 = performance.now();
      const set = readPartialSet(paths);
      const job = set.header.job as SimulateJob;
      const merged = mergePartialSet(set);
      const elapsed = (performance.now() - t0) / 1000;
      const result = simulateResult(job, merged, set.files, o, { workers: 0, elapsed_s: elapsed, shares_s: 0, packets_per_s: 0, peak_rss_bytes: process.memoryUsage().rss });
      // The single run's split-datagram warning (simulate.ts), from the shards' passes joined at their edges.
      addSplitWarnings(result, job, merged, () => joinSplitPasses(set.splits));
      await emitSimulate(result, o);
    });
}
